"""Running the labstack stand-in services as host subprocesses against the embedded lab (helpers for the tests)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cai_tui.faq.matcher import Observation, lines_from_text, match

REPO_ROOT = Path(__file__).resolve().parents[2]
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@dataclass
class Svc:
    """One service subprocess; stdout and stderr go (merged, like ``docker logs``) to a file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def output(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"{self.name} did not exit within {timeout} s; output:\n{self.output}") from None

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)


@dataclass
class Stack:
    """The environment of a stand-in stack on the host: cai.env values for the lab, data dirs under ``root``."""

    root: Path
    env: dict[str, str]
    creds: dict[str, Any]
    started: list[Svc] = field(default_factory=list)

    @classmethod
    def for_lab(cls, lab: Any, root: Path) -> Stack:
        creds = json.loads(lab.credentials_path.read_text("utf-8"))
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in PROXY_VARS and not k.startswith(("MODEL_", "TRUSTEE_", "CAI_LAB_"))
        }
        env.update(
            PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]),
            PYTHONUNBUFFERED="1",
            CAI_LAB_DATA_DIR=str(root / "data"),
            CAI_LAB_AA_DIR=str(root / "aa"),
            CAI_LAB_RUN_DIR=str(root / "run"),
            CAI_LAB_WAIT_S="20",
            TRUSTEE_URL=lab.trustee_url + "/",
            TRUSTEE_POLICY="default",
            CAI_LAB_TNG_PORT=str(_free_port()),
            MODEL_KEY_ID=creds["model_key_id"],
            MODEL_ENCRYPTION_METHOD="gocryptfs",
            MODEL_OSS_BUCKET_PATH=f"{creds['oss_bucket']}:/{creds['model_prefix']}",
            MODEL_OSS_ENDPOINT=lab.oss_endpoint,
            MODEL_OSS_ACCESS_KEY_ID=creds["oss_access_key_id"],
            MODEL_OSS_SECRET_ACCESS_KEY=creds["oss_access_key_secret"],
            MODEL_OSS_SESSION_TOKEN="",
            MODEL_SERVICE_PORT="8080",
            MODEL_MOUNT_POINT=str(root / "model"),
        )
        return cls(root, env, creds)

    def path(self, name: str) -> Path:
        return {
            "data": self.root / "data",
            "cipher": self.root / "data" / "cipher",
            "cipher.ready": self.root / "data" / "cipher.ready",
            "model.key": self.root / "data" / "model.key",
            "aa.sock": self.root / "aa" / "attestation-agent.sock",
            "tng.ready": self.root / "run" / "tng.ready",
            "mount": self.root / "model",
        }[name]

    def start(self, service: str, *args: str, **env: str | None) -> Svc:
        full = dict(self.env)
        for k, v in env.items():
            if v is None:
                full.pop(k, None)
            else:
                full[k] = v
        log_path = self.root / f"{service}-{len(self.started)}.log"
        self.root.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cai_tui.labstack.services", service, *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=full, cwd=self.root,
            )  # fmt: skip
        svc = Svc(service, proc, log_path)
        self.started.append(svc)
        return svc

    def run(self, service: str, *args: str, **env: str | None) -> tuple[int, str]:
        """Start a service that is expected to exit (within 40 s); (exit code, merged output)."""
        svc = self.start(service, *args, **env)
        rc = svc.wait(40.0)
        return rc, svc.output

    def cleanup(self) -> None:
        for svc in self.started:
            if svc.proc.poll() is None:
                svc.proc.send_signal(signal.SIGTERM)
                try:
                    svc.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    svc.proc.kill()
                    svc.proc.wait(timeout=10)
        mnt = self.path("mount")
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False, capture_output=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_mounted(path: Path) -> bool:
    target = str(path)
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            return any(line.split()[1] == target for line in fh if len(line.split()) > 1)
    except OSError:
        return False


def wait_until(pred: Callable[[], bool], timeout: float, what: str, svc: Svc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if svc is not None and svc.proc.poll() is not None:
            raise AssertionError(f"{svc.name} exited ({svc.proc.returncode}) while waiting for {what}:\n{svc.output}")
        time.sleep(0.1)
    detail = f"\n{svc.name} output:\n{svc.output}" if svc else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")


def ranked_faqs(service: str, output: str, rc: int) -> list[tuple[str, float]]:
    findings = match(Observation(service=service, log_lines=lines_from_text(output), state="exited", exit_code=rc))
    return [(f.faq_id, round(f.score, 2)) for f in findings[:4]]
