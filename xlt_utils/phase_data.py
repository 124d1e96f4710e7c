"""The data a phase trains, selects and evaluates on, shared by the phase process (:mod:`xlt_utils.phases`) and the
training workers it launches (:mod:`xlt_utils.dist_train`).

* :func:`records`: a task split's records in one language (:func:`xlt_utils.worlds.load_records`), cached on disk
  for generated (synth) worlds under :func:`dataset_cache`, keyed by the task definition and :func:`source_hash`
  (the generator's code), so the many cells of a grid do not regenerate them and a cached file is never stale.
* :data:`DATA_SEED`: the seed of the training and dev subsamples, the same for every run seed.
* :func:`dev_score_fn`: the model-selection score on English dev.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from xlt_utils import paths, runs

DATA_SEED = 0  # training/dev subsamples are the same for every seed: seeds vary optimisation, not data


@functools.lru_cache(maxsize=8)
def source_hash(world: str) -> str:
    """Hash of the code that generates a world's data (a change invalidates the dataset cache)."""
    from xlt_utils.tasks import WORLD_MODULES

    root = paths.PROJECT_ROOT / "xlt_utils"
    files = [root / (WORLD_MODULES[world].split(".", 1)[1].replace(".", "/") + ".py")]
    if world == "synth":
        files += sorted((root / "synth").glob("*.py"))
    h = hashlib.sha256()
    for f in files:
        if f.exists():
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def dataset_cache() -> Path:
    """Where generated datasets are cached (``.cache/xlt/datasets``; ``make clean`` removes it)."""
    return paths.CACHE / "xlt" / "datasets"


def records(task: Any, split: str, lang: str, max_examples: int | None = None, seed: int = 0) -> list[dict]:
    """:func:`xlt_utils.worlds.load_records`, cached on disk for generated (synth) worlds.

    The key hashes the task definition (options, sizes, grammar version), the split, language, subsample and
    the generator's source code, so a cached file is never stale.
    """
    from xlt_utils.tasks import get_task
    from xlt_utils.worlds import load_records

    task = get_task(task) if isinstance(task, str) else task
    if task.world != "synth":
        return load_records(task, split, lang, max_examples=max_examples, seed=seed)
    key = runs.canonical_json({"task": dataclasses.asdict(task), "split": split, "lang": lang,
                               "max": max_examples, "seed": seed, "code": source_hash(task.world)})
    h = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = dataset_cache() / task.name / f"{split}-{lang}-{h}.jsonl"
    if path.exists():
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f]
    recs = load_records(task, split, lang, max_examples=max_examples, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
    os.replace(tmp, path)
    return recs


def dev_score_fn(task: Any, tokenizer: Any, lang: str, max_dev_samples: int | None, max_seq_length: int):
    """The model-selection score: the task's primary metric on ``lang`` dev (the phase process builds it, and the
    training workers of :mod:`xlt_utils.dist_train` rebuild it from these arguments)."""
    from xlt_utils import metrics
    from xlt_utils.evaluate import evaluate

    def score(model: Any) -> float:
        rows = evaluate(model, tokenizer, task, split="dev", languages=[lang], max_examples=max_dev_samples,
                        max_seq_length=max_seq_length, seed=DATA_SEED, load_fn=records)
        result = {r["metric"]: r["value"] for r in rows}
        return metrics.primary(task.metric, result, **({"k": task.options["k"]} if "k" in task.options else {}))

    return score
