"""Multi-task intermediate training (the paper's "all tasks" arm): several tasks of any trainable formats at once,
one shared encoder and one head per task, trained by the one training loop (:func:`xlt_utils.train.train`).

**Naming.** A multi-task intermediate task is its tasks joined by ``+`` (``rt_sentiment+brown_pos+uncertainty``),
in a study's ``intermediate_tasks`` and in ``01_intermediate``'s ``intermediate_task``; each part is a registered
intermediate task of the world (:func:`components` checks the form, the config each name). The name is the run's
``intermediate_task`` everywhere (run id, lineage, results), in the order given; a one-task name has no ``+``, so
single-task runs keep their ids.

**Sampling** (jiant's multi-task samplers, ``jiant/proj/main/components/task_sampler.py``). Each optimizer step
trains one task, all of its micro-batches (each task's own padding and collation, its own head), drawn with
probability :func:`sampling_weights`:

* ``proportional``: examples-proportional mixing, ``w_t ∝ min(n_t, cap)``: with no cap, jiant's
  ``ProportionalMultiTaskSampler`` (the simple API's default); with ``cap``, its ``train_examples_cap``
  (``SpecifiedProbMultiTaskSampler`` over the capped counts);
* ``uniform``: ``w_t = 1 / T`` (``UniformMultiTaskSampler``).

``n_t`` is task t's number of training *features* (what the loop draws batches from: a span-QA record may make
several windows), after ``max_train_samples``. An epoch is ``Σ_t ⌈min(n_t, cap) / examples per step⌉`` steps (jiant's
step count for a number of epochs), so ``num_train_epochs`` means what it means there. Each task's micro-batches
come from its own stream, its length-grouped batches (:func:`xlt_utils.train.length_grouped_batches`) reshuffled
whenever its data run out. The micro-batches of an epoch are a pure function of (seed, epoch) (:class:`TaskSchedule`),
so a run resumed from a checkpoint continues exactly where it stopped.

**Selection.** The checkpoint with the best mean over the tasks of each task's primary metric on its English dev
split (jiant's ``EqualMetricAggregator``) is kept; early stopping watches the same mean. A task whose checkpoint is
never selected on dev (``options["model_selection"] == "final"``: TyDiQA-GoldP reports dev) stays out of the mean.

**Saving.** The shared encoder, without heads (:func:`xlt_utils.models.save_encoder`), as for a single task.

Not for multi-task runs (refused before any work): packing, a non-English ``train_language``, and several training
processes (``num_processes`` > 1).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from xlt_utils.errors import XLTError, unknown

SEP = "+"
SAMPLING_RULES = ("proportional", "uniform")
DEFAULT_SAMPLING = "proportional"
TASK_KEY = "task_index"  # a feature's (and a collated batch's) task: the index of its head


# ---------------------------------------------------------------------------------------------- names


def is_multitask(name: str | None) -> bool:
    """Whether an intermediate-task name names several tasks (``a+b``)."""
    return isinstance(name, str) and SEP in name


def components(name: str) -> list[str]:
    """The task names of an intermediate-task name: ``[name]`` for one task; ``a+b+c`` -> ``[a, b, c]`` (two or
    more, none empty, none twice: a one-line error otherwise). Registration is checked by the caller."""
    if not is_multitask(name):
        return [name]
    parts = [p.strip() for p in name.split(SEP)]
    example = "e.g. rt_sentiment+brown_pos"
    if not all(parts):
        raise XLTError(f"multi-task intermediate task {name!r} has an empty part; join two or more task names "
                       f"with '{SEP}' and nothing else, {example}")
    twice = sorted(p for p, n in Counter(parts).items() if n > 1)
    if twice:
        raise XLTError(f"multi-task intermediate task {name!r} names {twice[0]} twice; name each task once")
    if parts != name.split(SEP):
        raise XLTError(f"multi-task intermediate task {name!r}: no spaces around '{SEP}', {example}")
    return parts


def tasks_of(name: str) -> list[Any]:
    """The registered tasks of an intermediate-task name (one-line error naming the valid tasks if one is not)."""
    from xlt_utils.tasks import get_task

    return [get_task(n) for n in components(name)]


def display_name(name: str, width: int = 32) -> str:
    """A short label for figures: a one-task name as it is; a multi-task name with the common prefix of its tasks
    (``synth_``) dropped, and where that is still longer than ``width``, ``all N tasks (first+...)``."""
    if not is_multitask(name):
        return name
    parts = components(name)
    prefix = _common_prefix(parts)
    short = SEP.join(p.removeprefix(prefix) for p in parts)
    return short if len(short) <= width else f"{len(parts)} tasks ({parts[0].removeprefix(prefix)}{SEP}...)"


def display_names(names: Sequence[str], width: int = 32) -> dict[str, str]:
    """:func:`display_name` of each name, or the full name where two short labels would coincide."""
    short = {n: display_name(n, width) for n in dict.fromkeys(names)}
    clash = {s for s, k in Counter(short.values()).items() if k > 1}
    return {n: (n if s in clash else s) for n, s in short.items()}


def _common_prefix(parts: Sequence[str]) -> str:
    first = parts[0]
    cut = first.find("_") + 1
    return first[:cut] if cut and all(p.startswith(first[:cut]) for p in parts) else ""


# ---------------------------------------------------------------------------------------------- parameters


def check_config(cfg: Any) -> None:
    """The multi-task parameters of an ``intermediate`` config (``multitask_sampling``, ``multitask_cap``) and what
    a multi-task run cannot do; one-line errors before any work starts."""
    name, rule, cap = cfg.intermediate_task, cfg.multitask_sampling, cfg.multitask_cap
    if rule not in SAMPLING_RULES:
        raise unknown("multitask_sampling", rule, SAMPLING_RULES)
    if cap is not None and cap < 1:
        raise XLTError(f"parameter multitask_cap must be ≥ 1 or None (no cap), got {cap!r}")
    if not is_multitask(name):
        if rule != DEFAULT_SAMPLING or cap is not None:
            raise XLTError(f"multitask_sampling and multitask_cap apply to a multi-task intermediate_task (tasks "
                           f"joined by '{SEP}'); {name} is one task: leave them '{DEFAULT_SAMPLING}' and None")
        return
    if cfg.packing:
        raise XLTError(f"packing is for one-task runs; {name} is multi-task: set packing to False")
    if cfg.train_language is not None:
        raise XLTError(f"train_language is for one-task runs (each task of {name} trains on its own training "
                       f"languages): set train_language to None")
    if cfg.num_processes != 1:
        raise XLTError(f"multi-task training runs in one process; {name} has num_processes {cfg.num_processes}: "
                       f"set it to 1")


def sampling_weights(sizes: Sequence[int], rule: str = DEFAULT_SAMPLING, cap: int | None = None) -> list[float]:
    """The probability of drawing each task for an optimizer step: ``min(n_t, cap) / Σ min(n, cap)``
    (``proportional``; no cap: ``n_t / Σ n``) or ``1 / T`` (``uniform``).

    >>> sampling_weights([1000, 100, 10], cap=500)  # 500/610, 100/610, 10/610
    [0.819672131147541, 0.16393442622950818, 0.01639344262295082]
    """
    if rule not in SAMPLING_RULES:
        raise unknown("multitask_sampling", rule, SAMPLING_RULES)
    if not sizes or any(n < 1 for n in sizes):
        raise XLTError(f"every task of a multi-task run needs training examples; sizes {list(sizes)}")
    if rule == "uniform":
        return [1.0 / len(sizes)] * len(sizes)
    capped = [min(n, cap) if cap is not None else n for n in sizes]
    total = sum(capped)
    return [n / total for n in capped]


def steps_per_epoch(sizes: Sequence[int], examples_per_step: int, cap: int | None = None,
                    micro_batches: Sequence[int] | None = None, accumulation: int = 1) -> int:
    """Optimizer steps of one multi-task epoch: ``Σ_t ⌈min(n_t, cap) / examples_per_step⌉`` (jiant's steps for a
    number of epochs, ``train_examples_cap`` included). With micro-batches cut by a token budget
    (``micro_batches``: each task's count in one pass over its data), ``Σ_t ⌈m_t · min(n_t, cap) / n_t / accumulation⌉``."""
    capped = [min(n, cap) if cap is not None else n for n in sizes]
    if micro_batches is None:
        return sum(math.ceil(c / examples_per_step) for c in capped)
    return sum(math.ceil(m * c / n / accumulation) for m, c, n in zip(micro_batches, capped, sizes))


def _seed(*parts: Any) -> int:
    """A 40-bit seed derived from ``parts`` (stable across processes and Python versions)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:5], "big")


class TaskSchedule:
    """The micro-batches of each epoch of a multi-task run, as indices into the concatenated features: every
    ``accumulation`` consecutive ones form an optimizer step of one task. A pure function of (seed, epoch): the
    task of each step is drawn by ``torch.multinomial`` from a generator seeded by (seed, epoch), and where each
    task's stream stands at the start of an epoch is found by replaying the draws of the epochs before it.

    Args:
        lengths: per task, the length of each of its features (their order in the concatenation).
        weights: per task, the probability of a step (:func:`sampling_weights`).
        batch_size: examples per micro-batch.
        accumulation: micro-batches per optimizer step.
        seed: the run's seed.
        cap: the examples cap of the epoch's length (:func:`steps_per_epoch`).
        group_by_length, group_size, max_tokens: each task's batching, as :func:`xlt_utils.train.length_grouped_batches`.
    """

    def __init__(self, lengths: Sequence[Sequence[int]], weights: Sequence[float], *, batch_size: int,
                 accumulation: int = 1, seed: int = 0, cap: int | None = None, group_by_length: bool = True,
                 group_size: int = 50, max_tokens: int | None = None):
        self.lengths = [[int(n) for n in task] for task in lengths]
        self.sizes = [len(task) for task in self.lengths]
        if len(weights) != len(self.lengths) or any(n < 1 for n in self.sizes):
            raise XLTError(f"a multi-task schedule needs one weight and at least one feature per task; "
                           f"{len(weights)} weights, sizes {self.sizes}")
        self.offsets = [sum(self.sizes[:t]) for t in range(len(self.sizes))]
        self.weights = torch.tensor(list(weights), dtype=torch.float64)
        self.batch_size, self.accumulation, self.seed = int(batch_size), int(accumulation), int(seed)
        self.group_by_length, self.group_size, self.max_tokens = group_by_length, int(group_size), max_tokens
        self._memo: dict[int, tuple[int, list[list[int]]]] = {}  # task -> (its pass, that pass's batches)
        micro = [len(self._pass(t, 0)) for t in range(len(self.sizes))] if max_tokens else None
        self.steps = max(1, steps_per_epoch(self.sizes, self.batch_size * self.accumulation, cap, micro,
                                            self.accumulation))
        self._cursors: dict[int, list[tuple[int, int]]] = {0: [(0, 0)] * len(self.sizes)}

    def tasks(self, epoch: int) -> list[int]:
        """The task of each optimizer step of ``epoch``."""
        g = torch.Generator().manual_seed(_seed("tasks", self.seed, epoch))
        return torch.multinomial(self.weights, self.steps, replacement=True, generator=g).tolist()

    def __call__(self, epoch: int) -> list[list[int]]:
        cursor = self._cursor(epoch)
        out = []
        for t in self.tasks(epoch):
            for _ in range(self.accumulation):
                batch, cursor[t] = self._next(t, cursor[t])
                out.append([self.offsets[t] + i for i in batch])
        self._cursors[epoch + 1] = cursor
        return out

    def _pass(self, t: int, k: int) -> list[list[int]]:
        """Task ``t``'s micro-batches in its ``k``-th pass over its data (only the latest pass is kept)."""
        from xlt_utils.train import length_grouped_batches

        if self._memo.get(t, (None,))[0] != k:
            self._memo[t] = (k, length_grouped_batches(self.lengths[t], self.batch_size, _seed("task", self.seed, t),
                                                       k, self.group_by_length, self.group_size,
                                                       max_tokens=self.max_tokens))
        return self._memo[t][1]

    def _count(self, t: int, k: int) -> int:
        return len(self._pass(t, k)) if self.max_tokens else math.ceil(self.sizes[t] / self.batch_size)

    def _next(self, t: int, at: tuple[int, int]) -> tuple[list[int], tuple[int, int]]:
        k, i = at
        batch = self._pass(t, k)[i]
        return batch, ((k + 1, 0) if i + 1 >= self._count(t, k) else (k, i + 1))

    def _cursor(self, epoch: int) -> list[tuple[int, int]]:
        """Where each task's stream stands at the start of ``epoch`` (replaying the draws of earlier epochs)."""
        e = max(k for k in self._cursors if k <= epoch)
        cursor = list(self._cursors[e])
        while e < epoch:
            for t, steps in Counter(self.tasks(e)).items():
                k, i = cursor[t]
                left = steps * self.accumulation
                while left:
                    take = min(left, self._count(t, k) - i)
                    left -= take
                    k, i = (k + 1, 0) if i + take >= self._count(t, k) else (k, i + take)
                cursor[t] = (k, i)
            e += 1
            self._cursors[e] = list(cursor)
        return cursor


# ---------------------------------------------------------------------------------------------- model


class MultiTaskModel(torch.nn.Module):
    """One head model per task around one shared encoder; ``forward(task_index=t, **batch)`` runs task t's head.

    Every head's encoder attribute is the same module (a multiple-choice head reads the encoder's pooler, so the
    shared encoder is one that has it when any head does). The state dict holds the encoder once (``encoder.*``)
    and each head's own layers (``heads.<t>.*``): checkpoints are not T times the encoder.
    """

    base_model_prefix = "encoder"  # xlt_utils.models.encoder_of (and so save_encoder) find the shared encoder here

    def __init__(self, heads: Sequence[torch.nn.Module], names: Sequence[str]):
        from xlt_utils.models import encoder_of

        super().__init__()
        encoders = [encoder_of(h) for h in heads]
        self.encoder = next((e for e in encoders if getattr(e, "pooler", None) is not None), encoders[0])
        for h in heads:
            setattr(h, h.base_model_prefix, self.encoder)
        self.heads = torch.nn.ModuleList(heads)
        self.names = list(names)
        self._aliases = tuple(f"heads.{t}.{h.base_model_prefix}." for t, h in enumerate(heads))

    def forward(self, task_index: int, **batch: Any) -> Any:
        return self.heads[int(task_index)](**batch)

    def head(self, task: int | str) -> torch.nn.Module:
        """A task's head model (by index or name); it runs the shared encoder."""
        return self.heads[self.names.index(task) if isinstance(task, str) else task]

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
        sd = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        for key in [k for k in sd if k.startswith(tuple(prefix + a for a in self._aliases))]:
            del sd[key]
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if not k.startswith(self._aliases)]
        if strict and (missing or result.unexpected_keys):
            raise XLTError(f"state dict does not fit the multi-task model: missing {missing[:3]}, unexpected "
                           f"{result.unexpected_keys[:3]}")
        return type(result)(missing, result.unexpected_keys)

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        for h in self.heads:
            h.gradient_checkpointing_enable(**kwargs)

    def gradient_checkpointing_disable(self) -> None:
        for h in self.heads:
            h.gradient_checkpointing_disable()


def build_model(data: MultiTaskData, *, seed: int, freeze_embeddings: bool = False,
                classifier_pooling: str | None = None) -> MultiTaskModel:
    """A fresh head of each task's format on the encoder (initialised in task order from ``seed``: the first
    task's head is the one a single-task run of it gets), sharing one encoder."""
    from xlt_utils.models import build_model as build_one

    torch.manual_seed(seed)
    heads = [build_one(t, data.encoder, freeze_embeddings=freeze_embeddings, classifier_pooling=classifier_pooling)
             for t in data.tasks]
    return MultiTaskModel(heads, [t.name for t in data.tasks])


# ---------------------------------------------------------------------------------------------- data


class _Collator:
    """Collates one task's features with that task's pipeline (padding, labels) and says which head they go to."""

    def __init__(self, pipelines: Sequence[Any]):
        self.pipelines = list(pipelines)

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        which = {f[TASK_KEY] for f in features}
        if len(which) != 1:
            raise XLTError(f"a multi-task micro-batch must hold one task's features, got tasks {sorted(which)}")
        t = which.pop()
        return {**self.pipelines[t].collate(features), TASK_KEY: t}


@dataclass
class MultiTaskData:
    """Every task's featurized training data (concatenated, each feature tagged with its task) and English dev
    records, for one multi-task run."""

    name: str
    tasks: list[Any]
    tokenizer: Any
    pipelines: list[Any]
    encoder: str
    features: list[dict]
    n_records: list[int]
    dev: list[list[dict]]
    languages: dict[str, tuple[str, ...]]
    sampling: str = DEFAULT_SAMPLING
    cap: int | None = None
    dev_language: str = "en"
    pipeline: _Collator = field(init=False, repr=False)
    sizes: list[int] = field(init=False, repr=False)  # training features per task

    def __post_init__(self) -> None:
        self.pipeline = _Collator(self.pipelines)  # what the training loop collates with (data.pipeline.collate)
        counts = Counter(f[TASK_KEY] for f in self.features)
        self.sizes = [counts[t] for t in range(len(self.tasks))]

    @property
    def weights(self) -> list[float]:
        return sampling_weights(self.sizes, self.sampling, self.cap)

    def __repr__(self) -> str:
        parts = ", ".join(f"{t.name} {n} ({w:.1%})" for t, n, w in zip(self.tasks, self.sizes, self.weights))
        return (f"MultiTaskData({len(self.tasks)} tasks, {self.sampling} sampling"
                f"{f', cap {self.cap}' if self.cap else ''}: training features and share of steps: {parts}; "
                f"{sum(len(d) for d in self.dev)} English dev records)")

    def summary(self) -> dict[str, Any]:
        """What ``params.json`` records of the run's tasks (``resolved.multitask``)."""
        names = [t.name for t in self.tasks]
        return {"tasks": names, "sampling": self.sampling, "cap": self.cap,
                "train_languages": {n: list(self.languages[n]) for n in names},
                "n_train_records": dict(zip(names, self.n_records)), "n_train_features": dict(zip(names, self.sizes)),
                "weights": {n: round(w, 6) for n, w in zip(names, self.weights)},
                "n_dev_records": {n: len(d) for n, d in zip(names, self.dev)},
                "selected_on": [t.name for t in self.selected_tasks()]}

    def schedule(self, config: Any) -> TaskSchedule:
        """The batch plan of a training run with :class:`~xlt_utils.train.TrainConfig` ``config``."""
        per: dict[int, list[int]] = {t: [] for t in range(len(self.tasks))}
        for f in self.features:
            per[f[TASK_KEY]].append(int(f["length"]))
        return TaskSchedule([per[t] for t in range(len(self.tasks))], self.weights,
                            batch_size=config.per_device_train_batch_size,
                            accumulation=config.gradient_accumulation_steps, seed=config.seed, cap=self.cap,
                            group_by_length=config.group_by_length, group_size=config.length_group_size,
                            max_tokens=config.max_tokens_per_batch)

    def selected_tasks(self) -> list[Any]:
        """The tasks whose dev score enters the selection mean (not those kept at their final checkpoint)."""
        return [t for t in self.tasks if t.options.get("model_selection") != "final"]

    def selection_fn(self, max_dev_samples: int | None, max_seq_length: int) -> Callable[[Any], float] | None:
        """The model-selection score: the mean over :meth:`selected_tasks` of each one's primary metric on its
        English dev split; ``None`` when no task selects on dev. After each call, ``score.details`` holds the
        per-task scores (the training loop records them in its history)."""
        from xlt_utils.phase_data import dev_score_fn

        fns = {t.name: dev_score_fn(t, self.tokenizer, t.train_language, max_dev_samples, max_seq_length)
               for t in self.selected_tasks()}
        if not fns:
            return None

        def score(model: MultiTaskModel) -> float:
            score.details = {name: float(fn(model.head(name))) for name, fn in fns.items()}
            return sum(score.details.values()) / len(score.details)

        score.details = {}
        return score

    def evaluate_dev(self, model: MultiTaskModel, max_dev_samples: int | None,
                     max_seq_length: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every task's English dev rows (each task's own metrics) and the per-task primary scores with their mean
        over the selection tasks."""
        from xlt_utils import metrics
        from xlt_utils.evaluate import evaluate
        from xlt_utils.phase_data import DATA_SEED, records

        rows, scores = [], {}
        for t in self.tasks:
            got = evaluate(model.head(t.name), self.tokenizer, t, split="dev", languages=[t.train_language],
                           max_examples=max_dev_samples, max_seq_length=max_seq_length, seed=DATA_SEED,
                           load_fn=records)
            result = {r["metric"]: r["value"] for r in got}
            scores[t.name] = round(metrics.primary(t.metric, result, **({"k": t.options["k"]} if "k" in t.options
                                                                          else {})), 4)
            rows += got
        chosen = [scores[t.name] for t in self.selected_tasks()]
        mean = round(sum(chosen) / len(chosen), 4) if chosen else None
        return rows, {"dev_scores": scores, "dev_mean": mean}


def load_data(name: str, tokenizer: Any, encoder: str, languages: Mapping[str, Sequence[str]], *,
              max_train_samples: int | None, max_dev_samples: int | None, max_seq_length: int,
              sampling: str = DEFAULT_SAMPLING, cap: int | None = None) -> MultiTaskData:
    """Load (cached), subsample and featurize every task's training data in ``languages[task]`` (each task's own
    ``max_train_samples``), and its English dev records for model selection."""
    from xlt_utils.formats.pipelines import get_pipeline
    from xlt_utils.phase_data import DATA_SEED, records

    tasks = tasks_of(name)
    features: list[dict] = []
    pipes, n_records, dev = [], [], []
    for t, task in enumerate(tasks):
        recs = [r for lang in languages[task.name]
                for r in records(task, "train", lang, max_train_samples, DATA_SEED)]
        pipe = get_pipeline(task, tokenizer, max_seq_length=max_seq_length)
        feats = pipe.featurize(recs, train=True)
        if not feats:
            raise XLTError(f"task {task.name} of {name} has no training examples")
        if task.train_language not in task.languages_for("dev"):
            raise XLTError(f"task {task.name} of {name} has no {task.train_language} dev split for model selection")
        for f in feats:
            f[TASK_KEY] = t
        features += feats
        pipes.append(pipe)
        n_records.append(len(recs))
        dev.append(records(task, "dev", task.train_language, max_dev_samples, DATA_SEED))
    return MultiTaskData(name, tasks, tokenizer, pipes, encoder, features, n_records, dev,
                         {t.name: tuple(languages[t.name]) for t in tasks}, sampling, cap)
