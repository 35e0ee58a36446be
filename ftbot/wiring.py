"""The one place that builds ftbot's parts from Settings.

Every entry point (`ft …`, demo/run.py, bench/) wires through here: the store, the retrieval index, the model
client, `ft serve`'s embedded server and vLLM command line, the bot's Deps, Bolt app and periodic work (the
announcer, the draft sweeper, the event ids forgotten, the knowledge-gaps digest), the training scheduler `ft bot`
runs, the worker's config. So a setting reaches each part one way, and the parts themselves keep no defaults of
their own that repeat Settings'.

The composition root: it may import every package; no package imports it. Heavy imports stay inside the
functions, so `ft status` loads neither the bot nor the trainer.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftbot.settings import Settings

if TYPE_CHECKING:
    from pathlib import Path

    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from slack_bolt.async_app import AsyncApp

    from bot.deps import Deps
    from bot.metrics import BotMetrics
    from bot.periodic import Periodic
    from bot.slack.export import ReadLimits
    from core.contract import GroundingSpec, ReuseSpec
    from serving.client import ModelClient
    from serving.model_server import ModelServer
    from serving.retrieval import Retriever, TextEmbedder
    from serving.vllm import VllmEnv
    from storage import Store
    from storage.channels import Ladder
    from trainer.config import TrainConfig
    from trainer.worker import WorkerConfig

log = logging.getLogger("ftbot.wiring")


# --- storage ----------------------------------------------------------------------------------------

def store(settings: Settings) -> Store:
    """The store (FT_DATABASE_URL, else a SQLite file in FT_DATA_DIR), migrated to the newest schema. Only the
    data folder, the default database's home, is created: an explicit URL's folder must exist
    (storage.db.MissingFolder)."""
    from storage import open_store

    return open_store(settings.db_url, busy_timeout_s=settings.db_busy_timeout_s,
                      create_folder=not settings.database_url)


def import_limits(settings: Settings) -> ReadLimits:
    """What an import may read (FT_IMPORT_MAX_FILE_MB, FT_IMPORT_MAX_TOTAL_MB)."""
    from bot.slack.export import ReadLimits

    return ReadLimits(max_file_mb=settings.import_max_file_mb, max_total_mb=settings.import_max_total_mb)


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
    from core.embedder import Embedder
    from serving.retrieval import Retriever

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


def model_server(settings: Settings, base: Path, *, served_name: str | None, max_lora_rank: int,
                 prompt_lookup_tokens: int, max_queue: int) -> ModelServer:
    """`ft serve`'s embedded server: an Engine on `base` (transformers + peft) that answers behind
    FT_MODEL_SERVER_API_KEY. Raises OSError or ValueError when the base model does not load."""
    from serving.generation import Engine
    from serving.model_server import ModelServer

    engine = Engine(base, served_name=served_name, max_lora_rank=max_lora_rank,
                    prompt_lookup_tokens=prompt_lookup_tokens)
    return ModelServer(engine, max_queue=max_queue, api_key=settings.model_server_key)


def vllm_env(settings: Settings) -> VllmEnv:
    """The vLLM environment `ft serve --vllm` runs: FT_VLLM_PYTHON, else the known places (serving.vllm.find_vllm).
    Raises VllmNotFound saying where it looked."""
    from serving.vllm import find_vllm

    return find_vllm(settings.vllm_python or None)


@dataclass(frozen=True)
class VllmLaunch:
    """`vllm serve`'s command line and the environment it adds, with the choices made for it."""

    argv: list[str]
    env: dict[str, str]
    max_lora_rank: int
    tensor_parallel: int


def vllm_launch(settings: Settings, found: VllmEnv, base: Path, store: Store | None, *, host: str, port: int,
                served_name: str | None, max_loras: int, max_lora_rank: int | None, max_cpu_loras: int | None,
                kv_cache_gib: int, tensor_parallel: int | None, extra: list[str]) -> VllmLaunch:
    """`ft serve --vllm`'s command line, vLLM's key FT_MODEL_SERVER_API_KEY. max_lora_rank None: the smallest
    that holds the stored adapters, else the rank a job trains by default (so the next version loads without a
    restart); tensor_parallel None: every GPU this process is given (1 on the CPU build). Raises ValueError for
    what vLLM would refuse."""
    from core.machine import physical_core_cpus
    from serving.vllm import cpu_env, max_lora_rank_for, visible_gpus, vllm_command

    if max_lora_rank is None:
        max_lora_rank = max_lora_rank_for(_stored_ranks(store), default=_default_rank())
    if tensor_parallel is None:  # a GPU build shards the model over every GPU it is given
        tensor_parallel = 1 if found.cpu else max(1, visible_gpus())
    argv, env = vllm_command(str(base), python=str(found.python), host=host, port=port, max_loras=max_loras,
                             max_lora_rank=max_lora_rank, max_cpu_loras=max_cpu_loras, served_name=served_name,
                             tensor_parallel_size=tensor_parallel, extra=extra, api_key=settings.model_server_key)
    if found.cpu:
        env.update(cpu_env(physical_core_cpus(), kv_cache_gib))
    return VllmLaunch(argv, env, max_lora_rank, tensor_parallel)


def _stored_ranks(store: Store | None) -> list[int | None]:
    """The ranks of the adapters this server may be asked to load."""
    from serving.vllm import adapter_rank
    from storage.versions import loadable

    if store is None:
        return []
    with store.session() as session:
        return [adapter_rank(v.adapter_path) for v in loadable(session)]


def _default_rank() -> int:
    """The rank a training job makes unless told otherwise."""
    from trainer.config import TrainConfig

    return TrainConfig.rank


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
        gaps_channel=settings.gaps_channel or settings.approvals_channel,
        answer_max_tokens=settings.answer_max_tokens,
        system_prompt=settings.system_prompt,  # the same prompt the trainer teaches with
        grounding=grounding(settings), reuse=reuse(settings),
        resolution_window_h=settings.resolution_window_h, shutdown_grace_s=settings.shutdown_grace_s,
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


def reuse(settings: Settings) -> ReuseSpec:
    """When an approved answer is given as it is, without asking the model (FT_REUSE_MIN_SCORE)."""
    from core.contract import ReuseSpec

    return ReuseSpec(min_score=settings.reuse_min_score)


def bolt_app(settings: Settings, deps: Deps, metrics: BotMetrics) -> AsyncApp:
    """The Bolt app with every Slack surface registered, talking to SLACK_API_URL when set (tests, proxies)."""
    from bot.app import build_app

    return build_app(deps, token=settings.slack_bot_token, signing_secret=settings.slack_signing_secret,
                     api_url=settings.slack_api_url, metrics=metrics)


def bot(settings: Settings, **overrides: Any) -> tuple[AsyncApp, Deps, BotMetrics]:
    """Everything `ft bot` serves: (Bolt app, Deps with its periodic work, metrics). overrides: Deps fields; a
    store, model or retriever given there is used instead of the one these settings would open."""
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
    app = bolt_app(settings, built, metrics)
    built.periodic.extend(periodic(built, app, metrics))
    return app, built, metrics


def periodic(deps: Deps, app: AsyncApp, metrics: BotMetrics) -> list[Periodic]:
    """What the bot repeats in its own loop while its HTTP app runs (bot.server): training progress and approval
    requests in FT_APPROVALS_CHANNEL (every Deps.announce_every_s), drafts nobody acted on expired
    (FT_DRAFT_TTL_H), Slack event ids older than a week forgotten (every hour), and the week's knowledge gaps told
    to the curators once a week (FT_GAPS_CHANNEL)."""
    from bot.approvals.announcer import Announcer
    from bot.drafts.flow import Sweeper
    from bot.gaps.digest import GapsDigest
    from bot.seen_events import EventForgetter

    return [Announcer(deps, app.client, every_s=deps.announce_every_s), Sweeper(deps, app.client, metrics),
            EventForgetter(deps.store), GapsDigest(deps, app.client)]


# --- trainer ----------------------------------------------------------------------------------------

def train_config(settings: Settings) -> TrainConfig:
    """What every job starts from before its own parameters: FT_BASE_MODEL (empty: SmolLM2, prepared when
    the job runs), the system prompt the bot asks with, whether to train with retrieved pairs, the bot's
    grounding thresholds and reuse threshold (the evaluation judges what the bot would send), and what keeps the
    best checkpoint (FT_CHECKPOINT_BY)."""
    from trainer.config import TrainConfig

    return TrainConfig(base_model=settings.base_model, system_prompt=settings.system_prompt,
                       retrieval=settings.retrieval, grounding=grounding(settings),
                       processes=settings.train_processes, preference=settings.preference_stage,
                       checkpoint_by=settings.checkpoint_by, reuse=reuse(settings))


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


def scheduler(settings: Settings, store: Store) -> AsyncIOScheduler:
    """The training schedule `ft bot` runs (FT_TRAIN_SCHEDULE, FT_MIN_NEW_EXAMPLES, FT_RETENTION_DAYS), started
    inside the running event loop (`ft bot` starts it through bot.server.run's on_start: bot/ itself does not
    import the trainer)."""
    from trainer import scheduler as training

    return training.start(store, settings.train_schedule, settings.min_new_examples, settings.retention_days)
