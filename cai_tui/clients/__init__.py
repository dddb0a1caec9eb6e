"""Network clients of the core (real protocols, no front-end or lab imports)."""
