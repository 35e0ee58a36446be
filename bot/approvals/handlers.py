"""Approve / Reject on a version's approval request: admins only, one decision at a time per version."""

from __future__ import annotations

from bot.approvals import render
from bot.approvals.render import decided_blocks
from serving.deploy import deploy, reject
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
            if channel and ts:
                await client.chat_update(channel=channel, ts=ts, text=f"Deploying {name}…",
                                         blocks=decided_blocks(blocks, render.deploying(user)))
            result = await deploy(deps.store, deps.model, name, user, system_prompt=deps.system_prompt)
        else:
            result = await reject(deps.store, name, user)
    finally:
        deciding.pop(name, None)
    metrics.events.labels(kind="approval", outcome=f"{action_id}:{'ok' if result.ok else 'failed'}").inc()
    line = render.decision_line(action_id, user, utcnow(), result)
    if channel and ts:
        await client.chat_update(channel=channel, ts=ts, text=line, blocks=decided_blocks(blocks, line))
    else:
        await respond(text=line, response_type="ephemeral", replace_original=False)
