"""Training jobs in the approvals channel.

`Announcer` keeps one message per job in FT_APPROVALS_CHANNEL: it polls the store (workers run
elsewhere and know nothing of Slack), posts the message when a job appears, edits it in place as
progress arrives (at most every `edit_every_s`), and turns it into the approval request when the
job ends. Approve runs the deployment controller (serving.deploy) and the message says who decided,
when, and how the deploy went.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.approvals import render
from bot.deps import Deps
from bot.periodic import Periodic
from core.contract import VersionMetrics
from core.states import JobStatus
from storage import jobs
from storage.models import ModelVersion, TrainingJob, utcnow

log = logging.getLogger("ftbot.bot")
ANNOUNCE_WINDOW = timedelta(days=1)  # jobs that ended longer ago than this are not announced late


class Announcer(Periodic):
    what = "announcing training jobs"

    def __init__(self, deps: Deps, client, *, every_s: float = 3.0, edit_every_s: float = 10.0):
        super().__init__()
        self.deps, self.client = deps, client
        self.every_s, self.edit_every_s = every_s, edit_every_s
        self._shown: dict[int, tuple[float, str]] = {}  # job id → (when edited, what it shows)

    def start(self) -> None:
        if self.deps.approvals_channel:
            super().start()

    async def tick(self) -> int:
        """One pass: post, edit or finalise every job that needs it. Returns the Slack calls made."""
        channel = self.deps.approvals_channel
        if not channel:
            return 0

        def load(s) -> list[tuple[TrainingJob, ModelVersion | None]]:
            rows = jobs.to_announce(s, utcnow() - ANNOUNCE_WINDOW)
            return [(j, s.get(ModelVersion, j.version_id) if j.version_id else None) for j in rows]

        calls = 0
        for job, version in await self.deps.db(load):
            if job.status in jobs.ACTIVE:
                calls += await self._progress(channel, job)
            else:
                calls += await self._final(channel, job, version)
        return calls

    async def _progress(self, channel: str, job: TrainingJob) -> int:
        message = render.progress_message(job)
        shown = self._shown.get(job.id)
        if job.slack_ts and shown and (shown[1] == message["text"] or time.monotonic() - shown[0] < self.edit_every_s):
            return 0  # nothing new, or edited too recently: Slack rate-limits chat.update
        if job.slack_ts:
            await self.client.chat_update(channel=job.slack_channel or channel, ts=job.slack_ts, **message)
        else:
            sent = await self.client.chat_postMessage(channel=channel, **message)
            channel, ts = sent["channel"], sent["ts"]
            await self.deps.db(lambda s: jobs.mark_announced(s, job.id, channel, ts, done=False))
        self._shown[job.id] = (time.monotonic(), message["text"])
        return 1

    async def _final(self, channel: str, job: TrainingJob, version: ModelVersion | None) -> int:
        channel = job.slack_channel or channel
        if job.status == JobStatus.SUCCEEDED and version is not None:
            plot = await self._upload_plot(version)
            message = render.approval_request(job, version, plot_file_id=plot)
        else:
            message = render.job_ended(job)
        try:
            ts = await self._send(channel, job.slack_ts, message)
        except SlackApiError as exc:
            if not render.has_image(message):
                raise
            # The image may be refused (a file still processing): send without it, the file in the thread.
            log.warning("approval message with the loss curve refused (%s); sending it without", exc)
            message = render.without_image(message)
            ts = await self._send(channel, job.slack_ts, message)
            await self._upload_plot(version, channel=channel, thread_ts=ts)
        await self.deps.db(lambda s: jobs.mark_announced(s, job.id, channel, ts, done=True))
        self._shown.pop(job.id, None)
        return 1

    async def _send(self, channel: str, ts: str | None, message: dict[str, Any]) -> str:
        if ts:
            await self.client.chat_update(channel=channel, ts=ts, **message)
            return ts
        sent = await self.client.chat_postMessage(channel=channel, **message)
        return sent["ts"]

    async def _upload_plot(self, version: ModelVersion | None, **where: Any) -> str | None:
        """The loss curve uploaded to Slack; its file id, or None when the bot cannot read it."""
        path = Path(VersionMetrics.from_json(version.metrics).loss_plot or "") if version else None
        if not path or not path.is_file():
            return None  # a worker on another host without a shared adapter store: the message says so
        try:
            uploaded = await self.client.files_upload_v2(file=str(path), filename=f"{version.name}-loss.png",
                                                         title=f"{version.name}: loss per step", **where)
        except SlackApiError as exc:
            log.warning("could not upload the loss curve of %s: %s", version.name, exc)
            return None
        files = uploaded.get("files") or [uploaded.get("file") or {}]
        return files[0].get("id") if files else None
