"""Pure parsers: text read from a machine (command output, /proc, sysfs, config files) → dataclasses.

No I/O and no subprocess here: the caller runs the command or reads the file (through a Target) and passes the text.
Every parser raises :class:`~cai_tui.parsers.errors.ParseError` — and nothing else — when the text is not what it
expects; the message quotes the first offending line.

Modules: ``nvidia_smi``, ``conf_compute``, ``lspci``, ``sysfs``, ``kernel_config``, ``kata_toml``, ``docker_version``,
``proc_nvidia``, ``cpuinfo``.
"""

from cai_tui.parsers.errors import ParseError

__all__ = ["ParseError"]
