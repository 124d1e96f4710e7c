"""The ``local`` world: tasks whose data are JSON-lines files on disk, one file per split and language.

A user's own task (or a test fixture) is ``register_local_task(...)`` pointing at a folder that holds
``{split}-{lang}.jsonl`` files of records in the task format's schema (:mod:`xlt_utils.formats.schema`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError
from xlt_utils.tasks import Task, register


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Write records as JSON lines (UTF-8, one record a line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read JSON-lines records."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def register_local_task(name: str, fmt: str, directory: str | Path, languages: list[str], **fields: Any) -> Task:
    """Register a task backed by ``{directory}/{split}-{lang}.jsonl`` files.

    Args:
        name: task name.
        fmt: task format.
        directory: folder of the JSON-lines files.
        languages: evaluation languages.
        **fields: any other :class:`~xlt_utils.tasks.Task` field (labels, metric, splits...).

    Returns:
        The registered task (replacing one of the same name).
    """
    fields.setdefault("metric", _default_metric(fmt, fields.get("retrieval_mode")))
    task = Task(name=name, format=fmt, world="local", languages=tuple(languages),
                source={"dir": str(Path(directory).resolve())}, **fields)
    return register(task, replace=True)


def _default_metric(fmt: str, mode: str | None) -> str:
    return {
        "classification": "accuracy",
        "pair_classification": "accuracy",
        "tagging": "span_f1",
        "span_qa": "squad",
        "multiple_choice": "accuracy",
        "retrieval": {"tatoeba": "tatoeba_accuracy", "bucc": "bucc_f1", "map": "map_at_k"}.get(mode or "", "tatoeba_accuracy"),
    }[fmt]


def load(task: Task, split: str, lang: str) -> list[dict[str, Any]]:
    """Read ``{dir}/{split}-{lang}.jsonl`` for a local task."""
    path = Path(task.source["dir"]) / f"{split}-{lang}.jsonl"
    if not path.exists():
        raise XLTError(f"{task.name}/{split}/{lang}: no data file {path}")
    return read_jsonl(path)
