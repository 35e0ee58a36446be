"""`ft deploy VERSION`, `ft rollback`, `ft reject VERSION` (operators) and `ft ask QUESTION`."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Optional

import typer
from rich.markup import escape

from ftbot import wiring
from ftbot.cli import common
from ftbot.cli.common import console, fail, print_json


def _with_client(ctx: typer.Context, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        client = wiring.model_client(common.settings(ctx))
        try:
            return await fn(client)
        finally:
            await client.close()

    return asyncio.run(run())


def _retrieve(ctx: typer.Context, question: str, channel: str | None = None) -> list | None:
    """The nearest approved pairs, as the bot finds them in `channel` (None: as in a DM); None (asked plainly)
    without the embedding model."""
    from core.embedder import EmbedderError

    try:
        retriever = wiring.retrieval_index(common.store(ctx))
    except EmbedderError as exc:
        common.error(f"{exc}; asking without retrieval")
        return None
    with console.status("bringing the index of approved answers up to date…"):
        retriever.sync()
    return retriever.search(question, channel=channel)


def _report(result, as_json: bool) -> None:  # serving.deploy.DeployResult
    if as_json:
        print_json({"ok": result.ok, "message": result.message, "deployed": result.deployed,
                    "retired": result.retired, "unloaded": result.unloaded,
                    "smoke": result.smoke.answers if result.smoke else None})
    if not result.ok:
        fail(result.message)
    if not as_json:
        console.print(result.message, highlight=False, soft_wrap=True)
        if result.smoke is not None and result.smoke.checked:
            console.print(f"smoke test: {result.smoke.matched} of {result.smoke.checked} answers matched the "
                          f"evaluation ({result.smoke.seconds:.1f} s)")
        if result.unloaded:
            console.print(f"unloaded from the model server: {', '.join(result.unloaded)}")


def deploy(ctx: typer.Context, version: str = typer.Argument(..., help="The version's name (ft versions list)."),
           yes: bool = typer.Option(False, "--yes", "-y", help="Deploy a version with a warning without asking."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Load a version's adapter on the model server, smoke-test it, and make the bot answer with it. A version with
    a warning (the general probe fell too far) asks to confirm first."""
    from serving.deploy import deploy as run_deploy

    store, s = common.store(ctx), common.settings(ctx)

    def attempt(confirmed: bool):
        return _with_client(ctx, lambda c: run_deploy(store, c, version, common.actor(),
                                                      system_prompt=s.system_prompt, confirmed=confirmed))

    result = attempt(yes)
    if result.confirm:  # the deployment controller's rule (serving.deploy.needs_confirming); nothing changed yet
        if as_json:
            fail(f"{result.message} Pass --yes to deploy it anyway.")
        console.print(f"[bold yellow]warning:[/] {escape(result.confirm)}", highlight=False, soft_wrap=True)
        if not typer.confirm(f"Deploy {version} anyway?", default=False):
            fail(f"not deployed: {version} was not confirmed")
        result = attempt(True)
    _report(result, as_json)


def rollback(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Deploy again the version that was deployed before the current one."""
    from serving.deploy import rollback as run_rollback

    store = common.store(ctx)
    _report(_with_client(ctx, lambda c: run_rollback(store, c, common.actor())), as_json)


def reject(ctx: typer.Context, version: str = typer.Argument(..., help="A version awaiting approval."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Reject a version awaiting approval."""
    from serving.deploy import reject as run_reject

    store = common.store(ctx)
    _report(asyncio.run(run_reject(store, version, common.actor())), as_json)


def ask(ctx: typer.Context, question: str = typer.Argument(..., help="The question, in quotes."),
        no_retrieval: bool = typer.Option(False, "--no-retrieval",
                                          help="Ask without the nearest approved answers in front."),
        show_context: bool = typer.Option(False, "--show-context", help="Print the approved pairs given to the model."),
        channel: Optional[str] = typer.Option(None, "--channel",
                                              help="Answer as the bot would in this Slack channel (its id, C…): "
                                                   "its own pairs too when it is private or shared. Without it, "
                                                   "as in a DM: only pairs usable everywhere."),
        model_name: Optional[str] = typer.Option(None, "--model",
                                                 help="Ask this served model (`base`: the base model) instead of "
                                                      "the deployed version."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON, with the grounding check's signals."),
        stream: bool = typer.Option(False, "--stream",
                                    help="Print the model's answer as it is written; when the grounding check then "
                                         "declines it, a last line says so and gives what the bot sends instead.")
        ) -> None:
    """Print the answer the bot would send: the deployed version's (the base model's before any deployment),
    or "I don't know" when no retrieved approved answer backs it (FT_ANSWER_MIN_SCORE, FT_ANSWER_MAX_GAP)."""
    from serving.answering import answer
    from serving.client import ModelServerError, ModelServerUnavailable
    from storage.versions import deployed

    s = common.settings(ctx)
    if not question.strip():
        fail("the question is empty")
    if stream and as_json:
        fail("--stream prints text as it comes; --json prints one object at the end: choose one")
    with common.store(ctx).session() as session:
        version = deployed(session)
        name = version.name if version else None
    started = time.perf_counter()
    hits = None if no_retrieval or not s.retrieval else _retrieve(ctx, question, channel)
    retrieved_s = time.perf_counter() - started

    async def run(client):
        if model_name == "base" or (model_name is None and name is None):
            model = await client.base_model()
        else:
            model = model_name or name
        if stream and show_context:
            _print_context(hits)
        return model, await answer(client, model, question, hits, system_prompt=s.system_prompt,
                                   max_tokens=s.answer_max_tokens, grounding=wiring.grounding(s),
                                   on_text=_print_piece if stream else None, reuse=wiring.reuse(s))

    try:
        model, reply = _with_client(ctx, run)
    except ModelServerUnavailable:
        fail(f"the model server at {s.model_server_url} does not answer; start it with `ft serve` "
             "(or set FT_MODEL_SERVER_URL)")
    except ModelServerError as exc:
        fail(f"the model server refused: {exc.message}")
    seconds = time.perf_counter() - started
    if as_json:
        print_json(_answer_record(question, reply, hits, model=model, deployed=name, seconds=seconds,
                                  retrieval_seconds=retrieved_s))
        return
    _print_answer(reply, hits, streamed=stream, show_context=show_context)
    if reply.reused is not None:
        console.print(f"[dim]— {escape(_reused_line(reply.reused))}[/]", highlight=False, soft_wrap=True)
        return
    console.print(f"[dim]— {model}{'' if name else ' (base model: nothing deployed yet)'}[/]", highlight=False)


def _reused_line(hit) -> str:
    """Whose approved answer was given as it is (core.reuse), and where it was first given."""
    src = hit.source or {}
    where = f"#{src['channel']}" if src.get("channel") else src.get("channel_id") or hit.source_key
    return (f"the answer {hit.approved_by or 'the team'} approved for a similar question (example {hit.example_id}, "
            f"{where}; cosine {hit.score:.2f}): {hit.question}")


def _answer_record(question: str, reply, hits: list | None, *, model: str, deployed: str | None, seconds: float,
                   retrieval_seconds: float) -> dict:
    """`ft ask --json`: the answer with the grounding check's signals and the pairs the model was given."""
    shown = [{"question": h.question, "answer": h.answer, "score": round(h.score, 3), "source_key": h.source_key}
             for h in hits or []]
    return {"question": question, "answer": reply.text, "model_answer": reply.model_answer,
            "declined": reply.declined, "grounding": reply.grounding.to_json() if reply.grounding else None,
            "reused": _reused_record(reply.reused),
            "model": model, "deployed": deployed, "retrieval": hits is not None, "context": shown,
            "seconds": round(seconds, 3), "retrieval_seconds": round(retrieval_seconds, 3)}


def _reused_record(hit) -> dict | None:
    """`ft ask --json`: the approved pair given as the answer, with no model call (None: the model wrote it)."""
    if hit is None:
        return None
    src = hit.source or {}
    return {"example_id": hit.example_id, "source_key": hit.source_key, "score": round(hit.score, 3),
            "approved_by": hit.approved_by, "question": hit.question, "approved_answer": hit.answer,
            "channel_id": src.get("channel_id"), "ts": src.get("ts"), "thread_ts": src.get("thread_ts"),
            "said": f"the answer {hit.approved_by or 'the team'} approved for a similar question"}


def _print_answer(reply, hits: list | None, *, streamed: bool, show_context: bool) -> None:
    """What the bot would send; streamed, its text is printed already and only a decline is added."""
    if streamed:
        console.print()  # the streamed answer's line ends
        if reply.declined:  # judged on the whole text, after it was shown
            console.print(f"→ declined ({reply.grounding.reason.replace('_', ' ')}): {reply.text}", markup=False,
                          highlight=False, soft_wrap=True)
        return
    if show_context:
        _print_context(hits)
    console.print(reply.text, highlight=False, soft_wrap=True, markup=False)
    if reply.declined:
        console.print(f"[dim](not sent: {reply.grounding.reason.replace('_', ' ')}; the model said: "
                      f"{escape(reply.model_answer[:300])})[/]", highlight=False, soft_wrap=True)


def _print_context(hits: list | None) -> None:
    if hits is None:
        console.print("[dim]asked without retrieval[/]")
    elif not hits:
        console.print("[dim]no approved answer is close to this question[/]")
    for n, h in enumerate(hits or [], 1):
        console.print(f"[dim]{n}. ({round(h.score, 3):.2f}) Q: {escape(h.question)}\n   A: {escape(h.answer)}[/]",
                      highlight=False, soft_wrap=True)


async def _print_piece(piece: str) -> None:
    console.print(piece, end="", markup=False, highlight=False, soft_wrap=True)
    console.file.flush()
