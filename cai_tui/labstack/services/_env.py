"""cai.env variables and the lab stand-ins' own switches, with the paths the contract fixes.

Inside the containers the defaults apply (``/run/cai``, ``/run/confidential-containers/attestation-agent``,
``/run``); tests on the host point ``CAI_LAB_DATA_DIR``, ``CAI_LAB_AA_DIR`` and ``CAI_LAB_RUN_DIR`` into a
temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._log import emit

AA_SOCKET_NAME = "attestation-agent.sock"
DEFAULT_DATA_DIR = "/run/cai"
DEFAULT_AA_DIR = "/run/confidential-containers/attestation-agent"
DEFAULT_RUN_DIR = "/run"
ENV_EXIT = 1


class EnvProblem(Exception):
    """A cai.env variable is missing or empty; ``str()`` is the one-line message for the log."""


def require(name: str, service: str) -> str:
    value = os.environ.get(name, "")
    if not value.strip():
        state = "is empty" if name in os.environ else "is not set"
        raise EnvProblem(
            f"{service}: environment variable {name} {state}; set {name} in cai.env "
            "(compose passes it to the container), then start the stack again"
        )
    return value.strip()


def optional(name: str) -> str:
    return os.environ.get(name, "").strip()


def report(problem: EnvProblem) -> int:
    emit(str(problem))
    return ENV_EXIT


def data_dir() -> Path:
    return Path(os.environ.get("CAI_LAB_DATA_DIR") or DEFAULT_DATA_DIR)


def aa_dir() -> Path:
    return Path(os.environ.get("CAI_LAB_AA_DIR") or DEFAULT_AA_DIR)


def aa_socket() -> Path:
    return aa_dir() / AA_SOCKET_NAME


def run_dir() -> Path:
    return Path(os.environ.get("CAI_LAB_RUN_DIR") or DEFAULT_RUN_DIR)


def cipher_dir() -> Path:
    return data_dir() / "cipher"


def cipher_ready() -> Path:
    return data_dir() / "cipher.ready"


def model_key() -> Path:
    return data_dir() / "model.key"


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
