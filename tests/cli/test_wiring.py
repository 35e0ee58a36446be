"""ftbot.wiring: the parts `ft bot` and `ft worker` run take their values from Settings, and only from there."""

from __future__ import annotations

from core.contract import DEFAULT_SYSTEM_PROMPT, GroundingSpec
from ftbot import wiring
from ftbot.settings import Settings


def test_ft_bot_deps_take_their_values_from_settings(tmp_path):
    # Every value differs from its default, so an equal one came from these settings.
    settings = Settings(data_dir=tmp_path, admins={"UADMIN"}, curators={"UCUR"}, label_emoji=":brain:",
                        answer_min_score=0.55, answer_max_gap=0.2, max_answer_chars=1234, approvals_channel="CAPPROVE",
                        answer_timeout_s=7.5,
                        answer_max_tokens=77, system_prompt="Answer as Quillmate's support team.",
                        model_server_url="http://127.0.0.1:9/", retrieval=False, slack_bot_token="xoxb-1",
                        slack_signing_secret="s3cret")
    app, deps, metrics = wiring.bot(settings)
    try:
        assert (deps.system_prompt, deps.label_emoji, deps.max_answer_chars, deps.answer_timeout_s,
                deps.answer_max_tokens, deps.approvals_channel) == (
            "Answer as Quillmate's support team.", "brain", 1234, 7.5, 77, "CAPPROVE")
        assert (deps.admins, deps.curators, deps.retriever, deps.grounding) == (
            frozenset({"UADMIN"}), frozenset({"UCUR"}), None, GroundingSpec(min_score=0.55, max_gap=0.2))
        assert deps.model.base_url == "http://127.0.0.1:9" and deps.model.timeout.total == 7.5
        assert deps.store.url == settings.db_url and app is not None and metrics is not None
    finally:
        deps.store.close()


def test_the_worker_teaches_what_the_bot_asks_with(tmp_path):
    settings = Settings(data_dir=tmp_path, val_percent=20, base_model="/models/llama", retrieval=False,
                        worker_lease_s=30, worker_heartbeat_s=20, answer_min_score=0.6, answer_max_gap=0.15)
    config = wiring.worker_config(settings, poll_s=0.1)
    assert (config.train.system_prompt, config.train.base_model, config.train.retrieval) == (
        DEFAULT_SYSTEM_PROMPT, "/models/llama", False)
    # The evaluation judges what the bot would send with the bot's own thresholds.
    assert (config.train.answer_min_score, config.train.answer_max_gap) == (0.6, 0.15)
    assert (config.val_percent, config.models_dir, config.lease_s, config.heartbeat_s, config.poll_s) == (
        20, (tmp_path / "models").resolve(), 30, 10, 0.1)  # three heartbeats per lease at least
    assert config.before_job is None  # retrieval off: no index to bring up to date
    assert Settings.model_fields["system_prompt"].default == DEFAULT_SYSTEM_PROMPT  # one copy of the prompt
