"""ftbot.wiring: the parts `ft bot` and `ft worker` run take their values from Settings, and only from there."""

from __future__ import annotations

import dataclasses

from bot.deps import Deps
from core.contract import DEFAULT_SYSTEM_PROMPT, GroundingSpec, ReuseSpec
from ftbot import wiring
from ftbot.settings import Settings
from storage.channels import Ladder

# The Deps fields that no setting gives, and why: a new field is in NOT_FROM_SETTINGS or checked against Settings
# below, so it cannot be forgotten.
NOT_FROM_SETTINGS = {
    "announce_every_s": "a pace the demo and benchmarks override, not an operator's choice",
    "workspace_url": "learnt from Slack (auth.test) when the bot starts",
    "backlog": "the bot's in-process queue of background work",
    "channels": "each channel's kind, learnt from Slack as events arrive",
    "periodic": "the announcer, sweeper and event forgetter, which wiring.bot builds from the other fields",
    "memory": "what listeners remember between events (lost on restart)",
}


def test_ft_bot_deps_take_their_values_from_settings(tmp_path):
    # Every value differs from its default, so an equal one came from these settings.
    settings = Settings(data_dir=tmp_path, admins={"UADMIN"}, curators={"UCUR"}, label_emoji=":brain:",
                        answer_min_score=0.55, answer_max_gap=0.2, max_answer_chars=1234, approvals_channel="CAPPROVE",
                        answer_timeout_s=7.5,
                        answer_max_tokens=77, system_prompt="Answer as Quillmate's support team.",
                        model_server_url="http://127.0.0.1:9/", retrieval=False, slack_bot_token="xoxb-1",
                        slack_signing_secret="s3cret", agents={"UAGENT"}, draft_ttl_h=3.5, resolution_window_h=6.0,
                        auto_record_n=7, auto_min_drafts=5, auto_min_unchanged=0.6, shutdown_grace_s=4.5,
                        reuse_min_score=0.9, gaps_channel="CCURATORS")
    app, deps, metrics = wiring.bot(settings)
    try:
        assert (deps.system_prompt, deps.label_emoji, deps.max_answer_chars, deps.answer_timeout_s,
                deps.answer_max_tokens, deps.approvals_channel) == (
            "Answer as Quillmate's support team.", "brain", 1234, 7.5, 77, "CAPPROVE")
        assert (deps.admins, deps.curators, deps.retriever, deps.grounding) == (
            frozenset({"UADMIN"}), frozenset({"UCUR"}), None, GroundingSpec(min_score=0.55, max_gap=0.2))
        assert deps.model.base_url == "http://127.0.0.1:9" and deps.model.timeout.total == 7.5
        assert deps.store.url == settings.db_url and app is not None and metrics is not None
        assert (deps.agents, deps.draft_ttl_h, deps.resolution_window_h, deps.data_dir) == (
            frozenset({"UAGENT"}), 3.5, 6.0, settings.data_dir)
        assert deps.ladder == Ladder(last_n=7, min_drafts=5, min_unchanged=0.6) and deps.shutdown_grace_s == 4.5
        assert deps.reuse == ReuseSpec(min_score=0.9)
        assert deps.gaps_channel == "CCURATORS"
        assert wiring.deps(Settings(approvals_channel="CAPPROVE"), store=deps.store, model=deps.model,
                           retriever=None).gaps_channel == "CAPPROVE"  # unset: the approvals channel
        checked = {"system_prompt", "label_emoji", "max_answer_chars", "answer_timeout_s", "answer_max_tokens",
                   "approvals_channel", "admins", "curators", "retriever", "grounding", "model", "store", "agents",
                   "draft_ttl_h", "resolution_window_h", "data_dir", "ladder", "shutdown_grace_s", "reuse",
                   "gaps_channel"}
        fields = {f.name for f in dataclasses.fields(Deps)}
        assert not checked & set(NOT_FROM_SETTINGS)
        assert fields - checked - set(NOT_FROM_SETTINGS) == set(), "a Deps field neither checked nor explained"
        assert checked | set(NOT_FROM_SETTINGS) <= fields, "a field listed here that Deps no longer has"
    finally:
        deps.store.close()


def test_the_worker_teaches_what_the_bot_asks_with(tmp_path):
    settings = Settings(data_dir=tmp_path, val_percent=20, base_model="/models/llama", retrieval=False,
                        preference_stage=True, worker_lease_s=30, worker_heartbeat_s=20, answer_min_score=0.6,
                        answer_max_gap=0.15)
    config = wiring.worker_config(settings, poll_s=0.1)
    assert (config.train.system_prompt, config.train.base_model, config.train.retrieval, config.train.preference) == (
        DEFAULT_SYSTEM_PROMPT, "/models/llama", False, True)
    assert wiring.train_config(Settings(data_dir=tmp_path)).preference is False  # off until measured
    # The kept checkpoint: eval loss until bench/trust.py --variants measures the answers' rule (issue 29); the
    # answers are counted as the bot sends them, with its reuse threshold.
    assert wiring.train_config(Settings(data_dir=tmp_path)).checkpoint_by == "eval_loss"
    answers = wiring.train_config(Settings(data_dir=tmp_path, checkpoint_by="answers", reuse_min_score=0.7))
    assert (answers.checkpoint_by, answers.reuse.min_score) == ("answers", 0.7)
    # The evaluation judges what the bot would send with the bot's own thresholds.
    assert (config.train.answer_min_score, config.train.answer_max_gap) == (0.6, 0.15)
    assert (config.val_percent, config.models_dir, config.lease_s, config.heartbeat_s, config.poll_s) == (
        20, (tmp_path / "models").resolve(), 30, 10, 0.1)  # three heartbeats per lease at least
    assert config.before_job is None  # retrieval off: no index to bring up to date
    assert Settings.model_fields["system_prompt"].default == DEFAULT_SYSTEM_PROMPT  # one copy of the prompt
