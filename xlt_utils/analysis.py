"""Statistics for the analysis notebooks: intervals for crossed designs, transfer gaps and their correlation with
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
from collections.abc import Sequence
from typing import Any

import numpy as np

from xlt_utils.errors import XLTError, unknown

REAL_DISTANCES = ("syntactic", "genetic", "geographic")
SYNTH_DISTANCES = ("d_syn", "d_morph", "d_lex", "d_script")


def _codes(labels: Sequence[Any], keep: np.ndarray) -> np.ndarray:
    """Integer codes (0..k-1) of the kept ``labels``; missing labels (None, nan) are one level of their own."""
    kept = [("-" if x is None or (isinstance(x, float) and math.isnan(x)) else x)
            for x, k in zip(labels, keep) if k]
    index: dict[Any, int] = {}
    return np.array([index.setdefault(x, len(index)) for x in kept], dtype=int)


# An estimated variance part that makes up at least this share of the total sets the degrees of freedom
DF_SHARE = 0.10


def crossed_interval(values: Sequence[float], units: Sequence[Any], seeds: Sequence[Any] | None = None,
                     item_var: Sequence[float] | None = None, strata: Sequence[Any] | None = None,
                     level: float = 0.95, one_unit: bool = False) -> tuple[float, float]:
    """Interval of the mean over ``units`` (languages) of each unit's mean over ``seeds``, for a crossed design
    where languages, training seeds and, where languages share test items, the items all vary.

    ``values[i]`` is the value of unit ``units[i]`` trained with seed ``seeds[i]`` (repeats are averaged; a missing
    (unit, seed) cell is skipped). The variance of the estimate is the sum of three parts:

    - seeds: the variance of the per-seed means (over units) divided by the number of seeds. A seed shift common
      to every language (a training run that went worse everywhere) is here, and nowhere else;
    - languages: the variance of the per-unit means (over seeds) divided by the number of units. It holds each
      language's own test-set noise when languages have their own items;
    - items shared by the languages (``item_var``: per row, the item-sampling variance of ``values[i]``, e.g. a
      binomial ``p(1 - p) / n``; ``None`` or all-zero when languages do not share items): a test set realised
      in every language moves every language together, so it cannot average out over languages. Within a stratum
      (``strata``: per row, e.g. the target task, whose test set is its own; one stratum when ``None``) the
      languages' item errors are taken as fully correlated, so the stratum adds the square of its mean item
      standard deviation; strata are independent, so with ``w`` each stratum's share of the units the part is
      ``sum(w² · sd²)``.

    Each of the first two parts also counts the seed x language residual once, so the sum errs on the wide side
    (it never counts the residual less than once). The interval is ``mean ± t · sqrt(variance)``; the degrees of
    freedom are the smallest of the estimated parts (seeds ``n_s - 1``, languages ``n_u - 1``) that make up at
    least :data:`DF_SHARE` of the variance (Welch-Satterthwaite's, which are too generous with two or three seeds,
    when none does). With three seeds and a real seed part, that is the wide t quantile of two degrees of freedom,
    where a percentile bootstrap over three seeds under-covers (its resamples cannot show more spread than three
    values have).

    With one seed (or none) there is no seed part: the interval is over languages (and items) only, and says
    nothing about training variance.

    ``one_unit``: a claim about one language (rq5's Japanese), opted into by the caller, which passes that
    language's *own* item variance as ``item_var`` (its test set is not averaged over languages, so its items'
    error must be counted whether or not other languages share them). With one unit and at least two seeds that
    differ, the interval is over the seeds (``n_s - 1`` degrees of freedom) and the items. Without ``one_unit``,
    or with one seed or seeds that agree exactly (no spread to read a variance from), one unit has none.

    Returns ``(nan, nan)`` for fewer than two units (but see ``one_unit``) or no variance at all."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    keep = ~np.isnan(v)
    u_codes = _codes(units, keep)
    s_codes = _codes(seeds if seeds is not None else [0] * len(v), keep)
    v = v[keep]
    n_s, n_u = (int(s_codes.max()) + 1, int(u_codes.max()) + 1) if len(v) else (0, 0)
    if n_u < 1 or (n_u < 2 and not (one_unit and n_s >= 2)):
        return float("nan"), float("nan")
    total, count = np.zeros((n_s, n_u)), np.zeros((n_s, n_u))
    np.add.at(total, (s_codes, u_codes), v)
    np.add.at(count, (s_codes, u_codes), 1.0)
    m = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)  # (seed, unit) cell means
    unit_means = np.nanmean(m, axis=0)
    estimate = float(unit_means.mean())
    parts: list[tuple[float, int]] = [(float(np.var(unit_means, ddof=1)) / n_u, n_u - 1)] if n_u > 1 else []
    if n_s > 1:
        seed_means = np.nanmean(m, axis=1)
        parts.append((float(np.var(seed_means, ddof=1)) / n_s, n_s - 1))
        if n_u == 1 and parts[-1][0] <= 0:  # one language whose seeds agree exactly: their variance is unknown
            return float("nan"), float("nan")
    items = 0.0
    if item_var is not None:
        sd = np.sqrt(np.clip(np.nan_to_num(np.asarray(item_var, dtype=float)[keep]), 0.0, None))
        unit_sd = np.bincount(u_codes, sd, n_u) / np.bincount(u_codes, minlength=n_u)
        s_codes_u = np.zeros(n_u, dtype=int)
        if strata is not None:
            s_codes_u[u_codes] = _codes(strata, keep)  # each unit's stratum
        n_strata = int(s_codes_u.max()) + 1
        share = np.bincount(s_codes_u, minlength=n_strata) / n_u
        stratum_sd = np.bincount(s_codes_u, unit_sd, n_strata) / np.maximum(np.bincount(s_codes_u, minlength=n_strata), 1)
        items = float(((share * stratum_sd) ** 2).sum())
    var = sum(v for v, _ in parts) + items
    if var <= 0:
        return (estimate, estimate) if var == 0 else (float("nan"), float("nan"))
    large = [d for v, d in parts if v >= DF_SHARE * var]
    denom = sum(v * v / d for v, d in parts if v > 0)
    df = min(large) if large else (var * var / denom if denom > 0 else math.inf)
    q = float(stats.t.ppf(0.5 + level / 2, df)) if math.isfinite(df) else float(stats.norm.ppf(0.5 + level / 2))
    half = q * math.sqrt(var)
    return estimate - half, estimate + half


def seed_interval(values: Sequence[float], n_items: float | None = None,
                  level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of one score measured once per seed (``values``) on the same ``n_items`` test items: the
    seed spread (a t interval over the seeds, Welch-Satterthwaite degrees of freedom) plus the items' binomial
    sampling variance (:func:`binomial_item_var`; none when ``n_items`` is unknown). With one seed, the items
    alone (a Wald interval); ``nan`` bounds when neither part is known."""
    from scipy import stats

    k = len(values)
    if not k:
        return float("nan"), float("nan"), float("nan")
    mean = float(sum(values)) / k
    item = float(binomial_item_var([mean], [n_items if n_items else 0])[0])
    a = sum((v - mean) ** 2 for v in values) / (k - 1) / k if k > 1 else 0.0
    z = 0.5 + level / 2
    if a > 0:
        half = float(stats.t.ppf(z, (a + item) ** 2 * (k - 1) / a**2)) * math.sqrt(a + item)
    elif item > 0 or k > 1:
        half = float(stats.norm.ppf(z)) * math.sqrt(item)
    else:
        return mean, float("nan"), float("nan")
    return mean, mean - half, mean + half


def binomial_item_var(score: Sequence[float], n_items: Sequence[float], scale: float = 100.0) -> np.ndarray:
    """Item-sampling variance of a score on a ``0..scale`` scale measured on ``n_items`` items, read as a
    proportion: ``scale² p (1 - p) / n`` (0 where ``n`` is unknown). For an F1 or mAP it is an approximation."""
    p = np.clip(np.asarray(score, dtype=float) / scale, 0.0, 1.0)
    n = np.asarray(n_items, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = scale * scale * p * (1 - p) / n
    return np.where(np.isfinite(v) & (n > 0), v, 0.0)


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


Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def _fisher_interval(r: float, n: int, spearman_se: bool) -> tuple[float, float]:
    """95% interval of a correlation from Fisher's z: ``tanh(atanh(r) ± z·se)`` with se = 1/sqrt(n - 3) (Pearson) or
    Bonett & Wright's sqrt((1 + r²/2) / (n - 3)) (Spearman). A perfect correlation (|r| = 1, whose z is infinite)
    enters at halfway between 1 and the largest |rho| below 1 that n untied points can give, 1 - 12/(n(n²-1)): n=5
    points in perfect order read as 0.95, not as a certainty (with ties, whose next values differ, the same cap)."""
    if math.isnan(r) or n < 4:
        return float("nan"), float("nan")
    if abs(r) > 1 - 1e-9:  # only a perfect one: any |r| below 1 keeps its own value
        r = math.copysign(1 - 6 / (n * (n * n - 1)), r)
    se = math.sqrt((1 + r * r / 2 if spearman_se else 1.0) / (n - 3))
    z = math.atanh(r)
    return math.tanh(z - Z95 * se), math.tanh(z + Z95 * se)


def correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """Spearman's rho and Pearson's r with 95% Fisher-z intervals (:func:`_fisher_interval`; none under 4 points).

    The studies correlate 5 to 15 languages. A percentile bootstrap over so few pairs is too narrow: under no
    association it excluded 0 for 12% of 5-language samples (nominal 5%), and 5 points in perfect order gave
    [-1, -1]. The Fisher-z intervals hold about 95% there (``tests/test_analysis.py`` simulates it). A sample that
    is constant on a side has no estimate and no interval (nan).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    out: dict[str, Any] = {"n": len(x), "spearman": spearman(x, y), "pearson": pearson(x, y)}
    out["spearman_lo"], out["spearman_hi"] = _fisher_interval(out["spearman"], len(x), spearman_se=True)
    out["pearson_lo"], out["pearson_hi"] = _fisher_interval(out["pearson"], len(x), spearman_se=False)
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
        gap with distance with 95% Fisher-z intervals over languages (:func:`correlation`).
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
    Fisher-z interval over languages (:func:`correlation`) and a verdict."""
    import pandas as pd

    rows = [{"claim": f"the zero-shot gap grows with {r.distance} distance from English",
             "source": source, "task": r.task, "model": r.model, "intermediate_task": r.intermediate_task,
             "n_languages": r.n, "spearman": r.spearman, "ci95": f"[{r.spearman_lo:+.2f}, {r.spearman_hi:+.2f}]",
             "verdict": verdict(r.spearman_lo, r.spearman_hi)} for r in summary.itertuples()]
    return pd.DataFrame(rows)
