"""cai-tui: guided set-up and diagnostics for confidential LLM inference."""

__version__ = "0.1.0"
