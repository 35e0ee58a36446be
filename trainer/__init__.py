"""Training: dataset building, LoRA/QLoRA fine-tuning, evaluation, the job worker, the scheduler.

One job's steps, top to bottom: trainer.job.run_training. The worker that runs each job in a process of its
own (`ft worker`, `ft train --inline`): trainer.worker.Worker.run_one."""

import logging

# peft imports bitsandbytes when it is installed, and bitsandbytes then warns on CPU that the optional
# `kernels` package (a hub download) is missing; its built-in CPU path is what runs and was measured.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
