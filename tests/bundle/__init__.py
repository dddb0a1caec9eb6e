"""Support bundle tests (cai-tui bundle)."""
