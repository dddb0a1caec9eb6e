"""Targets: where commands run and files are read (local, SSH, container, sysroot)."""
