"""`/ft`: help, status, review, ask, train, jobs, cancel, versions, stats, deploy and rollback.

Every command is acknowledged at once (Slack waits 3 s): help, usage errors and refusals go in the
ack itself; anything that touches the database or the model server answers afterwards through
respond(), ephemerally.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.asking import answer as asking
from bot.commands import forget as privacy
from bot.commands import render
from bot.commands.registry import ADMINS, CURATORS, Command, UsageError, parse
from bot.curation import handlers as curation
from bot.deps import Deps
from bot.drafts import render as render_drafts
from bot.metrics import BotMetrics
from core.states import ChannelMode
from serving.deploy import deploy, rollback
from storage import audience, channels, jobs, outcomes, stats, versions

RECENT = 10


def allowed(deps: Deps, user: str | None, role: str) -> bool:
    if role == ADMINS:
        return deps.is_admin(user)
    if role == CURATORS:
        return deps.is_curator(user)
    return True


async def run(deps: Deps, cmd: Command, user: str, channel: str | None = None) -> dict[str, Any]:
    """The reply to one allowed command (not `ask`, which answers in the channel): respond()'s arguments.
    channel: where the command was typed (`channel` shows or changes that one)."""
    if cmd.name == "channel" and cmd.share is None:
        return {"text": await channel_mode(deps, cmd, user, channel or "")}
    if cmd.name == "status":
        return {"text": render.status(await deps.db(stats.status))}
    if cmd.name == "review":
        return await curation.review_message(deps)
    if cmd.name == "train":
        job = await deps.db(lambda s: jobs.enqueue(s, cmd.params, requested_by=user))
        return {"text": render.train_queued(job)}
    if cmd.name == "jobs":
        return {"text": render.jobs(await deps.db(lambda s: jobs.recent(s, RECENT)))}
    if cmd.name == "cancel":
        try:
            job = await deps.db(lambda s: jobs.cancel(s, cmd.job_id))
        except (LookupError, ValueError) as exc:  # no such job, or it has ended
            return {"text": render.cancel_refused(str(exc))}
        return {"text": render.cancelled(job)}
    if cmd.name == "versions":
        return {"text": render.versions(await deps.db(lambda s: versions.recent(s, RECENT)))}
    if cmd.name == "stats":
        return {"text": await _stats(deps, cmd.params)}
    if cmd.name == "deploy":
        return {"text": render.deploy_result(await deploy(deps.store, deps.model, cmd.version, user,
                                                          system_prompt=deps.system_prompt))}
    if cmd.name == "rollback":
        return {"text": render.deploy_result(await rollback(deps.store, deps.model, user))}
    if cmd.name == "channel":
        if not deps.is_admin(user):
            return {"text": render.refused_share()}
        if not channel:
            return {"text": render.usage("Type `/ft channel share on|off` in the channel concerned.")}
        change = await deps.db(lambda s: audience.set_shareable(s, channel, bool(cmd.share), user))
        return {"text": render.share_changed(change)}
    if cmd.name == "forget":
        return {"text": render.forgotten(await privacy.forget(deps, cmd.user, user))}
    raise AssertionError(f"no handler for /ft {cmd.name}")  # parse() only yields the names above


async def channel_mode(deps: Deps, cmd: Command, user: str, channel: str) -> str:
    """`/ft channel`: the mode and record; `/ft channel mode …` (admins): set it (storage.channels.change_mode)."""
    if not channel:
        return "Run `/ft channel` in the channel it is about."
    if cmd.mode is None:
        row = await deps.db(lambda s: channels.get(s, channel))
        found = await deps.db(lambda s: outcomes.record(s, channel, deps.ladder.last_n))
        return render_drafts.channel_status(channel, row.mode if row else ChannelMode.DEFAULT,
                                            row.drafts_channel if row else None, (found.sent_unchanged, found.acted_on))
    if not deps.is_admin(user):
        return render.refused_mode()
    change = await deps.db(lambda s: channels.change_mode(s, channel, cmd.mode, by=user,
                                                          drafts_channel=cmd.drafts_channel, confirm=cmd.confirm,
                                                          ladder=deps.ladder))
    return render_drafts.mode_change(channel, cmd.mode, change, deps.ladder)


async def _stats(deps: Deps, params: dict[str, Any]) -> str:
    """Live outcomes of every watched channel, or of the one named; since the time given, else since the first."""
    named = params.get("channel")

    def read(session):
        channel = outcomes.channel_id(session, named) if named else None
        if named and channel is None:
            return None
        return outcomes.outcomes(session, channel=channel, since=params.get("since"),
                                 resolution_window_h=deps.resolution_window_h)

    report = await deps.db(read)
    return render.stats(report) if report is not None else render.no_such_channel(named)


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    def count(outcome: str) -> None:
        metrics.events.labels(kind="ft", outcome=outcome).inc()

    @app.command("/ft")
    async def on_ft(ack, command, respond, client):
        user = command.get("user_id") or ""
        try:
            cmd = parse(command.get("text"))
        except UsageError as exc:
            count("usage")
            await ack(text=render.usage(str(exc)), response_type="ephemeral")
            return
        if cmd.name == "help":
            count("help")
            await ack(text=render.help_text(), response_type="ephemeral")
            return
        if not allowed(deps, user, cmd.spec.role):
            count("refused")
            await ack(text=render.refused(cmd.spec), response_type="ephemeral")
            return
        await ack()
        count(cmd.name)
        if cmd.name == "ask":
            # Answered in the command's channel, in the open, like a mention (a DM if the bot is not there).
            if command.get("channel_id"):
                await deps.channels.learn(client, command["channel_id"], deps.db)
            await asking.answer_question(deps, client, metrics, question=cmd.question, user=user,
                                         channel=command.get("channel_id") or user, thread_ts=None)
            return
        if cmd.name == "channel" and command.get("channel_id"):  # its kind first: the reply says what the mark moves
            await deps.channels.learn(client, command["channel_id"], deps.db)
        reply = await run(deps, cmd, user, command.get("channel_id"))
        await respond(**reply, response_type="ephemeral", replace_original=False)
