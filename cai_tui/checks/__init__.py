"""Checks: does a stage's work hold? Evidence in, pass/warn/fail/skip/unknown out, with the fix."""
