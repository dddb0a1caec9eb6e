"""Download a model from ModelScope (CAI-1.1), or accept a local model directory instead.

The Python API is used when ``modelscope`` is importable
(``modelscope.hub.snapshot_download.snapshot_download(model_id=…, local_dir=…)``, with per-file progress callbacks
where the installed version has ``progress_callbacks``), else the CLI the seed shows
(``modelscope download --model ID [--local_dir DIR]``). Neither installed → "pip install modelscope" (exit 2).
A hub that cannot be reached (no network, a proxy, MODELSCOPE_ENDPOINT pointing nowhere) gives one clear message.

What happens goes to one :data:`~cai_tui.events.EventSink` (``on_event``): ``progress`` events (source ``download``,
bytes so far of the bytes expected so far, ``text`` the file) and the CLI's output as ``line`` events (source
``modelscope``).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from typing import Any

from ..events import EventSink, line, progress
from . import ActionError
from .model_dir import ModelDirReport, validate_model_dir

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
DEFAULT_DOMAIN = "www.modelscope.cn"
INSTALL = "pip install modelscope"
_UNREACHABLE_NAMES = {
    "ConnectionError",
    "ConnectTimeout",
    "ConnectError",
    "MaxRetryError",
    "NewConnectionError",
    "NameResolutionError",
    "NetworkError",
    "ProxyError",
    "ReadTimeout",
    "SSLError",
    "Timeout",
}
_UNREACHABLE_TEXT = re.compile(
    r"Connection failed|Failed to establish a new connection|Max retries exceeded|Name or service not known|"
    r"Temporary failure in name resolution|Connection refused|timed out|Unable to connect|Network is unreachable",
    re.IGNORECASE,
)

SOURCE = "download"


@dataclass
class DownloadResult:
    path: str
    via: str  # local | modelscope-api | modelscope-cli
    report: ModelDirReport


def hub_name() -> str:
    return os.environ.get("MODELSCOPE_ENDPOINT") or os.environ.get("MODELSCOPE_DOMAIN") or DEFAULT_DOMAIN


def _unreachable(reason: str) -> ActionError:
    return ActionError(
        f"cannot reach the ModelScope hub ({hub_name()}) from this machine: {reason}. Check the network and any "
        "proxy (HTTPS_PROXY) or MODELSCOPE_ENDPOINT; or download the model elsewhere and give its local directory "
        "(`cai-tui model download /path/to/model`)",
        1,
    )


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop()
        if e in out:
            continue
        out.append(e)
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return out


def classify_error(exc: BaseException, model_id: str) -> ActionError:
    chain = _chain(exc)
    for e in chain:
        name = type(e).__name__
        if "NotExist" in name or "NotFound" in name or "RepositoryNotFound" in name:
            return ActionError(f"{model_id} was not found on the ModelScope hub ({hub_name()}): check the model ID")
    for e in chain:
        if isinstance(e, (ConnectionError, TimeoutError, socket.gaierror)) or type(e).__name__ in _UNREACHABLE_NAMES:
            return _unreachable(str(chain[-1]) or type(chain[-1]).__name__)
    if _UNREACHABLE_TEXT.search(str(exc)):
        return _unreachable(str(exc)[-200:])
    return ActionError(f"the ModelScope download failed: {type(exc).__name__}: {exc}", 1)


def _dir_bytes(path: str) -> int:
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


class _Poller:
    """Reports the bytes present under a directory twice a second (when the library gives no callbacks)."""

    def __init__(self, path: str | None, on_event: EventSink | None) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if path is not None and on_event is not None:
            self._thread = threading.Thread(target=self._run, args=(path, on_event), daemon=True)
            self._thread.start()

    def _run(self, path: str, on_event: EventSink) -> None:
        while not self._stop.wait(0.5):
            on_event(progress(_dir_bytes(path), None, source=SOURCE))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _callback_class(on_event: EventSink) -> type:
    try:
        from modelscope.hub.callback import ProgressCallback as base
    except Exception:
        base = object
    lock = threading.Lock()
    state = {"done": 0, "total": 0}

    class _Callback(base):  # type: ignore[misc, valid-type]
        def __init__(self, filename: str, file_size: int) -> None:
            self.filename = filename
            self.file_size = file_size
            with lock:
                state["total"] += max(int(file_size or 0), 0)

        def update(self, size: int) -> None:
            with lock:
                state["done"] += size
                done, total = state["done"], state["total"]
            on_event(progress(done, total or None, source=SOURCE, text=self.filename))

        def end(self) -> None:
            pass

    return _Callback


def _via_api(snapshot_download: Any, model_id: str, dest: str | None, on_event: EventSink | None) -> str:
    params = inspect.signature(snapshot_download).parameters
    kwargs: dict[str, Any] = {"model_id": model_id}
    if dest is not None:
        kwargs["local_dir" if "local_dir" in params else "cache_dir"] = dest
    poller = None
    if on_event is not None and "progress_callbacks" in params:
        kwargs["progress_callbacks"] = [_callback_class(on_event)]
    else:
        poller = _Poller(dest, on_event)
    try:
        return str(snapshot_download(**kwargs))
    finally:
        if poller is not None:
            poller.stop()


def default_cache_path(model_id: str) -> str | None:
    """Where ``modelscope download`` without --local_dir puts a model (newer versions write '.' as '___')."""
    base = os.environ.get("MODELSCOPE_CACHE") or os.path.expanduser("~/.cache/modelscope/hub")
    owner, name = model_id.split("/", 1)
    for cand in (f"models/{owner}/{name}", f"models/{owner}/{name.replace('.', '___')}", f"{owner}/{name}"):
        path = os.path.join(base, cand)
        if os.path.isfile(os.path.join(path, "config.json")):
            return path
    return None


def _via_cli(cli: str, model_id: str, dest: str | None, on_event: EventSink | None) -> str:
    argv = [cli, "download", "--model", model_id, *(["--local_dir", dest] if dest else [])]
    poller = _Poller(dest, on_event)
    tail: list[str] = []
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                text = raw.decode("utf-8", "replace").rstrip()
                tail = [*tail[-19:], text]
                if on_event is not None:
                    on_event(line(text, source="modelscope"))
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    finally:
        poller.stop()
    if rc != 0:
        text = "\n".join(tail)
        if _UNREACHABLE_TEXT.search(text):
            errno_text = re.findall(r"\[Errno -?\d+\] [^\"')\n]+", text)
            shown = next((t for t in reversed(tail) if _UNREACHABLE_TEXT.search(t)), tail[-1])
            raise _unreachable(errno_text[-1] if errno_text else shown.strip()[-300:])
        raise ActionError(f"`modelscope download` failed (exit {rc}): {' / '.join(tail[-2:])}", 1)
    path = dest or default_cache_path(model_id)
    if path is None:
        raise ActionError("`modelscope download` finished but the model folder was not found; give --dest DIR", 1)
    return path


def _load_api() -> Any:
    try:
        from modelscope.hub.snapshot_download import snapshot_download
    except ImportError:
        return None
    return snapshot_download


def download_model(
    model_id: str,
    dest: str | None = None,
    *,
    on_event: EventSink | None = None,
) -> DownloadResult:
    """Download ``model_id`` (into ``dest``, else ModelScope's cache) and validate it; a local directory given as
    ``model_id`` is validated instead. Raises :class:`ActionError` (exit 2: input, 1: the download failed)."""
    local = os.path.expanduser(model_id)
    if os.path.isdir(local):
        path = os.path.abspath(local)
        return DownloadResult(path, "local", validate_model_dir(path))
    if local.startswith(("/", ".", "~")):
        raise ActionError(f"{model_id}: no such directory")
    if not MODEL_ID.match(model_id):
        raise ActionError(
            f"{model_id!r} is neither a local directory nor a ModelScope ID like Qwen/Qwen2.5-3B-Instruct"
        )
    snapshot_download = _load_api()
    cli = shutil.which("modelscope")
    if snapshot_download is None and cli is None:
        raise ActionError(
            f"modelscope is not installed: `{INSTALL}` (the seed: `pip3 install modelscope importlib-metadata`), "
            "or download the model elsewhere and give its local directory"
        )
    target = os.path.abspath(os.path.expanduser(dest)) if dest else None
    created = target is not None and not os.path.exists(target)
    try:
        if snapshot_download is not None:
            try:
                path = _via_api(snapshot_download, model_id, target, on_event)
            except (KeyboardInterrupt, ActionError):
                raise
            except Exception as exc:
                raise classify_error(exc, model_id) from None
            via = "modelscope-api"
        else:
            assert cli is not None
            path = _via_cli(cli, model_id, target, on_event)
            via = "modelscope-cli"
    except BaseException:
        if created and target is not None and os.path.isdir(target) and not os.listdir(target):
            os.rmdir(target)  # leave nothing behind that looks like a download
        raise
    return DownloadResult(os.path.abspath(path), via, validate_model_dir(path))
