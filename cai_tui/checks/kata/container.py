"""container.running and guest.inference: the confidential container's task, and vLLM answering on its address.

Both run on the host: ``ctr -a <container.address> -n <container.namespace> task ls`` for the task; the container's
address is eth0's in ``cni.netns`` (``ip -n NETNS -j addr show eth0``), and ``GET /health`` and ``GET /v1/models``
there must answer, the latter listing ``serve.served_name`` (KATA-5.3; the chat request of KATA-5.4 is
``container.ask``). Requests go from this machine with httpx when the host is local, else with curl on the host.
"""

from __future__ import annotations

import json
from typing import Any

from ...clients.inference import Reply, Unreachable, http
from ...clients.inference import quote as _quote
from ..base import CheckContext, Result
from ..common import ev, make
from ..registry import check
from ._common import FLOW, _host, _last_line, _run, kata_answers

STAGE = "confidential-container"
FIX_RUN = "kata-container-not-running"


def _ctr(answers: Any, *args: str) -> list[str]:
    c = answers.container
    return ["ctr", "-a", str(c.address), "-n", str(c.namespace), *args]


@check("container.running", "The confidential container's task is RUNNING", stage=STAGE, flows=FLOW, runs_on="host")
async def container_running(ctx: CheckContext) -> Result:
    t = _host(ctx)
    answers, _ = kata_answers(ctx)
    name = str(answers.container.name)
    argv = _ctr(answers, "task", "ls")
    shown = " ".join(argv)
    r = await _run(ctx, t, argv)
    if r is None:
        return make(ctx, "unknown", "commands cannot run on a sysroot", [ev(ctx, "(not run)", shown, t.name)])
    if not r.ok:
        line = _last_line(r.stderr) or f"exit {r.rc}"
        return make(
            ctx,
            "unknown" if r.rc == 127 else "fail",
            f"ctr task ls failed: {line}",
            [ev(ctx, line, shown, t.name)],
            None
            if r.rc == 127
            else (FIX_RUN, f"Is containerd up at {answers.container.address}? `systemctl status containerd`."),
        )
    status = next(
        (ln.split()[2] for ln in r.stdout.splitlines()[1:] if ln.split()[:1] == [name] and len(ln.split()) > 2), None
    )
    row = next((ln.strip() for ln in r.stdout.splitlines() if ln.split()[:1] == [name]), "(no such task)")
    evidence = [ev(ctx, row, shown, t.name)]
    if status == "RUNNING":
        return make(ctx, "pass", f"the container {name} is RUNNING", evidence, task_status=status)
    return make(
        ctx,
        "fail",
        f"the container {name} is {status or 'not started'}",
        evidence,
        (
            FIX_RUN,
            f"Start it as in KATA-5.1 (`cai-tui kata container run --recipe RECIPE`); a stopped task leaves the "
            f"container: `ctr -n {answers.container.namespace} task rm {name}` first, or undo and run again.",
        ),
        task_status=status,
    )


async def _address(ctx: CheckContext, answers: Any) -> tuple[str | None, str, str]:
    """(eth0's IPv4 in cni.netns or None, what was seen, the command)."""
    netns = str(answers.cni.netns)
    argv = ["ip", "-n", netns, "-j", "addr", "show", "eth0"]
    r = await _run(ctx, _host(ctx), argv)
    if r is None or not r.ok:
        return None, (_last_line(r.stderr) if r is not None else "") or "(no answer)", " ".join(argv)
    try:
        links = json.loads(r.stdout or "[]")
    except json.JSONDecodeError:
        return None, r.stdout.strip()[:200], " ".join(argv)
    for link in links if isinstance(links, list) else []:
        for a in link.get("addr_info", []) if isinstance(link, dict) else []:
            if isinstance(a, dict) and a.get("family") == "inet" and a.get("local"):
                return str(a["local"]), f"eth0 {a['local']}/{a.get('prefixlen')}", " ".join(argv)
    return None, "eth0 has no IPv4 address", " ".join(argv)


@check(
    "guest.inference",
    "vLLM in the container answers /health and lists the served model (/v1/models)",
    stage=STAGE,
    flows=FLOW,
    runs_on="host",
)
async def guest_inference(ctx: CheckContext) -> Result:
    t = _host(ctx)
    answers, _ = kata_answers(ctx)
    addr, seen, cmd = await _address(ctx, answers)
    evidence = [ev(ctx, seen, cmd, t.name)]
    if addr is None:
        return make(
            ctx,
            "fail",
            f"the container has no address in netns {answers.cni.netns}: {seen}",
            evidence,
            ("cni-network-broken", "Attach the network as in KATA-4.5 (`cai-tui kata cni attach --recipe RECIPE`)."),
        )
    base = f"http://{addr}:{answers.serve.port}"
    fix = (
        "model-not-served",
        f"Start vLLM in the container as in KATA-5.3 (`cai-tui kata container serve --recipe RECIPE`); its log is "
        f"inside the container. It must listen on {answers.serve.host} port {answers.serve.port} and serve "
        f"--served-model-name {answers.serve.served_name}.",
    )
    replies: dict[str, Reply] = {}
    for path in ("/health", "/v1/models"):
        url = base + path
        try:
            replies[path] = reply = await http(t, "GET", url, proxy=None, timeout=max(1.0, ctx.timeout * 0.4))
        except Unreachable as e:
            return make(
                ctx, "fail", f"no answer from {url}: {e}", [*evidence, ev(ctx, str(e), f"GET {url}", t.name)], fix
            )
        evidence.append(ev(ctx, f"HTTP {reply.status} {_quote(reply.body)}".rstrip(), f"GET {url}", t.name))
        if reply.status != 200:
            return make(ctx, "fail", f"{url} answers HTTP {reply.status}", evidence, fix)
    doc = replies["/v1/models"].json()
    ids = [m.get("id") for m in doc.get("data", []) if isinstance(m, dict)] if isinstance(doc, dict) else []
    if answers.serve.served_name not in ids:
        return make(
            ctx, "fail", f"{base}/v1/models lists {ids or 'no model'}, not {answers.serve.served_name}", evidence, fix
        )
    return make(ctx, "pass", f"vLLM answers at {base} and serves {answers.serve.served_name}", evidence, models=ids)
