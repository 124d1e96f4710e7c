"""Every choice an analysis makes among runs (the best intermediate task per target, a learning rate, the tasks a
ranking compares) is made here, on English dev scores, never on test.

The training loop already selects its checkpoint on English dev (:mod:`xlt_utils.train`) and a BUCC-style
retrieval task its margin threshold on dev (:mod:`xlt_utils.retrieval`); the choices made after training, across
runs, go through :func:`dev_rows` and :func:`pick`, which refuse any other split, so a selection on test cannot be
written by accident. A choice with no English dev rows is not made (``None``): it is not replaced by a test pick.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xlt_utils.errors import XLTError

SPLIT = "dev"
LANGUAGE = "en"


def dev_rows(df: Any, phase: str | Iterable[str] = "target") -> Any:
    """The English dev rows on each task's primary metric of the training runs of ``phase`` (each run records its
    selected checkpoint's English dev score), one row per run and task."""
    from xlt_utils.results import primary_metric

    phases = {phase} if isinstance(phase, str) else set(phase)
    if "split" not in df.columns:  # rows without a split (evaluation rows made by hand) hold no dev score
        return df.iloc[:0]
    need = {"phase", "lang", "metric", "task", "value"}
    missing = sorted(need - set(df.columns))
    if missing:
        raise XLTError(f"metrics are missing columns {', '.join(missing)}: no English dev rows to choose on")
    rows = df[df["phase"].isin(phases) & (df["split"] == SPLIT) & (df["lang"] == LANGUAGE)]
    rows = rows[[m == primary_metric(t) for m, t in zip(rows["metric"], rows["task"])]]
    if "run_id" in rows.columns:
        rows = rows.drop_duplicates(subset=["run_id", "task", "metric"])
    return rows


def pick(dev: Any, choice: str, among: Iterable[Any] | None = None, value: str = "value") -> Any:
    """The value of column ``choice`` with the highest mean English dev score (mean over the rows of each
    candidate, e.g. its seeds and targets), among ``among`` (all candidates when ``None``); ``None`` when no
    candidate has a dev row. Ties go to the first candidate in sorted order.

    Raises:
        XLTError: ``dev`` holds rows of another split or language (a selection must not see test).
    """
    if dev.empty:
        return None
    if not {"split", "lang"} <= set(dev.columns):
        raise XLTError("a selection reads English dev rows only, and these rows do not say their split and "
                       "language: use selection.dev_rows")
    splits, langs = set(dev["split"].dropna().unique()), set(dev["lang"].dropna().unique())
    if splits - {SPLIT} or langs - {LANGUAGE}:
        raise XLTError(f"a selection reads English dev rows only (split {SPLIT!r}, language {LANGUAGE!r}); got "
                       f"split(s) {', '.join(sorted(map(str, splits)))} and language(s) "
                       f"{', '.join(sorted(map(str, langs)))}: use selection.dev_rows")
    if among is not None:
        dev = dev[dev[choice].isin(list(among))]
    if dev.empty:
        return None
    means = dev.groupby(choice)[value].mean().sort_index()
    return means.idxmax()
