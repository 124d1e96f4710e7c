"""Statistics for the analysis notebooks: bootstrap intervals, transfer gaps and their correlation with
typological distance.

Everything here reads the tidy results (``outputs/results/metrics.csv`` rows, as loaded by
:func:`xlt_utils.results.load`) and returns pandas frames, so a notebook cell is one call.

Distances from English:

- ``offline-real``: lang2vec (URIEL) cosine distances, ``syntactic``, ``genetic`` or ``geographic``, from the
  table ``make setup`` builds (:func:`xlt_utils.offline.typology.load_distances`).
- ``synth``: the generator's own distances from each language card, ``d_syn`` (word-order switches),
  ``d_morph``, ``d_lex`` (stem-vocabulary overlap) or ``d_script``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xlt_utils.errors import XLTError, unknown

REAL_DISTANCES = ("syntactic", "genetic", "geographic")
SYNTH_DISTANCES = ("d_syn", "d_morph", "d_lex", "d_script")


def bootstrap_ci(values: Sequence[float], stat: Callable[[np.ndarray], float] = np.mean, n_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over ``values`` (resampled with replacement).

    Returns ``(nan, nan)`` for fewer than two values (no spread to resample)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    stats = np.array([stat(x[rng.integers(0, len(x), len(x))]) for _ in range(n_boot)])
    a = (1 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def bootstrap_ci_crossed(values: Sequence[float], units: Sequence[Any], seeds: Sequence[Any] | None = None,
                         n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over ``units`` (languages) of each unit's mean over ``seeds``,
    resampling units and seeds independently, both with replacement (the "pigeonhole" bootstrap for a crossed
    design, Owen 2007, Annals of Applied Statistics 1(1)). Seed-to-seed spread of training widens the interval
    as much as the spread between languages does; the interval is conservative (it counts the language x seed
    interaction more than once), never narrower than the right one.

    ``values[i]`` is the value of unit ``units[i]`` trained with seed ``seeds[i]`` (repeats are averaged). With one
    seed, no seeds, or seeds that are all missing, it is :func:`bootstrap_ci` over the per-unit means, the same
    numbers. A missing (unit, seed) cell is skipped in that unit's mean; a resample where a unit has none of the
    drawn seeds leaves that unit out.

    Returns ``(nan, nan)`` for fewer than two units."""
    import pandas as pd

    frame = pd.DataFrame({"v": np.asarray(values, dtype=float), "u": list(units),
                          "s": list(seeds) if seeds is not None else [0] * len(units)})
    frame = frame.dropna(subset=["v"])
    frame["s"] = frame["s"].astype(object).where(frame["s"].notna(), "-")
    m = frame.pivot_table(index="s", columns="u", values="v", aggfunc="mean").to_numpy(dtype=float)
    if m.shape[0] <= 1:
        return bootstrap_ci(np.nanmean(m, axis=0) if m.size else [], n_boot=n_boot, level=level, seed=seed)
    if m.shape[1] < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    n_s, n_u = m.shape
    rs = rng.integers(0, n_s, (n_boot, n_s))
    ru = rng.integers(0, n_u, (n_boot, n_u))
    sub = m[rs[:, :, None], ru[:, None, :]]  # (boot, seeds, units)
    present = ~np.isnan(sub)
    count = present.sum(axis=1)
    unit_mean = np.where(count > 0, np.where(present, sub, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan)
    have = ~np.isnan(unit_mean)
    stats = np.where(have, unit_mean, 0.0).sum(axis=1) / np.maximum(have.sum(axis=1), 1)
    stats = stats[have.any(axis=1)]
    a = (1 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank), as Spearman's rho needs."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):
        tie = x == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r (nan when either side is constant)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's r of the average ranks."""
    return pearson(_ranks(np.asarray(x, dtype=float)), _ranks(np.asarray(y, dtype=float)))


def _resampled_ranks(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Average ranks of every resample ``x[idx[b]]`` at once (what :func:`_ranks` gives row by row): a value's
    rank is the number of smaller values in its resample plus the mean position among its ties."""
    values, code = np.unique(x, return_inverse=True)
    k, b = len(values), idx.shape[0]
    codes = code[idx]  # (b, n): each drawn element's position among the distinct values
    counts = np.bincount((np.arange(b)[:, None] * k + codes).ravel(), minlength=b * k).reshape(b, k)
    below = np.cumsum(counts, axis=1) - counts
    avg = below + (counts - 1) / 2.0  # 0-based average rank (as _ranks) of each distinct value in each resample
    return np.take_along_axis(avg, codes, axis=1)


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair (nan where a row is constant on either side), as :func:`pearson` per row."""
    xc, yc = x - x.mean(axis=1, keepdims=True), y - y.mean(axis=1, keepdims=True)
    sx, sy = np.sqrt((xc * xc).sum(axis=1)), np.sqrt((yc * yc).sum(axis=1))
    flat = (x.std(axis=1) == 0) | (y.std(axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / (sx * sy)
    return np.where(flat, np.nan, r)


def correlation(x: Sequence[float], y: Sequence[float], n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Spearman's rho and Pearson's r with percentile bootstrap intervals over the (x, y) pairs.

    A resample that is constant on a side (it missed every point that varies) has no rank order; it counts as 0
    (no association), not dropped: dropping it would keep only the resamples that contain the few varying points,
    so one outlier in an otherwise flat arm would look like a decided correlation. A sample that is itself constant
    on a side has no estimate and no interval (nan).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    out: dict[str, Any] = {"n": len(x), "spearman": spearman(x, y), "pearson": pearson(x, y)}
    if len(x) >= 3:
        idx = np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))  # one resample per row
        rhos = _rowwise_pearson(_resampled_ranks(x, idx), _resampled_ranks(y, idx))
        rs = _rowwise_pearson(x[idx], y[idx])
        rhos, rs = np.nan_to_num(rhos, nan=0.0), np.nan_to_num(rs, nan=0.0)

        def q(v: np.ndarray, est: float, p: float) -> float:  # a flat sample: no estimate, no interval
            return float("nan") if math.isnan(est) else float(np.quantile(v, p))

        out.update(spearman_lo=q(rhos, out["spearman"], 0.025), spearman_hi=q(rhos, out["spearman"], 0.975),
                   pearson_lo=q(rs, out["pearson"], 0.025), pearson_hi=q(rs, out["pearson"], 0.975))
    else:
        out.update(spearman_lo=float("nan"), spearman_hi=float("nan"), pearson_lo=float("nan"),
                   pearson_hi=float("nan"))
    return out


def distances_from_english(world: str, kind: str) -> dict[str, float]:
    """Distance of every language of a world from English (see the module docstring for the kinds).

    Raises:
        XLTError: unknown world or distance kind (names the valid ones).
    """
    if world == "offline-real":
        if kind not in REAL_DISTANCES:
            raise unknown("distance for world offline-real", kind, REAL_DISTANCES)
        from xlt_utils.offline.typology import load_distances

        d = load_distances()
        d = d[d["lang1"] == "en"]
        return {str(l2): float(v) for l2, v in zip(d["lang2"], d[kind]) if not math.isnan(v)}
    if world == "synth":
        if kind not in SYNTH_DISTANCES:
            raise unknown("distance for world synth", kind, SYNTH_DISTANCES)
        from xlt_utils.synth.languages import LANGUAGE_IDS, language_card

        return {lang: float(language_card(lang, LANGUAGE_IDS)["distances"]["en"][kind]) for lang in LANGUAGE_IDS}
    raise unknown("world with typological distances", world, ("offline-real", "synth"))


def language_gaps(df: Any, task: str | None = None) -> Any:
    """Per run lineage and language: the zero-shot score, the English score of the same run, and the gap
    (English minus language), on each task's primary metric. Retrieval tasks (no English side) have no gap.

    Args:
        df: the study's rows (:func:`xlt_utils.results.load`).
        task: one target task (default: every task with English evaluation rows).
    """
    from xlt_utils.results import zero_shot

    ev = zero_shot(df)
    if task is not None:
        if task not in set(ev["target_task"]):
            raise unknown("target task with evaluation rows", task, sorted(set(ev["target_task"])))
        ev = ev[ev["target_task"] == task]
    keys = ["world", "model", "target_task", "intermediate_task", "seed"]
    keys = [k for k in keys if k in ev.columns]
    en = ev[ev["lang"] == "en"].groupby(keys, dropna=False)["value"].mean().rename("english")
    other = ev[ev["lang"] != "en"][keys + ["lang", "value"]]
    out = other.merge(en.reset_index(), on=keys, how="inner")
    if out.empty:
        raise XLTError("no task has both English and non-English evaluation rows: no transfer gap to compute")
    out["gap"] = out["english"] - out["value"]
    return out.reset_index(drop=True)


def distance_gap(df: Any, task: str, kind: str, world: str | None = None) -> tuple[Any, Any]:
    """Transfer gap vs typological distance from English, per language, and its correlation.

    Args:
        df: the study's rows.
        task: a target task evaluated in English and other languages.
        kind: a distance kind of the task's world (see the module docstring).
        world: the task's world (default: from the registry).

    Returns:
        ``(per_language, summary)``: per (model, intermediate task) and language the mean score, gap and
        distance (averaged over seeds); and per (model, intermediate task) the Spearman/Pearson correlation of
        gap with distance with 95% bootstrap intervals over languages.
    """
    import pandas as pd

    from xlt_utils.tasks import get_task

    world = world or get_task(task).world
    dist = distances_from_english(world, kind)
    gaps = language_gaps(df, task)
    per = (gaps.groupby(["model", "intermediate_task", "lang"], dropna=False)[["value", "english", "gap"]]
           .mean().reset_index())
    per["distance"] = per["lang"].map(dist)
    missing = sorted(set(per.loc[per["distance"].isna(), "lang"]))
    per = per.dropna(subset=["distance"])
    rows = []
    for (model, inter), g in per.groupby(["model", "intermediate_task"], dropna=False):
        rows.append({"model": model, "intermediate_task": inter, "task": task, "distance": kind,
                     **correlation(g["distance"], g["gap"]), "no_distance": ", ".join(missing)})
    return per, pd.DataFrame(rows).round(3)


def world_distance_gaps(df: Any, world: str, kinds: Sequence[str] | None = None) -> tuple[Any, Any] | None:
    """:func:`distance_gap` for every target task of ``world`` that has English and non-English evaluation
    rows, for each distance kind of the world; ``None`` when the results hold no such task.

    Returns:
        ``(per_language, summary)``, concatenated over tasks and kinds (a ``distance`` column names the kind;
        ``distance_value`` holds the language's distance in ``per_language``).
    """
    import pandas as pd

    kinds = list(kinds or (REAL_DISTANCES if world == "offline-real" else SYNTH_DISTANCES))
    ev = df[(df["phase"] == "eval") & (df["world"] == world)]
    tasks = sorted(t for t, g in ev.groupby("target_task") if "en" in set(g["lang"]) and len(set(g["lang"])) > 1)
    if not tasks:
        return None
    pers, sums = [], []
    for task in tasks:
        for kind in kinds:
            per, summary = distance_gap(df[df["world"] == world], task, kind, world=world)
            pers.append(per.rename(columns={"distance": "distance_value"}).assign(task=task, distance=kind))
            sums.append(summary)
    return pd.concat(pers, ignore_index=True), pd.concat(sums, ignore_index=True)


def verdict(lo: float, hi: float, expected_sign: int = 1) -> str:
    """``supported`` when the interval lies on the expected side of 0, ``not supported`` when it lies on the
    other side, ``inconclusive`` when it contains 0 or is undefined."""
    if math.isnan(lo) or math.isnan(hi):  # too few points for an interval
        return "inconclusive"
    if expected_sign * lo > 0 and expected_sign * hi > 0:
        return "supported"
    if expected_sign * lo < 0 and expected_sign * hi < 0:
        return "not supported"
    return "inconclusive"


def distance_claims(summary: Any, source: str = "Lauscher et al. 2020; Pires et al. 2019") -> Any:
    """Claims table: "the zero-shot gap grows with typological distance from English", one row per (model,
    intermediate task, task, distance kind) of a :func:`distance_gap` summary, with Spearman's rho, its 95%
    bootstrap interval over languages and a verdict."""
    import pandas as pd

    rows = [{"claim": f"the zero-shot gap grows with {r.distance} distance from English",
             "source": source, "task": r.task, "model": r.model, "intermediate_task": r.intermediate_task,
             "n_languages": r.n, "spearman": r.spearman, "ci95": f"[{r.spearman_lo:+.2f}, {r.spearman_hi:+.2f}]",
             "verdict": verdict(r.spearman_lo, r.spearman_hi)} for r in summary.itertuples()]
    return pd.DataFrame(rows)
