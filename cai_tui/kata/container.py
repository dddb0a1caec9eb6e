"""KATA-5: the confidential container — ``ctr run`` (5.1), ``nvidia-smi`` inside (5.2), vLLM serve (5.3), the question
(5.4) — and the undo that kills the task and deletes the container.

The seed types ``ctr --debug run --runtime … --device $VFIO -t --with-ns=network:… IMAGE arch /bin/sh`` and works
in that shell. Here the task runs detached (``-d``, no terminal) with the recipe's shell kept alive, so the later
steps reach it with ``ctr task exec`` as the seed's second terminal does. In the kata lab (``answers.gpu.sysroot``
set) the VFIO device is left off the line: runc cannot pass a VFIO group to a container that is not a VM.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

from .. import events
from ..events import EventSink, report_done
from . import state
from .container_ctr import Ctr, KataRunError, netns_address, shown, stream

RECORD = "kata-container"
SERVE_LOG = "/tmp/cai-tui-vllm-serve.log"
KEEPALIVE = 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'
LAB_NO_DEVICE = (
    "kata lab: --device /dev/vfio/{group} is left off the ctr run line: runc (the lab's stand-in for the kata "
    "runtime) starts a plain container, not a VM, and cannot take a VFIO group (see cai_tui/lab/kata/not_real.py)"
)
SERVE_TIMEOUT_S = 1800.0  # the real model is downloaded first


def ctr_of(answers: Any) -> Ctr:
    return Ctr(str(answers.container.address), str(answers.container.namespace))


def in_lab(answers: Any) -> bool:
    return answers.gpu.sysroot is not None


def run_argv(answers: Any) -> tuple[list[str], list[str]]:
    """(the ctr run line, notes). The ``-t`` of the seed becomes ``-d`` (no terminal: the task runs detached)."""
    a = answers
    notes = ["-t (the seed's interactive shell) becomes -d: the task runs detached, the shell kept alive; "
             f"open the seed's shell with: ctr -a {a.container.address} -n {a.container.namespace} task exec "
             f"--exec-id shell -t {a.container.name} {a.container.shell}"]  # fmt: skip
    argv = ctr_of(a).argv("--debug", "run", "--runtime", str(a.kata.runtime))
    if in_lab(a):
        notes.append(LAB_NO_DEVICE.format(group=a.gpu.iommu_group if a.gpu.iommu_group is not None else "N"))
    elif a.gpu.iommu_group is None:
        raise KataRunError(
            "answers.gpu.iommu_group is not set: bind the GPU to vfio-pci first (cai-tui kata vfio apply, KATA-3) "
            "and set the group it prints (VFIO=/dev/vfio/<group>)",
            rc=2,
        )
    else:
        argv += ["--device", f"/dev/vfio/{a.gpu.iommu_group}"]
    argv += [f"--with-ns=network:/var/run/netns/{a.cni.netns}", "-d"]
    argv += [str(a.image.containerd_ref), str(a.container.name), str(a.container.shell), "-c", KEEPALIVE]
    return argv, notes


# --------------------------------------------------------------------------------------------- KATA-5.1 run


def run_container(answers: Any, sink: EventSink, *, step: str = "container.run") -> str:
    c = ctr_of(answers)
    name = str(answers.container.name)
    ref = str(answers.image.containerd_ref)
    argv, notes = run_argv(answers)
    c.need()
    status = c.tasks().get(name)
    if status == "RUNNING":
        return report_done(f"the container {name} is already running (ctr task ls: RUNNING); nothing to do")
    if name in c.containers():
        raise KataRunError(
            f"a container {name} exists but its task is {status or 'not started'}: remove it first "
            f"(cai-tui kata container undo, or ctr task rm {name}; ctr container rm {name}) and run again"
        )
    if ref not in c.images():
        raise KataRunError(f"{ref} is not in containerd ({c.address}, namespace {c.namespace}): import it first "
                           "(cai-tui kata image import, KATA-2.4)")  # fmt: skip
    netns = f"/var/run/netns/{answers.cni.netns}"
    if not os.path.exists(netns):
        raise KataRunError(f"{netns} does not exist: create and attach the network first (cai-tui kata net …, KATA-4)")
    for n in notes:
        sink(events.note(n, step=step, level="warn" if n.startswith("kata lab") else "info"))
    state.write_record(RECORD, {"name": name, "address": c.address, "namespace": c.namespace})
    rc, _ = stream(argv, sink, step=step, timeout=300)
    status = _wait_status(c, name, "RUNNING", 10.0)
    if rc != 0 or status != "RUNNING":
        raise KataRunError(
            f"ctr run exited {rc} and the task {name} is {status or 'absent'} (ctr task ls); read ctr's message above "
            "(KATA-5.1 lists the usual ones); cai-tui kata container undo removes what is left"
        )
    sink(events.line(f"{name}: RUNNING (ctr task ls)", source="host", step=step))
    return f"the container {name} runs ({shown(argv[: argv.index('run') + 1])} … ; ctr task ls: RUNNING)"


def _wait_status(c: Ctr, name: str, want: str, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    status = c.tasks().get(name)
    while status != want and time.monotonic() < deadline:
        time.sleep(0.1)
        status = c.tasks().get(name)
    return status


# --------------------------------------------------------------------------------------------- undo


def undo_container(sink: EventSink, *, step: str = "container.run") -> str:
    rec = state.read_record(RECORD)
    if rec is None:
        return "nothing to undo: no container started by cai-tui is recorded"
    c = Ctr(str(rec["address"]), str(rec["namespace"]))
    name = str(rec["name"])
    done = []
    if name in c.tasks():
        stream(c.argv("tasks", "kill", "--signal", "SIGKILL", name), sink, step=step)
        _wait_gone_or_stopped(c, name)
        rc, _ = stream(c.argv("tasks", "delete", name), sink, step=step)
        if rc != 0 and name in c.tasks():
            raise KataRunError(f"ctr task delete {name} exited {rc}; run it again, or ctr task rm -f {name}")
        done.append("killed and deleted the task")
    if name in c.containers():
        rc, _ = stream(c.argv("containers", "delete", name), sink, step=step)
        if rc != 0 and name in c.containers():
            raise KataRunError(f"ctr container delete {name} exited {rc}; read its message above")
        done.append("deleted the container and its snapshot")
    state.drop_record(RECORD)
    if not done:
        return f"nothing to undo: the container {name} is already gone"
    return f"{name}: " + ", ".join(done)


def _wait_gone_or_stopped(c: Ctr, name: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and c.tasks().get(name) not in (None, "STOPPED"):
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------- KATA-5.2 nvidia-smi


def guest_target(answers: Any) -> Any:
    from ..targets.container import CtrTarget

    return CtrTarget(
        str(answers.container.name),
        namespace=str(answers.container.namespace),
        address=str(answers.container.address),
    )


def exec_argv(answers: Any, *cmd: str, exec_id: str | None = None, detach: bool = False) -> list[str]:
    eid = exec_id or f"cai-{secrets.token_hex(4)}"
    return ctr_of(answers).argv(
        "task", "exec", *(["--detach"] if detach else []), "--exec-id", eid, str(answers.container.name), *cmd
    )


def _need_running(answers: Any) -> None:
    c = ctr_of(answers)
    c.need()
    name = str(answers.container.name)
    status = c.tasks().get(name)
    if status != "RUNNING":
        raise KataRunError(
            f"the container {name} is not running (ctr task ls: {status or 'no task'}); start it first "
            "(cai-tui kata container run, KATA-5.1)"
        )


# --------------------------------------------------------------------------------------------- KATA-5.3 serve


def serve_command(recipe: Any) -> str:
    """The ``vllm-serve`` renderer's command (its script without the shebang, comments and ``set``), one line."""
    from ..render import registry

    text = registry.get("vllm-serve").render(recipe).text
    body = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(("#", "set -"))]
    return " ".join(ln.rstrip("\\").strip() for ln in body)


def endpoint(answers: Any) -> str:
    """``http://<container address>:<port>``: the address of eth0 in the recipe's netns."""
    netns = str(answers.cni.netns)
    addr = netns_address(netns)
    if addr is None:
        raise KataRunError(
            f"no IPv4 address on eth0 in the network namespace {netns} (ip -n {netns} addr show eth0): attach the "
            "CNI network first (KATA-4.4)"
        )
    if str(answers.serve.host) in ("127.0.0.1", "localhost", "::1"):
        raise KataRunError(
            f"answers.serve.host is {answers.serve.host}: vLLM would listen only inside the container; set it to "
            "0.0.0.0 (the seed's) so it answers on the container's address",
            rc=2,
        )
    return f"http://{addr}:{answers.serve.port}"


def http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, str]:
    """(status, body) with no proxy (the container's address is on this host's bridge); OSError when none answers."""
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", errors="replace")


def healthy(base: str) -> bool:
    try:
        return http("GET", f"{base}/health", timeout=3)[0] == 200
    except OSError:
        return False


def serve(loaded: Any, sink: EventSink, *, step: str = "container.serve", timeout: float = SERVE_TIMEOUT_S) -> str:
    answers = loaded.recipe.answers
    _need_running(answers)
    base = endpoint(answers)
    if healthy(base):
        return report_done(f"vLLM already answers {base}/health; nothing to do")
    cmd = serve_command(loaded.recipe)
    inner = f"exec > {SERVE_LOG} 2>&1; {cmd}"
    argv = exec_argv(answers, "sh", "-c", inner, exec_id=f"{answers.container.name}-serve-{secrets.token_hex(3)}",
                     detach=True)  # fmt: skip
    rc, _ = stream(argv, sink, step=step, timeout=60)
    if rc != 0:
        raise KataRunError(f"ctr task exec --detach exited {rc}: the serve command did not start (see above)")
    sink(events.note(f"waiting for {base}/health (its log {SERVE_LOG} in the container follows)", step=step))
    deadline = time.monotonic() + timeout
    offset = 0
    while True:
        offset = _follow_log(answers, offset, sink, step)
        if healthy(base):
            _follow_log(answers, offset, sink, step)
            return f"vLLM answers {base}/health (served as {answers.serve.served_name})"
        if time.monotonic() > deadline:
            raise KataRunError(f"{base}/health did not answer within {timeout:.0f} s; read the log above")
        if not _serve_alive(answers):
            _follow_log(answers, offset, sink, step)
            raise KataRunError(f"the serve command ended before {base}/health answered; its log is above ({SERVE_LOG})")
        time.sleep(1.0)


def _follow_log(answers: Any, offset: int, sink: EventSink, step: str) -> int:
    """Emit the serve log's lines past ``offset`` bytes (``tail -c +N`` through ctr task exec); the new offset."""
    r = subprocess.run(exec_argv(answers, "tail", "-c", f"+{offset + 1}", SERVE_LOG), capture_output=True,
                       timeout=30, check=False)  # fmt: skip
    if r.returncode != 0 or not r.stdout:
        return offset
    data = r.stdout
    end = data.rfind(b"\n") + 1
    for ln in data[:end].decode("utf-8", errors="replace").splitlines():
        sink(events.line(ln, source=f"ctr://{answers.container.name}", step=step))
    return offset + end


def _serve_alive(answers: Any) -> bool:
    """Whether a process other than the keep-alive shell and its sleep runs in the task (``ctr task ps``)."""
    r = ctr_of(answers).quiet("tasks", "ps", str(answers.container.name))
    return r.returncode == 0 and len([ln for ln in r.stdout.splitlines()[1:] if ln.strip()]) > 2


# --------------------------------------------------------------------------------------------- KATA-5.4 ask


def ask(answers: Any, sink: EventSink, *, step: str = "container.ask") -> str:
    _need_running(answers)
    base = endpoint(answers)
    s = answers.serve
    body = {
        "model": s.served_name,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": s.question},
        ],
    }
    url = f"{base}/v1/chat/completions"
    sink(events.note(f"$ curl {url} -H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body, ensure_ascii=False))}",
                     step=step))  # fmt: skip
    try:
        status, text = http("POST", url, body, timeout=300)
    except OSError as e:
        raise KataRunError(f"no answer from {url}: {e}; is vLLM serving (cai-tui kata container serve)?") from None
    try:
        doc = json.loads(text)
        content = doc["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise KataRunError(f"{url} answered HTTP {status} without a chat answer: {text[:300]}") from None
    if status != 200 or not isinstance(content, str):
        raise KataRunError(f"{url} answered HTTP {status}: {text[:300]}")
    sink(events.line(content, source=url, step=step))
    return f"the model answered ({s.served_name}): {content}"


__all__ = ["ask", "endpoint", "guest_target", "run_argv", "run_container", "serve", "serve_command", "undo_container"]
