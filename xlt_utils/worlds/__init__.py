"""Worlds: where task data (and models) come from. One loader function per world.

A world module registers its tasks with :func:`xlt_utils.tasks.register` at import time and defines
``load(task, split, lang) -> list[dict]`` returning records in the schema of ``task.format``
(:mod:`xlt_utils.formats.schema`). :func:`load_records` is the single entry point everything else uses: it
dispatches to the world, validates the records (one-line errors) and subsamples deterministically.
"""

from __future__ import annotations

import importlib
import random
from typing import Any

from xlt_utils.errors import XLTError
from xlt_utils.formats.schema import validate_records
from xlt_utils.tasks import SPLITS, WORLD_MODULES, Task, get_task


def load_records(
    task: Task | str,
    split: str,
    lang: str,
    max_examples: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Load, validate and (optionally) subsample one split of one language of a task.

    Args:
        task: a :class:`Task` or its registry name.
        split: ``train``, ``dev`` or ``test``.
        lang: a language the task has for that split.
        max_examples: keep at most this many records (a seeded sample, original order kept); ``None`` = all.
            Retrieval splits are never subsampled here (queries and candidates must stay consistent). The train
            split of a task with ``options["nested_subsample"]`` keeps the first ``max_examples`` of one seeded
            order, so a smaller sample lies inside every larger one (data-size studies); that is the plain sample
            wherever ``random.sample`` draws from a pool (always when ``max_examples`` is a third of the split or
            more), and another sample below.
        seed: seed of the subsample.

    Returns:
        The records.

    Raises:
        XLTError: unknown split or language, empty split, or an invalid record.
    """
    task = get_task(task) if isinstance(task, str) else task
    if split not in SPLITS:
        raise XLTError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    langs = task.languages_for(split)
    if lang not in langs:
        raise XLTError(
            f"task {task.name!r} has no {split} split in {lang!r}; languages with one: {', '.join(langs) or '(none)'}"
        )
    module = importlib.import_module(WORLD_MODULES[task.world])
    records = module.load(task, split, lang)
    where = f"{task.name}/{split}/{lang}"
    if max_examples is not None and max_examples < len(records) and task.format != "retrieval":
        rng, n = random.Random(f"{seed}:{where}"), len(records)
        nested = split == "train" and task.options.get("nested_subsample")
        keep = sorted(rng.sample(range(n), n)[:max_examples] if nested
                      else rng.sample(range(n), max_examples))
        records = [records[i] for i in keep]
    validate_records(records, task.format, task.labels, where)
    return records
