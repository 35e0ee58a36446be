"""`ft deploy VERSION`, `ft rollback`, `ft reject VERSION` (operators) and `ft ask QUESTION`."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import typer
from rich.markup import escape

from ftbot.cli import common
from ftbot.cli.common import console, fail, print_json


def _with_client(ctx: typer.Context, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from serving.client import ModelClient

    async def run() -> Any:
        client = ModelClient(common.settings(ctx).model_server_url, timeout_s=common.settings(ctx).answer_timeout_s)
        try:
            return await fn(client)
        finally:
            await client.close()

    return asyncio.run(run())


def _retrieve(ctx: typer.Context, question: str) -> list | None:
    """The nearest approved pairs, as the bot finds them; None (asked plainly) without the embedding model."""
    from serving.embedder import Embedder, EmbedderError
    from serving.retrieval import Retriever

    try:
        retriever = Retriever(common.store(ctx), Embedder())
    except EmbedderError as exc:
        common.error(f"{exc}; asking without retrieval")
        return None
    with console.status("bringing the index of approved answers up to date…"):
        retriever.sync()
    return retriever.search(question)


def _report(result, as_json: bool) -> None:  # noqa: ANN001  (serving.deploy.DeployResult)
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
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Load a version's adapter on the model server, smoke-test it, and make the bot answer with it."""
    from serving.deploy import deploy as run_deploy

    store, s = common.store(ctx), common.settings(ctx)
    _report(_with_client(ctx, lambda c: run_deploy(store, c, version, common.actor(), system_prompt=s.system_prompt)),
            as_json)


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
        as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the deployed version's answer (the base model's before any deployment), as the bot would give it."""
    from serving.client import ModelServerError, ModelServerUnavailable
    from storage.prompt import prompt_messages
    from storage.versions import deployed

    s = common.settings(ctx)
    if not question.strip():
        fail("the question is empty")
    with common.store(ctx).session() as session:
        version = deployed(session)
        name = version.name if version else None
    hits = None if no_retrieval or not s.retrieval else _retrieve(ctx, question)
    context = [(h.question, h.answer) for h in hits] if hits is not None else None

    async def run(client) -> tuple[str, str]:  # noqa: ANN001
        model = name or await client.base_model()
        return model, await client.chat(model, prompt_messages(s.system_prompt, question, context),
                                        max_tokens=s.answer_max_tokens)

    try:
        model, answer = _with_client(ctx, run)
    except ModelServerUnavailable:
        fail(f"the model server at {s.model_server_url} does not answer; start it with `ft serve` "
             "(or set FT_MODEL_SERVER_URL)")
    except ModelServerError as exc:
        fail(f"the model server refused: {exc.message}")
    shown = [{"question": h.question, "answer": h.answer, "score": round(h.score, 3), "source_key": h.source_key}
             for h in hits or []]
    if as_json:
        print_json({"question": question, "answer": answer.strip(), "model": model, "deployed": name,
                    "retrieval": hits is not None, "context": shown})
        return
    if show_context:
        if hits is None:
            console.print("[dim]asked without retrieval[/]")
        elif not hits:
            console.print("[dim]no approved answer is close to this question[/]")
        for n, h in enumerate(shown, 1):
            console.print(f"[dim]{n}. ({h['score']:.2f}) Q: {escape(h['question'])}\n   A: {escape(h['answer'])}[/]",
                          highlight=False, soft_wrap=True)
    console.print(answer.strip(), highlight=False, soft_wrap=True, markup=False)
    console.print(f"[dim]— {model}{'' if name else ' (base model: nothing deployed yet)'}[/]", highlight=False)
