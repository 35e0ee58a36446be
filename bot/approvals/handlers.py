"""Approve / Reject on a version's approval request: admins only, one decision at a time per version."""

from __future__ import annotations

from bot.approvals import render
from bot.approvals.render import decided_blocks
from serving.deploy import DeployResult, deploy, reject
from storage.models import utcnow


async def on_decision(ack, body, respond, client, context):
    await ack()
    deps, metrics = context["deps"], context["metrics"]
    user, action_id = body["user"]["id"], body["actions"][0]["action_id"]
    if not deps.is_admin(user):  # checked server-side: the buttons are visible to everyone in the channel
        metrics.events.labels(kind="approval", outcome="refused").inc()
        await respond(text=render.only_admins(action_id), response_type="ephemeral", replace_original=False)
        return
    name, deciding = body["actions"][0].get("value") or "", deps.memory.deciding
    if name in deciding:
        await respond(text=f"<@{deciding[name]}> is already deciding on {name}; wait a moment.",
                      response_type="ephemeral", replace_original=False)
        return
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    message = body.get("message") or {}
    blocks, ts = message.get("blocks") or [], message.get("ts")
    deciding[name] = user
    try:
        if action_id == render.APPROVE:
            result = await _approve(deps, client, channel, ts, blocks, name, user, render.confirmed(body))
        else:
            result = await reject(deps.store, name, user)
    finally:
        deciding.pop(name, None)
    outcome = "unconfirmed" if result.confirm else ("ok" if result.ok else "failed")
    metrics.events.labels(kind="approval", outcome=f"{action_id}:{outcome}").inc()
    if result.confirm:  # the click skipped the confirm dialog: the request stays, and now asks
        await _ask_to_confirm(client, respond, channel, ts, blocks, name, result.confirm)
        return
    line = render.decision_line(action_id, user, utcnow(), result)
    if channel and ts:
        await client.chat_update(channel=channel, ts=ts, text=line, blocks=decided_blocks(blocks, line))
    else:
        await respond(text=line, response_type="ephemeral", replace_original=False)


async def _approve(deps, client, channel, ts, blocks, name: str, user: str, confirmed: bool) -> DeployResult:
    """The deployment controller decides (serving.deploy: a warned version deploys only confirmed)."""
    if channel and ts:
        await client.chat_update(channel=channel, ts=ts, text=f"Deploying {name}…",
                                 blocks=decided_blocks(blocks, render.deploying(user)))
    return await deploy(deps.store, deps.model, name, user, system_prompt=deps.system_prompt, confirmed=confirmed)


async def _ask_to_confirm(client, respond, channel, ts, blocks, name: str, warning: str) -> None:
    if channel and ts:
        await client.chat_update(channel=channel, ts=ts, text=f"{name} needs confirming: {warning}",
                                 blocks=render.asking_to_confirm(blocks, name, warning))
    await respond(text=render.confirm_first(name, warning), response_type="ephemeral", replace_original=False)
