"""Metrics of every task format, on the 0–100 scale of the XTREME tables, behind one entry point.

:func:`compute` is the only way the rest of the package scores predictions::

    compute("span_f1", predictions, references)          # {"f1": .., "precision": .., "recall": ..}
    compute("squad", ["the cat"], [["cat", "a cat"]], lang="en")

All metrics are implemented here (no ``evaluate``/``seqeval`` at run time) so that every number is traceable
to a few lines of code; the tests cross-check them against the reference implementations.

=====================  ==========================================  ============================================
name                   inputs                                       keys (primary first)
=====================  ==========================================  ============================================
``accuracy``           labels, labels                               ``accuracy``
``pos_accuracy``       tag sequences, tag sequences                 ``accuracy`` (token level), ``f1`` (seqeval)
``span_f1``            BIO/IOB1/IOBES tag sequences                 ``f1``, ``precision``, ``recall`` (micro)
``squad``              answer strings, lists of gold answers        ``f1``, ``exact_match``
``tatoeba_accuracy``   predicted candidate ids, gold id(s)          ``accuracy``
``bucc_f1``            (src, tgt) pairs, gold (src, tgt) pairs      ``f1``, ``precision``, ``recall``
``map_at_k``           ranked candidate ids, relevant ids           ``map@{k}``
=====================  ==========================================  ============================================

Protocol notes (see ``reference/benchmark-facts.md``):

* POS: the X-STILTs paper calls its POS number "accuracy" but jiant and xtreme ``evaluate.py`` both compute
  seqeval F1 over the raw UPOS tags (xtreme#56). seqeval reads ``NOUN`` as chunk tag ``N`` of type ``OUN``, so
  runs of identical tags merge into one "entity"; that F1 is not token accuracy. ``pos_accuracy`` returns
  both; ``f1`` is the number comparable with the XTREME tables and is what :func:`aggregate` picks by default.
* QA: xtreme ``evaluate.py`` scores XQuAD and TyDiQA-GoldP with the SQuAD v1.1 script in *every* language
  and only MLQA with the MLQA script's per-language normalisation: pass ``normalization="squad"`` to
  reproduce XQuAD/TyDiQA numbers exactly (see :func:`normalize_answer`).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from xlt_utils.errors import XLTError, unknown

METRICS = ("accuracy", "pos_accuracy", "span_f1", "squad", "tatoeba_accuracy", "bucc_f1", "map_at_k")

# The headline key of each metric (map_at_k's key depends on k: see :func:`primary`).
PRIMARY: dict[str, str] = {
    "accuracy": "accuracy",
    "pos_accuracy": "accuracy",
    "span_f1": "f1",
    "squad": "f1",
    "tatoeba_accuracy": "accuracy",
    "bucc_f1": "f1",
    "map_at_k": "map@20",
}

QA_NORMALIZATIONS = ("auto", "squad", "mlqa")
# Languages the MLQA evaluation script (mlqa_evaluation_v1.py, copied as xtreme third_party/evaluate_mlqa.py)
# knows; it raises on any other language. Articles are the script's regexes, verbatim.
MLQA_WHITESPACE_LANGS = ("en", "es", "hi", "vi", "de", "ar")
MLQA_MIXED_SEGMENTATION_LANGS = ("zh",)
_MLQA_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    # Verbatim from the script: the first alternative (whitespace, ال, then start-of-string) can never match,
    # so in effect *every* occurrence of the two letters ال is replaced by a space, even inside words.
    "ar": re.compile(r"\sال^|ال"),
}
_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)
_CJK = re.compile(r"[\u4e00-\u9fa5]")  # the MLQA script's (partial) CJK range, kept as is


def compute(name: str, predictions: Any, references: Any, **options: Any) -> dict[str, float]:
    """Score predictions against references with one of :data:`METRICS`.

    Args:
        name: the metric name (see the module table).
        predictions: model outputs, in the shape the metric expects.
        references: gold labels, aligned with ``predictions`` (a set of gold pairs for ``bucc_f1``).
        **options: metric options: ``lang`` and ``normalization`` (``squad``), ``k`` (``map_at_k``).

    Returns:
        A dict of floats on the 0–100 scale.

    Raises:
        XLTError: unknown metric or option, mismatched lengths, empty inputs.
    """
    if name not in _FUNCTIONS:
        raise unknown("metric", name, METRICS)
    fn, allowed = _FUNCTIONS[name]
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise XLTError(
            f"metric {name!r} got unknown option(s) {', '.join(bad)}; valid: {', '.join(allowed) or '(none)'}"
        )
    return fn(predictions, references, **options)


def primary(name: str, result: Mapping[str, float], **options: Any) -> float:
    """The headline number of a :func:`compute` result.

    Args:
        name: the metric name.
        result: what :func:`compute` returned.
        **options: the options given to :func:`compute` (``k`` decides the ``map_at_k`` key).

    Returns:
        ``result[key]`` for the metric's primary key.
    """
    if name not in PRIMARY:
        raise unknown("metric", name, METRICS)
    key = f"map@{int(options.get('k', 20))}" if name == "map_at_k" else PRIMARY[name]
    if key not in result:
        raise XLTError(f"result of metric {name!r} has no key {key!r}; keys: {', '.join(result) or '(none)'}")
    return float(result[key])


# ---------------------------------------------------------------------------------------------- helpers


def _aligned(name: str, predictions: Any, references: Any) -> tuple[list, list]:
    preds, refs = list(predictions), list(references)
    if len(preds) != len(refs):
        raise XLTError(f"{name}: {len(preds)} predictions but {len(refs)} references; they must align one to one")
    if not refs:
        raise XLTError(f"{name}: no examples to score (empty predictions and references)")
    return preds, refs


def _prf(n_correct: int, n_pred: int, n_gold: int) -> dict[str, float]:
    # Zero denominators score 0, as seqeval (zero_division) and xtreme bucc_f1 do.
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": 100.0 * f1, "precision": 100.0 * precision, "recall": 100.0 * recall}


# ------------------------------------------------------------------------------------------ classification


def _accuracy(predictions: Any, references: Any) -> dict[str, float]:
    preds, refs = _aligned("accuracy", predictions, references)
    return {"accuracy": 100.0 * sum(p == r for p, r in zip(preds, refs)) / len(refs)}


# ------------------------------------------------------------------------------------------------ tagging


def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Chunks ``(type, first, last)`` of one tag sequence, exactly as seqeval's default (lenient) mode reads it.

    seqeval's rules (``seqeval.metrics.sequence_labeling.get_entities``, prefix tags): a tag's first character
    is its chunk tag (``B I E S O``; anything else only starts/ends chunks on a type change) and the text after
    the first ``-`` its type. So IOB1, IOB2 and IOBES are all accepted, an ``I-`` after ``O`` or after another
    type opens a chunk, and POS tags like ``NOUN`` become chunks of type ``OUN``.

    Args:
        tags: one sentence's tags.

    Returns:
        The chunks, in order.
    """
    chunks = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag = chunk[0] if chunk else "O"
        type_ = chunk[1:].split("-", maxsplit=1)[-1] or "_"
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def _sequences(name: str, predictions: Any, references: Any) -> tuple[list[list[str]], list[list[str]]]:
    preds, refs = _aligned(name, predictions, references)
    for i, (p, r) in enumerate(zip(preds, refs)):
        if isinstance(p, str) or isinstance(r, str):
            raise XLTError(f"{name}: sequence {i} is a string; predictions and references are lists of tag lists")
        if len(p) != len(r):
            raise XLTError(f"{name}: sequence {i} has {len(p)} predicted tags but {len(r)} gold tags")
    return [list(p) for p in preds], [list(r) for r in refs]


def _span_counts(preds: list[list[str]], refs: list[list[str]]) -> tuple[int, int, int]:
    # Keyed by sentence index: identical to seqeval, which flattens the sentences with an "O" between them.
    pred_spans = {(i, *c) for i, s in enumerate(preds) for c in get_entities(s)}
    gold_spans = {(i, *c) for i, s in enumerate(refs) for c in get_entities(s)}
    return len(pred_spans & gold_spans), len(pred_spans), len(gold_spans)


def _span_f1(predictions: Any, references: Any) -> dict[str, float]:
    preds, refs = _sequences("span_f1", predictions, references)
    return _prf(*_span_counts(preds, refs))


def _pos_accuracy(predictions: Any, references: Any) -> dict[str, float]:
    preds, refs = _sequences("pos_accuracy", predictions, references)
    n_tokens = sum(len(r) for r in refs)
    if n_tokens == 0:
        raise XLTError("pos_accuracy: the reference sequences have no tokens")
    correct = sum(p == r for ps, rs in zip(preds, refs) for p, r in zip(ps, rs))
    # "f1" is what jiant/xtreme report as POS "accuracy" (seqeval F1 over the raw tags, xtreme#56).
    return {"accuracy": 100.0 * correct / n_tokens, "f1": _prf(*_span_counts(preds, refs))["f1"]}


# ----------------------------------------------------------------------------------------------------- QA


def _is_punct(ch: str) -> bool:
    # The MLQA script's PUNCT set: every Unicode "P*" character plus ASCII string.punctuation (which adds the
    # ASCII symbols $+<=>^`|~ of category S).
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def _mixed_segmentation(text: str) -> list[str]:
    # MLQA's zh tokeniser: each CJK ideograph (and punctuation mark) is a token, the rest is split on spaces.
    out: list[str] = []
    buf = ""
    for ch in text:
        if _CJK.match(ch) or _is_punct(ch):
            if buf:
                out.extend(buf.split())
                buf = ""
            out.append(ch)
        else:
            buf += ch
    if buf:
        out.extend(buf.split())
    return out


def _resolve_normalization(lang: str, normalization: str) -> str:
    if normalization not in QA_NORMALIZATIONS:
        raise unknown("QA normalization", normalization, QA_NORMALIZATIONS)
    if normalization == "auto":
        return "squad" if lang == "en" else "mlqa"
    return normalization


def normalize_answer(text: str, lang: str = "en", normalization: str = "auto") -> str:
    """Normalise an answer string as the official QA scripts do before comparing tokens.

    * ``squad`` (SQuAD v1.1 ``evaluate-v1.1.py``): lowercase, drop ASCII punctuation, drop English articles
      ``a an the``, collapse whitespace. Language-independent: xtreme applies it to XQuAD and TyDiQA in
      every language.
    * ``mlqa`` (MLQA ``mlqa_evaluation_v1.py``): lowercase, drop Unicode punctuation (categories ``P*``
      plus ASCII punctuation), drop the language's articles (en, es, de, vi; ``ar``: every ``ال``), then
      whitespace tokens, except zh where each CJK character is a token (``mixed_segmentation``). For a
      language the script does not know (it raises) no articles are removed and tokens are whitespace
      separated; CJK characters are still split (harmless outside zh, and the sensible reading for ja).
    * ``auto`` (default): ``squad`` for ``en``, ``mlqa`` otherwise.

    Args:
        text: the answer.
        lang: ISO 639-1 code of the answer language.
        normalization: ``auto``, ``squad`` or ``mlqa``.

    Returns:
        The normalised string; its ``split()`` gives the tokens that F1 counts.
    """
    mode = _resolve_normalization(lang, normalization)
    text = text.lower()
    if mode == "squad":
        text = "".join(ch for ch in text if ch not in _ASCII_PUNCT)
        text = _SQUAD_ARTICLES.sub(" ", text)
        return " ".join(text.split())
    text = "".join(ch for ch in text if not _is_punct(ch))
    if lang in _MLQA_ARTICLES:
        text = _MLQA_ARTICLES[lang].sub(" ", text)
    if lang in MLQA_WHITESPACE_LANGS:
        tokens = text.split()
    else:
        tokens = _mixed_segmentation(text)
    return " ".join(t for t in tokens if t.strip())


def _qa_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    common = Counter(pred_tokens) & Counter(gold_tokens)
    n_same = sum(common.values())
    if n_same == 0:  # also when both are empty, as in SQuAD v1.1
        return 0.0
    precision, recall = n_same / len(pred_tokens), n_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _squad(predictions: Any, references: Any, lang: str = "en", normalization: str = "auto") -> dict[str, float]:
    preds, refs = _aligned("squad", predictions, references)
    _resolve_normalization(lang, normalization)  # fail on a bad option before any work
    em_sum = f1_sum = 0.0
    for i, (pred, golds) in enumerate(zip(preds, refs)):
        if isinstance(golds, str) or not golds:
            raise XLTError(f"squad: reference {i} must be a non-empty list of gold answer strings")
        p = normalize_answer(str(pred), lang, normalization)
        gs = [normalize_answer(str(g), lang, normalization) for g in golds]
        # Max over the gold answers, separately for EM and F1 (metric_max_over_ground_truths).
        em_sum += max(float(p == g) for g in gs)
        f1_sum += max(_qa_f1(p.split(), g.split()) for g in gs)
    return {"exact_match": 100.0 * em_sum / len(refs), "f1": 100.0 * f1_sum / len(refs)}


# ---------------------------------------------------------------------------------------------- retrieval


def _as_set(x: Any) -> set:
    if isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
        return {x}
    return set(x)


def _tatoeba_accuracy(predictions: Any, references: Any) -> dict[str, float]:
    preds, refs = _aligned("tatoeba_accuracy", predictions, references)
    return {"accuracy": 100.0 * sum(p in _as_set(r) for p, r in zip(preds, refs)) / len(refs)}


def _pair(x: Any, name: str) -> tuple[Hashable, Hashable]:
    # Pairs may be tuples or xtreme's "src_id\ttgt_id" submission lines.
    if isinstance(x, str):
        parts = x.rstrip("\n").split("\t")
        if len(parts) == 2:
            return parts[0], parts[1]
    elif isinstance(x, Sequence) and len(x) == 2:
        return x[0], x[1]
    raise XLTError(f"{name}: {x!r} is not a (src_id, tgt_id) pair or a 'src_id<TAB>tgt_id' line")


def _bucc_f1(predictions: Any, references: Any) -> dict[str, float]:
    pred = {_pair(x, "bucc_f1") for x in predictions}
    gold = {_pair(x, "bucc_f1") for x in references}
    if not gold:
        raise XLTError("bucc_f1: no gold pairs to score against")
    return _prf(len(pred & gold), len(pred), len(gold))


def average_precision_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """AP@k of one ranking, on the 0–1 scale.

    ``AP@k = (1 / min(k, |R|)) * sum_{i <= k, ranked[i] in R} precision@i``, repeated ids counted once.
    With one relevant item (Mewsli-X) this is the reciprocal rank within the top k (MRR@k).

    Args:
        ranked: candidate ids, best first.
        relevant: the relevant ids (non-empty).
        k: cut-off.

    Returns:
        The average precision.
    """
    rel = set(relevant)
    hits, total, seen = 0, 0.0, set()
    for i, c in enumerate(list(ranked)[:k], start=1):
        if c in rel and c not in seen:
            hits += 1
            total += hits / i
        seen.add(c)
    return total / min(k, len(rel))


def _map_at_k(predictions: Any, references: Any, k: int = 20) -> dict[str, float]:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise XLTError(f"map_at_k: k must be a positive integer, got {k!r}")
    preds, refs = _aligned("map_at_k", predictions, references)
    # Queries without any relevant candidate are skipped: AP is undefined for them (LAReQA/Mewsli-X have none).
    aps = [average_precision_at_k(p, _as_set(r), k) for p, r in zip(preds, refs) if _as_set(r)]
    if not aps:
        raise XLTError("map_at_k: no query has a relevant candidate; nothing to score")
    return {f"map@{k}": 100.0 * sum(aps) / len(aps)}


_FUNCTIONS: dict[str, tuple[Callable[..., dict[str, float]], tuple[str, ...]]] = {
    "accuracy": (_accuracy, ()),
    "pos_accuracy": (_pos_accuracy, ()),
    "span_f1": (_span_f1, ()),
    "squad": (_squad, ("lang", "normalization")),
    "tatoeba_accuracy": (_tatoeba_accuracy, ()),
    "bucc_f1": (_bucc_f1, ()),
    "map_at_k": (_map_at_k, ("k",)),
}


# -------------------------------------------------------------------------------------------- aggregation

QA_SCORE = "em_f1"  # a key-mapping value meaning "(exact_match + f1) / 2" (xtreme evaluate.py's QA score)


def _task_key(task: str, metrics: set[str], keys: Mapping[str, str] | None) -> str:
    if keys and task in keys:
        return keys[task]
    # xtreme evaluate.py: QA tasks (EM and F1) -> their mean, else F1 if present, else accuracy.
    if {"exact_match", "f1"} <= metrics:
        return QA_SCORE
    for key in ("f1", "accuracy"):
        if key in metrics:
            return key
    maps = sorted(m for m in metrics if m.startswith("map@"))
    if "map@20" in maps or len(maps) == 1:
        return "map@20" if "map@20" in maps else maps[0]
    raise XLTError(
        f"aggregate: cannot tell the score of task {task!r} from its metrics {', '.join(sorted(metrics))}; "
        f"pass keys={{{task!r}: <metric>}}"
    )


def _to_frame(rows: Any):
    import pandas as pd

    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    missing = [c for c in ("task", "lang", "metric", "value") if c not in df.columns]
    if missing:
        raise XLTError(f"aggregate: rows lack column(s) {', '.join(missing)}; need task, lang, metric, value")
    if df.empty:
        raise XLTError("aggregate: no rows to aggregate")
    return df


def aggregate(
    rows: Any,
    keys: Mapping[str, str] | None = None,
    exclude_langs: Iterable[str] = (),
) -> dict[str, Any]:
    """XTREME's aggregation: per task the mean over languages, overall the mean over tasks.

    A task's per-language score is its primary metric; for QA tasks (rows for both ``exact_match`` and
    ``f1``) it is ``(EM + F1) / 2``, so the task score equals xtreme ``evaluate.py``'s
    ``(avg_exact_match + avg_f1) / 2``. Without ``keys`` the metric is detected as ``evaluate.py`` does:
    EM and F1 → their mean, else ``f1``, else ``accuracy``, else ``map@20`` (or the only ``map@k``). Note that
    POS results carry both ``accuracy`` and ``f1``; ``f1`` is picked, as in XTREME. The overall score is the
    mean over the tasks present (xtreme only prints it when all nine are present).

    Args:
        rows: a pandas DataFrame or a list of dicts with columns ``task, lang, metric, value`` (tidy, one row
            per task/language/metric: filter to one run and split, or average seeds, before calling).
        keys: optional task → metric key to use (``"em_f1"`` for the QA mean).
        exclude_langs: languages left out of every mean (e.g. ``("en",)`` for a zero-shot-only average).

    Returns:
        ``{"per_task": {task: score}, "overall": score}`` on the 0–100 scale.

    Raises:
        XLTError: missing columns, duplicate rows, a QA language with EM but no F1 (or vice versa), or a task
            whose metric cannot be told.
    """
    df = _to_frame(rows)
    df = df[~df["lang"].isin(list(exclude_langs))]
    dup = df.duplicated(["task", "lang", "metric"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise XLTError(
            f"aggregate: several rows for task {first['task']!r}, lang {first['lang']!r}, metric "
            f"{first['metric']!r}; filter to one run and split (or average seeds) first, or use aggregate_table"
        )
    per_task: dict[str, float] = {}
    for task, tdf in df.groupby("task", sort=True):
        table = tdf.pivot(index="lang", columns="metric", values="value")
        key = _task_key(str(task), set(table.columns), keys)
        needed = ("exact_match", "f1") if key == QA_SCORE else (key,)
        for m in needed:
            # Every language needs every metric used: a mean over a subset of languages would not be XTREME's.
            if m not in table.columns:
                raise XLTError(f"aggregate: task {task!r} has no {m!r} rows; metrics: {', '.join(table.columns)}")
            if table[m].isna().any():
                lang = table.index[table[m].isna()][0]
                raise XLTError(f"aggregate: task {task!r} lacks {m!r} for language {lang!r}")
        if key == QA_SCORE:
            scores = (table["exact_match"] + table["f1"]) / 2
        else:
            scores = table[key]
        per_task[str(task)] = float(scores.mean())
    if not per_task:
        raise XLTError("aggregate: no rows left after excluding languages")
    return {"per_task": per_task, "overall": float(sum(per_task.values()) / len(per_task))}


def aggregate_table(
    rows: Any,
    by: Sequence[str] = (),
    keys: Mapping[str, str] | None = None,
    exclude_langs: Iterable[str] = (),
):
    """:func:`aggregate` for each group of a results table, as a tidy DataFrame.

    Args:
        rows: a DataFrame (or list of dicts) with ``task, lang, metric, value`` and the ``by`` columns.
        by: columns that identify one aggregation (e.g. ``["model", "intermediate_task", "seed"]``).
        keys: as in :func:`aggregate`.
        exclude_langs: as in :func:`aggregate`.

    Returns:
        A DataFrame with columns ``*by, task, score``; each group has one row per task and one row with
        ``task == "overall"``.
    """
    import pandas as pd

    df = _to_frame(rows)
    missing = [c for c in by if c not in df.columns]
    if missing:
        raise XLTError(f"aggregate_table: no column(s) {', '.join(missing)}; columns: {', '.join(df.columns)}")
    groups = df.groupby(list(by), sort=True, dropna=False) if by else [((), df)]
    out = []
    for group_key, gdf in groups:
        group_key = group_key if isinstance(group_key, tuple) else (group_key,)
        res = aggregate(gdf, keys=keys, exclude_langs=exclude_langs)
        ident = dict(zip(by, group_key))
        out += [{**ident, "task": t, "score": s} for t, s in res["per_task"].items()]
        out.append({**ident, "task": "overall", "score": res["overall"]})
    return pd.DataFrame(out, columns=[*by, "task", "score"])

