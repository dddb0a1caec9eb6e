"""vLLM stand-in: ``python3 -m vllm.entrypoints.openai.api_server --model=DIR --trust-remote-code --port N``.

Start-up follows vLLM's order and failures: no GPU → ``RuntimeError: Failed to infer device type…`` (vLLM's
``DeviceConfig``; ``CAI_LAB_DEVICE=cpu`` lets the stand-in run without one); no ``config.json`` in DIR →
``ValueError: Invalid repository ID or local directory specified: 'DIR'`` raised from vLLM's config-format error;
no weights → ``Cannot find any model weights with `DIR```; a broken safetensors header → ``SafetensorError``. They
are raised as real Python exceptions and printed as the traceback Python prints, exit 1.

Then an OpenAI-compatible server on 127.0.0.1:N (only loopback, whatever ``--host`` says): ``GET /health``,
``GET /v1/models`` (the model id is ``--served-model-name`` or the ``--model`` string as given, as in vLLM),
``POST /v1/completions`` and ``/v1/chat/completions`` with a deterministic reply, and vLLM's error JSON (``The model
`x` does not exist.``, 404). Log lines are vLLM's (``INFO 03-04 07:49:06 api_server.py:…]``, stdout) and uvicorn's
(``INFO:     Uvicorn running on http://…``, stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from ._log import emit, uvicorn_line, vllm_line

VLLM_VERSION = "0.5.4"
HF_CONFIG_NAME = "config.json"
MAX_BODY = 1 << 20
LOOPBACK = "127.0.0.1"


class SafetensorError(Exception):
    """safetensors' error type (``safetensors_rust.SafetensorError``)."""


def info(message: str, file: str = "api_server.py", lineno: int = 212) -> None:
    emit(vllm_line("INFO", file, lineno, message), sys.stdout)


def uv(level: str, message: str) -> None:
    emit(uvicorn_line(level, message))


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="vllm.entrypoints.openai.api_server", add_help=True)
    p.add_argument("--model", default="facebook/opt-125m")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default=None)
    p.add_argument("--served-model-name", nargs="*", default=None)
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--max-model-len", type=int, default=None)
    args, _unknown = p.parse_known_args(argv)
    return args


def infer_device() -> str:
    """``cuda`` when an NVIDIA device node is present, ``cpu`` when CAI_LAB_DEVICE=cpu; else vLLM's error."""
    if os.environ.get("CAI_LAB_DEVICE", "").strip().lower() == "cpu":
        return "cpu"
    if Path("/dev/nvidiactl").exists() and any(Path("/dev").glob("nvidia[0-9]*")):
        return "cuda"
    raise RuntimeError(
        "Failed to infer device type, please set the environment variable `VLLM_LOGGING_LEVEL=DEBUG` to turn on "
        "verbose logging to help debug the issue."
    )


def get_config(model: str) -> dict[str, Any]:
    """vLLM's ``get_config`` for a local directory (HF format only)."""
    try:
        if not (Path(model) / HF_CONFIG_NAME).is_file():
            raise ValueError(
                "Could not detect config format for no config file found. With config_format 'auto', ensure your "
                "model has either config.json (HF format) or params.json (Mistral format). Otherwise please specify "
                "your_custom_config_format in engine args for customized config parser."
            )
    except Exception as e:
        error_message = (
            "Invalid repository ID or local directory specified:"
            f" '{model}'.\nPlease verify the following requirements:\n"
            "1. Provide a valid Hugging Face repository ID.\n"
            "2. Specify a local directory that contains a recognized "
            "configuration file.\n"
            "   - For Hugging Face models: ensure the presence of a "
            "'config.json'.\n"
            "   - For Mistral models: ensure the presence of a "
            "'params.json'.\n"
        )
        raise ValueError(error_message) from e
    path = Path(model) / HF_CONFIG_NAME
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OSError(f"It looks like the config file at '{path}' is not a valid JSON file.") from exc
    if not isinstance(doc, dict):
        raise OSError(f"It looks like the config file at '{path}' is not a valid JSON file.")
    return doc


def check_weights(model: str) -> list[Path]:
    """The weight files (safetensors preferred, as vLLM); their headers are parsed as safetensors does."""
    root = Path(model)
    files = sorted(root.glob("*.safetensors")) or sorted(root.glob("*.bin")) or sorted(root.glob("*.pt"))
    if not files:
        raise RuntimeError(f"Cannot find any model weights with `{model}`")
    for f in files:
        if f.suffix != ".safetensors":
            continue
        with open(f, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise SafetensorError("Error while deserializing header: HeaderTooSmall")
            (n,) = struct.unpack("<Q", raw)
            if n > 100_000_000 or n > f.stat().st_size - 8:
                raise SafetensorError("Error while deserializing header: HeaderTooLarge")
            try:
                json.loads(fh.read(n))
            except (ValueError, UnicodeDecodeError) as exc:
                raise SafetensorError("Error while deserializing header: InvalidHeaderDeserialization") from exc
    return files


def load_tokenizer(model: str) -> dict[str, Any]:
    """``tokenizer_config.json`` and ``tokenizer.json`` when present (parsed, so a broken one fails)."""
    out: dict[str, Any] = {}
    for name in ("tokenizer_config.json", "tokenizer.json"):
        p = Path(model) / name
        if p.is_file():
            out[name] = json.loads(p.read_text("utf-8"))
    return out


class Model:
    def __init__(self, served: str, root: str, config: dict[str, Any], max_len: int) -> None:
        self.served = served
        self.root = root
        self.config = config
        self.max_len = max_len
        self.created = int(time.time())

    def reply(self, prompt: str, max_tokens: int) -> str:
        digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8]
        arch = (self.config.get("architectures") or [self.config.get("model_type", "model")])[0]
        words = f"Hello from the cai-tui lab model ({arch}, prompt {digest}).".split()
        return " ".join(words[: max(1, max_tokens)])


def _error(message: str, etype: str, code: int) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": etype, "param": None, "code": code}


class Handler(BaseHTTPRequestHandler):
    server_version = "uvicorn"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    model: Model

    def log_message(self, format: str, *args: Any) -> None:  # access log as uvicorn writes it
        return

    def _send(self, status: int, doc: Any | None) -> None:
        body = b"" if doc is None else json.dumps(doc).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        phrase = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "")
        uv(
            "INFO",
            f'{self.client_address[0]}:{self.client_address[1]} - "{self.command} {self.path} HTTP/1.1" {status} {phrase}',
        )

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, None)
        elif self.path == "/v1/models":
            m = self.model
            card = {"id": m.served, "object": "model", "created": m.created, "owned_by": "vllm", "root": m.root,
                    "parent": None, "max_model_len": m.max_len, "permission": []}  # fmt: skip
            self._send(200, {"object": "list", "data": [card]})
        elif self.path == "/version":
            self._send(200, {"version": VLLM_VERSION})
        else:
            self._send(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        if self.path not in ("/v1/completions", "/v1/chat/completions"):
            self._send(404, {"detail": "Not Found"})
            return
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self._send(400, _error("request body too large", "BadRequestError", 400))
            return
        try:
            req = json.loads(self.rfile.read(length) or b"null")
        except ValueError as exc:
            self._send(400, _error(f"JSON decode error: {exc}", "BadRequestError", 400))
            return
        if not isinstance(req, dict):
            self._send(400, _error("Input should be a valid dictionary", "BadRequestError", 400))
            return
        m = self.model
        if req.get("model") != m.served:
            self._send(404, _error(f"The model `{req.get('model')}` does not exist.", "NotFoundError", 404))
            return
        raw_max = req.get("max_tokens")
        max_tokens = raw_max if isinstance(raw_max, int) else 16
        chat = self.path.endswith("/chat/completions")
        if chat:
            raw_msgs = req.get("messages")
            msgs: list[Any] = raw_msgs if isinstance(raw_msgs, list) else []
            prompt = "\n".join(str(x.get("content", "")) for x in msgs if isinstance(x, dict))
        else:
            p = req.get("prompt", "")
            prompt = p if isinstance(p, str) else json.dumps(p)
        text = m.reply(prompt, max_tokens)
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                 "total_tokens": len(prompt.split()) + len(text.split())}  # fmt: skip
        rid = hashlib.sha256(f"{time.time_ns()}{prompt}".encode()).hexdigest()[:32]
        if chat:
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                      "logprobs": None, "finish_reason": "stop", "stop_reason": None}  # fmt: skip
            doc = {"id": f"chat-{rid}", "object": "chat.completion", "created": int(time.time()), "model": m.served,
                   "choices": [choice], "usage": usage}  # fmt: skip
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length", "stop_reason": None}
            doc = {"id": f"cmpl-{rid}", "object": "text_completion", "created": int(time.time()), "model": m.served,
                   "choices": [choice], "usage": usage}  # fmt: skip
        self._send(200, doc)


def _print_exception(exc: BaseException) -> None:
    emit("".join(traceback.format_exception(exc)).rstrip("\n"))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    info(f"vLLM API server version {VLLM_VERSION}", lineno=212)
    info(f"args: {args}", lineno=213)
    try:
        device = infer_device()
        config = get_config(args.model)
        load_tokenizer(args.model)
        files = check_weights(args.model)
    except Exception as exc:  # what vLLM does: the exception ends the process with its traceback
        _print_exception(exc)
        return 1
    served = (args.served_model_name or [args.model])[0]
    max_len = args.max_model_len or int(config.get("max_position_embeddings") or 2048)
    info(f"Initializing an LLM engine (v{VLLM_VERSION}) with config: model={args.model!r}, tokenizer={args.model!r}, "
         f"trust_remote_code={args.trust_remote_code}, max_seq_len={max_len}, device_config={device}, "
         f"served_model_name={served}", file="llm_engine.py", lineno=174)  # fmt: skip
    size = sum(f.stat().st_size for f in files)
    info(f"Loading model weights took {size / 2**30:.4f} GB", file="model_runner.py", lineno=732)
    Handler.model = Model(served, args.model, config, max_len)
    try:
        httpd = ThreadingHTTPServer((LOOPBACK, args.port), Handler)
    except OSError as exc:
        uv("ERROR", f"[Errno {exc.errno}] error while attempting to bind on address ({LOOPBACK!r}, {args.port}): "
           f"{(exc.strerror or '').lower()}")  # fmt: skip
        return 1
    httpd.daemon_threads = True
    info("Available routes are: /health, /v1/models, /v1/completions, /v1/chat/completions", lineno=148)
    uv("INFO", f"Started server process [{os.getpid()}]")
    uv("INFO", "Waiting for application startup.")
    uv("INFO", "Application startup complete.")
    uv("INFO", f"Uvicorn running on http://{LOOPBACK}:{args.port} (Press CTRL+C to quit)")

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    httpd.serve_forever(poll_interval=0.2)
    httpd.server_close()
    uv("INFO", "Shutting down")
    uv("INFO", "Waiting for application shutdown.")
    uv("INFO", "Application shutdown complete.")
    uv("INFO", f"Finished server process [{os.getpid()}]")
    return 0
