"""Plain mode: the wizard's stage specs asked as one-line prompts (questionary), for serial consoles, SSH sessions
and screen readers. A front end like the TUI: it edits the recipe through the core's Draft and never imports
Textual."""
