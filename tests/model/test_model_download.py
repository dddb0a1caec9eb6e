"""`cai-tui model download`: not installed, the real modelscope against an unreachable hub (API and CLI), and the
documented API signature driven through a stand-in package."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from cai_tui.actions import ActionError
from cai_tui.actions.model_download import classify_error
from tests.helpers import REPO, run_cli

MODELSCOPE_PIN = "modelscope==1.40.2"  # the release the code was checked against; installed apart from .venv


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return port


def bare_env(**extra: str) -> dict[str, str]:
    """No modelscope on PATH or importable; no proxies; cache dirs in the test's tmp."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("MODELSCOPE")}
    env["PATH"] = "/usr/bin:/bin"
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def modelscope_lib(request: pytest.FixtureRequest) -> Path:
    """The real modelscope, pip-installed once into pytest's cache (never into .venv, where it must stay absent)."""
    target = Path(request.config.cache.mkdir("modelscope-1.40.2"))
    if not (target / "modelscope" / "hub" / "snapshot_download.py").exists():
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(target),
                MODELSCOPE_PIN,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, f"pip install {MODELSCOPE_PIN} failed: {r.stderr[-2000:]}"
    return target


def hub_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    url = f"http://127.0.0.1:{closed_port()}"
    return bare_env(
        MODELSCOPE_ENDPOINT=url,
        MODELSCOPE_DOMAIN=f"127.0.0.1:{url.rsplit(':', 1)[1]}",
        MODELSCOPE_CACHE=str(tmp_path / "ms-cache"),
        MODELSCOPE_REPO_TREE_PAGE_MAX_ATTEMPTS="1",
        NO_PROXY="*",
        HOME=str(tmp_path),
        **extra,
    )


def test_modelscope_not_installed(tmp_path: Path) -> None:
    r = run_cli("model", "download", "Qwen/Qwen2.5-3B-Instruct", "--dest", str(tmp_path / "m"), env=bare_env())
    assert r.returncode == 2, r.stderr
    assert "modelscope is not installed: `pip install modelscope`" in r.stderr
    assert not (tmp_path / "m").exists()


def test_not_an_id_nor_a_directory(tmp_path: Path) -> None:
    r = run_cli("model", "download", "no-slash-here", env=bare_env())
    assert r.returncode == 2 and "neither a local directory nor a ModelScope ID" in r.stderr
    r = run_cli("model", "download", str(tmp_path / "absent"), env=bare_env())
    assert r.returncode == 2 and "no such directory" in r.stderr


def test_unreachable_hub_with_the_real_library(modelscope_lib: Path, tmp_path: Path) -> None:
    dest = tmp_path / "qwen"
    env = hub_env(tmp_path, PYTHONPATH=f"{REPO}{os.pathsep}{modelscope_lib}")
    r = run_cli("model", "download", "Qwen/Qwen2.5-3B-Instruct", "--dest", str(dest), env=env, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error: cannot reach the ModelScope hub (http://127.0.0.1:" in r.stderr
    assert "Connection refused" in r.stderr and "Traceback" not in r.stderr
    assert not dest.exists()  # nothing left that looks like a download


def test_unreachable_hub_with_the_real_cli(modelscope_lib: Path, tmp_path: Path) -> None:
    """Only the `modelscope` command is there (the library is not importable by cai-tui): the CLI fallback."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    argv_log = tmp_path / "argv"
    wrapper = bindir / "modelscope"
    wrapper.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        printf '%s\\n' "$@" > {argv_log}
        PYTHONPATH={modelscope_lib} exec {sys.executable} {modelscope_lib}/bin/modelscope "$@"
        """)
    )
    wrapper.chmod(0o755)
    dest = tmp_path / "qwen"
    env = hub_env(tmp_path, PATH=f"{bindir}:/usr/bin:/bin")
    r = run_cli("model", "download", "Qwen/Qwen2.5-3B-Instruct", "--dest", str(dest), env=env, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert argv_log.read_text().split() == ["download", "--model", "Qwen/Qwen2.5-3B-Instruct", "--local_dir", str(dest)]
    assert "error: cannot reach the ModelScope hub" in r.stderr and "Connection refused" in r.stderr


def test_the_documented_api_is_called_with_local_dir_and_progress(tmp_path: Path) -> None:
    """A stand-in package with the documented signature (snapshot_download(model_id, …, local_dir, …,
    progress_callbacks)); it writes a small model and reports per-file progress as the real one does."""
    pkg = tmp_path / "fake" / "modelscope" / "hub"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "snapshot_download.py").write_text(
        textwrap.dedent("""\
        import json, os, struct
        def snapshot_download(model_id=None, revision=None, cache_dir=None, user_agent=None, local_files_only=False,
                              cookies=None, ignore_file_pattern=None, allow_file_pattern=None, local_dir=None,
                              allow_patterns=None, ignore_patterns=None, max_workers=None, repo_id=None,
                              repo_type=None, progress_callbacks=None, token=None, endpoint=None):
            os.makedirs(local_dir, exist_ok=True)
            hdr = json.dumps({"w": {"dtype": "U8", "shape": [10], "data_offsets": [0, 10]}}).encode().ljust(64)
            files = {"config.json": b"{}", "tokenizer.json": b"{}",
                     "model.safetensors": struct.pack("<Q", 64) + hdr + bytes(10)}
            for name, data in files.items():
                cbs = [cls(name, len(data)) for cls in progress_callbacks or []]
                with open(os.path.join(local_dir, name), "wb") as f:
                    f.write(data)
                for cb in cbs:
                    cb.update(len(data)); cb.end()
            with open(os.path.join(local_dir, "called.json"), "w") as f:
                json.dump({"model_id": model_id, "local_dir": local_dir, "cbs": len(progress_callbacks or [])}, f)
            return local_dir
        """)
    )
    dest = tmp_path / "out"
    env = bare_env(PYTHONPATH=f"{REPO}{os.pathsep}{tmp_path / 'fake'}")
    r = run_cli("model", "download", "Qwen/Qwen2.5-3B-Instruct", "--dest", str(dest), env=env)
    assert r.returncode == 0, r.stderr
    import json

    assert json.loads((dest / "called.json").read_text()) == {
        "model_id": "Qwen/Qwen2.5-3B-Instruct",
        "local_dir": str(dest),
        "cbs": 1,
    }
    assert f"model directory: {dest}" in r.stdout and "1 weight file(s)" in r.stdout


def test_classify_a_real_refused_connection() -> None:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{closed_port()}/", timeout=5)
    except OSError as exc:
        err = classify_error(exc, "Qwen/Qwen2.5-3B-Instruct")
    assert isinstance(err, ActionError) and err.exit_code == 1
    assert err.message.startswith("cannot reach the ModelScope hub") and "Connection refused" in err.message

    class NotExistError(Exception):  # the name modelscope's hub gives an unknown model
        pass

    err = classify_error(NotExistError("The model: Qwen/Nope not exist"), "Qwen/Nope")
    assert err.exit_code == 2 and "Qwen/Nope was not found on the ModelScope hub" in err.message
