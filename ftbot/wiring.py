"""The one place that builds ftbot's parts from Settings.

Every entry point (`ft …`, demo/run.py, bench/) wires through here: the store, the retrieval index, the model
client, the bot's Deps and Bolt app, the worker's config. So a setting reaches each part one way, and the
parts themselves keep no defaults of their own that repeat Settings'.

The composition root: it may import every package; no package imports it. Heavy imports stay inside the
functions, so `ft status` loads neither the bot nor the trainer.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ftbot.settings import Settings

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.deps import Deps
    from bot.metrics import BotMetrics
    from serving.client import ModelClient
    from serving.retrieval import Retriever, TextEmbedder
    from storage import Store
    from storage.channels import Ladder
    from core.contract import GroundingSpec
    from trainer.config import TrainConfig
    from trainer.worker import WorkerConfig

log = logging.getLogger("ftbot.wiring")


# --- storage ----------------------------------------------------------------------------------------

def store(settings: Settings) -> Store:
    """The store (FT_DATABASE_URL, else a SQLite file in FT_DATA_DIR), migrated to the newest schema."""
    from storage import open_store

    return open_store(settings.db_url, busy_timeout_s=settings.db_busy_timeout_s)


# --- serving ----------------------------------------------------------------------------------------

def model_client(settings: Settings, *, url: str | None = None, timeout_s: float | None = None) -> ModelClient:
    """A client of FT_MODEL_SERVER_URL that waits FT_ANSWER_TIMEOUT_S and sends FT_MODEL_SERVER_API_KEY; url and
    timeout_s for another server or another wait (`ft doctor` gives up sooner, `ft serve` re-registers adapters
    on the server it started)."""
    from serving.client import ModelClient

    return ModelClient(url or settings.model_server_url,
                       timeout_s=settings.answer_timeout_s if timeout_s is None else timeout_s,
                       api_key=settings.model_server_key)


def retrieval_index(store: Store, embedder: TextEmbedder | None = None) -> Retriever:
    """The index of approved pairs (serving.retrieval), not yet synced, with the embedding model of the spec, or
    `embedder` when one is loaded already (bench/retrieval.py times it apart). Raises
    core.embedder.EmbedderError when the embedding model is not installed (the message says how to install it)."""
    from serving.retrieval import Retriever
    from core.embedder import Embedder

    return Retriever(store, embedder if embedder is not None else Embedder())


def retriever(settings: Settings, store: Store) -> Retriever | None:
    """The bot's index, catching up in the background; None when FT_RETRIEVAL is off or the embedding model
    is not installed (then the bot still answers, without retrieved context, and the log says why)."""
    if not settings.retrieval:
        return None
    from core.embedder import EmbedderError

    try:
        found = retrieval_index(store)
    except EmbedderError as exc:
        log.warning("answering without retrieval: %s", exc)
        return None
    # In the background: the first questions need not wait for a whole store to be embedded.
    threading.Thread(target=found.sync, name="ftbot-index", daemon=True).start()
    return found


def sync_index(store: Store) -> None:
    """Embed what the retrieval index lacks. The worker runs it before each job, so the job's snapshot finds
    its examples' vectors (jobs train with the pairs the bot would retrieve)."""
    retrieval_index(store).sync()


# --- bot --------------------------------------------------------------------------------------------

def deps(settings: Settings, *, store: Store, model: ModelClient, retriever: Retriever | None,
         **overrides: Any) -> Deps:
    """What every listener needs, its values taken from Settings; overrides: other Deps fields (the demo
    and benchmarks announce more or less often)."""
    from bot.deps import Deps

    values: dict[str, Any] = dict(
        store=store, model=model, retriever=retriever,
        admins=frozenset(settings.admins), curators=frozenset(settings.curators), agents=frozenset(settings.agents),
        draft_ttl_h=settings.draft_ttl_h, ladder=ladder(settings),
        label_emoji=settings.label_emoji, max_answer_chars=settings.max_answer_chars,
        approvals_channel=settings.approvals_channel, answer_timeout_s=settings.answer_timeout_s,
        answer_max_tokens=settings.answer_max_tokens,
        system_prompt=settings.system_prompt,  # the same prompt the trainer teaches with
        grounding=grounding(settings),
        resolution_window_h=settings.resolution_window_h,
        data_dir=settings.data_dir,
    )
    return Deps(**{**values, **overrides})


def ladder(settings: Settings) -> Ladder:
    """What earns a channel auto mode (FT_AUTO_RECORD_N, FT_AUTO_MIN_DRAFTS, FT_AUTO_MIN_UNCHANGED)."""
    from storage.channels import Ladder

    return Ladder(last_n=settings.auto_record_n, min_drafts=settings.auto_min_drafts,
                  min_unchanged=settings.auto_min_unchanged)


def grounding(settings: Settings) -> GroundingSpec:
    """When the bot sends an answer rather than "I don't know" (FT_ANSWER_MIN_SCORE, FT_ANSWER_MAX_GAP)."""
    from core.contract import GroundingSpec

    return GroundingSpec(min_score=settings.answer_min_score, max_gap=settings.answer_max_gap)


def bolt_app(settings: Settings, deps: Deps, metrics: BotMetrics) -> AsyncApp:
    """The Bolt app with every Slack surface registered, talking to SLACK_API_URL when set (tests, proxies)."""
    from bot.app import build_app

    return build_app(deps, token=settings.slack_bot_token, signing_secret=settings.slack_signing_secret,
                     api_url=settings.slack_api_url, metrics=metrics)


def bot(settings: Settings, **overrides: Any) -> tuple[AsyncApp, Deps, BotMetrics]:
    """Everything `ft bot` serves: (Bolt app, Deps, metrics). overrides: Deps fields; a store, model or
    retriever given there is used instead of the one these settings would open."""
    from bot.metrics import BotMetrics

    opened = overrides.pop("store", None)
    if opened is None:
        opened = store(settings)
    if "model" not in overrides:
        overrides["model"] = model_client(settings)
    if "retriever" not in overrides:
        overrides["retriever"] = retriever(settings, opened)
    built = deps(settings, store=opened, **overrides)
    metrics = BotMetrics()
    return bolt_app(settings, built, metrics), built, metrics


# --- trainer ----------------------------------------------------------------------------------------

def train_config(settings: Settings) -> TrainConfig:
    """What every job starts from before its own parameters: FT_BASE_MODEL (empty: SmolLM2, prepared when
    the job runs), the system prompt the bot asks with, whether to train with retrieved pairs, and the bot's
    grounding thresholds (the evaluation judges what the bot would send)."""
    from trainer.config import TrainConfig

    return TrainConfig(base_model=settings.base_model, system_prompt=settings.system_prompt,
                       retrieval=settings.retrieval, grounding=grounding(settings),
                       processes=settings.train_processes)


def worker_config(settings: Settings, **overrides: Any) -> WorkerConfig:
    """`ft worker`'s config; overrides: other WorkerConfig fields (tests poll faster, the demo trains less)."""
    from trainer.worker import WorkerConfig

    values: dict[str, Any] = dict(
        data_dir=settings.data_dir.resolve(), models_dir=settings.models_dir.resolve(),
        train=train_config(settings), val_percent=settings.val_percent, lease_s=settings.worker_lease_s,
        # At least three heartbeats per lease: one late beat must not cost the job.
        heartbeat_s=min(settings.worker_heartbeat_s, settings.worker_lease_s / 3),
        before_job=sync_index if settings.retrieval else None,
    )
    return WorkerConfig(**{**values, **overrides})
