"""Local reproduction of the CAI container stack (the "labstack") for tests and demos."""
