"""The stage engine: plan a stage's items from its spec and the recipe, apply them with guards, report as events.

Front ends (the wizard, ``cai-tui replay``, the CLI) drive this package; it never imports a front end.
"""
