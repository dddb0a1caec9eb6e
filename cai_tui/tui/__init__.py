"""The Textual front end. Only this package imports textual; the core stays headless.

Start it through :func:`cai_tui.tui.app.make_app` (tests) or :func:`cai_tui.tui.app.run_app` (CLI).
"""
