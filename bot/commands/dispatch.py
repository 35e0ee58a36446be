"""The `/ft` listener: every command is acknowledged at once (Slack waits 3 s). Help, usage errors and refusals go
in the ack itself; anything that touches the database or the model server answers afterwards through respond(),
ephemerally (`ask` answers in the channel). What each subcommand does is its module's (bot.commands.registry)."""

from __future__ import annotations

from bot.commands import render
from bot.commands.registry import Call, UsageError, allowed, parse


async def on_ft(ack, command, respond, client, context):
    deps, metrics = context["deps"], context["metrics"]
    user, channel = command.get("user_id") or "", command.get("channel_id")

    def count(outcome: str) -> None:
        metrics.events.labels(kind="ft", outcome=outcome).inc()

    try:
        cmd = parse(command.get("text"))
    except UsageError as exc:
        count("usage")
        await ack(text=render.usage(str(exc)), response_type="ephemeral")
        return
    spec, call = cmd.spec, Call(deps, metrics, client, user, channel, cmd.args)
    if spec.in_ack:
        count(spec.name)
        await ack(**await spec.run(call), response_type="ephemeral")
        return
    if not allowed(deps, user, spec.role):
        count("refused")
        await ack(text=render.refused(spec), response_type="ephemeral")
        return
    await ack()
    count(spec.name)
    if spec.learns_channel and channel:
        await deps.channels.learn(client, channel, deps.db)
    reply = await spec.run(call)
    if reply is not None:
        await respond(**reply, response_type="ephemeral", replace_original=False)
