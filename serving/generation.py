"""One base model, several LoRA adapters on it, and generation: what the embedded server runs.

`Engine` is not thread-safe: the server calls it from a single worker thread only. Adapters are
checked the way vLLM checks them (core.contract.adapter_problems) before the model is
touched, so an adapter this server accepts is one vLLM serves too, and a refused adapter leaves
the loaded ones as they were.

torch, transformers and peft are imported here only, and only when an Engine is built.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.contract import (
    LORA_RANKS,
    PICKLED_WEIGHTS,
    RANKS_LISTED,
    adapter_files_problem,
    adapter_name_problem,
    adapter_problems,
)
from core.machine import peft_wraps_quietly, physical_cores
from serving import adapter_dir
from serving.errors import ServingError
from serving.pieces import TextPieces
from serving.validation import shown

log = logging.getLogger(__name__)

# Turn ends of common chat templates: generation stops there even when the config's eos differs.
TURN_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")
# Greedy answers draft this many tokens from the prompt (transformers' prompt lookup decoding) and
# check them in one forward pass: the same tokens as plain greedy decoding, far fewer passes when
# the answer copies the retrieved approved answers in front of it, as grounded answers do. SmolLM2
# on the 2-core CPU, a 40-token answer behind three retrieved pairs: 0.68 s vs 2.13 s (3.1x; drafting
# 5 tokens: 0.79 s). Served Quillmate answers (bench/grounded.py, `ft serve --prompt-lookup 0` the
# baseline): 1.5-1.8x faster at p50, 1.3-1.7x at p95, 31 of 31 answers identical.
PROMPT_LOOKUP_TOKENS = 10
# A character that max_tokens cut in two decodes as U+FFFD at the end of the text: dropped, never sent.
CUT_CHARACTER = re.compile(r"\ufffd+\Z")


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length" | "abort"
    seconds: float


def choose_device(device: str | None = None) -> tuple[str, Any]:
    """('cuda', bf16) when a GPU is there, else ('cpu', fp32): one code path for both."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return device, dtype


class Engine:
    """A base causal LM with named LoRA adapters; `generate(model_name, messages, …)` picks one per call."""

    def __init__(self, model_dir: str | Path, *, served_name: str | None = None, max_lora_rank: int = 64,
                 device: str | None = None, threads: int | None = None,
                 prompt_lookup_tokens: int = PROMPT_LOOKUP_TOKENS):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if max_lora_rank not in LORA_RANKS:
            raise ValueError(f"max_lora_rank must be one of {RANKS_LISTED} (as vLLM), "
                             f"not {max_lora_rank}")
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_dir} is not a model directory (no config.json)")
        self.served_name = served_name or self.model_dir.resolve().name
        self.max_lora_rank = max_lora_rank
        self.prompt_lookup_tokens = prompt_lookup_tokens  # 0: plain greedy decoding (the benchmark's baseline)
        self.device, self.dtype = choose_device(device)
        if self.device == "cpu":
            torch.set_num_threads(threads or physical_cores())
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"{self.model_dir}: the tokenizer has no chat template")
        model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=self.dtype)
        self.base = model.to(self.device).eval()
        self.peft = None  # a PeftModel wrapping self.base once an adapter is loaded
        self.merged: str | None = None  # the adapter whose weights are merged into the base now (see _merge)
        self._wrappers: list[tuple[Any, str, Any]] = []  # LoRA layers taken out of the tree while generating
        self.adapters: dict[str, str] = {}  # name -> path, in load order
        # Why the engine cannot serve (None: it can): peft left in a state a rollback could not undo.
        # /health answers 503 with it, and chats are refused rather than failing one by one.
        self.broken: str | None = None
        self.max_context = int(getattr(self.base.config, "max_position_embeddings", 0) or 0) or None
        self.eos_ids = self._eos_ids()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        self._module_names = {name for name, _ in self.base.named_modules()}

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen_eos = getattr(self.base.generation_config, "eos_token_id", None)
        for value in (gen_eos if isinstance(gen_eos, list) else [gen_eos]) + [self.tokenizer.eos_token_id]:
            if isinstance(value, int) and value not in ids:
                ids.append(value)
        vocab = self.tokenizer.get_vocab()
        template = str(self.tokenizer.chat_template)
        for token in TURN_END_TOKENS:
            if token in template and token in vocab and vocab[token] not in ids:
                ids.append(vocab[token])
        if not ids:
            raise ValueError(f"{self.model_dir}: no end-of-sequence token in the tokenizer or generation config")
        return ids

    # ---- adapters -------------------------------------------------------------------------------

    def check_adapter(self, path: str | Path) -> tuple[Any, dict[str, Any]]:
        """The adapter's LoraConfig and weights, or ServingError: 404 not found, 400 not servable (with why)."""
        from peft import LoraConfig
        from peft.utils import load_peft_weights

        path = Path(path)
        adapter_dir.check_folder(path)
        raw = adapter_dir.read_config(path)
        if raw.get("peft_type", "LORA") != "LORA":
            raise adapter_dir.refused(f"{path} is a {shown(raw.get('peft_type'))} adapter; only LoRA adapters "
                                      "are served")
        try:
            problems = adapter_problems(raw, self.max_lora_rank)
        except (TypeError, AttributeError, ValueError) as exc:  # e.g. rank_pattern not an object
            raise adapter_dir.refused(f"{path}/adapter_config.json has a field of the wrong type: {exc}") from exc
        if problems:
            raise adapter_dir.refused(f"adapter {path} cannot be served: " + "; ".join(problems))
        try:
            config = LoraConfig.from_pretrained(str(path))
        except Exception as exc:
            raise adapter_dir.refused(f"{path}/adapter_config.json is not a LoRA config peft reads: {exc}") from exc
        files_problem = adapter_files_problem(path)
        if files_problem:
            if (path / PICKLED_WEIGHTS).is_file():  # a pickle: never unpickled here
                raise ServingError(400, files_problem, "InvalidUserInput", "lora_path")
            raise ServingError(404, f"No adapter found for {path} ({files_problem})", "NotFoundError", "lora_path")
        try:
            weights = load_peft_weights(str(path), device=self.device)
        except Exception as exc:
            raise adapter_dir.refused(f"could not read the adapter weights in {path}: {exc.__class__.__name__}: "
                                      f"{exc}") from exc
        unknown = sorted({module_of(key) for key in weights} - self._module_names - {""})
        if unknown:
            raise adapter_dir.refused(f"While loading {path}, expected target modules of {self.served_name} but "
                                      f"received {unknown[:5]}{' …' if len(unknown) > 5 else ''}: the adapter "
                                      "was trained on another base model")
        return config, weights

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Add adapter `name`; on any failure the engine keeps exactly the adapters it had."""
        from peft import PeftModelForCausalLM, set_peft_model_state_dict

        name_problem = adapter_name_problem(name)
        if name_problem:  # before peft sees it: a dotted name half-adds itself to the LoRA layers
            raise ServingError(400, name_problem, "InvalidUserInput", "lora_name")
        if name in self.adapters:
            raise ServingError(400, f"The lora adapter '{name}' has already been loaded. If you want to load the "
                                    "adapter in place, set 'load_inplace' to True.", "InvalidUserInput", "lora_name")
        self._refuse_if_broken()
        config, weights = self.check_adapter(path)
        config.inference_mode = True
        self._unmerged()
        created = self.peft is None
        try:
            if created:
                with peft_wraps_quietly():
                    self.peft = PeftModelForCausalLM(self.base, config, adapter_name=name)
            else:
                self.peft.add_adapter(name, config)
            result = set_peft_model_state_dict(self.peft, weights, adapter_name=name)
            missing = [k for k in result.missing_keys if "lora_" in k and f".{name}." in k]
            if missing:
                raise ServingError(400, f"adapter {path} lacks {len(missing)} of its weights (e.g. {missing[0]})")
            self.peft.to(self.device)
            self.peft.eval()
        except Exception as exc:
            self._rollback(name, unwrap=created)
            if isinstance(exc, ServingError):
                raise
            # The adapter does not fit (vLLM answers 400 too); 500 only when the rollback left the engine broken.
            raise ServingError(500 if self.broken else 400, f"failed to load LoRA adapter '{name}' from {path}: "
                                    f"{exc.__class__.__name__}: {exc}", param="lora_path") from exc
        self.adapters[name] = str(path)
        self._check_state()

    def unload_adapter(self, name: str) -> None:
        """Drop adapter `name`; a failure leaves it loaded (or marks the engine broken when peft half-dropped it)."""
        if name not in self.adapters:
            raise ServingError(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError", "lora_name")
        self._refuse_if_broken()
        try:
            self._drop(name, unwrap=len(self.adapters) == 1)
        except Exception as exc:
            self._check_state()
            raise ServingError(500, f"failed to unload LoRA adapter '{name}': {exc.__class__.__name__}: {exc}") from exc
        del self.adapters[name]
        self._check_state()

    def _drop(self, name: str, unwrap: bool) -> None:
        """Delete adapter `name` from the PeftModel, down to what a failed add left in single LoRA layers;
        with no adapter left, give back the plain base."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        if self.peft is None:
            return
        self._unmerged()
        if name in self.peft.peft_config:
            self.peft.delete_adapter(name)
        for module in self.peft.modules():  # a half-added adapter is in some layers but not in peft_config
            if isinstance(module, BaseTunerLayer) and name in module._all_available_adapter_names():
                module.delete_adapter(name)
        if unwrap:
            self.base = self.peft.unload()  # LoRA layers replaced by the original modules
            self.peft = None
            self._module_names = {n for n, _ in self.base.named_modules()}

    def _rollback(self, name: str, unwrap: bool) -> None:
        """After a failed load: back to the adapters there were, or the engine marked broken."""
        try:
            self._drop(name, unwrap=unwrap)
        except Exception:  # the state check below says what is left
            log.exception("could not undo the failed load of adapter %s", name)
        self._check_state()

    def _check_state(self) -> None:
        """Set `broken` when peft holds other adapters than the engine lists (on the model thread)."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        if self.peft is None:
            held = {n for m in self.base.modules() if isinstance(m, BaseTunerLayer)
                    for n in m._all_available_adapter_names()}
        else:
            held = set(self.peft.peft_config) | {n for m in self.peft.modules() if isinstance(m, BaseTunerLayer)
                                                 for n in m._all_available_adapter_names()}
        stray = sorted(held - set(self.adapters))
        missing = sorted(set(self.adapters) - set(self.peft.peft_config if self.peft is not None else ()))
        if stray or missing:
            self.broken = (f"the engine's adapters are inconsistent (in peft but not listed: {stray}; listed but "
                           f"not in peft: {missing}); restart the server")
            log.error("%s", self.broken)
        else:
            self.broken = None

    def _refuse_if_broken(self) -> None:
        if self.broken:
            raise ServingError(503, self.broken)

    def _merge(self, name: str | None) -> Any:
        """The plain model to generate with: adapter `name` merged into the base weights (None: the base).

        peft's LoRA layers cost time on every token (unmerged: two extra small matmuls per linear
        layer; merged: still a wrapper call each). So the asked adapter is merged and the wrappers
        are taken out of the module tree (their base layers, holding the merged weights, put in
        their place) until another adapter is asked for, or one is added or dropped. Measured with
        SmolLM2 on the 2-core CPU (bench/serve_throughput.py): decoding on the merged plain layers
        runs at the base model's speed, 1.3-1.5x faster than peft's LoRA path; a switch costs about
        0.35 s. The bot asks the deployed version almost always, so it stays merged."""
        if self.peft is None:
            return self.base
        if self.merged != name:
            self._wrap()
            if self.merged is not None:
                self.peft.unmerge_adapter()
                self.merged = None
            if name is not None:
                self.peft.set_adapter(name)
                self.peft.merge_adapter([name])
                self.merged = name
        self._unwrap()
        return self.peft.get_base_model()

    def _unwrap(self) -> None:
        from peft.tuners.tuners_utils import BaseTunerLayer

        if self._wrappers:
            return
        for parent in list(self.peft.get_base_model().modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, BaseTunerLayer):
                    self._wrappers.append((parent, child_name, child))
                    setattr(parent, child_name, child.get_base_layer())

    def _wrap(self) -> None:
        """The LoRA layers back in place (before peft touches the model)."""
        for parent, child_name, wrapper in self._wrappers:
            setattr(parent, child_name, wrapper)
        self._wrappers = []

    def _unmerged(self) -> None:
        """No adapter merged, the LoRA layers in place: how peft expects the model when adding or dropping one."""
        if self.peft is not None:
            self._merge(None)
            self._wrap()

    # ---- generation -----------------------------------------------------------------------------

    def known(self, model_name: str) -> bool:
        return model_name == self.served_name or model_name in self.adapters

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The base model's own chat template, with the assistant turn opened."""
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, model_name: str, messages: list[dict[str, str]], *, max_tokens: int, temperature: float,
                 top_p: float = 1.0, seed: int | None = None, ignore_eos: bool = False, min_tokens: int = 0,
                 stop: list[str] | None = None, stop_event: threading.Event | None = None,
                 on_text: Callable[[str], None] | None = None) -> Generation:
        """One answer. on_text: called on this (the model's) thread with each new piece of the answer's text as it
        is written; the pieces join to exactly `Generation.text` (see serving.pieces.TextPieces)."""
        import torch
        from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

        if not self.known(model_name):
            raise ServingError(404, f"The model `{model_name}` does not exist.", "NotFoundError", "model")
        self._refuse_if_broken()
        started = time.perf_counter()
        ids = self.prompt_ids(messages)
        if self.max_context and len(ids) + max_tokens > self.max_context:
            raise ServingError(400, f"This model's maximum context length is {self.max_context} tokens. However, you "
                                    f"requested {len(ids) + max_tokens} tokens ({len(ids)} in the messages, "
                                    f"{max_tokens} in the completion). Please reduce the length of the messages "
                                    "or completion.", param="max_tokens")

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return stop_event is not None and stop_event.is_set()

        # A fresh config: the request alone decides how to sample (temperature 0: greedy). ignore_eos
        # holds the end-of-sequence tokens back until max_tokens (an unset eos_token_id would not:
        # generate() fills it in from the model's generation_config).
        config = GenerationConfig(max_new_tokens=max_tokens, pad_token_id=self.pad_id, eos_token_id=self.eos_ids,
                                  min_new_tokens=max_tokens if ignore_eos else (min(min_tokens, max_tokens) or None),
                                  do_sample=temperature > 0)
        if temperature > 0:
            config.temperature, config.top_p, config.top_k = temperature, top_p, None
            if seed is not None:
                torch.manual_seed(seed)
        elif self.prompt_lookup_tokens:
            config.prompt_lookup_num_tokens = self.prompt_lookup_tokens
        if stop:  # OpenAI's stop sequences: generation ends once one is written (left out of the text)
            config.stop_strings = list(stop)
        input_ids = torch.tensor([ids], device=self.device)
        kwargs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "generation_config": config,
                  "stopping_criteria": StoppingCriteriaList([_Stop()])}
        if stop:
            kwargs["tokenizer"] = self.tokenizer
        pieces = None
        if on_text is not None:
            pieces = kwargs["streamer"] = TextPieces(
                lambda new: self.answer_text(new, ignore_eos=ignore_eos, stop=stop)[0], on_text, stop or [])
        with torch.inference_mode():
            model = self._merge(model_name if model_name in self.adapters else None)
            out = model.generate(**kwargs)
        new = out[0, len(ids):].tolist()
        text, ended = self.answer_text(new, ignore_eos=ignore_eos, stop=stop)
        if pieces is not None:
            pieces.finish(text)
        aborted = stop_event is not None and stop_event.is_set()
        finish = "stop" if ended == "stop string" else "abort" if aborted else "stop" if ended else "length"
        # completion_tokens as vLLM counts them: the end-of-sequence token included.
        return Generation(text=text, prompt_tokens=len(ids), completion_tokens=len(new), finish_reason=finish,
                          seconds=time.perf_counter() - started)

    def answer_text(self, new: list[int], *, ignore_eos: bool, stop: list[str] | None) -> tuple[str, str | None]:
        """The answer's text from the tokens generated so far, and why it ends there: "eos" (an end-of-sequence
        token, left out), "stop string" (cut before the first one), None (it does not end yet, or ran out)."""
        ended = None
        if not ignore_eos and new and new[-1] in self.eos_ids:
            new, ended = new[:-1], "eos"
        # A cut multi-byte character (max_tokens reached inside it) decodes as U+FFFD: never sent as text.
        text = CUT_CHARACTER.sub("", self.tokenizer.decode(new, skip_special_tokens=True))
        cut = min((i for i in (text.find(s) for s in stop or []) if i >= 0), default=-1)
        if cut >= 0:
            text, ended = text[:cut], "stop string"
        return text, ended


def module_of(key: str) -> str:
    """'base_model.model.model.layers.0.mlp.up_proj.lora_A.weight' -> 'model.layers.0.mlp.up_proj'."""
    key = key.removeprefix("base_model.model.")
    parts = key.split(".")
    for i, part in enumerate(parts):
        if part.startswith("lora_"):
            return ".".join(parts[:i])
    return ".".join(parts[:-1])  # modules_to_save and the like: the module holding the tensor
