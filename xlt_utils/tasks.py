"""The task registry: every task of every world is a :class:`Task` record (data, not code).

Adding a task is adding an entry with :func:`register`; adding a *format* needs a pipeline in
:mod:`xlt_utils.formats`, and adding a *world* needs a loader in :mod:`xlt_utils.worlds`.

Worlds register their tasks when :func:`load_world_tasks` imports their module, so ``import xlt_utils``
stays cheap and a world with missing optional assets does not break the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from xlt_utils.errors import XLTError, unknown

FORMATS = (
    "classification",
    "pair_classification",
    "tagging",
    "span_qa",
    "multiple_choice",
    "retrieval",
)
ROLES = ("target", "intermediate", "both")
# world name -> module that registers its tasks and provides its loader (see xlt_utils.worlds).
WORLD_MODULES = {
    "local": "xlt_utils.worlds.local",
    "synth": "xlt_utils.worlds.synth",
    "offline-real": "xlt_utils.worlds.offline_real",
    "xtreme": "xlt_utils.worlds.xtreme",
}
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Task:
    """One task: everything needed to load, train and score it, as plain data.

    Attributes:
        name: registry key, the XTREME id where one exists (``xnli``, ``panx``, ``tatoeba``...).
        format: one of :data:`FORMATS`.
        world: which world serves the data (``synth``, ``offline-real``, ``xtreme``, ``local``).
        languages: evaluation languages (ISO 639-1 where one exists).
        metric: primary metric name understood by :func:`xlt_utils.metrics.compute`.
        labels: the label set (classification, pair_classification, tagging); ``None`` otherwise.
        role: ``target``, ``intermediate`` or ``both``.
        train_language: language of the training split (English for zero-shot transfer).
        train_source: human-readable origin of the training data (e.g. ``MNLI``, ``SQuAD v1.1``).
        eval_split: split reported as the result: ``test`` or ``dev`` (when the benchmark hides test labels).
        splits: which splits exist, per language: ``{"train": ["en"], "dev": [...], "test": [...]}``.
        source: world-specific loading information (Hub id, config pattern, file paths...).
        retrieval_mode: for ``retrieval`` tasks: ``tatoeba`` (aligned 1-NN accuracy), ``bucc`` (margin
            mining F1 with a dev-tuned threshold) or ``map`` (mAP@k ranking).
        options: format options (``max_seq_length``, ``doc_stride``, ``num_choices``, ``k``...).
        description: one line for ``python -m xlt_utils tasks``.
        notes: protocol notes that are reported with results (e.g. "dev used: test labels hidden").
        label_quality: per language, ``gold`` (human annotation) or ``silver`` (an automatic tagger's output);
            empty where the world does not say (its labels are as the benchmark defines them).
    """

    name: str
    format: str
    world: str
    languages: tuple[str, ...]
    metric: str
    labels: tuple[str, ...] | None = None
    role: str = "target"
    train_language: str = "en"
    train_source: str = ""
    eval_split: str = "test"
    splits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)
    retrieval_mode: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    notes: str = ""
    label_quality: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise unknown(f"format of task {self.name!r}:", self.format, FORMATS)
        if self.world not in WORLD_MODULES:
            raise unknown(f"world of task {self.name!r}:", self.world, WORLD_MODULES)
        if self.role not in ROLES:
            raise unknown(f"role of task {self.name!r}:", self.role, ROLES)
        if self.eval_split not in ("dev", "test"):
            raise XLTError(f"task {self.name!r}: eval_split must be 'dev' or 'test', got {self.eval_split!r}")
        if self.format in ("classification", "pair_classification", "tagging") and not self.labels:
            raise XLTError(f"task {self.name!r} ({self.format}) needs a non-empty label set")
        if self.format == "retrieval" and self.retrieval_mode not in ("tatoeba", "bucc", "map"):
            raise XLTError(
                f"retrieval task {self.name!r} needs retrieval_mode in tatoeba, bucc, map; "
                f"got {self.retrieval_mode!r}"
            )
        if not self.languages:
            raise XLTError(f"task {self.name!r} has no evaluation languages")
        for split in self.splits:
            if split not in SPLITS:
                raise unknown(f"split of task {self.name!r}:", split, SPLITS)
        # Freeze mutable containers handed in by callers.
        object.__setattr__(self, "languages", tuple(self.languages))
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "splits", {k: tuple(v) for k, v in self.splits.items()})
        bad = {k: v for k, v in self.label_quality.items() if v not in ("gold", "silver")}
        if bad:
            raise XLTError(f"task {self.name!r}: label_quality must be gold or silver, got {bad}")

    @property
    def trainable(self) -> bool:
        """Whether the task has a training split (retrieval tasks may be evaluation-only)."""
        return bool(self.splits.get("train"))

    def languages_for(self, split: str) -> tuple[str, ...]:
        """Languages that have ``split`` (defaults: train → train_language, dev/test → all languages)."""
        if split in self.splits:
            return self.splits[split]
        if split == "train":
            return () if self.format == "retrieval" else (self.train_language,)
        return self.languages

    def summary(self) -> dict[str, Any]:
        """A flat dict for listings and results tables."""
        d = asdict(self)
        d["languages"] = " ".join(self.languages)
        d["n_languages"] = len(self.languages)
        d["labels"] = " ".join(self.labels) if self.labels else ""
        return d


_REGISTRY: dict[str, Task] = {}
_LOADED_WORLDS: set[str] = set()
# Tasks a world knows but could not build on this machine (e.g. translations where Apertium is missing): why not.
_UNAVAILABLE: dict[str, str] = {}


def register(task: Task, *, replace: bool = False) -> Task:
    """Add a task to the registry.

    Args:
        task: the task record.
        replace: allow replacing an existing entry of the same name (tests, user overrides).

    Returns:
        The task, for chaining.
    """
    if task.name in _REGISTRY and not replace and _REGISTRY[task.name] != task:
        raise XLTError(f"task {task.name!r} is already registered (world {_REGISTRY[task.name].world})")
    _REGISTRY[task.name] = task
    _UNAVAILABLE.pop(task.name, None)
    return task


def register_unavailable(name: str, reason: str) -> None:
    """Record that a world knows task ``name`` but could not build it here, and why (one line that says how to
    get it); :func:`get_task` raises it, and study grids leave the task's arms out with it."""
    if name not in _REGISTRY:
        _UNAVAILABLE[name] = reason


def unavailable_reason(name: str) -> str | None:
    """Why a known task is not available on this machine, or ``None`` (available, or not a task any world knows)."""
    if name not in _REGISTRY:
        load_world_tasks()
    return None if name in _REGISTRY else _UNAVAILABLE.get(name)


def unregister(name: str) -> None:
    """Remove a task (tests and interactive use)."""
    _REGISTRY.pop(name, None)


def load_world_tasks(world: str | None = None) -> None:
    """Import the world modules so that their tasks are registered.

    Args:
        world: one world, or ``None`` for every world.
    """
    worlds = WORLD_MODULES if world is None else [world]
    for w in worlds:
        if w not in WORLD_MODULES:
            raise unknown("world", w, WORLD_MODULES)
        if w in _LOADED_WORLDS:
            continue
        try:
            importlib.import_module(WORLD_MODULES[w])
        except ModuleNotFoundError as e:  # a world that is not built yet contributes no tasks
            if e.name != WORLD_MODULES[w]:
                raise
        _LOADED_WORLDS.add(w)


def get_task(name: str) -> Task:
    """Look up a task by name (loading every world's registrations on first use).

    Raises:
        XLTError: naming the valid tasks when ``name`` is unknown.
    """
    if name not in _REGISTRY:
        load_world_tasks()
    if name in _UNAVAILABLE and name not in _REGISTRY:
        raise XLTError(f"task {name!r} is not available on this machine: {_UNAVAILABLE[name]}")
    if name not in _REGISTRY:
        raise unknown("task", name, _REGISTRY)
    return _REGISTRY[name]


# XTREME targets whose test sets are translations of one English set (XNLI, PAWS-X, XQuAD, XCOPA) or aligned
# across languages (MLQA): a test item is the same item in every language (reference/benchmark-facts.md).
XTREME_PARALLEL_TEST = frozenset({"xnli", "pawsx", "xquad", "mlqa", "xcopa"})


def shares_test_items(name: str) -> bool:
    """Whether a task's test languages share their items (translations of the same test examples), so that an
    item's difficulty moves every language together and languages are not independent samples of items.

    ``options["parallel_test"]`` says so explicitly; otherwise: every ``synth`` task (its builders realise the same
    items in every language); the ``offline-real`` tasks built from parallel catalogs (their test sets are
    translations of held-out strings or pairs, not the labelled corpora, which have their own items per
    language); the XTREME targets in :data:`XTREME_PARALLEL_TEST`. Unknown names share nothing."""
    try:
        task = get_task(name)
    except XLTError:
        return False
    if "parallel_test" in task.options:
        return bool(task.options["parallel_test"])
    if task.world == "synth":
        return True
    if task.world == "offline-real":
        return task.source.get("corpus", "labelled") != "labelled"
    return task.world == "xtreme" and task.name in XTREME_PARALLEL_TEST


def list_tasks(world: str | None = None, role: str | None = None) -> list[Task]:
    """All registered tasks, optionally filtered by world and role, sorted by world then name."""
    if world is not None and world not in WORLD_MODULES:
        raise unknown("world", world, WORLD_MODULES)
    if role is not None and role not in ROLES:
        raise unknown("role", role, ROLES)
    load_world_tasks(world)
    tasks = [t for t in _REGISTRY.values() if world is None or t.world == world]
    if role is not None:
        tasks = [t for t in tasks if t.role in (role, "both")]
    return sorted(tasks, key=lambda t: (t.world, t.name))


# Worlds whose English training data is plain English text generated offline: their English-only intermediate
# tasks can train any encoder that reads English (e.g. synth_mnli before offline-real targets on e5).
PORTABLE_INTERMEDIATE_WORLDS = ("synth",)


def intermediate_tasks_for(world: str) -> list[Task]:
    """Intermediate tasks an encoder of ``world`` may be trained on: the world's own, plus the English-only
    intermediate tasks of :data:`PORTABLE_INTERMEDIATE_WORLDS` (their words are English words; the offline-real
    world has no English task data of its own beyond its targets)."""
    own = list_tasks(world=world, role="intermediate")
    extra = [t for w in PORTABLE_INTERMEDIATE_WORLDS if w != world
             for t in list_tasks(world=w, role="intermediate")
             if t.train_language == "en" and not t.options.get("per_language_items")]
    return own + extra
