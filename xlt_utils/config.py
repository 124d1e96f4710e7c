"""Phase configs: one dataclass per notebook, built from its parameters and validated before any work starts.

The parameter flow is: study YAML → grid cell → papermill's ``injected-parameters`` cell → the notebook's
globals → :func:`from_params` → a frozen config → ``params.json``. Nothing else configures a run.

Fields have no defaults on purpose: the defaults live in each notebook's ``parameters`` cell (the cheap smoke
settings) and the grid reads them from there (:func:`notebook_defaults`), so there is one source of defaults and
a missing parameter is an error, never a silent fallback. Unknown names, wrong types and out-of-range values are
errors too (papermill itself only warns about unknown parameters).

A parameter's valid values belong to the module that implements them (classifier poolings and tokenizer models:
:mod:`xlt_utils.models`; inference dtypes: :mod:`xlt_utils.efficiency`; synth sizes, languages and committed
checkpoints: :mod:`xlt_utils.synth`); a check imports them when it runs, and none of those modules imports this one.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError, unknown
from xlt_utils.paths import NOTEBOOKS

# phase -> notebook (without .ipynb). The order is the order of the pipeline.
PHASE_NOTEBOOKS = {
    "pretrain": "00_pretrain",
    "intermediate": "01_intermediate",
    "target": "02_target",
    "eval": "03_zero_shot_eval",
    "baselines": "04_baselines",
}
PHASES = tuple(PHASE_NOTEBOOKS)
# study -> analysis notebook
ANALYSIS_NOTEBOOKS = {"paper": "10_paper", "rq1_batch_size": "11_rq1_batch_size", "rq2_model_scale": "12_rq2_model_scale",
                      "rq3_efficiency": "13_rq3_efficiency", "rq4_intermediate_data": "14_rq4_intermediate_data",
                      "rq5_source_language": "15_rq5_source_language"}
BASELINE_KINDS = ("majority", "random_init", "in_language", "probe", "lexical")
POOLINGS = ("mean", "cls")
WORLDS = ("synth", "offline-real", "xtreme", "local")


# ---------------------------------------------------------------------------------------------- models


def models_for(world: str) -> tuple[str, ...]:
    """The model names a world offers (``synth-<size>`` encoders, the offline e5, the XLM-R zoo)."""
    if world == "synth":
        from xlt_utils.choices import SIZES

        return tuple(f"synth-{s}" for s in SIZES)
    if world == "offline-real":
        return ("multilingual-e5-small",)
    if world == "xtreme":
        from xlt_utils.zoo import MODELS

        return tuple(MODELS)
    if world == "local":
        return ("tiny-random",)
    raise unknown("world", world, WORLDS)


# ---------------------------------------------------------------------------------------------- configs

RUN_ID = re.compile(r"^(pretrain|intermediate|target|eval|baselines)/[A-Za-z0-9_.+-]+-[0-9a-f]{10}$")


@dataclass(frozen=True)
class _Base:
    """Checks shared by every phase config."""

    def check(self) -> None:
        """Value checks beyond types (choices, ranges); raise :class:`XLTError` with the valid choices."""

    def to_params(self) -> dict[str, Any]:
        """The parameters as a plain JSON-able dict (what ``params.json`` holds and the run id hashes)."""
        return dataclasses.asdict(self)

    # helpers used by several configs
    def _check_world_model(self) -> None:
        world, model = self.world, self.model
        if world not in WORLDS:
            raise unknown("world", world, WORLDS)
        valid = models_for(world)
        if model not in valid:
            raise unknown(f"model for world {world!r}:", model, valid)

    def _check_task(self, field: str, role: str | None = None, trainable: bool = False) -> None:
        from xlt_utils.tasks import get_task, intermediate_tasks_for, list_tasks

        name, world = getattr(self, field), self.world
        pool = intermediate_tasks_for(world) if role == "intermediate" else list_tasks(world=world, role=role)
        valid = [t.name for t in pool if not trainable or (t.trainable and t.format != "retrieval")]
        what = field.replace("_", " ")
        if role == "intermediate":  # a multi-task name: each of its tasks (xlt_utils.multitask)
            from xlt_utils.multitask import components

            parts = components(name)
        else:
            parts = [name]
        for part in parts:
            kind = (f"{what} in world {world!r}:" if part == name
                    else f"task of multi-task {what} {name!r} in world {world!r}:")
            try:
                task = get_task(part)
            except XLTError:
                raise unknown(kind, part, valid) from None
            if task.name not in valid:
                raise unknown(kind, part, valid)

    def _check_train_language(self, field: str) -> None:
        """``train_language`` (None: the task's own, English): a language with train and dev splits of the task;
        a multilingual training set (``per_language_items``) trains on all its languages and takes none, unless
        it allows ``single_language_training`` (then one of them, alone). A language the task names in
        ``not_a_source`` is refused with its reason."""
        from xlt_utils.tasks import get_task

        lang = getattr(self, "train_language", None)
        if lang is None:
            return
        task = get_task(getattr(self, field))
        valid = [lang_ for lang_ in task.languages_for("train") if lang_ in task.languages_for("dev")]
        if lang in task.options.get("not_a_source", {}):
            raise XLTError(f"train_language {lang} of task {task.name}: {task.options['not_a_source'][lang]}; "
                           f"valid: {', '.join(valid)}")
        if task.options.get("per_language_items") and not task.options.get("single_language_training"):
            raise XLTError(f"task {task.name} trains on all of its languages "
                           f"({', '.join(task.languages_for('train'))}); leave train_language None")
        if lang not in valid:
            raise unknown(f"train_language of task {task.name}:", lang, valid)

    def _check_positive(self, *names: str, allow_none: bool = False) -> None:
        for n in names:
            v = getattr(self, n)
            if v is None and allow_none:
                continue
            if v is None or v <= 0:
                raise XLTError(f"parameter {n} must be > 0{' or None' if allow_none else ''}, got {v!r}")

    def _check_upstream(self, phases: tuple[str, ...]) -> None:
        up = self.upstream
        if up is None:
            return
        if not RUN_ID.match(up) or up.split("/")[0] not in phases:
            raise XLTError(f"parameter upstream must be None or a run id '<phase>/<name>-<hash>' of phase "
                           f"{' or '.join(phases)}, got {up!r}")

    def _check_languages(self, field: str = "languages") -> None:
        langs = getattr(self, field)
        if langs is not None and not langs:
            raise XLTError(f"parameter {field} must be None (every language) or a non-empty list")


@dataclass(frozen=True)
class PretrainConfig(_Base):
    """``00_pretrain``: MLM pretraining of a synth encoder (synth world only).

    Attributes:
        world: must be ``synth``.
        model: ``synth-<size>`` (the size sets layers/hidden/heads/FFN).
        seed: corpus, initialisation, masking and batch order.
        languages: corpus languages (None = every synth language; must include ``en``).
        steps: optimizer steps.
        batch_size: sequences per step.
        max_len: tokens per packed sequence.
        learning_rate: peak AdamW learning rate.
        warmup_ratio: linear warmup fraction.
        n_per_language: corpus documents per language.
        parallel_frac: parallel (en, L) documents per language, as a fraction of ``n_per_language``.
        vocab_size: tokenizer vocabulary.
        probe_every: steps between retrieval probes (0 = only at the end).
        tokenizer: ``unigram`` (SentencePiece subwords, as XLM-R) or ``word`` (one token per word).
        checkpoint: a committed encoder (``checkpoints/synth/<name>``, see :mod:`xlt_utils.synth.checkpoints`;
            ``committed``: the one named like the model) to load instead of pretraining; its recipe then replaces every other pretraining parameter, so
            ``params.json`` says what produced the weights. None: pretrain from these parameters.
    """

    world: str
    model: str
    seed: int
    languages: list[str] | None
    steps: int
    batch_size: int
    max_len: int
    learning_rate: float
    warmup_ratio: float
    n_per_language: int
    parallel_frac: float
    vocab_size: int
    probe_every: int
    tokenizer: str
    checkpoint: str | None

    def committed_name(self) -> str | None:
        """The committed checkpoint this config loads (``committed`` means the model's own), or None."""
        return self.model if self.checkpoint == "committed" else self.checkpoint

    def check(self) -> None:
        from xlt_utils.choices import TOKENIZER_MODELS

        if self.tokenizer not in TOKENIZER_MODELS:
            raise unknown("tokenizer", self.tokenizer, TOKENIZER_MODELS)
        if self.checkpoint is not None:
            from xlt_utils.synth import checkpoints

            if self.checkpoint == "committed" and self.model not in checkpoints.names():
                raise XLTError(f"no committed checkpoint for {self.model}; committed: {', '.join(checkpoints.names())}")
            want = checkpoints.recipe(self.committed_name())["model"]
            if want != self.model:
                raise XLTError(f"checkpoint {self.checkpoint!r} is a {want} encoder, not {self.model}; committed "
                               f"checkpoints: {', '.join(checkpoints.names())}")
        if self.world != "synth":
            raise XLTError(f"pretraining exists only in the synth world; valid worlds for 00_pretrain: synth "
                           f"(got {self.world!r})")
        self._check_world_model()
        self._check_positive("steps", "batch_size", "max_len", "learning_rate", "n_per_language", "vocab_size")
        self._check_languages()
        if self.languages is not None:
            from xlt_utils.synth.languages import LANGUAGE_IDS

            for lang in self.languages:
                if lang not in LANGUAGE_IDS:
                    raise unknown("synth language", lang, LANGUAGE_IDS)
            if "en" not in self.languages:
                raise XLTError("parameter languages must include 'en' (the transfer source)")
        if not 0 <= self.warmup_ratio < 1 or not 0 <= self.parallel_frac <= 1 or self.probe_every < 0:
            raise XLTError("warmup_ratio must be in [0, 1), parallel_frac in [0, 1], probe_every >= 0")


ACCELERATE_CONFIG_ENV = "XLT_ACCELERATE_CONFIG"


def accelerate_config_path() -> Path | None:
    """The ``accelerate launch`` config that ``XLT_ACCELERATE_CONFIG`` names (relative paths: against the working
    directory, then the project root), or None when unset; a missing file is an error naming the shipped ones."""
    import os

    from xlt_utils.paths import PROJECT_ROOT

    value = os.environ.get(ACCELERATE_CONFIG_ENV, "").strip()
    if not value:
        return None
    for p in (Path(value), PROJECT_ROOT / value):
        if p.is_file():
            return p.resolve()
    shipped = sorted(str(f.relative_to(PROJECT_ROOT)) for f in (PROJECT_ROOT / "configs" / "accelerate").glob("*.yaml"))
    raise XLTError(f"{ACCELERATE_CONFIG_ENV}={value!r} is not a file; valid: {', '.join(shipped)} (or unset: torchrun, DDP)")


def check_num_processes(n: int) -> None:
    """``num_processes`` ≥ 1, and on a CUDA machine at most its GPU count (one process per GPU)."""
    if n < 1:
        raise XLTError(f"parameter num_processes must be ≥ 1 (1: one process; N > 1: N data-parallel training "
                       f"processes), got {n}")
    if n == 1:
        return
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() < n:
        gpus = torch.cuda.device_count()
        raise XLTError(f"parameter num_processes is {n} but this machine has {gpus} CUDA GPU(s); valid: 1 to {gpus}")
    accelerate_config_path()


@dataclass(frozen=True)
class _TrainingFields(_Base):
    """Hyperparameters shared by the training phases (Hugging Face names)."""

    learning_rate: float
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    num_train_epochs: float
    max_steps: int | None
    warmup_ratio: float
    weight_decay: float
    max_train_samples: int | None
    max_dev_samples: int | None
    max_seq_length: int
    eval_every: int | None
    early_stopping_patience: int | None
    checkpoint_every: int | None
    freeze_word_embeddings: bool
    classifier_pooling: str
    gradient_checkpointing: bool
    num_processes: int
    packing: bool
    max_tokens_per_batch: int | None

    def _check_training(self) -> None:
        self._check_positive("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
                             "num_train_epochs", "max_seq_length")
        self._check_positive("max_steps", "max_train_samples", "max_dev_samples", "eval_every",
                             "early_stopping_patience", "checkpoint_every", "max_tokens_per_batch", allow_none=True)
        if not 0 <= self.warmup_ratio < 1:
            raise XLTError(f"parameter warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        from xlt_utils.choices import CLASSIFIER_POOLINGS

        if self.classifier_pooling not in CLASSIFIER_POOLINGS:
            raise unknown("classifier_pooling", self.classifier_pooling, CLASSIFIER_POOLINGS)
        check_num_processes(self.num_processes)

    def _check_packing(self, field: str) -> None:
        """Packing needs a format whose batches can run as one row (one line naming those that can)."""
        if not self.packing:
            return
        from xlt_utils.choices import PACKABLE_FORMATS
        from xlt_utils.tasks import get_task

        task = get_task(getattr(self, field))
        if task.format not in PACKABLE_FORMATS:
            raise XLTError(f"packing (padding-free training) supports the formats {', '.join(PACKABLE_FORMATS)}; "
                           f"{task.name} is {task.format}: set packing to False")

    @property
    def batch_size(self) -> int:
        """Examples per optimizer step (every process's micro-batches together)."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps * self.num_processes


@dataclass(frozen=True)
class IntermediateConfig(_TrainingFields):
    """``01_intermediate``: English intermediate-task training; the encoder is kept, the head dropped.

    Attributes:
        world, model: where the encoder comes from.
        seed: head initialisation, data order, dropout.
        upstream: the ``pretrain`` run whose encoder is trained (None = the model's base encoder).
        intermediate_task: a task of role ``intermediate`` (or ``both``) with an English training split, or
            several joined by ``+`` (``a+b+c``): multi-task training, one shared encoder and one head per task
            (:mod:`xlt_utils.multitask`).
        multitask_sampling: multi-task only: the task of each optimizer step is drawn ``proportional`` to the
            tasks' training sizes (capped at ``multitask_cap``) or ``uniform``.
        multitask_cap: multi-task only: cap each task's size in the sampling weights and in an epoch's steps
            (jiant's examples cap); None = no cap.
        aux_objective: ``none``, ``mlm`` (encoders with an MLM head: synth, xtreme) or ``contrastive`` (e5,
            offline-real): an auxiliary multilingual loss beside the task's (:mod:`xlt_utils.auxiliary`).
        aux_weight, aux_every: the loss is task + aux_weight x aux on every aux_every-th optimizer step.
        aux_batch_size: examples (sequences or parallel pairs) per aux batch.
        aux_languages: aux languages (None: every non-English synth language; XTREME's 39; the 19 Sphinx languages).
        aux_per_language: documents (synth), Wikipedia articles (xtreme) or pairs (offline-real) per language.
        aux_temperature: the contrastive softmax temperature.
        (training hyperparameters: see :class:`xlt_utils.train.TrainConfig`)
    """

    world: str
    model: str
    seed: int
    upstream: str | None
    intermediate_task: str
    train_language: str | None
    multitask_sampling: str
    multitask_cap: int | None
    aux_objective: str
    aux_weight: float
    aux_every: int
    aux_batch_size: int
    aux_languages: list[str] | None
    aux_per_language: int
    aux_temperature: float

    def check(self) -> None:
        from xlt_utils import multitask

        self._check_world_model()
        self._check_upstream(("pretrain",))
        self._check_task("intermediate_task", role="intermediate", trainable=True)
        self._check_training()
        multitask.check_config(self)
        if not multitask.is_multitask(self.intermediate_task):
            self._check_packing("intermediate_task")
            self._check_train_language("intermediate_task")
        from xlt_utils import auxiliary

        auxiliary.check(self)  # the aux_* parameters (an auxiliary multilingual objective)


@dataclass(frozen=True)
class TargetConfig(_TrainingFields):
    """``02_target``: target-task fine-tuning on English; model selection on English dev only.

    Attributes:
        upstream: the ``intermediate`` run (X-STILTs) or ``pretrain`` run (no intermediate task) whose encoder
            is fine-tuned; None = the model's base encoder.
        target_task: a trainable target task.
        num_layers: fine-tune only the encoder's first n transformer layers (the rest are dropped before
            training; the saved model has n layers, and evaluation runs it at that depth); None = all. The
            fewer-layer inference budget of rq3 (:func:`xlt_utils.models.build_model`).
    """

    world: str
    model: str
    seed: int
    upstream: str | None
    target_task: str
    train_language: str | None
    num_layers: int | None

    def check(self) -> None:
        self._check_world_model()
        self._check_upstream(("pretrain", "intermediate"))
        self._check_task("target_task", role="target", trainable=True)
        self._check_training()
        self._check_packing("target_task")
        self._check_train_language("target_task")
        self._check_positive("num_layers", allow_none=True)


@dataclass(frozen=True)
class EvalConfig(_Base):
    """``03_zero_shot_eval``: evaluation on every language of a task.

    Attributes:
        upstream: a ``target`` run (its fine-tuned model), or for retrieval tasks any run with an encoder
            (``pretrain``/``intermediate``); None = the model's base encoder (retrieval only).
        target_task: the task evaluated (must equal the upstream target run's task).
        sample_seed: seed of the ``max_eval_samples`` subsample (the same for every run, so runs compare).
        split: ``test`` or ``dev``; None = the task's reported split.
        languages: None = every language with the split.
        max_eval_samples: cap per language (None = all).
        max_seq_length, batch_size: featurization and inference batch (``int8`` evaluates one example at a time:
            dynamic quantisation makes a batched prediction depend on its batch-mates).
        layer, pooling: retrieval only (None = the task's defaults).
        num_layers: keep only the first n transformer layers (the head reads layer n); None = all. An inference
            budget variant (:mod:`xlt_utils.efficiency`); retrieval tasks choose their layer with ``layer``.
        inference_dtype: float32, bfloat16, float16 (GPU) or int8 (CPU dynamic quantisation).
        efficiency_batch_sizes: also measure latency/throughput at these batch sizes into ``efficiency.csv``
            (None = no timing).
        time_alone: the grid runs this evaluation with no other cell beside it and every core's threads (local
            executor; Ray: it reserves a whole node's CPUs), so its timings are not a neighbour's load; needs
            ``efficiency_batch_sizes``. Off by default: other cells do not wait for a timed evaluation.
        time_reference: also time the full-budget model side by side with this one, in the same rounds
            (:func:`xlt_utils.efficiency.inference_profile`'s ``reference``): the task's model at the full depth of
            the encoder the upstream target run was fine-tuned from, float32, on the same examples at the target
            run's ``max_seq_length`` (random weights: they do not change a float32 forward pass's time).
            ``efficiency.csv`` then holds the reference's latency and the speed-up, timed batch by batch beside
            each other, so a change of load between two cells' moments does not enter the ratio. Not timed for
            tasks that cut examples into windows (span QA: the two lengths give different features); the run's
            ``resolved`` says so. Needs ``efficiency_batch_sizes`` and a ``target`` upstream.
    """

    world: str
    model: str
    upstream: str | None
    target_task: str
    sample_seed: int
    split: str | None
    languages: list[str] | None
    max_eval_samples: int | None
    max_seq_length: int
    batch_size: int
    layer: int | None
    pooling: str | None
    num_layers: int | None
    inference_dtype: str
    efficiency_batch_sizes: list[int] | None
    time_alone: bool
    time_reference: bool

    def check(self) -> None:
        self._check_world_model()
        self._check_upstream(("pretrain", "intermediate", "target"))
        from xlt_utils.choices import DTYPES

        if self.inference_dtype not in DTYPES:
            raise unknown("inference_dtype", self.inference_dtype, DTYPES)
        self._check_positive("num_layers", allow_none=True)
        bsz = self.efficiency_batch_sizes
        if bsz is not None and (not bsz or not all(isinstance(b, int) and b > 0 for b in bsz)):
            raise XLTError(f"parameter efficiency_batch_sizes must be None or a non-empty list of positive "
                           f"integers, got {bsz!r}")
        if self.time_alone and bsz is None:
            raise XLTError("time_alone runs a timed evaluation alone, and this one times nothing: set "
                           "efficiency_batch_sizes, or time_alone False")
        if self.time_reference and bsz is None:
            raise XLTError("time_reference times this evaluation beside the full-budget model, and this one times "
                           "nothing: set efficiency_batch_sizes, or time_reference False")
        if self.time_reference and not (self.upstream or "").startswith("target/"):
            raise XLTError(f"time_reference needs a target upstream (the full-budget model is the one it was "
                           f"fine-tuned from), got upstream {self.upstream!r}; set time_reference False")
        self._check_task("target_task", role="target")
        self._check_positive("max_seq_length", "batch_size")
        self._check_positive("max_eval_samples", allow_none=True)
        self._check_languages()
        if self.split not in (None, "dev", "test"):
            raise XLTError(f"parameter split must be None, 'dev' or 'test', got {self.split!r}")
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise unknown("pooling", self.pooling, POOLINGS)
        from xlt_utils.tasks import get_task

        task = get_task(self.target_task)
        up_phase = self.upstream.split("/")[0] if self.upstream else None
        if task.format == "retrieval" and self.num_layers is not None:
            raise XLTError(f"num_layers applies to fine-tuned models; {task.name} is a retrieval task: choose its "
                           f"hidden-state layer with parameter layer")
        if task.format != "retrieval" and up_phase != "target":
            raise XLTError(f"evaluating {task.name} ({task.format}) needs a fine-tuned model: upstream must be a "
                           f"target run (only retrieval tasks evaluate a bare encoder); got {self.upstream!r}")


@dataclass(frozen=True)
class BaselineConfig(_TrainingFields):
    """``04_baselines``: reference points for a target task.

    Attributes:
        kind: ``majority`` (the most frequent English training label or answer, per language; chance for
            retrieval), ``random_init`` (the model's architecture with random weights, fine-tuned on English like
            02 and evaluated in every language: what pretraining buys) or ``in_language`` (fine-tune on the
            target language's own training data and test in it: the supervised upper bound; in the synth world
            also translate-train with perfect translations), ``probe`` (a linear probe on the frozen encoder,
            fitted in English: the floor fine-tuning must beat) or ``lexical`` (a linear model on hashed character
            n-grams and words, fitted in English: transfer through shared spelling alone); probe and lexical
            choose their options on English dev (:mod:`xlt_utils.floors`).
        upstream: the encoder run for ``in_language`` and ``probe`` (None = the base encoder); unused by the
            other kinds.
        languages: None = every language with a training split (in_language) or test split (majority).
        max_eval_samples: cap per language.
        num_layers: as in ``02_target``, for the kinds that use an encoder (in_language, random_init, probe): its
            first n transformer layers only; None = all.
        (training hyperparameters as in ``02_target``, used by ``in_language``)
    """

    world: str
    model: str
    seed: int
    upstream: str | None
    target_task: str
    kind: str
    languages: list[str] | None
    max_eval_samples: int | None
    num_layers: int | None

    def check(self) -> None:
        self._check_world_model()
        if self.kind not in BASELINE_KINDS:
            raise unknown("baseline kind", self.kind, BASELINE_KINDS)
        self._check_upstream(("pretrain", "intermediate"))
        if self.kind not in ("in_language", "probe") and self.upstream is not None:
            raise XLTError(f"baseline kind {self.kind!r} uses no upstream run; set upstream to None")
        self._check_positive("num_layers", allow_none=True)
        if self.kind in ("majority", "lexical") and self.num_layers is not None:
            raise XLTError(f"baseline kind {self.kind!r} uses no encoder; set num_layers to None (it applies to "
                           f"in_language, random_init, probe)")
        if self.kind in ("probe", "lexical"):
            from xlt_utils import floors
            from xlt_utils.tasks import get_task

            floors.check(get_task(self.target_task), self.kind)
        self._check_task("target_task", role="target", trainable=self.kind in ("in_language", "probe", "lexical"))
        self._check_languages()
        self._check_positive("max_eval_samples", allow_none=True)
        self._check_training()
        if self.kind == "in_language":  # the only trained kind that runs the loop
            self._check_packing("target_task")


@dataclass(frozen=True)
class AnalysisConfig(_Base):
    """Analysis notebooks (``1x_<study>``): which slice of ``outputs/results/metrics.csv`` they read.

    Attributes:
        study: the study whose runs are analysed.
        profile: the profile they ran under.
    """

    study: str
    profile: str

    def check(self) -> None:
        if self.study not in ANALYSIS_NOTEBOOKS:
            raise unknown("study with an analysis notebook", self.study, ANALYSIS_NOTEBOOKS)


CONFIGS: dict[str, type[_Base]] = {
    "pretrain": PretrainConfig,
    "intermediate": IntermediateConfig,
    "target": TargetConfig,
    "eval": EvalConfig,
    "baselines": BaselineConfig,
    "analysis": AnalysisConfig,
}


# ---------------------------------------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    if typing.get_origin(tp) is list:
        return f"list[{_type_name(typing.get_args(tp)[0])}]"
    return getattr(tp, "__name__", str(tp))


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (int → float allowed, nothing else converted), or raise XLTError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(name, value, a)
            except XLTError:
                continue
    elif origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (list, tuple)):
            return [_coerce(name, v, item) for v in value]
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif tp is str and isinstance(value, str):
        return value
    raise XLTError(f"parameter {name!r} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def field_names(phase: str) -> list[str]:
    """The parameter names of a phase (or ``analysis``), in declaration order."""
    if phase not in CONFIGS:
        raise unknown("phase", phase, CONFIGS)
    return [f.name for f in dataclasses.fields(CONFIGS[phase])]


def from_params(phase: str, params: Mapping[str, Any], where: str = "") -> Any:
    """Build and validate the config of ``phase`` from a parameter mapping.

    Args:
        phase: ``pretrain``, ``intermediate``, ``target``, ``eval``, ``baselines`` or ``analysis``.
        params: every parameter of the phase, nothing else.
        where: context for error messages (e.g. ``studies/paper.yaml, profile embedded``).

    Returns:
        The frozen config.

    Raises:
        XLTError: unknown or missing names, a wrong type, an invalid value (one line, naming what is valid).
    """
    if phase not in CONFIGS:
        raise unknown("phase", phase, CONFIGS)
    cls = CONFIGS[phase]
    prefix = f"{where}: " if where else ""
    names = field_names(phase)
    extra = sorted(set(params) - set(names))
    if extra:
        raise XLTError(f"{prefix}unknown parameter {extra[0]!r} for phase {phase}; valid: {', '.join(sorted(names))}")
    missing = [n for n in names if n not in params]
    if missing:
        raise XLTError(f"{prefix}missing parameter(s) for phase {phase}: {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    try:
        values = {n: _coerce(n, params[n], hints[n]) for n in names}
        cfg = cls(**values)
        cfg.check()
        if getattr(cfg, "checkpoint", None) is not None:  # a committed encoder: its recipe is the parameter set
            from xlt_utils.synth import checkpoints

            name = cfg.committed_name()
            cfg = dataclasses.replace(cfg, **checkpoints.recipe(name), checkpoint=name)
            cfg.check()
    except XLTError as e:
        raise XLTError(f"{prefix}{phase}: {e}") from None
    return cfg


# names IPython defines in every kernel namespace (used when user_ns_hidden is not available)
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def parameters_from_namespace(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The user-defined names of a notebook namespace: the parameters cell plus papermill's injected cell.

    Modules, private names and IPython's own names are left out, so an injected name that the notebook does
    not declare shows up here and is rejected by :func:`from_params`.
    """
    hidden: set[str] = set(_IPYTHON_NAMES)
    get_ipython = namespace.get("get_ipython")
    ip = get_ipython() if callable(get_ipython) else None
    if ip is not None:  # the exact set of names IPython put there itself
        hidden |= set(getattr(ip, "user_ns_hidden", ()))
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in hidden and not isinstance(v, types.ModuleType)}


# ---------------------------------------------------------------------------------------------- notebooks


def notebook_path(name: str) -> Path:
    """``notebooks/<name>.ipynb``."""
    return NOTEBOOKS / f"{name}.ipynb"


def parameters_cell(nb: Mapping[str, Any]) -> dict[str, Any]:
    """The one code cell tagged ``parameters`` (raises when there is not exactly one)."""
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise XLTError(f"a notebook needs exactly one cell tagged 'parameters', found {len(cells)}")
    return cells[0]


def parse_parameters(source: str) -> dict[str, Any]:
    """Parse a parameters cell: one ``name: type = literal`` (or ``name = literal``) per line.

    Raises:
        XLTError: a statement that is not an assignment of a literal.
    """
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        else:
            raise XLTError(f"parameters cell: line {node.lineno} is not 'name: type = literal'")
        try:
            out[name] = ast.literal_eval(value)
        except ValueError:
            raise XLTError(f"parameters cell: {name} is not a literal (line {node.lineno})") from None
    return out


def notebook_defaults(name: str) -> dict[str, Any]:
    """The defaults of a notebook's ``parameters`` cell (the smoke settings)."""
    path = notebook_path(name)
    if not path.exists():
        raise XLTError(f"notebook {path} does not exist")
    nb = json.loads(path.read_text())
    src = parameters_cell(nb)["source"]
    return parse_parameters("".join(src) if isinstance(src, list) else src)
