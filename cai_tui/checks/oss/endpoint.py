"""oss.endpoint: the OSS endpoint resolves (an IP literal needs no resolution) and accepts connections."""

from __future__ import annotations

import asyncio

from ..base import CheckContext, Result
from ..common import (
    describe_os_error,
    ev,
    is_timeout,
    make,
    net_timeout,
    tcp_connect,
    timed_out,
)
from ..registry import check
from ._common import (
    FIX_UNREACHABLE,
    STAGE_UPLOAD,
    _oss_answers,
    endpoint_plan,
    host_port,
)


@check("oss.endpoint", "OSS endpoint resolves and accepts connections", stage=STAGE_UPLOAD)
async def oss_endpoint(ctx: CheckContext) -> Result:
    answers, skip = _oss_answers(ctx)
    if answers is None:
        return skip  # type: ignore[return-value]
    plan = await endpoint_plan(ctx, answers)
    evidence = [ev(ctx, plan.configured, "answers.oss.endpoint (MODEL_OSS_ENDPOINT)"), *plan.evidence]
    if plan.timed_out:
        return timed_out(ctx, f"resolving {plan.timed_out}", plan.deadline, evidence)
    if plan.error:
        internal = "-internal" in plan.configured
        text = (
            "This -internal endpoint only resolves inside an Alibaba Cloud VPC in its region; from outside set "
            "oss.upload_endpoint to the public endpoint (oss-<region>.aliyuncs.com) for uploads and checks."
            if internal
            else FIX_UNREACHABLE
        )
        return make(ctx, "fail", plan.error, evidence, ("oss-unreachable", text))
    host, port = host_port(plan.endpoint)
    deadline = net_timeout(ctx, 0.5)
    try:
        secs = await tcp_connect(host, port, deadline)
    except (OSError, asyncio.TimeoutError) as exc:
        evidence.append(ev(ctx, describe_os_error(exc), f"TCP connect {host}:{port}"))
        if is_timeout(exc):
            return timed_out(ctx, f"connecting to {host}:{port}", deadline, evidence, effective_endpoint=plan.endpoint)
        return make(
            ctx,
            "fail",
            f"cannot connect to {host}:{port} ({describe_os_error(exc)})",
            evidence,
            ("oss-unreachable", FIX_UNREACHABLE),
            effective_endpoint=plan.endpoint,
        )
    evidence.append(ev(ctx, f"connected in {secs * 1000:.0f} ms", f"TCP connect {host}:{port}"))
    if plan.note:
        return make(
            ctx,
            "warn",
            plan.note,
            evidence,
            (
                "oss-unreachable",
                "Nothing to fix if the instance is in the bucket's region: it reaches the -internal endpoint inside "
                "its VPC. Checks from this machine go through the public endpoint (oss.upload_endpoint).",
            ),
            effective_endpoint=plan.endpoint,
        )
    return make(
        ctx,
        "pass",
        f"{host}:{port} accepts connections ({secs * 1000:.0f} ms)",
        evidence,
        effective_endpoint=plan.endpoint,
    )
