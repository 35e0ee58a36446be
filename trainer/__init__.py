"""Training: dataset building, LoRA/QLoRA fine-tuning, evaluation, the job worker, the scheduler."""
