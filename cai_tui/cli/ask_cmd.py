"""``cai-tui ask``: one chat completion from the served model (CAI-6.4), through the TNG client's proxy when it listens.

The request is OpenAI-style (POST /v1/chat/completions, model = MODEL_MOUNT_POINT as vLLM serves it), made with the
same client as the inference checks (:mod:`cai_tui.clients.inference`).
"""

from __future__ import annotations

from typing import Any

import typer

ASK_TIMEOUT_S = 120.0  # a real model on a real GPU takes a while


def _err(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def ask_command(
    recipe: str = typer.Option(..., "--recipe", help="The recipe (instance.public_ip, service.port, tng.*)."),
    prompt: str = typer.Option(None, "--prompt", help="What to ask (default: the recipe's tng.prompt)."),
    max_tokens: int = typer.Option(None, "--max-tokens", min=1, help="Answer length (default: tng.max_tokens)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (answer, url, proxy, model, usage)."),
    timeout: float = typer.Option(ASK_TIMEOUT_S, "--timeout", min=1.0, help="Seconds to wait for the answer."),
) -> None:
    """Ask the served model one question and print its answer (exit 1 without one, naming the FAQ fix)."""
    import asyncio
    import json

    from ..recipe.model import CaiRecipe
    from .common import load_or_report

    loaded = load_or_report(recipe)
    if loaded is None:
        raise typer.Exit(2)
    if not isinstance(loaded.recipe, CaiRecipe):
        raise _err(f"ask: {recipe} is a {loaded.recipe.flow} recipe; `ask` talks to the cai flow's service", 2)
    answers = loaded.recipe.answers
    if not answers.instance.public_ip:
        raise _err(f"ask: instance.public_ip is not set in {recipe}; set it to the instance's public IP (CAI-3)", 2)
    question = prompt if prompt is not None else answers.tng.prompt
    if not question.strip():
        raise _err("ask: --prompt is empty; give the question to ask", 2)
    tokens = max_tokens if max_tokens is not None else answers.tng.max_tokens
    outcome = asyncio.run(_ask(answers, question, tokens, timeout))
    if as_json:
        typer.echo(json.dumps(outcome, ensure_ascii=False))
    else:
        typer.echo(f"asked {outcome['model']} at {outcome['url']} {outcome['via']}", err=True)
        if outcome["answer"] is not None:
            typer.echo(outcome["answer"])
        else:
            typer.echo(f"ask: {outcome['error']} (FAQ {outcome['faq']}: {outcome['fix']})", err=True)
    raise typer.Exit(0 if outcome["answer"] is not None else 1)


async def _ask(answers: Any, question: str, tokens: int, timeout: float) -> dict[str, Any]:
    from ..clients.inference import Unreachable, chat_answer, chat_body, endpoint, http, quote
    from ..targets.local import LocalTarget

    target = LocalTarget()
    ep = await endpoint(answers, target)
    assert ep is not None  # public_ip was checked
    url = f"{ep.base}/v1/chat/completions"
    body = chat_body(answers, question, tokens)
    out: dict[str, Any] = {
        "answer": None,
        "url": url,
        "via": ep.via,
        "proxy": ep.proxy,
        "model": body["model"],
        "usage": None,
    }
    unreachable = (
        "inference-unreachable",
        "is vLLM up on the instance, does the security group allow this client on MODEL_SERVICE_PORT (CAI-6.1), "
        "and with TNG is the client proxy running (`cai-tui tng launch --recipe FILE`)? "
        "`cai-tui doctor --recipe FILE --only 'inference.*,tng.*'` says which",
    )
    try:
        reply = await http(target, "POST", url, proxy=ep.proxy, timeout=timeout, body=body)
    except Unreachable as e:
        out.update(error=f"no answer from {url} {ep.via}: {e}", faq=unreachable[0], fix=unreachable[1])
        return out
    doc = reply.json()
    text = chat_answer(doc) if reply.status == 200 else None
    if text is not None:
        usage = doc.get("usage") if isinstance(doc, dict) else None
        out.update(answer=text, usage=usage if isinstance(usage, dict) else None)
        return out
    message = ""
    if isinstance(doc, dict):
        err = doc.get("error")
        message = str(doc.get("message") or (err.get("message") if isinstance(err, dict) else err) or "")
    said = quote(message or reply.body or "(empty body)", 200)
    if reply.status in (400, 404) and "model" in said.lower():
        out.update(
            error=f"vLLM refuses the model name {body['model']!r} (HTTP {reply.status}): {said}",
            faq="model-not-served",
            fix="ask for the name GET /v1/models lists, or set service.mount_point to it (inference.models)",
        )
    else:
        out.update(error=f"HTTP {reply.status} without an answer: {said}", faq=unreachable[0], fix=unreachable[1])
    return out
