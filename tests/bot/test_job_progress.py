"""A running job's message in the approvals channel names its phase: SFT's bar, evaluation, the preference stage."""

import json

from bot.approvals.render import progress_message
from core.contract import JobProgress
from core.states import JobPhase, JobStatus
from storage.models import TrainingJob


def _shown(progress: JobProgress) -> str:
    job = TrainingJob(id=7, status=JobStatus.RUNNING, requested_by="UCUR", progress=progress.to_json())
    message = progress_message(job)
    return message["text"] + json.dumps(message["blocks"], ensure_ascii=False)


def test_the_message_names_each_phase():
    sft = _shown(JobProgress(step=3, total=12))
    assert "step 3/12" in sft and "preference" not in sft
    assert "evaluating against the base model" in _shown(JobProgress(step=12, total=12, phase=JobPhase.EVALUATING))
    during = _shown(JobProgress(step=2, total=6, loss=0.7, eta_s=40, phase=JobPhase.PREFERENCE))
    assert "step 2/6" in during and "preference stage (the team's corrections)" in during
    assert "about 40 s left" in during
    after = _shown(JobProgress(step=6, total=6, phase=JobPhase.PREFERENCE))
    assert "preference stage trained; evaluating it against SFT alone" in after and "step 6/6" not in after
