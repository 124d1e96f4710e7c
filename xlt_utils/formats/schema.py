"""Record schemas of the six task formats, and their validation.

Every world's loader returns plain dict records in these shapes; everything downstream (featurization,
training, evaluation, metrics) relies on them and on nothing world-specific.

=====================  =====================================================================================
format                 record
=====================  =====================================================================================
classification         ``{"id": str, "text": str, "label": str}``
pair_classification    ``{"id": str, "text_a": str, "text_b": str, "label": str}``
tagging                ``{"id": str, "tokens": [str], "tags": [str]}`` (one tag per whitespace token)
span_qa                ``{"id": str, "context": str, "question": str,
                       "answers": {"text": [str], "answer_start": [int]}}`` (SQuAD schema; character offsets)
multiple_choice        ``{"id": str, "context": str, "question": str, "choices": [str], "label": int}``
                       (``context`` or ``question`` may be empty; ``label`` indexes ``choices``)
retrieval              ``{"id": str, "text": str, "side": "query" | "candidate", "gold": [str]}``
                       (``gold``: ids of the relevant candidates, on queries only; empty = no match)
=====================  =====================================================================================

Labels on test splits may be absent only where a task says so (retrieval ``gold`` on the candidate side).

Retrieval direction: a task chooses which side queries. Its headline ``accuracy`` is query → candidate, and
``accuracy_reverse`` the other direction; both are always reported. The ``xtreme`` world follows XTREME
(English queries, the other language is the index); ``offline-real`` and ``synth`` query with the
non-English side (xx → en, the convention of their reference figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xlt_utils.errors import XLTError

SCHEMAS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "classification": {"id": str, "text": str, "label": str},
    "pair_classification": {"id": str, "text_a": str, "text_b": str, "label": str},
    "tagging": {"id": str, "tokens": list, "tags": list},
    "span_qa": {"id": str, "context": str, "question": str, "answers": dict},
    "multiple_choice": {"id": str, "context": str, "question": str, "choices": list, "label": int},
    "retrieval": {"id": str, "text": str, "side": str, "gold": list},
}


def validate_record(rec: dict[str, Any], fmt: str, labels: Sequence[str] | None, where: str) -> None:
    """Check one record against its format's schema.

    Args:
        rec: the record.
        fmt: the task format.
        labels: the task's label set (classification, pair_classification, tagging).
        where: context for the error message (task/split/language).

    Raises:
        XLTError: a one-line message naming the record, the problem and what is valid.
    """
    schema = SCHEMAS[fmt]
    rid = rec.get("id", "?")
    for key, typ in schema.items():
        if key not in rec:
            raise XLTError(f"{where}: record {rid!r} lacks field {key!r}; a {fmt} record has {sorted(schema)}")
        if not isinstance(rec[key], typ) or (typ is int and isinstance(rec[key], bool)):
            raise XLTError(
                f"{where}: record {rid!r} field {key!r} must be {getattr(typ, '__name__', typ)}, "
                f"got {type(rec[key]).__name__}"
            )
    if fmt in ("classification", "pair_classification"):
        if rec["label"] not in labels:
            raise XLTError(f"{where}: record {rid!r} has label {rec['label']!r}; valid labels: {', '.join(labels)}")
    elif fmt == "tagging":
        if len(rec["tokens"]) != len(rec["tags"]):
            raise XLTError(
                f"{where}: record {rid!r} has {len(rec['tokens'])} tokens but {len(rec['tags'])} tags"
            )
        if not rec["tokens"]:
            raise XLTError(f"{where}: record {rid!r} has no tokens")
        bad = [t for t in rec["tags"] if t not in labels]
        if bad:
            raise XLTError(f"{where}: record {rid!r} has tag {bad[0]!r}; valid tags: {', '.join(labels)}")
    elif fmt == "span_qa":
        ans = rec["answers"]
        texts, starts = ans.get("text"), ans.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise XLTError(
                f"{where}: record {rid!r} answers must be {{'text': [str], 'answer_start': [int]}} of equal length"
            )
        for text, start in zip(texts, starts):
            if rec["context"][start : start + len(text)] != text:
                raise XLTError(
                    f"{where}: record {rid!r} answer {text!r} does not occur in its context at "
                    f"character {start}; answer_start must index the answer text in the context"
                )
    elif fmt == "multiple_choice":
        n = len(rec["choices"])
        if n < 2:
            raise XLTError(f"{where}: record {rid!r} has {n} choices; a multiple_choice record needs at least 2")
        if not 0 <= rec["label"] < n:
            raise XLTError(f"{where}: record {rid!r} has label {rec['label']}; valid: 0..{n - 1}")
    elif fmt == "retrieval" and rec["side"] not in ("query", "candidate"):
        raise XLTError(f"{where}: record {rid!r} has side {rec['side']!r}; valid: query, candidate")


def validate_records(records: Sequence[dict[str, Any]], fmt: str, labels: Sequence[str] | None, where: str) -> None:
    """Validate a whole split: non-empty, unique ids, every record valid.

    Raises:
        XLTError: on the first problem found.
    """
    if not records:
        raise XLTError(f"{where}: the split is empty; at least one record is needed")
    seen: set[str] = set()
    for rec in records:
        validate_record(rec, fmt, labels, where)
        if rec["id"] in seen:
            raise XLTError(f"{where}: duplicate record id {rec['id']!r}; ids must be unique within a split")
        seen.add(rec["id"])
