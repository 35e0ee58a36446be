"""Settings, read once from the environment by each entry point and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.contract import CHECKPOINT_RULES, DEFAULT_SYSTEM_PROMPT, GROUNDING, REUSE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FT_", extra="ignore", populate_by_name=True)

    data_dir: Path = Path(".ftbot")
    database_url: str = ""  # empty: a SQLite file inside data_dir
    # How long a write waits for another connection's lock before it fails (SQLite's busy timeout,
    # PostgreSQL's lock_timeout); the worker retries what a job needs, within its lease.
    db_busy_timeout_s: float = Field(30.0, gt=0)
    # NoDecode: ids arrive as "U1,U2", not as JSON.
    admins: Annotated[set[str], NoDecode] = Field(default_factory=set)
    curators: Annotated[set[str], NoDecode] = Field(default_factory=set)
    agents: Annotated[set[str], NoDecode] = Field(default_factory=set)  # the support team: send, edit, discard drafts
    label_emoji: str = "white_check_mark"
    val_percent: int = Field(15, ge=0, le=100)
    max_answer_chars: int = Field(4000, gt=0)
    # Imports (`ft import-slack`, `ft examples import`): the most one file, and one export in all, may hold once
    # decompressed, counted while reading; a zip bomb stops there.
    import_max_file_mb: float = Field(64, gt=0)
    import_max_total_mb: float = Field(2048, gt=0)

    # Slack. The tokens keep Slack's own variable names.
    slack_bot_token: str = Field("", validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str = Field("", validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: str = Field("", validation_alias="SLACK_APP_TOKEN")  # set: Socket Mode
    slack_api_url: str = ""  # overrides https://slack.com/api/ (tests, proxies)
    approvals_channel: str = ""  # where training progress and approval requests go
    gaps_channel: str = ""  # where the curators get the weekly knowledge-gaps digest; empty: approvals_channel
    # Draft mode (README: "Draft mode"): how long a draft waits for the team, and what earns auto mode.
    draft_ttl_h: float = Field(24.0, gt=0)
    # On SIGTERM, in-flight work gets this long before it is cancelled: under fly.toml's kill_timeout (5 s there).
    shutdown_grace_s: float = Field(3.0, gt=0, le=300)
    auto_min_drafts: int = Field(20, ge=1)
    auto_min_unchanged: float = Field(0.8, ge=0, le=1)
    auto_record_n: int = Field(50, ge=1)

    # The model server (the embedded `ft serve`, or vLLM): OpenAI-compatible.
    model_server_url: str = "http://127.0.0.1:8000"
    # The Bearer token both model servers require (`ft serve`, and vLLM as VLLM_API_KEY) and every client sends.
    # Empty: no authentication, which `ft serve` allows on a loopback address only.
    model_server_api_key: SecretStr = SecretStr("")
    answer_timeout_s: float = Field(30.0, gt=0)
    answer_max_tokens: int = Field(256, ge=1)  # the longest answer the bot asks the model for
    retrieval: bool = True  # the nearest approved pairs go in front of every question (serving.retrieval)
    # An answer is sent only when a retrieved approved answer states its key items and scores at least this,
    # and no more than answer_max_gap below the best pair; otherwise "I don't know" (core.grounding).
    answer_min_score: float = Field(GROUNDING.min_score, ge=-1, le=1)
    answer_max_gap: float = Field(GROUNDING.max_gap, ge=0)
    # The best retrieved approved answer is given as it is, without asking the model, when it scores at least this
    # (core.reuse; above 1: never).
    reuse_min_score: float = Field(REUSE.min_score, ge=-1)
    vllm_python: str = ""  # the Python of vLLM's own environment; empty: .venv-vllm (make vllm), /opt/vllm, PATH
    # Live outcome metrics (storage.outcomes): an auto answer nobody confirmed, with no follow-up from the asker
    # this many hours after the question, counts as an assumed resolution (apart from confirmed ones).
    resolution_window_h: float = Field(24.0, gt=0)

    # Training.
    base_model: str = ""  # a local HF causal-LM directory; empty: SmolLM2-135M-Instruct, prepared in data_dir/models
    system_prompt: str = DEFAULT_SYSTEM_PROMPT  # the trainer teaches with it and the bot asks with it
    train_schedule: str = "0 2 * * *"  # cron: nightly at 02:00
    min_new_examples: int = Field(20, ge=1)
    worker_lease_s: float = Field(60.0, gt=0)  # a silent worker's job goes back to the queue after this
    worker_heartbeat_s: float = Field(5.0, gt=0)
    # Processes a job trains in (trainer.launch, accelerate launch): 0 = one per GPU the worker is given
    # (CUDA_VISIBLE_DEVICES), one on CPU.
    train_processes: int = Field(0, ge=0)
    # The preference stage after SFT (trainer.preference: the team's edits and corrections, an anchored DPO loss,
    # kept only where the gate finds it loses on nothing). Off until bench/preference.py measures a gain; a job may
    # also ask for it (`/ft train preference=true`).
    preference_stage: bool = False
    # What keeps a training's best checkpoint and stops it early (core.contract.CHECKPOINT_RULES): "eval_loss", or
    # "answers" (the validation split answered as the bot answers it at each evaluation: fewest wrong, then most
    # right; trainer.checkpoint). eval_loss until bench/trust.py --variants measures answers; a job may ask for it
    # (`/ft train checkpoint_by=answers`).
    checkpoint_by: str = "eval_loss"

    # Days after which questions and feedback that never became an approved pair are deleted (None: kept).
    retention_days: int | None = Field(None, ge=1)

    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("admins", "curators", "agents", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        # Env vars hold Slack user ids as "U1,U2" or "U1 U2".
        if isinstance(value, str):
            return {part for part in value.replace(",", " ").split() if part}
        return value

    @field_validator("label_emoji", mode="before")
    @classmethod
    def _strip_colons(cls, value: object) -> object:
        return value.strip().strip(":") if isinstance(value, str) else value

    @field_validator("checkpoint_by")
    @classmethod
    def _checkpoint_rule(cls, value: str) -> str:
        if value not in CHECKPOINT_RULES:
            raise ValueError(f"{value!r}: one of {', '.join(CHECKPOINT_RULES)}")
        return value

    @field_validator("train_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(value)  # raises ValueError with what is wrong
        return value

    @field_validator("model_server_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018  (raises ValueError on a port that is no number)
        except ValueError as exc:
            raise ValueError(f"{value!r}: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL (e.g. http://127.0.0.1:8000)")
        return value

    @property
    def model_server_key(self) -> str | None:
        """The API key in plain text, for the client and the servers only (None: no authentication)."""
        return self.model_server_api_key.get_secret_value() or None

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'ftbot.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"
