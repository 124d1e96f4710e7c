"""The research questions' analyses: paired intermediate-task effects with their intervals, the tables each
study's notebook shows, its claims table (our number, its interval, a verdict) and a written answer.

Every function reads the tidy results (``outputs/results/metrics.csv`` rows as :func:`xlt_utils.results.load`
returns them; training and inference timings from ``training.csv`` / ``efficiency.csv``) and returns a pandas
frame, so an analysis notebook cell is one call.

**Intervals count languages, seeds and shared items.** Zero-shot transfer is a claim about languages a model was
not trained on, about training runs that vary with their seed, and about a task's items, so an estimate is the
mean over the evaluation languages of the per-language paired difference (each language's score with the
intermediate task minus its score without it, averaged over seeds; the same target run, seed and evaluation
variant on both sides), and its 95% interval (:func:`xlt_utils.analysis.crossed_interval`) adds three variances: of
the per-seed means (a seed shift common to every language), of the per-language means, and, where the languages
share their test items (:func:`xlt_utils.tasks.shares_test_items`: translations of one test set), the items'
sampling variance, which no number of languages averages away; a t quantile with the Welch-Satterthwaite degrees
of freedom, so three seeds give a wide interval rather than an over-confident one (a simulation test checks its
coverage). With one seed it says nothing about training variance. The seed standard
deviation of the mean is reported beside it. A claim's verdict (:func:`xlt_utils.analysis.verdict`) is *supported* when the
interval lies on the claimed side of 0, *not supported* when it lies on the other side, *inconclusive* otherwise. Two readings are added in the note, never by changing a number: an inconclusive
claim whose interval lies within ±:data:`NEGLIGIBLE_POINTS` rules out a difference that large (and counts as
decided in the evidence grade, :func:`evidence`); a claim whose arms are all at chance (:func:`zero_shot_vs_chance`)
sits at a floor, where nothing can be measured (rq3: inconclusive and left out of the grade; rq5: named).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from xlt_utils import selection
from xlt_utils.analysis import binomial_item_var, crossed_interval, seed_interval, verdict
from xlt_utils.errors import XLTError

# Columns that distinguish conditions in the studies (the cell's own or its ancestors' parameters).
CONDITIONS = ("intermediate_batch_size", "intermediate_max_train_samples", "intermediate_train_language",
              "target_num_layers", "num_layers", "inference_dtype", "max_seq_length")
# Inference-budget variants: the no-intermediate baseline a condition is paired with has the same ones. A layer
# budget is ``target_num_layers``, the depth the model was fine-tuned at (02_target's num_layers); ``num_layers``
# is the older design, layers cut at evaluation from a model fine-tuned with all of them (its head never saw layer
# n's output: at chance on rq3's e5 targets), kept so that results made that way still read.
VARIANTS = ("target_num_layers", "num_layers", "inference_dtype", "max_seq_length")
KEYS = ("model", "target_task", "seed", "lang")
TIMING_NOISE = 0.10  # relative spread of repeated timings on a shared CPU: a smaller ratio is not a difference
# An inconclusive claim whose interval lies within ± this many points says more than "we don't know": any
# difference there is smaller than that (an equivalence reading of the same interval; its note says so).
NEGLIGIBLE_POINTS = 1.0
NEGLIGIBLE_NOTE = f"the interval rules out a difference of {NEGLIGIBLE_POINTS:g} point or more either way"
FLOOR_NOTE = "at the floor"  # how a claim no budget left anything to measure for begins its note (rq3)


# The question each study answers (../DESIGN.md), as the analysis notebooks state it.
QUESTIONS = {
    "paper": "Does English intermediate-task training improve zero-shot cross-lingual transfer (X-STILTs)?",
    "rq1_batch_size": "Does a larger batch size in intermediate-task training improve zero-shot transfer, and what "
                      "does it cost or save in training time and inference efficiency?",
    "rq2_model_scale": "Does the benefit of English intermediate training transfer differently at different model "
                       "scales?",
    "rq3_efficiency": "How does the compute spent on intermediate training trade against zero-shot accuracy under "
                      "constrained inference budgets (fewer layers, reduced precision, shorter sequences)?",
    "rq4_intermediate_data": "Does scaling the English intermediate dataset show diminishing returns, compared with a "
                             "smaller high-quality multilingual intermediate dataset?",
    "rq5_source_language": "Does intermediate training in a non-English source language reduce the degradation on "
                           "typologically distant targets?",
}

# What a study's embedded worlds can and cannot show, where that limits its answer (README row, report answer).
SCOPE = {
    "rq2_model_scale": "Synth world only: one real encoder size exists offline (e5-small). Synth transfer is "
                       "lexical (a randomly initialised encoder transfers as well as a pretrained one), so the "
                       "synth arms show how the benefit changes with capacity on shared-vocabulary languages, not "
                       "what multilingual pretraining at scale adds; that needs the xtreme-r profile.",
}


# ---------------------------------------------------------------------------------------------- scores


def scores(df: Any) -> Any:
    """Evaluation rows on each target's primary metric, one row per (run, language), with the condition columns
    normalised: the source language of an intermediate task is ``en`` when unset, ``-`` without one; all layers
    are ``num_layers`` / ``target_num_layers`` 0; missing sizes and dtypes become ``-`` / ``float32``."""
    from xlt_utils.results import zero_shot

    ev = zero_shot(df).copy()
    for c in CONDITIONS:
        if c not in ev.columns:
            ev[c] = np.nan
    none = ev["intermediate_task"] == "none"
    lang = ev["intermediate_train_language"].astype(object).where(ev["intermediate_train_language"].notna(), "en")
    ev["intermediate_train_language"] = lang.where(~none, "-")
    ev["num_layers"] = ev["num_layers"].fillna(0).astype(int)
    ev["target_num_layers"] = ev["target_num_layers"].fillna(0).astype(int)
    ev["inference_dtype"] = ev["inference_dtype"].fillna("float32")
    ev["max_seq_length"] = ev["max_seq_length"].fillna(0).astype(int)
    for c in ("intermediate_batch_size", "intermediate_max_train_samples"):
        ev[c] = ev[c].where(~none)  # a baseline has none of these
    full_len = ev.groupby(["model", "target_task"])["max_seq_length"].transform("max")
    ev["variant"] = [variant_name(n, d, length, full, tuned) for n, d, length, full, tuned in
                     zip(ev["num_layers"], ev["inference_dtype"], ev["max_seq_length"], full_len,
                         ev["target_num_layers"])]
    from xlt_utils.tasks import shares_test_items

    shared = ev["target_task"].map({t: shares_test_items(t) for t in ev["target_task"].dropna().unique()})
    n = ev["n_examples"] if "n_examples" in ev.columns else np.nan
    ev["own_iv"] = binomial_item_var(ev["value"], n)  # every row's own items (0 where their number is unknown)
    ev["shared_iv"] = np.where(shared.fillna(False).astype(bool), ev["own_iv"], 0.0)
    return ev.reset_index(drop=True)


def natural_key(text: str) -> tuple:
    """Sort key that reads numbers as numbers: ``2 layers`` before ``10 layers``, ``bf16`` before ``int8``."""
    parts = re.split(r"(\d+)", str(text))
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


TUNED = "fine-tuned"  # a layer budget: the model fine-tuned at that depth
CUT = "cut at eval"  # the older layer budget: layers cut at evaluation from a model fine-tuned with all of them


def variant_name(num_layers: int, dtype: str, length: int, full_length: int, target_num_layers: int = 0) -> str:
    """An evaluation variant's name: ``full``, or the parts that differ from the full budget (``6 layers
    (fine-tuned)``: a model fine-tuned at 6 layers, ``target_num_layers``; ``6 layers (cut at eval)``: a model
    fine-tuned with all its layers, run on its first 6, ``num_layers``; ``int8``; ``32 tokens``)."""
    parts = []
    for n, how in ((target_num_layers, TUNED), (num_layers, CUT)):
        if n:
            parts.append(f"{int(n)} layer{'s' if int(n) != 1 else ''} ({how})")
    if dtype != "float32":
        parts.append(str(dtype))
    if length and length < full_length:
        parts.append(f"{int(length)} tokens")
    return ", ".join(parts) or "full"


def paired_effects(df: Any, by: Sequence[str] = ()) -> Any:
    """Per language: the score after an intermediate task and the score of the no-intermediate baseline with the
    same model, target, seed, language and evaluation variant, and their difference ``delta``.

    Args:
        df: results rows (:func:`xlt_utils.results.load`).
        by: condition columns kept (besides ``intermediate_task``), e.g. ``["intermediate_batch_size"]``.

    Raises:
        XLTError: no no-intermediate baseline to pair with.
    """
    import pandas as pd

    sc = scores(df)
    keys = [*KEYS, *VARIANTS, "variant"]
    base = sc[sc["intermediate_task"] == "none"][keys + ["value", "shared_iv"]].rename(
        columns={"value": "baseline", "shared_iv": "baseline_iv"})
    if base.empty:
        raise XLTError("no no-intermediate baseline (intermediate task 'none') in these results: effects need one")
    base = base.groupby(keys, dropna=False, as_index=False)[["baseline", "baseline_iv"]].mean()
    inter = sc[sc["intermediate_task"] != "none"]
    cols = list(dict.fromkeys(["intermediate_task", *by, *keys, "shared_iv", "own_iv"]))
    out = inter[cols + ["value"]].merge(base[base["seed"].notna()], on=keys, how="inner")
    # a seed-free baseline (a retrieval task evaluating the pretrained encoder itself) pairs with every seed
    free = base[base["seed"].isna()].drop(columns="seed")
    if not free.empty:
        out = pd.concat([out, inter[cols + ["value"]].merge(free, on=[k for k in keys if k != "seed"],
                                                            how="inner")], ignore_index=True)
    out["delta"] = out["value"] - out["baseline"]
    # item-sampling variance of the delta where languages share items: both sides read the same items, and their
    # variances are added (as if the two models' errors were unrelated; related errors make it smaller)
    out["item_var"] = out["shared_iv"] + out["baseline_iv"]
    return out.reset_index(drop=True)


def summarize(effects: Any, by: Sequence[str], value: str = "delta") -> Any:
    """Per group: the mean over non-English languages of ``value`` (seed-averaged per language) with its 95%
    interval over languages, seeds and shared items (:func:`_crossed`), the seed sd of that mean, the English
    value, and the counts."""
    import pandas as pd

    rows = []
    for key, g in effects.groupby(list(by), dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        zs = g[g["lang"] != "en"]
        per_lang = zs.groupby("lang")[value].mean()
        per_seed = zs.groupby("seed", dropna=False)[value].mean()
        lo, hi = _crossed(zs, value)
        en = g[g["lang"] == "en"][value]
        rows.append({**dict(zip(by, key)), "mean": float(per_lang.mean()) if len(per_lang) else math.nan,
                     "ci_lo": lo, "ci_hi": hi, "seed_sd": float(per_seed.std()) if len(per_seed) > 1 else math.nan,
                     "english": float(en.mean()) if len(en) else math.nan, "n_languages": len(per_lang),
                     "n_seeds": int(g["seed"].nunique())})
    return pd.DataFrame(rows).round(2)


# The column that holds the shared-item variance of each kind of value a claim averages
ITEM_VAR_OF = {"delta": "item_var", "value": "shared_iv", "score": "shared_iv"}


def _crossed(frame: Any, value: str, unit: str | Sequence[str] = "lang",
             item_var: str | None = None) -> tuple[float, float]:
    """The 95% interval over ``unit`` (languages), seeds and shared items of the mean of ``value`` in ``frame``'s
    rows (:func:`xlt_utils.analysis.crossed_interval`). ``item_var`` names the column of each row's shared-item
    variance (by default the one :data:`ITEM_VAR_OF` gives for ``value``, where the frame has it); with
    (target, language) units each target's items are a stratum of their own."""
    units = frame[unit] if isinstance(unit, str) else list(zip(*(frame[c] for c in unit)))
    seeds = frame["seed"] if "seed" in frame.columns else None
    col = item_var or ITEM_VAR_OF.get(value)
    iv = frame[col].to_numpy() if col in frame.columns else None
    # each target task has its own test items: their errors are independent across targets
    strata = list(frame["target_task"]) if not isinstance(unit, str) and "target_task" in unit else None
    return crossed_interval(frame[value].to_numpy(), list(units), seeds, item_var=iv, strata=strata)


def by_seed_lang(frame: Any, value: str = "delta") -> Any:
    """``value`` averaged per (seed, language) over the non-English rows (seed ``-`` where a frame has none)."""
    zs = frame[frame["lang"] != "en"]
    seed = zs["seed"].astype(object).where(zs["seed"].notna(), "-") if "seed" in zs.columns else "-"
    return zs.assign(seed=seed).groupby(["seed", "lang"])[value].mean()


def paired_difference(a: Any, b: Any, value: str = "delta", one_language: bool = False) -> dict[str, float]:
    """Mean over the non-English languages both frames have of (``a`` − ``b``) in ``value``, paired by seed where
    both sides have the same seeds (otherwise each language's seed means), with its interval over languages,
    seeds and shared items. Deltas against the same baseline share it, so the items of a difference of deltas
    are those of the two arms' own scores (``shared_iv``).

    ``one_language``: the caller's claim may be about a single language (rq5's most distant targets); when only
    one is there, the interval is over its seeds and its own items (``own_iv``, shared or not), and
    ``n_item_known`` says whether the rows recorded their test-set size (otherwise the items add nothing)."""
    d = (by_seed_lang(a, value) - by_seed_lang(b, value)).dropna()
    one = one_language and len({lang for _, lang in d.index}) == 1
    col = "own_iv" if one else "shared_iv"
    col = col if col in a.columns and col in b.columns else None
    iv = (by_seed_lang(a, col) + by_seed_lang(b, col)).reindex(d.index) if col else None
    if d.empty:  # no shared seeds (e.g. one side seed-free): compare each language's seed means
        pa = a[a["lang"] != "en"].groupby("lang")[value].mean()
        pb = b[b["lang"] != "en"].groupby("lang")[value].mean()
        d = (pa - pb).dropna()
        d.index = [("-", lang) for lang in d.index]
        if col:
            iv = (a[a["lang"] != "en"].groupby("lang")[col].mean()
                  + b[b["lang"] != "en"].groupby("lang")[col].mean()).reindex([lang for _, lang in d.index])
            iv.index = d.index
    out = seed_lang_summary(d, iv, one_unit=one)
    out["n_item_known"] = bool(iv is not None and len(iv) and (iv.reindex(d.index).fillna(0) > 0).all())
    return out


def seed_lang_summary(d: Any, item_var: Any = None, one_unit: bool = False) -> dict[str, float]:
    """Mean over languages of each language's seed mean of ``d`` (a series indexed by (seed, language), as
    :func:`by_seed_lang` returns), with its interval over languages, seeds and (``item_var``, a series on the same
    index) shared items; ``one_unit`` as in :func:`xlt_utils.analysis.crossed_interval`."""
    d = d.dropna()
    seeds, langs = zip(*d.index) if len(d) else ((), ())
    per_lang = d.groupby(list(langs)).mean() if len(d) else d
    iv = item_var.reindex(d.index).to_numpy() if item_var is not None else None
    lo, hi = crossed_interval(d.to_numpy(), list(langs), list(seeds), item_var=iv, one_unit=one_unit)
    return {"estimate": float(per_lang.mean()) if len(per_lang) else math.nan, "ci_lo": lo, "ci_hi": hi,
            "n_languages": len(per_lang)}


# ---------------------------------------------------------------------------------------------- floors


def chance_level(task_name: str, n_candidates: float | None = None) -> float:
    """The expected score (points) of guessing on a target's primary metric: 100 / labels for accuracy on a
    (pair) classification target, 100 / choices for accuracy on a multiple-choice target (its ``num_choices``:
    XCOPA 2), 100 / candidates for retrieval accuracy (each sentence is matched among the ``n_candidates`` of its
    test set), NaN where guessing has no fixed score (tagging, span QA, BUCC F1, mAP...)."""
    from xlt_utils.results import primary_metric
    from xlt_utils.tasks import get_task

    task = get_task(task_name)
    metric = primary_metric(task_name)
    if task.format in ("classification", "pair_classification") and metric == "accuracy" and task.labels:
        return 100.0 / len(task.labels)
    if task.format == "multiple_choice" and metric == "accuracy" and task.options.get("num_choices"):
        return 100.0 / float(task.options["num_choices"])
    if task.format == "retrieval" and metric == "accuracy" and n_candidates:
        return 100.0 / float(n_candidates)
    return math.nan


def _against(estimate: float, lo: float, hi: float, chance: float) -> str:
    if math.isnan(chance):
        return "no chance level"
    if math.isnan(lo) or math.isnan(hi):
        return "above chance" if estimate > chance else "at or below chance"  # no interval: the number alone
    return "above chance" if lo > chance else ("below chance" if hi < chance else "at chance")


def floor_table(df: Any) -> Any:
    """Is there anything to transfer? Per (model, target) the no-intermediate baseline (full model) against the
    target's chance level (:func:`chance_level`): its English score (mean over seeds; interval: the seed spread
    plus the test set's item sampling error, :func:`xlt_utils.analysis.seed_interval`) and
    its zero-shot score (mean over languages of each language's seed mean, interval over languages and seeds).

    Where a target's baseline is at chance zero-shot, a harm from an intermediate task would have to push the
    score below guessing to show, and an *inconclusive* verdict about it does not mean a small effect: the baseline
    itself shows no measurable transfer. ``english``/``zero_shot`` say ``above chance``, ``at chance``
    (the interval holds chance), ``below chance``, or ``no chance level``.
    """
    import pandas as pd

    ev = scores(df)
    base = ev[(ev["intermediate_task"] == "none") & (ev["variant"] == "full")]
    rows = []
    for (model, target), g in base.groupby(["model", "target_task"], sort=True):
        z, chance, z_against = zero_shot_vs_chance(g, target)
        en = g[g["lang"] == "en"]
        en_seed = en.assign(seed=en["seed"].astype(object).where(en["seed"].notna(), "-")).groupby("seed")["value"]
        en_values = en_seed.mean()
        en_mean = float(en_values.mean()) if len(en_values) else math.nan
        n_en = en["n_examples"].dropna() if "n_examples" in en.columns else en["value"].iloc[:0]
        if len(en_values) > 1 or (len(en_values) == 1 and len(n_en)):
            # the spread over seeds and the test set's own sampling error (a Wald interval with one seed)
            _, en_lo, en_hi = seed_interval(list(en_values), float(n_en.iloc[0]) if len(n_en) else None)
        else:
            en_lo = en_hi = math.nan
        rows.append({"model": model, "target_task": target, "chance": round(chance, 2),
                     "english": round(en_mean, 2), "english_ci": _interval(en_lo, en_hi),
                     "english_vs_chance": (_against(en_mean, en_lo, en_hi, chance) if len(en_values)
                                           else "no English rows"),
                     "zero_shot": round(z["estimate"], 2), "zero_shot_ci": _interval(z["ci_lo"], z["ci_hi"]),
                     "zero_shot_vs_chance": z_against,
                     "n_languages": z["n_languages"], "n_seeds": int(g["seed"].nunique())})
    return pd.DataFrame(rows, columns=["model", "target_task", "chance", "english", "english_ci", "english_vs_chance",
                                       "zero_shot", "zero_shot_ci", "zero_shot_vs_chance", "n_languages", "n_seeds"])


def zero_shot_vs_chance(frame: Any, target: str) -> tuple[dict[str, float], float, str]:
    """The zero-shot score of one arm's rows (``frame``: one model, one target, one condition; any seeds) against
    the target's chance level: the :func:`seed_lang_summary` of its non-English scores, the chance level
    (:func:`chance_level`; retrieval: 100 / the median test-set size), and ``above chance`` / ``at chance`` /
    ``below chance`` / ``no chance level`` / ``no zero-shot rows``."""
    import pandas as pd

    zs_rows = frame[frame["lang"] != "en"]
    n = zs_rows["n_examples"].median() if "n_examples" in zs_rows.columns and len(zs_rows) else None
    chance = chance_level(target, None if n is None or pd.isna(n) else float(n))
    iv = by_seed_lang(frame, "shared_iv") if "shared_iv" in frame.columns else None
    z = seed_lang_summary(by_seed_lang(frame, "value"), iv)
    label = _against(z["estimate"], z["ci_lo"], z["ci_hi"], chance) if z["n_languages"] else "no zero-shot rows"
    return z, chance, label


AT_FLOOR = ("at chance", "below chance", "at or below chance")


def _interval(lo: float, hi: float) -> str:
    return "n/a" if math.isnan(lo) or math.isnan(hi) else f"[{lo:.2f}, {hi:.2f}]"


def floor_note(df: Any) -> str:
    """One Markdown paragraph naming the targets whose no-intermediate baseline is not above chance, in English
    or zero-shot (empty when there are none, or no baseline to judge)."""
    try:
        floors = floor_table(df)
    except XLTError:
        return ""
    if floors.empty:
        return ""

    def names(frame: Any) -> str:
        by_target = frame.groupby("target_task", sort=True)["model"].apply(lambda m: ", ".join(sorted(m)))
        return "; ".join(f"{t} ({m})" for t, m in by_target.items())

    judged = floors[floors["zero_shot_vs_chance"] != "no chance level"]
    not_learnt = judged[judged["english_vs_chance"].isin(AT_FLOOR)]
    floor = judged[judged["zero_shot_vs_chance"].isin(AT_FLOOR)]
    parts = []
    if len(not_learnt):
        parts.append(f"Not learnt in English by the no-intermediate baseline (not above chance): {names(not_learnt)}.")
    if len(floor):
        parts.append(f"Zero-shot at or below chance without an intermediate task: {names(floor)}.")
    if not parts:
        return ""
    return ("**Floors** (`studies.floor_table`). " + " ".join(parts) + " Where the baseline is at chance, a harm "
            "would have to push the score below guessing to show, and an *inconclusive* verdict on that target does "
            "not mean a small effect: the baseline itself shows no measurable transfer.")


# ---------------------------------------------------------------------------------------------- claims


def claim(text: str, source: str, estimate: float, lo: float, hi: float, expected_sign: int = 1,
          unit: str = "points", note: str = "", two_sided: bool = False,
          why_no_interval: str = "too few languages") -> dict[str, Any]:
    """One claims-table row. ``two_sided``: the claim is "differs", supported when the interval excludes 0 on
    either side (never *not supported*: no difference cannot be shown this way). ``why_no_interval`` is shown
    when the interval is undefined."""
    if two_sided:
        v = "inconclusive" if math.isnan(lo) or math.isnan(hi) or lo <= 0 <= hi else "supported"
    else:
        v = verdict(lo, hi, expected_sign)
    ours = f"{estimate:+.2f} {unit}" if not math.isnan(estimate) else "n/a"
    interval = f"[{lo:+.2f}, {hi:+.2f}]" if not (math.isnan(lo) or math.isnan(hi)) else f"n/a ({why_no_interval})"
    if (v == "inconclusive" and unit == "points" and not (math.isnan(lo) or math.isnan(hi))
            and max(abs(lo), abs(hi)) < NEGLIGIBLE_POINTS):
        note = f"{note}; {NEGLIGIBLE_NOTE}" if note else NEGLIGIBLE_NOTE
    return {"claim": text, "source": source, "ours": ours, "95% interval": interval, "verdict": v, "note": note}


def ratio_claim(text: str, source: str, ratio: float, expected_above_one: bool = True,
                note: str = "") -> dict[str, Any]:
    """A claim about a measured cost ratio (single timings): decided only beyond the timing noise
    (:data:`TIMING_NOISE`)."""
    if math.isnan(ratio):
        v = "inconclusive"
    elif (ratio > 1 + TIMING_NOISE) == expected_above_one and abs(ratio - 1) > TIMING_NOISE:
        v = "supported"
    elif abs(ratio - 1) <= TIMING_NOISE:
        v = "inconclusive" if expected_above_one else "supported"
    else:
        v = "not supported"
    return {"claim": text, "source": source, "ours": f"{ratio:.2f}x" if not math.isnan(ratio) else "n/a",
            "95% interval": f"timing noise ±{100 * TIMING_NOISE:.0f}%", "verdict": v, "note": note}


def claims_frame(rows: Iterable[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(list(rows), columns=["claim", "source", "ours", "95% interval", "verdict", "note"])


def decided_counts(claims: Any) -> tuple[int, int, int]:
    """(claims judged, claims decided, claims at a floor) as :func:`evidence` counts them."""
    notes = claims["note"].fillna("").astype(str)
    floor = notes.str.startswith(FLOOR_NOTE)
    decided = ((claims["verdict"] != "inconclusive") | notes.str.contains(NEGLIGIBLE_NOTE, regex=False)) & ~floor
    return int((~floor).sum()), int(decided.sum()), int(floor.sum())


def evidence(claims: Any, n_seeds: int) -> str:
    """How strong the evidence is: *strong* when every claim is decided with ≥3 seeds, *moderate* when at least
    half are decided, *weak* otherwise (one seed counts as weak at best moderate).

    Decided: *supported* or *not supported*, or inconclusive with an interval that rules out a difference of
    :data:`NEGLIGIBLE_POINTS` or more (evidence of no difference that matters). Claims at a floor (nothing left
    to measure, :func:`rq3_claims`) are left out of the count."""
    if claims.empty:
        return "none"
    judged, n_decided, _ = decided_counts(claims)
    if not judged:
        return "none (every claim at a floor)"
    decided = n_decided / judged
    if decided == 1 and n_seeds >= 3:
        return "strong"
    if decided >= 0.5:
        return "weak to moderate (one seed)" if n_seeds == 1 else "moderate"
    return "weak"


def answer(claims: Any, df: Any, config: Any) -> Any:
    """The written answer: the study's question, each claim's verdict with our number, and how strong the evidence
    is (Markdown for the notebook). Generated from the claims table, so it always says what the numbers say."""
    from IPython.display import Markdown

    question = QUESTIONS[config.study]
    n_seeds = int(scores(df)["seed"].dropna().nunique())
    lines = [f"**Question.** {question}", ""]
    if config.study in SCOPE:
        lines += [f"**Scope.** {SCOPE[config.study]}", ""]
    lines += [(f"**Answer from the `{config.profile}` profile** ({n_seeds} seed(s); evidence: "
               f"**{evidence(claims, n_seeds)}**):"), ""]
    if n_seeds == 1:
        lines += [("One seed: an interval holds the languages' and the test items' spread, not the run-to-run "
                   "variation a second seed would show; the `embedded-full` profile runs five seeds on the real-data "
                   "arms."), ""]
    for r in claims.to_dict("records"):
        lines.append(f"- *{r['verdict']}*: {r['claim']} — ours {r['ours']}, {r['95% interval']}"
                     + (f" ({r['note']})" if r["note"] else ""))
    if len(claims) > 1:
        judged, decided, floor = decided_counts(claims)
        at_floor = f", {floor} at a floor and not counted" if floor else ""
        lines += ["", (f"_Evidence counts {decided} of {judged} claims as decided (supported, not supported, or an "
                       f"interval within ±{NEGLIGIBLE_POINTS:g} point){at_floor}. Each interval is 95% for its own "
                       f"claim, with no correction for the {len(claims)} claims made together: where nothing "
                       "differed, about one claim in 20 would still be decided by chance, so read a lone decided "
                       "claim among many inconclusive ones with care._")]
    floors = floor_note(df)
    if floors:
        lines += ["", floors]
    partial = unfinished_note(df, config)
    if partial:
        lines += ["", partial]
    if config.profile in ("smoke",):
        lines += ["", "_Smoke settings: a few training steps; these numbers test the pipeline, not the question._"]
    return Markdown("\n".join(lines))


def unfinished_note(df: Any, config: Any) -> str:
    """A warning line when the results cover only part of the study's grid (a grid still running, or run in
    parts of which only some bundles are imported); empty when the grid is complete or its size is unknown."""
    from xlt_utils.results import grid_size

    if "run_id" not in df.columns:
        return ""
    cells, have = grid_size(config.study, config.profile), int(df["run_id"].nunique())
    if cells is None or have >= cells:
        return ""
    return (f"**Partial results:** {have} of the grid's {cells} cells have results; every number above reads only "
            "those, and the claims about what is missing (other intermediate tasks, seeds, worlds) are not made yet.")


# ---------------------------------------------------------------------------------------------- paper


# Published numbers (final AACL 2020 version unless stated). Sources: the paper's abstract (arXiv 2005.13013) and
# the google-research/multilingual-t5 README's table citing it (test; XNLI/PAWS-X accuracy, the rest F1).
PAPER_REFERENCE = [
    ("XTREME average, best intermediate task per target", "XLM-R large", "+5.4 over XLM-R large",
     "Phang et al. 2020, abstract (final)"),
    ("best intermediate tasks", "XLM-R large", "MNLI, SQuAD, HellaSwag", "Phang et al. 2020, abstract (final)"),
    ("XNLI accuracy", "X-STILTs / XLM-R", "80.4 / 79.2 (+1.2)", "mT5 README citing Phang et al."),
    ("PAWS-X accuracy", "X-STILTs / XLM-R", "87.7 / 86.4 (+1.3)", "mT5 README citing Phang et al."),
    ("PAN-X NER F1", "X-STILTs / XLM-R", "64.7 / 65.4 (-0.7)", "mT5 README citing Phang et al."),
    ("XQuAD F1", "X-STILTs / XLM-R", "77.2 / 76.6 (+0.6)", "mT5 README citing Phang et al."),
    ("MLQA F1", "X-STILTs / XLM-R", "72.3 / 71.6 (+0.7)", "mT5 README citing Phang et al."),
    ("TyDiQA-GoldP F1", "X-STILTs / XLM-R", "76.0 / 65.1 (+10.9)", "mT5 README citing Phang et al."),
    ("continued multilingual MLM / MT intermediate data", "XLM-R large", "not consistently better",
     "Phang et al. 2020 (final)"),
    ("multi-task intermediate training (all tasks)", "XLM-R large", "small extra gains (v1: no significant gain)",
     "Phang et al. 2020 (final)"),
]


def paper_reference() -> Any:
    """The paper's published numbers that this study is compared against, with their sources."""
    import pandas as pd

    return pd.DataFrame(PAPER_REFERENCE, columns=["quantity", "model", "published", "source"])


# Per-task test scores (X-STILTs, XLM-R large), the mT5 README citing Phang et al. (reference/benchmark-facts.md
# section 7): each is XTREME's task score, the mean over the task's test languages, English included.
PAPER_TASK_SCORES = {"xnli": (80.4, 79.2), "pawsx": (87.7, 86.4), "panx": (64.7, 65.4), "xquad": (77.2, 76.6),
                     "mlqa": (72.3, 71.6), "tydiqa": (76.0, 65.1)}
COMPARISON_COLUMNS = ["model", "target_task", "X-STILTs task (ours)", "chosen on", "X-STILTs published",
                      "X-STILTs ours", "XLM-R published", "XLM-R ours", "gain published", "gain ours",
                      "gain 95% interval", "published gain in interval", "languages", "n_languages", "n_seeds",
                      "note"]
# What a reader must know before comparing a row (reference/benchmark-facts.md, protocol risks)
PAPER_TASK_NOTES = {
    "tydiqa": "the published +10.9 may not be English-only transfer: jiant's downloader wrote the all-language "
              "GoldP train file for every TyDiQA language (xtreme#95); ours trains on English only",
}
COMPARISON_LANGUAGES = ("published", "all")


def published_languages(task: str) -> tuple[str, ...] | None:
    """The test languages XTREME averages ``task`` over, the set the published score is a mean of, where XTREME-R
    evaluates more (PAN-X 40 of 48, UD-POS 33 of 38, XQuAD 11 of 12, Tatoeba 36 of 41); ``None`` where both
    benchmarks use the same languages (XNLI, PAWS-X, MLQA, TyDiQA) or the task has no XTREME set."""
    from xlt_utils.tasks import get_task

    sets = get_task(task).options.get("language_sets") or {}
    return tuple(sets["xtreme"]) if "xtreme" in sets else None


def paper_comparison(df: Any, languages: str = "published") -> Any:
    """Our numbers beside the paper's per-task test scores (the real ``xtreme`` world only; the embedded worlds'
    tasks are analogs, so the frame is empty there).

    Per model and target: the task score as XTREME computes it (mean over the test languages, English included;
    per seed, then over seeds) without an intermediate task and with the X-STILTs intermediate task, which is chosen
    per target on the **English dev** score of the target runs (mean over seeds), never on test; the gain with its
    95% interval over languages, seeds and shared items, and whether the published gain lies inside it. A target
    without English dev rows of its runs has no pick and no row (:func:`xlt_utils.selection.pick`).

    Args:
        languages: ``"published"`` (default) averages over the languages the published score averages (XTREME's
            set: PAN-X 40 and XQuAD 11 even where the runs evaluated XTREME-R's 48 and 12), so that the numbers
            are comparable; ``"all"`` over every language the runs evaluated. The ``languages`` column says which,
            and names the published languages the runs lack (then the score is not comparable).
    """
    import pandas as pd

    if languages not in COMPARISON_LANGUAGES:
        raise XLTError(f"unknown languages {languages!r} for the paper comparison; valid: "
                       f"{', '.join(COMPARISON_LANGUAGES)}")
    sc = scores(df)
    sc = sc[(sc["world"] == "xtreme") & sc["target_task"].isin(list(PAPER_TASK_SCORES))
            & (sc["variant"] == "full")] if not sc.empty else sc
    if sc.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    dev = selection.dev_rows(df[df["world"] == "xtreme"])
    eff = paired_effects(df)
    rows = []
    for (m, t), g in sc.groupby(["model", "target_task"]):
        ran = set(g["lang"])
        pub = published_languages(t)
        if languages == "published" and pub is not None:
            g = g[g["lang"].isin(pub)]
            missing = sorted(set(pub) - ran)
            label = f"XTREME's {len(pub)}" + (f" (of {len(ran)} run)" if len(ran) > len(pub) else "")
        else:
            missing, label = [], f"all {len(ran)} run"
        if missing:
            named = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
            label += f"; missing {len(missing)} published ({named}): not comparable"
        task_score = g.groupby(["intermediate_task", "seed"])["value"].mean().groupby("intermediate_task").mean()
        if "none" not in task_score.index or len(task_score) < 2:
            continue
        tried = task_score.drop(["none", *(set(task_score.index) & controls_in(g))])
        if tried.empty:
            continue
        chosen = selection.pick(dev[(dev["model"] == m) & (dev["target_task"] == t)], "intermediate_task",
                                tried.index)
        if chosen is None:  # never a pick on test
            continue
        how = "English dev"
        e = eff[(eff["model"] == m) & (eff["target_task"] == t) & (eff["intermediate_task"] == chosen)]
        e = e[(e["variant"] == "full") & e["lang"].isin(set(g["lang"]))]
        lo, hi = _crossed(e, "delta")
        pub_x, pub_r = PAPER_TASK_SCORES[t]
        gain = float(task_score[chosen] - task_score["none"])
        rows.append({"model": m, "target_task": t, "X-STILTs task (ours)": chosen, "chosen on": how,
                     "X-STILTs published": pub_x, "X-STILTs ours": round(float(task_score[chosen]), 2),
                     "XLM-R published": pub_r, "XLM-R ours": round(float(task_score["none"]), 2),
                     "gain published": round(pub_x - pub_r, 1), "gain ours": round(gain, 2),
                     "gain 95% interval": f"[{lo:+.2f}, {hi:+.2f}]" if not (math.isnan(lo) or math.isnan(hi))
                     else "n/a",
                     "published gain in interval": bool(lo <= pub_x - pub_r <= hi) if not math.isnan(lo) else None,
                     "languages": label, "n_languages": int(g["lang"].nunique()),
                     "n_seeds": int(g["seed"].nunique()), "note": PAPER_TASK_NOTES.get(t, "")})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


PAPER_BEST = {"mnli", "squad", "hellaswag"}


def is_control(intermediate_task: str) -> bool:
    """Whether an intermediate task is a control rather than a task (the shuffled-label MNLI-like: it asks
    whether the labels matter, so it is never a candidate for "the best intermediate task")."""
    from xlt_utils.tasks import get_task

    if intermediate_task == "none":
        return False
    try:
        return bool(get_task(intermediate_task).options.get("shuffle_labels"))
    except XLTError:  # a name no world registers (hand-made rows): not a known control
        return False


def controls_in(frame: Any) -> set[str]:
    """The intermediate tasks of ``frame`` that are controls (:func:`is_control`), each name looked up once."""
    return {t for t in frame["intermediate_task"].dropna().unique() if is_control(t)}


MATCH_KEYS = ("model", "intermediate_task", "seed")


def passed_training(training: Any) -> Any:
    """Per (model, intermediate task, seed): the optimizer step of the intermediate checkpoint passed on to target
    fine-tuning and the examples seen up to it (``training.csv``'s ``passed_step`` and ``passed_examples``); empty
    when the training rows do not record them."""
    import pandas as pd

    cols = [*MATCH_KEYS, "passed_step", "passed_examples"]
    if training is None or training.empty or not {"phase", "passed_step"} <= set(training.columns):
        return pd.DataFrame(columns=cols)
    t = training[training["phase"] == "intermediate"]
    return t[cols].drop_duplicates(subset=list(MATCH_KEYS)).reset_index(drop=True)


def unmatched(passed: Any, model: str, task: str, control: str, seeds: Iterable[Any]) -> str:
    """Why a control is not matched to its task over ``seeds`` (the seeds the comparison pairs; empty when it is
    matched): per seed, both must pass on a checkpoint at the same optimizer step having seen the same number of
    examples (within 1%: a last short batch). A side not recorded, or recorded without a step or an example count,
    counts as not matched."""
    import pandas as pd

    p = passed[passed["model"] == model].to_dict("records") if not passed.empty else []
    recorded = {(r["intermediate_task"], r["seed"]): r for r in p}
    if not recorded:
        return "steps not recorded (no training.csv rows with passed_step)"
    problems = []
    for s in sorted(seeds):
        a, b = recorded.get((task, s)), recorded.get((control, s))
        s = int(s) if float(s).is_integer() else s  # seeds read back as floats: "seed 13", not "seed 13.0"
        if a is None or b is None:
            problems.append(f"seed {s}: {'task' if a is None else 'control'} not recorded")
            continue
        if any(pd.isna(r[k]) for r in (a, b) for k in ("passed_step", "passed_examples")):
            problems.append(f"seed {s}: step or examples not recorded")
            continue
        ex_a, ex_b = float(a["passed_examples"]), float(b["passed_examples"])
        if int(a["passed_step"]) != int(b["passed_step"]):
            problems.append(f"seed {s}: step {int(b['passed_step'])} vs {int(a['passed_step'])}")
        elif abs(ex_a - ex_b) > 0.01 * max(ex_a, ex_b):
            problems.append(f"seed {s}: {int(ex_b)} vs {int(ex_a)} examples")
    return "; ".join(problems)


def control_claims(eff: Any, passed: Any = None, training: Any = None) -> list[dict[str, Any]]:
    """Per model and shuffled-label control (``<task>_shuffled``) trained beside its task: does the task's effect
    come from its labels? The zero-shot effect of the task minus the control's, paired by target, language and
    seed, with its interval over (target, language) pairs, seeds and shared items; two-sided: a task can help or
    hurt more than its control.

    A control answers that question only when it is matched to its task: the same inputs, and the encoders passed
    on trained for the same optimizer steps over the same number of examples (``passed``:
    :func:`passed_training`). An unmatched pair keeps its numbers but is refused as a control comparison: its
    verdict is *inconclusive* and the note says which seeds differ (a shorter-trained control mixes "labels" with
    "training length"). Where ``training`` rows say the task and its control ran on different CPUs, the note says
    so."""
    import pandas as pd

    rows = []
    keys = ["target_task", "lang", "seed"]
    passed = passed_training(None) if passed is None else passed
    controls = eff["intermediate_task"].isin(controls_in(eff))
    for (m, ctrl), c in eff[controls].groupby(["model", "intermediate_task"]):
        task = ctrl.removesuffix("_shuffled")
        real = eff[(eff["model"] == m) & (eff["intermediate_task"] == task)]
        if task == ctrl or real.empty:
            continue
        both = pd.merge(real[keys + ["delta", "shared_iv"]], c[keys + ["delta", "shared_iv"]], on=keys,
                        suffixes=("", "_control"))
        both = both[both["lang"] != "en"].assign(diff=lambda d: d["delta"] - d["delta_control"],
                                                 iv=lambda d: d["shared_iv"] + d["shared_iv_control"])
        if both.empty:
            continue
        lang_mean = both.groupby(["target_task", "lang"])["diff"].mean()
        lo, hi = _crossed(both, "diff", unit=["target_task", "lang"], item_var="iv")
        n_t = both["target_task"].nunique()
        why = unmatched(passed, m, task, ctrl, both["seed"].dropna().unique())
        r = claim(f"{task}'s effect on {m} comes from its labels: {task} minus its shuffled-label control "
                  f"{ctrl}, averaged over {n_t} target(s)", "design: shuffled-label control",
                  float(lang_mean.mean()), lo, hi, two_sided=True,
                  note="matched: the same inputs, labels shuffled, the encoders passed on at the same step after "
                       "the same examples; supported when the interval excludes 0 (either side)")
        if why:
            r.update(verdict="inconclusive",
                     note=f"not matched, so not a control comparison (control vs task passed step: {why})")
        elif r["verdict"] == "supported":  # two-sided: say which way the labels moved the transfer
            r["note"] += (f"; direction: {task} transfers {'better' if lang_mean.mean() > 0 else 'worse'} than its "
                          "control, so its real labels " + ("help" if lang_mean.mean() > 0 else "hurt"))
        r["note"] += _cpu_note(training, m, task, ctrl, both["seed"].dropna().unique())
        rows.append(r)
    return rows


def _short(task: str) -> str:
    return task.removeprefix("synth_").removesuffix("_v1")


AUX_MARK = " [aux "  # results.arm_names: "<task> [aux <objective>]"


def counterpart(arm: str, tasks: set[str]) -> tuple[str, str] | None:
    """What one of the paper's further arms extends, among ``tasks``: ``("aux", task)`` for a task trained with an
    auxiliary objective, ``("translated", task)`` for a machine-translated copy of an English task
    (``rt_sentiment_es`` of ``rt_sentiment``: the registry's train language is the suffix); ``None`` otherwise (a
    multi-task arm is compared with its components, :func:`counterpart_claims`)."""
    from xlt_utils.tasks import get_task

    if AUX_MARK in arm:
        base = arm.split(AUX_MARK)[0]
        return ("aux", base) if base in tasks else None
    base, _, lang = arm.rpartition("_")
    if base in tasks and lang:
        try:
            return ("translated", base) if get_task(arm).train_language == lang else None
        except XLTError:
            return None
    return None


def _further_arms(tasks: set[str]) -> set[str]:
    """The multi-task and machine-translated arms among ``tasks``: not single English tasks, so never candidates for
    "English intermediate training improves transfer" (their own claims set them against what they extend)."""
    from xlt_utils.multitask import is_multitask

    return {a for a in tasks if (is_multitask(a) and AUX_MARK not in a)
            or (counterpart(a, tasks) or ("",))[0] == "translated"}


def counterpart_claims(eff: Any, dev: Any, training: Any = None) -> list[dict[str, Any]]:
    """The paper's further arms against the single task they extend, per model and target, paired by seed and
    language: multi-task against its best component chosen on English dev (paper: small extra gains), a task with
    an auxiliary objective against the task alone (paper: continued MLM not consistently better), machine-
    translated data against its English original (paper: not consistently better). Where the two intermediate
    runs trained for other steps (``training``: a multi-task run trains for its components' steps together), the
    note gives both counts."""
    from xlt_utils.multitask import components, is_multitask

    rows = []
    for (m, t), g in eff.groupby(["model", "target_task"]):
        have = set(g["intermediate_task"])
        for arm in sorted(have):
            kind = counterpart(arm, have)
            if kind is not None:
                base = kind[1]
                text = (f"{arm} beats {base} alone" if kind[0] == "aux"
                        else f"{arm} (machine-translated) beats the English {base}")
                ref = ("paper: continued MLM not consistently better" if kind[0] == "aux"
                       else "paper: translated data not consistently better")
            elif is_multitask(arm) and AUX_MARK not in arm:
                parts = [p for p in components(arm) if p in have]
                base = selection.pick(dev[(dev["model"] == m) & (dev["target_task"] == t)], "intermediate_task",
                                      parts) if parts else None
                if base is None:
                    if parts:  # components ran, but no English dev score to choose one on (retrieval): say so
                        rows.append(claim(f"multi-task {arm} beats its best single task on {t} ({m})",
                                          "paper: multi-task small extra gains", math.nan, math.nan, math.nan,
                                          why_no_interval="no English dev score to choose the component on",
                                          note="the component is chosen on English dev, never on test"))
                    continue
                text, ref = f"multi-task {arm} beats its best single task ({base}, chosen on English dev)", \
                    "paper: multi-task small extra gains"
            else:
                continue
            a, b = g[g["intermediate_task"] == arm], g[g["intermediate_task"] == base]
            d = paired_difference(a, b)
            seeds = set(a["seed"].dropna()) & set(b["seed"].dropna())
            rows.append(claim(f"{text} on {t} ({m})", ref, d["estimate"], d["ci_lo"], d["ci_hi"],
                              note="zero-shot languages, paired by seed" + _steps_note(training, m, arm, base, seeds)
                              + _cpu_note(training, m, arm, base, seeds)))
    return rows


def _intermediate_rows(training: Any, model: str, arm: str, seeds: Iterable[Any]) -> Any:
    """``training``'s rows of ``arm``'s intermediate and target runs for ``model`` at ``seeds`` (none without the
    columns)."""
    need = {"phase", "model", "intermediate_task", "seed"}
    if training is None or training.empty or not need <= set(training.columns):
        return None
    return training[(training["model"] == model) & (training["intermediate_task"] == arm)
                    & training["seed"].isin(list(seeds))]


def _span(values: Iterable[Any]) -> str:
    v = sorted({int(x) for x in values})
    return "not recorded" if not v else str(v[0]) if len(v) == 1 else f"{v[0]}–{v[-1]}"


def _steps_note(training: Any, model: str, arm: str, base: str, seeds: Iterable[Any]) -> str:
    """Where ``arm``'s intermediate runs (at the paired ``seeds``) took other optimizer steps than ``base``'s (a
    multi-task run trains for its components' steps together): both counts, or their ranges where seeds differ,
    so that the comparison is not read as matched; "" where they match or no step was recorded."""
    seeds = list(seeds)
    steps = {}
    for a in (arm, base):
        rows = _intermediate_rows(training, model, a, seeds)
        if rows is None or "steps" not in rows.columns:
            return ""
        steps[a] = rows.loc[rows["phase"] == "intermediate", "steps"].dropna()
    if steps[arm].empty and steps[base].empty or set(steps[arm]) == set(steps[base]):
        return ""
    return f"; optimizer steps differ: {_span(steps[arm])} intermediate steps against {_span(steps[base])}"


def _cpu_note(training: Any, model: str, arm: str, base: str, seeds: Iterable[Any]) -> str:
    """Where the two arms' intermediate and target runs (at the paired ``seeds``) ran on different CPUs (``processor``
    of the training rows): which, since a run is not bit-exact across CPUs and the pairing by seed then also pairs
    two machines; "" where one CPU ran both or none was recorded."""
    cpus = {}
    for a in (arm, base):
        rows = _intermediate_rows(training, model, a, seeds)
        if rows is None or "processor" not in rows.columns:
            return ""
        cpus[a] = sorted(set(rows["processor"].dropna()))
    if not cpus[arm] or not cpus[base] or cpus[arm] == cpus[base]:
        return ""
    return (f"; ran on different CPUs ({arm}: {', '.join(cpus[arm])}; {base}: {', '.join(cpus[base])}), and a "
            "run is not bit-exact across CPUs")


def ranking_claims(eff: Any, dev: Any) -> list[dict[str, Any]]:
    """Per model: are the paper's best tasks (MNLI, SQuAD, HellaSwag or their analogs) better than the others? Both
    sides are chosen on English dev (the mean over targets of each task's dev score after target fine-tuning): the
    best of the paper's tasks that ran against the best of the other tasks (controls excluded); the claim is the
    zero-shot effect of the first minus the second, paired by (target, language, seed) over the targets both
    trained, with its interval (the gap to the runner-up). Made only where both sides ran; inconclusive where
    neither side helps (a ranking of harms says nothing about which tasks help most)."""
    import pandas as pd

    from xlt_utils.multitask import is_multitask

    rows = []
    controls = controls_in(eff)
    for m, g in eff.groupby("model"):  # per model: the models are trained on different sets of tasks
        g = g[~g["intermediate_task"].isin(controls)]
        # single tasks only: a multi-task arm ("a+b") holds the paper's tasks and others alike (its own claim, and
        # the best-per-target choice, take it)
        tasks = sorted(t for t in g["intermediate_task"].unique()
                       if not is_multitask(t) and counterpart(t, set(g["intermediate_task"])) is None)
        paper = [t for t in tasks if _short(t) in PAPER_BEST]
        other = [t for t in tasks if _short(t) not in PAPER_BEST]
        d = dev[(dev["model"] == m) & dev["intermediate_task"].isin(tasks)]
        # compare dev means over the targets every candidate trained on, so no task wins on an easier target
        common = set.intersection(*(set(h["target_task"]) for _, h in d.groupby("intermediate_task"))) \
            if not d.empty else set()
        d = d[d["target_task"].isin(common)]
        top, rest = selection.pick(d, "intermediate_task", paper), selection.pick(d, "intermediate_task", other)
        if top is None or rest is None:
            continue
        keys = ["target_task", "lang", "seed"]
        a, b = (g[(g["intermediate_task"] == t) & (g["lang"] != "en")] for t in (top, rest))
        both = pd.merge(a[keys + ["delta", "shared_iv"]], b[keys + ["delta", "shared_iv"]], on=keys,
                        suffixes=("", "_rest"))
        if both.empty:
            continue
        both = both.assign(gap=both["delta"] - both["delta_rest"], iv=both["shared_iv"] + both["shared_iv_rest"])
        lo, hi = _crossed(both, "gap", unit=["target_task", "lang"], item_var="iv")
        est = float(both.groupby(["target_task", "lang"])["gap"].mean().mean())
        helps = max(both["delta"].mean(), both["delta_rest"].mean()) > 0
        note = (f"chosen on English dev: {top} (best of the paper's {len(paper)}) against {rest} (best of the "
                f"other {len(other)}); their effects {both['delta'].mean():+.2f} and {both['delta_rest'].mean():+.2f}")
        r = claim(f"The best intermediate tasks are MNLI, SQuAD and HellaSwag ({m}): {top} beats {rest}",
                  "abstract", est, lo, hi, note=note)
        if not helps:
            r.update(verdict="inconclusive", note="neither helps: a ranking of harms, not of benefits; " + note)
        rows.append(r)
    return rows


def paper_claims(df: Any, training: Any = None) -> Any:
    """The paper's claims with our numbers and intervals: per model and target, the effect of the intermediate task
    chosen on the target runs' English dev score (:func:`xlt_utils.selection.pick`; controls, multi-task and
    translated arms are not candidates);
    each intermediate task's effect averaged over targets, controls included; each task against its shuffled-label
    control (:func:`control_claims`); whether the paper's best tasks rank first (:func:`ranking_claims`); and the
    English-vs-zero-shot gap. ``training``: the study's training rows (:func:`xlt_utils.results.load_training`),
    which say whether each control is matched to its task."""
    eff = paired_effects(df)
    controls = controls_in(eff)
    dev = selection.dev_rows(df)
    rows = []
    per = summarize(eff, ["model", "target_task", "intermediate_task"])
    per = per[~per["intermediate_task"].isin(controls | _further_arms(set(per["intermediate_task"])))]
    for (m, t), g in per.groupby(["model", "target_task"]):
        chosen = selection.pick(dev[(dev["model"] == m) & (dev["target_task"] == t)], "intermediate_task",
                                g["intermediate_task"])
        if chosen is None:
            rows.append(claim(f"English intermediate training improves zero-shot transfer on {t} ({m})",
                              "abstract: +5.4 avg (best per target)", math.nan, math.nan, math.nan,
                              why_no_interval="no English dev score to choose the task on",
                              note="the task is chosen on English dev, never on test"))
            continue
        best = g[g["intermediate_task"] == chosen].iloc[0]
        rows.append(claim(f"English intermediate training improves zero-shot transfer on {t} "
                          f"({m}; task chosen on English dev: {chosen})", "abstract: +5.4 avg (best per target)",
                          best["mean"], best["ci_lo"], best["ci_hi"],
                          note=f"of {len(g)} task(s), controls and the multi-task and translated arms excluded "
                               "(each has its own claim), the one with the best English dev score "
                               "after target fine-tuning (dev and test scores come from the same runs, so run-level "
                               "noise still biases the chosen task's effect upward)"))
    for (m, it), g in eff.groupby(["model", "intermediate_task"]):
        zs = g[g["lang"] != "en"]
        lang_mean = zs.groupby(["target_task", "lang"])["delta"].mean().reset_index()
        lo, hi = _crossed(zs, "delta", unit=["target_task", "lang"])
        n_t = lang_mean["target_task"].nunique()
        rows.append(claim(f"{it} improves zero-shot transfer of {m} averaged over its {n_t} target(s)",
                          "paper: MNLI/SQuAD/HellaSwag best", float(lang_mean["delta"].mean()), lo, hi,
                          note="(target, language) pairs, seeds and shared items"))
    rows += control_claims(eff, passed_training(training), training)
    rows += counterpart_claims(eff, dev, training)
    rows += ranking_claims(eff, dev)
    from xlt_utils.tasks import get_task

    sc = scores(df)
    # fine-tuned targets with an English score (a retrieval task's English side is the candidate language)
    trained = sc[sc["target_task"].map(lambda t: get_task(t).format != "retrieval")
                 & sc["target_task"].isin(sc.loc[sc["lang"] == "en", "target_task"].unique())]
    on = ["model", "target_task", "intermediate_task", "seed"]
    en = trained[trained["lang"] == "en"].groupby(on, dropna=False)["value"].mean().rename("en")
    gap = trained[trained["lang"] != "en"].join(en, on=on)
    gap = gap.assign(gap=gap["en"] - gap["value"])
    for m, g in gap.groupby("model"):  # per model, as every claim here
        lo, hi = _crossed(g, "gap")
        rows.append(claim(f"Zero-shot scores stay below English (a transfer gap remains) ({m})",
                          "paper: gap on every task", float(g.groupby("lang")["gap"].mean().mean()), lo, hi))
    return claims_frame(rows)


# ---------------------------------------------------------------------------------------------- rq1


def batch_size_table(df: Any, training: Any) -> Any:
    """Per model and intermediate batch size: the zero-shot effect (mean, interval, seed sd) per target, with the
    intermediate run's optimizer steps, training-loop seconds, tokens/s and peak memory."""
    eff = summarize(paired_effects(df, ["intermediate_batch_size"]),
                    ["model", "target_task", "intermediate_task", "intermediate_batch_size"])
    cost = intermediate_cost(training)
    return eff.merge(cost, on=["model", "intermediate_task", "intermediate_batch_size"], how="left")


def _cpus(training: Any) -> Any:
    """``training`` with ``processor`` filled (:data:`NOT_RECORDED` where a run did not record its CPU)."""
    proc = training["processor"] if "processor" in training.columns else None
    return training.assign(processor=NOT_RECORDED if proc is None else proc.fillna(NOT_RECORDED))


def training_cost(training: Any) -> Any:
    """What the training runs cost, per phase, model and intermediate task: optimizer steps, examples,
    training-loop seconds, tokens/s and peak resident memory (means over seeds), and ``cpus``, how many CPUs those
    runs ran on (runs that recorded none count as one more, "not recorded"): above 1, the seconds and tokens/s
    average CPUs of different speeds, or a CPU with runs of unknown speed (seeds split over machines)."""
    if training is None or training.empty:
        return training
    cols = [c for c in ("steps", "train_examples", "train_seconds", "tokens_per_s", "peak_rss_mb") if c in training]
    g = _cpus(training).groupby(["phase", "model", "intermediate_task"], dropna=False)
    return g[cols].mean().join(g["processor"].nunique().rename("cpus")).reset_index().round(1)


def intermediate_cost(training: Any) -> Any:
    """Mean cost of the intermediate runs per (model, task, batch size): steps, seconds, tokens/s, peak RSS, and
    ``cpus``, how many CPUs the means span (runs that recorded none count as one more, "not recorded"; above 1,
    seconds from CPUs of different or unknown speeds; rq1's time-ratio claim pairs each seed's runs instead,
    :func:`paired_time_ratio`)."""
    import pandas as pd

    cols = ["steps", "train_seconds", "tokens_per_s", "peak_rss_mb"]
    if training is None or training.empty:
        return pd.DataFrame(columns=["model", "intermediate_task", "intermediate_batch_size", *cols, "cpus"])
    tr = _cpus(training[training["phase"] == "intermediate"])  # an intermediate run's batch_size is its own
    g = tr.groupby(["model", "intermediate_task", "batch_size"], dropna=False)
    return (g[cols].mean().join(g["processor"].nunique().rename("cpus")).reset_index()
            .rename(columns={"batch_size": "intermediate_batch_size"}).round(1))


def paired_time_ratio(training: Any, model: str, task: str, small: float, large: float) -> float:
    """Mean over seeds of one seed's intermediate training seconds at batch ``small`` over its seconds at batch
    ``large`` (NaN when no seed has both): a seed's part runs on one machine, so each ratio compares times from one
    CPU, where a ratio of means over seeds would mix the CPUs the seeds ran on."""
    if training is None or training.empty or "seed" not in training.columns:
        return math.nan
    tr = training[(training["phase"] == "intermediate") & (training["model"] == model)
                  & (training["intermediate_task"] == task)].dropna(subset=["train_seconds"])
    secs = tr.groupby(["seed", "batch_size"])["train_seconds"].mean().unstack()
    if small not in secs.columns or large not in secs.columns:
        return math.nan
    r = (secs[small] / secs[large]).dropna()
    return float(r.mean()) if len(r) else math.nan


def ends_note(task: str, small: str, at_small: float, large: str, at_large: float, what: str = "") -> str:
    """What the intermediate task does at each end of a sweep (mean zero-shot effect against no intermediate task,
    non-English languages): a larger batch or data set can "improve transfer" by hurting less than a small one,
    which the difference alone hides. ``small``/``large`` name the ends, ``what`` the swept quantity."""
    if math.isnan(at_small) or math.isnan(at_large):
        return ""
    ends = f"{task} vs no intermediate task: {at_small:+.2f} at {small}, {at_large:+.2f} at {large}"
    if at_small < 0 and at_large < 0:
        return ends + f"; harmful at both, the larger {what}hurts {'less' if at_large > at_small else 'more'}"
    if at_small > 0 and at_large > 0:
        return ends + "; helps at both"
    return ends


def rq1_claims(df: Any, training: Any, efficiency: Any) -> Any:
    """Per model, target and intermediate task: the largest against the smallest intermediate batch (same
    examples); per model and task, the training-time ratio; per model, whether inference cost is unchanged (the
    architecture does not depend on the training batch size). Models are never pooled: their costs differ."""
    eff = paired_effects(df, ["intermediate_batch_size"])
    rows = []
    for (m, t, it), g in eff.groupby(["model", "target_task", "intermediate_task"]):
        sizes = sorted(g["intermediate_batch_size"].dropna().unique())
        if len(sizes) < 2:
            continue
        small, large = sizes[0], sizes[-1]
        a, b = g[g["intermediate_batch_size"] == large], g[g["intermediate_batch_size"] == small]
        d = paired_difference(a, b)
        rows.append(claim(f"A larger intermediate batch ({int(large)} vs {int(small)}, same examples) improves "
                          f"zero-shot transfer on {t} after {it} ({m})", "question (rq1)", d["estimate"], d["ci_lo"],
                          d["ci_hi"], note=ends_note(it, f"batch {int(small)}", by_seed_lang(b).mean(),
                                                     str(int(large)), by_seed_lang(a).mean(), "batch ")))
    cost = intermediate_cost(training)
    for (m, it), g in cost.groupby(["model", "intermediate_task"]):
        g = g.dropna(subset=["train_seconds"]).sort_values("intermediate_batch_size")
        if len(g) >= 2:
            r = paired_time_ratio(training, m, it, g["intermediate_batch_size"].iloc[0],
                                  g["intermediate_batch_size"].iloc[-1])
            if math.isnan(r):  # no seed ran both: the ratio of the means
                r = g["train_seconds"].iloc[0] / g["train_seconds"].iloc[-1]
            rows.append(ratio_claim(f"A larger intermediate batch ({int(g['intermediate_batch_size'].iloc[-1])} vs "
                                    f"{int(g['intermediate_batch_size'].iloc[0])}) shortens {it} training of {m} "
                                    "(time ratio small/large)", "question (rq1)", r))
    if efficiency is not None and not efficiency.empty and "intermediate_batch_size" in efficiency:
        e = efficiency[efficiency["intermediate_task"] != "none"]
        for m, em in e.groupby("model"):
            flops = em.groupby("intermediate_batch_size")["flops_per_example"].mean()
            b1 = em[em["batch_size"] == em["batch_size"].min()]
            lat = b1.groupby("intermediate_batch_size")["latency_p50_ms"].mean()
            if len(flops) >= 2:
                rows.append(ratio_claim(f"The intermediate batch size leaves inference cost of {m} unchanged "
                                        "(max/min forward FLOPs per example)", "architecture unchanged",
                                        float(flops.max() / flops.min()), expected_above_one=False,
                                        note=f"batch-1 latency max/min {lat.max() / lat.min():.2f}x (timing noise)"))
    return claims_frame(rows)


# ---------------------------------------------------------------------------------------------- rq2


def scale_table(df: Any, training: Any) -> Any:
    """Per model: parameter count (from its training runs) and the intermediate-task effect per target."""
    eff = summarize(paired_effects(df), ["model", "target_task", "intermediate_task"])
    if training is not None and not training.empty and "n_parameters" in training.columns:
        n = training.groupby("model")["n_parameters"].max().rename("n_parameters")
        eff = eff.join(n, on="model")
    return eff


def _registry_order() -> list[str]:
    """Every registered model, each world's models in the registry's order (smallest first)."""
    from xlt_utils.config import models_for

    return [m for w in ("synth", "offline-real", "xtreme") for m in models_for(w)]


def size_order(table: Any) -> list[str]:
    """The models of a :func:`scale_table`, smallest first (by parameter count; without one, in the order the
    model registry lists them)."""
    present = list(dict.fromkeys(table["model"]))
    if "n_parameters" in table.columns and table["n_parameters"].notna().all():
        n = table.groupby("model")["n_parameters"].max()
        return sorted(present, key=lambda m: (n[m], m))
    known = _registry_order()
    return sorted(present, key=lambda m: (known.index(m) if m in known else len(known), m))


def rq2_claims(df: Any, models_in_order: Sequence[str] | None = None, training: Any = None) -> Any:
    """Per target and intermediate task: its effect at each model size, and whether it differs between the
    largest and the smallest. A shuffled-label control is not a question's answer: it gets, per model, the
    comparison with its task instead (:func:`control_claims`; ``training`` says whether they are matched)."""
    eff = paired_effects(df, ["model"])
    order = [m for m in (models_in_order or _registry_order()) if m in set(eff["model"])]
    rows = []
    controls = controls_in(eff)
    for (t, it), g in eff[~eff["intermediate_task"].isin(controls)].groupby(["target_task", "intermediate_task"]):
        present = [m for m in order if m in set(g["model"])]
        for m in present:
            s = summarize(g[g["model"] == m], ["model"]).iloc[0]
            rows.append(claim(f"{it} improves zero-shot {t} at {m}", "question (rq2)", s["mean"], s["ci_lo"],
                              s["ci_hi"]))
        if len(present) >= 2:
            small, large = present[0], present[-1]
            d = paired_difference(g[g["model"] == large], g[g["model"] == small])
            rows.append(claim(f"The {it} effect on {t} differs between {large} and {small}", "question (rq2)",
                              d["estimate"], d["ci_lo"], d["ci_hi"], two_sided=True,
                              note="larger minus smaller model"))
    rows += control_claims(eff, passed_training(training), training)
    return claims_frame(rows)


# ---------------------------------------------------------------------------------------------- rq3


def budget_table(df: Any, efficiency: Any) -> Any:
    """Per evaluation variant and intermediate condition: mean zero-shot score with its interval, joined with
    the variant's inference cost (batch-1 latency p50, throughput at the largest timed batch, GFLOPs per
    example, weight MB) and, where the evaluation timed the full-budget model beside it (``time_reference``), its
    batch-1 speed-up over that model and its relative latency (each the mean over seeds of each cell's own
    side-by-side ratio; missing unless every cell of the variant has one). Timings come from one CPU: where the
    evaluations were timed on several, from :func:`timing_cpu`'s, named in ``timed_on`` (:func:`speedup_by_cpu`
    has the others). A layer budget is a model fine-tuned at that depth (``target_num_layers``) or, in results
    made before that design, layers cut at evaluation (``num_layers``); :func:`variant_name` says which."""
    sc = scores(df)
    keys = ["model", "target_task", "intermediate_task", *VARIANTS]
    acc = summarize(sc.rename(columns={"value": "score"}), [*keys, "variant"], value="score")
    if efficiency is None or efficiency.empty:
        return acc
    e = _timing_variants(efficiency)
    fl = (e.groupby(keys)["flops_per_example"].mean() / 1e9).rename("gflops_per_example")  # the same on any CPU
    weights = e.groupby(keys)["weight_mb"].mean().rename("weights_mb") if "weight_mb" in e.columns else None
    cpu = timing_cpu(e)
    on = None
    if cpu is not None:  # times from one CPU per variant: a mean over CPUs would describe none of them
        e = e.assign(processor=e["processor"].fillna(NOT_RECORDED))
        # timing_cpu's CPU where it timed the variant, else the CPU that timed the variant most (named in timed_on)
        on = {k: (cpu if (g["processor"] == cpu).any() else _most_timed(g))
              for k, g in e.groupby(keys, dropna=False)}
        e = e[[on.get(k) == p for k, p in zip(e[keys].itertuples(index=False, name=None), e["processor"])]]
    b1 = e[e["batch_size"] == e["batch_size"].min()].groupby(keys)["latency_p50_ms"].mean().rename("latency_ms_b1")
    bmax = e[e["batch_size"] == e["batch_size"].max()].groupby(keys)["throughput_ex_s"].mean().rename(
        "examples_per_s")
    out = acc.join(b1, on=keys).join(bmax, on=keys).join(fl, on=keys)
    if "reference_latency_p50_ms" in e.columns:  # evaluations timed beside the full-budget model (time_reference)
        side = e[e["batch_size"] == e["batch_size"].min()]
        side = side.assign(speedup_b1=side["reference_latency_p50_ms"] / side["latency_p50_ms"],
                           relative_latency_b1=side["latency_p50_ms"] / side["reference_latency_p50_ms"])
        ratios = side.groupby(keys)[["speedup_b1", "relative_latency_b1"]].mean()
        # only where every cell (every seed) of the variant was timed side by side: a mean over some of them
        # would stand for all of them
        every = side.assign(timed=side["reference_latency_p50_ms"].notna()).groupby(keys)["timed"].all()
        out = out.join(ratios.where(every, axis=0), on=keys)
    if weights is not None:
        out = out.join(weights, on=keys)
    if on is not None:
        out["timed_on"] = [on.get(k) if not math.isnan(ms) else None
                           for k, ms in zip(out[keys].itertuples(index=False, name=None), out["latency_ms_b1"])]
    return out.round(3)


def _timing_variants(efficiency: Any) -> Any:
    """A copy of timing rows with their budget columns (:data:`VARIANTS`) filled as :func:`scores` fills them
    (no layer cut, float32, length 0 for the full length) and integral, so they join the scores' keys."""
    e = efficiency.copy()
    for c, fill in (("target_num_layers", 0), ("num_layers", 0), ("inference_dtype", "float32"),
                    ("max_seq_length", 0)):
        e[c] = e[c].fillna(fill) if c in e.columns else fill
    for c in ("target_num_layers", "num_layers", "max_seq_length"):
        e[c] = e[c].astype(int)
    return e


NOT_RECORDED = "not recorded"  # the CPU of timing rows whose run did not record one


def _most_timed(efficiency: Any) -> str:
    """The CPU that timed the most runs side by side with the full-budget model, then the most runs at all (ties:
    the first by name); rows without a CPU count as :data:`NOT_RECORDED`."""
    e = efficiency.assign(processor=efficiency["processor"].fillna(NOT_RECORDED))
    side = (e.dropna(subset=["reference_latency_p50_ms"]).groupby("processor")["run_id"].nunique()
            if "reference_latency_p50_ms" in e.columns else None)
    runs = e.groupby("processor")["run_id"].nunique()
    return str(min(runs.index, key=lambda c: (-(side.get(c, 0) if side is not None else 0), -runs[c], c)))


def timing_cpu(efficiency: Any) -> str | None:
    """The CPU whose timings rq3's budget table, claims and Pareto front use when the evaluations were timed on more
    than one (``processor``: model and vector extensions; a speed-up is a fact about a CPU, e.g. bfloat16 runs
    1.6x faster than float32 at batch 1 where the CPU has ``avx512_bf16``, 3x slower where it has only ``avx2``): the one
    that timed the most evaluation runs side by side with the full-budget model, then the most runs (ties: the
    first by name; rows without a CPU count as one more, :data:`NOT_RECORDED`). A variant this CPU did not time
    uses the CPU that timed it (the budget table's ``timed_on`` says which). None when every timing came from one
    CPU (or no row says which). :func:`speedup_by_cpu` shows every CPU's."""
    if efficiency is None or efficiency.empty or "processor" not in efficiency.columns:
        return None
    if efficiency["processor"].fillna(NOT_RECORDED).nunique() < 2:
        return None
    return _most_timed(efficiency)


def speedup_by_cpu(efficiency: Any) -> Any:
    """Per budget variant (no intermediate task and each intermediate task) and CPU: at each timed batch size
    (``speedup_b<n>``), the mean speed-up over the full-budget model timed side by side with it
    (``time_reference``) over that CPU's cells, and how many cells (seeds) it averages. Empty when no evaluation
    was timed side by side."""
    import pandas as pd

    if (efficiency is None or efficiency.empty or "speedup" not in efficiency.columns
            or efficiency["speedup"].isna().all()):
        return pd.DataFrame()
    e = _timing_variants(efficiency.dropna(subset=["speedup"]))
    e["processor"] = e["processor"].fillna(NOT_RECORDED) if "processor" in e.columns else NOT_RECORDED
    full = e.groupby(["model", "target_task"])["max_seq_length"].transform("max")
    e["variant"] = [variant_name(n, d, length, f, t) for n, d, length, f, t in
                    zip(e["num_layers"], e["inference_dtype"], e["max_seq_length"], full, e["target_num_layers"])]
    keys = ["model", "target_task", "intermediate_task", "variant", "processor"]
    ratio = e.pivot_table(index=keys, columns="batch_size", values="speedup", aggfunc="mean")
    ratio.columns = [f"speedup_b{int(b)}" for b in ratio.columns]
    out = ratio.join(e.groupby(keys)["run_id"].nunique().rename("cells")).reset_index()
    order = sorted(range(len(out)), key=lambda i: (*(str(out.iloc[i][k]) for k in keys[:3]),
                                                   natural_key(out.iloc[i]["variant"]), out.iloc[i]["processor"]))
    return out.iloc[order].reset_index(drop=True).round(2)


def rq3_claims(df: Any, budget: Any) -> Any:
    """Per reduced budget: what it costs in accuracy without intermediate training (full minus reduced, per
    language) with its measured batch-1 speed-up; and whether the intermediate-task effect under the budget differs
    from the effect at full budget (two-sided).

    A layer budget is a model fine-tuned at that depth. Layers cut at evaluation from a model fine-tuned with all
    of them (``num_layers``, the older design) are not a budget anyone would deploy (the head never saw that
    layer's output) and no claim is made about them; the budget table still shows them.

    **Floors.** Where, under a budget, the no-intermediate arm and the intermediate arm are both at (or below)
    chance zero-shot (:func:`zero_shot_vs_chance`), the budget has broken the model: an effect at full budget
    "changes" to nothing because nothing is left to measure, not because the budget interacts with the
    intermediate task. Such a claim is *inconclusive*, its note says so, and the number is still shown."""
    sc = scores(df)
    eff = paired_effects(df, ["variant"])
    sc, eff = sc[sc["num_layers"] == 0], eff[eff["num_layers"] == 0]
    rows = []
    for (m, t), g in sc.groupby(["model", "target_task"]):
        base = g[(g["intermediate_task"] == "none") & (g["variant"] == "full")]
        for v in sorted(set(g["variant"]) - {"full"}, key=natural_key):
            red = g[(g["intermediate_task"] == "none") & (g["variant"] == v)]
            red_z, chance, red_against = (zero_shot_vs_chance(red, t) if not red.empty
                                          else ({}, math.nan, "no zero-shot rows"))
            if not base.empty and not red.empty:
                d = paired_difference(base, red, value="value")
                note = f"full minus reduced; batch-1 speed-up {_speedup(budget, m, t, v)}"
                if red_against in AT_FLOOR:
                    note += f"; reduced, the model is at chance zero-shot ({red_z['estimate']:.2f}, chance {chance:.2f})"
                rows.append(claim(f"{v} costs zero-shot accuracy on {t} ({m}, no intermediate task)",
                                  "question (rq3)", d["estimate"], d["ci_lo"], d["ci_hi"], note=note))
            ge = eff[(eff["model"] == m) & (eff["target_task"] == t)]
            for it in sorted(set(ge["intermediate_task"])):
                gi = ge[ge["intermediate_task"] == it]
                under, full = gi[gi["variant"] == v], gi[gi["variant"] == "full"]
                if under.empty or full.empty:
                    continue
                d = paired_difference(under, full)
                row = claim(f"The {it} effect on {t} ({m}) changes under {v}", "question (rq3)", d["estimate"],
                            d["ci_lo"], d["ci_hi"], two_sided=True,
                            note="effect under the budget minus effect at full budget")
                if red_against in AT_FLOOR:  # only then can the pair be at the floor (spares a bootstrap)
                    arm = g[(g["intermediate_task"] == it) & (g["variant"] == v)]
                    it_z, _, it_against = zero_shot_vs_chance(arm, t)
                    if it_against in AT_FLOOR:
                        row["verdict"] = "inconclusive"
                        row["note"] = (f"{FLOOR_NOTE}: under {v} both arms are at chance zero-shot (no intermediate "
                                       f"task {red_z['estimate']:.2f}, {it} {it_z['estimate']:.2f}, chance "
                                       f"{chance:.2f}); the budget broke the model, so no effect can be measured there")
                rows.append(row)
    return claims_frame(rows)


def _speedup(budget: Any, model: str, task: str, variant: str) -> str:
    """The variant's batch-1 speed-up without intermediate training: the mean of its cells' side-by-side ratios
    (``time_reference``) where every cell has one, else the full budget's latency over the variant's, each timed
    in its own cell (the note says which)."""
    if budget is None or "latency_ms_b1" not in budget.columns:
        return "not timed"
    b = budget[(budget["model"] == model) & (budget["target_task"] == task) & (budget["intermediate_task"] == "none")]
    cpu = ""
    if "timed_on" in b.columns:
        on = b[b["variant"] == variant]["timed_on"].dropna()
        cpu = f" on {on.iloc[0]} (other CPUs: speed-ups by CPU)" if len(on) else ""
    if "speedup_b1" in b.columns:
        side = b[b["variant"] == variant]["speedup_b1"]
        if not side.empty and side.notna().all():
            return f"{side.mean():.2f}x, timed side by side with the full model{cpu}"
    full = b[b["variant"] == "full"]["latency_ms_b1"].dropna()
    red = b[b["variant"] == variant]["latency_ms_b1"].dropna()
    if full.empty or red.empty or not red.iloc[0]:
        return "not timed"
    return f"{full.iloc[0] / red.iloc[0]:.2f}x, timed in separate cells{cpu}"


def budget_cost(budget: Any) -> str:
    """The cost axis of rq3's Pareto front and figure: each variant's batch-1 latency relative to the full-budget
    model timed side by side with it (``relative_latency_b1``, from ``time_reference`` evaluations) when every
    timed variant has one; else the batch-1 latency of each cell timed on its own (``latency_ms_b1``), which
    compares moments as well as models."""
    timed = budget.dropna(subset=["latency_ms_b1"]) if "latency_ms_b1" in budget.columns else budget.iloc[0:0]
    if "relative_latency_b1" in budget.columns and not timed.empty and timed["relative_latency_b1"].notna().all():
        return "relative_latency_b1"
    return "latency_ms_b1"


def pareto(budget: Any, cost: str | None = None) -> Any:
    """The variants not dominated on (lower ``cost``, higher mean zero-shot score), per model and target; layer
    budgets are the models fine-tuned at that depth (layers cut at evaluation, the older design, are left out:
    see :func:`rq3_claims`). ``cost`` None: :func:`budget_cost`."""
    from xlt_utils.efficiency import pareto_front

    cost = budget_cost(budget) if cost is None else cost
    if cost not in budget.columns:
        return budget.iloc[0:0]
    b = budget.dropna(subset=[cost])
    if "num_layers" in b.columns:
        b = b[b["num_layers"].fillna(0) == 0]
    cols = ["model", "target_task", "intermediate_task", "variant", cost, "mean"]
    return pareto_front(b, cost=cost, value="mean", group=["model", "target_task"])[cols]


# ---------------------------------------------------------------------------------------------- rq4


def data_table(df: Any, training: Any = None) -> Any:
    """Per intermediate task and training-set size: the zero-shot effect per target with its interval, and the
    number of distinct training examples (``n_train_examples``, :func:`train_set_size`: a multilingual set's cap
    applies per language). Where that size is unknown before the run (a Hub set used whole), it is the number of
    records the intermediate runs loaded (``n_train_records`` in ``training``, :func:`results.load_training`)."""
    table = summarize(paired_effects(df, ["intermediate_max_train_samples"]),
                      ["target_task", "intermediate_task", "intermediate_max_train_samples"])
    sizes = [train_set_size(t, n) for t, n in zip(table["intermediate_task"], table["intermediate_max_train_samples"])]
    if training is not None and not training.empty and "n_train_records" in training.columns:
        def key(task: str, cap: Any) -> tuple[str, float | None]:  # NaN never equals itself: None for "no cap"
            return task, None if cap is None or math.isnan(float(cap)) else float(cap)

        tr = training[(training["phase"] == "intermediate") & training["n_train_records"].notna()]
        caps = tr["max_train_samples"] if "max_train_samples" in tr.columns else [None] * len(tr)
        loaded: dict[tuple[str, float | None], float] = {}
        for t, c, n in zip(tr["intermediate_task"], caps, tr["n_train_records"]):
            loaded[key(t, c)] = max(loaded.get(key(t, c), 0.0), float(n))
        sizes = [loaded.get(key(t, n), math.nan) if math.isnan(v) else v
                 for t, n, v in zip(table["intermediate_task"], table["intermediate_max_train_samples"], sizes)]
    table.insert(3, "n_train_examples", sizes)
    return table


def train_set_size(task_name: str, max_train_samples: float | None) -> float:
    """Distinct training examples of an intermediate run: per training language the cap ``max_train_samples``
    bounded by the examples the language has (the registry's ``n_train`` where it knows it: the synth world), summed
    over the languages trained on (:func:`xlt_utils.phases.train_languages`). NaN when neither is known (a Hub set
    used whole)."""
    from xlt_utils.phases import train_languages
    from xlt_utils.tasks import get_task

    task = get_task(task_name)
    known = [float(c) for c in (max_train_samples, task.options.get("n_train")) if c is not None and not math.isnan(float(c))]
    return min(known) * len(train_languages(task)) if known else math.nan


# Multilingual intermediate sets the registry cannot name the languages of (TyDiQA-GoldP trains on one pooled
# "mul" split); a registered task that trains on several languages (``per_language_items``: ``synth_mnli_multi``,
# ``pos_multi``) is one too, with its training languages: :func:`multilingual_sets`.
MULTILINGUAL_INTERMEDIATE = {"tydiqa_mul": ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te")}


def multilingual_sets(tasks: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The multilingual intermediate sets among ``tasks`` and the languages each contains."""
    from xlt_utils.errors import XLTError
    from xlt_utils.tasks import get_task

    out = {}
    for name in sorted(set(tasks)):
        if name in MULTILINGUAL_INTERMEDIATE:
            out[name] = MULTILINGUAL_INTERMEDIATE[name]
            continue
        try:
            task = get_task(name)
        except XLTError:
            continue
        if task.options.get("per_language_items"):
            out[name] = tuple(task.languages_for("train"))
    return out


def rq4_claims(df: Any) -> Any:
    """Per English intermediate task and target: more English data helps; the returns diminish (gain per
    doubling, first vs last step; *supported* only where the first step's gain is itself shown positive); the small
    multilingual set against the largest English set, on all languages and on those it does not contain, and
    against the English set of its own size where the grid has one."""
    eff = paired_effects(df, ["intermediate_max_train_samples"])
    sets = multilingual_sets(eff["intermediate_task"].dropna())
    multi = list(sets)
    rows = []
    for (t, english), en in eff[~eff["intermediate_task"].isin(multi)].groupby(["target_task", "intermediate_task"]):
        sizes = sorted(en["intermediate_max_train_samples"].dropna().unique())
        at = {n: en[en["intermediate_max_train_samples"] == n] for n in sizes}
        if len(sizes) >= 2:
            d = paired_difference(at[sizes[-1]], at[sizes[0]])
            rows.append(claim(f"More English {english} data ({int(sizes[-1])} vs {int(sizes[0])} examples) "
                              f"improves zero-shot {t}", "question (rq4)", d["estimate"], d["ci_lo"], d["ci_hi"],
                              note=ends_note(english, f"{int(sizes[0])} examples", by_seed_lang(at[sizes[0]]).mean(),
                                             str(int(sizes[-1])), by_seed_lang(at[sizes[-1]]).mean(), "set ")))
        if len(sizes) >= 3:
            a, b, c = sizes[0], sizes[len(sizes) // 2], sizes[-1]
            first = (by_seed_lang(at[b]) - by_seed_lang(at[a])) / math.log2(b / a)
            last = (by_seed_lang(at[c]) - by_seed_lang(at[b])) / math.log2(c / b)
            diff, f, g = (seed_lang_summary(x) for x in (first - last, first, last))
            row = claim(f"Returns of {english} data diminish on {t}: gain per doubling {int(a)}->{int(b)} "
                        f"exceeds {int(b)}->{int(c)}", "question (rq4)", diff["estimate"], diff["ci_lo"],
                        diff["ci_hi"], unit="points per doubling",
                        note=f"per doubling: first {f['estimate']:+.2f} [{f['ci_lo']:+.2f}, {f['ci_hi']:+.2f}], "
                             f"last {g['estimate']:+.2f}")
            # returns diminish only where there are returns: a curve that is flat then falls is not "diminishing"
            if row["verdict"] == "supported" and not f["ci_lo"] > 0:
                row["verdict"] = "inconclusive"
                row["note"] += "; the first step's gain is not shown to be positive"
            rows.append(row)
        for m in multi:
            mu = eff[(eff["intermediate_task"] == m) & (eff["target_task"] == t)]
            if mu.empty or not sizes:
                continue
            d = paired_difference(mu, at[sizes[-1]])
            rows.append(claim(f"The small multilingual {m} beats {int(sizes[-1])} English {english} examples on "
                              f"{t}", "question (rq4)", d["estimate"], d["ci_lo"], d["ci_hi"], note="all languages"))
            langs = sets[m]
            d = paired_difference(mu[~mu["lang"].isin(langs)], at[sizes[-1]][~at[sizes[-1]]["lang"].isin(langs)])
            rows.append(claim(f"... also on the languages {m} does not contain ({t})", "question (rq4)",
                              d["estimate"], d["ci_lo"], d["ci_hi"], note=f"without {', '.join(langs)}"))
            # the same number of examples: multilingual data against as much English data
            n_multi = train_set_size(m, mu["intermediate_max_train_samples"].dropna().max())
            same = [n for n in sizes[:-1] if train_set_size(english, n) == n_multi]
            if same:
                d = paired_difference(mu, at[same[0]])
                rows.append(claim(f"The multilingual {m} beats as many English {english} examples "
                                  f"({int(n_multi)}) on {t}", "question (rq4)", d["estimate"], d["ci_lo"], d["ci_hi"],
                                  note="all languages; same number of distinct examples"))
    return claims_frame(rows)


def log_fit(table: Any) -> Any:
    """Least-squares fit of the effect against log2(size) per English intermediate task and target (the gain
    per doubling of the English set, and the fitted effect at 1,000 examples)."""
    import pandas as pd

    rows = []
    t = table[~table["intermediate_task"].isin(list(multilingual_sets(table["intermediate_task"].dropna())))
              & table["intermediate_max_train_samples"].notna()]
    for (target, task), g in t.groupby(["target_task", "intermediate_task"]):
        if len(g) >= 2:
            x = np.log2(g["intermediate_max_train_samples"].astype(float).to_numpy())
            slope, icept = np.polyfit(x, g["mean"].to_numpy(), 1)
            rows.append({"target_task": target, "intermediate_task": task, "gain_per_doubling": round(float(slope), 2),
                         "effect_at_1k": round(float(icept + slope * math.log2(1000)), 2), "n_sizes": len(g)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- rq5


def distance_between(world: str, source: str, kind: str) -> dict[str, float]:
    """Distance of every language of a world from ``source`` (synth: the cards' distances; offline-real and
    xtreme: lang2vec from the offline table)."""
    from xlt_utils.errors import unknown

    if world == "synth":
        from xlt_utils.analysis import SYNTH_DISTANCES
        from xlt_utils.synth.languages import LANGUAGE_IDS, distances

        if kind not in SYNTH_DISTANCES:
            raise unknown("distance for world synth", kind, SYNTH_DISTANCES)
        return {lang: float(distances(source, lang)[kind]) for lang in LANGUAGE_IDS}
    if world in ("offline-real", "xtreme"):
        from xlt_utils.analysis import REAL_DISTANCES
        from xlt_utils.offline.typology import load_distances

        if kind not in REAL_DISTANCES:
            raise unknown(f"distance for world {world}", kind, REAL_DISTANCES)
        d = load_distances()
        d = d[d["lang1"] == source]
        return {str(b): float(v) for b, v in zip(d["lang2"], d[kind]) if not math.isnan(v)} | {source: 0.0}
    raise unknown("world with typological distances", world, ("synth", "offline-real", "xtreme"))


def source_matrix(df: Any, value: str = "delta") -> Any:
    """Source language (rows) x evaluation language (columns): the intermediate-task effect (``delta``) or the
    score (``value``), seed-averaged, per target task (a column level)."""
    eff = paired_effects(df, ["intermediate_train_language"])
    return eff.pivot_table(index="intermediate_train_language", columns=["target_task", "lang"], values=value,
                           aggfunc="mean").round(1)


def source_distance(df: Any, kind: str) -> Any:
    """Per (source, target task, language): the effect and score with the language's distance from the source
    and from English."""
    eff = paired_effects(df, ["intermediate_train_language"])
    world = str(df["world"].iloc[0])
    cache: dict[str, dict[str, float]] = {}

    def dist(src: str, lang: str) -> float:
        if src not in cache:
            cache[src] = distance_between(world, src, kind)
        return cache[src].get(lang, math.nan)

    g = eff.groupby(["intermediate_train_language", "target_task", "lang"], as_index=False)[["value", "delta"]].mean()
    g["distance_from_source"] = [dist(s, lang) for s, lang in zip(g["intermediate_train_language"], g["lang"])]
    g["distance_from_en"] = [dist("en", lang) for lang in g["lang"]]
    return g


def rq5_distance(df: Any) -> str:
    """The distance the source-language study uses: syntactic (synth ``d_syn``; lang2vec ``syntactic``)."""
    return "d_syn" if set(df["world"]) == {"synth"} else "syntactic"


def rq5_claims(df: Any, kind: str) -> Any:
    """(1) Per target, for the languages most distant from English (top third, sources excluded), the effect of
    the nearest non-English source minus that of English (paired by seed; crossed interval over languages, seeds
    and items; over seeds and items where one language is that far); (2) per
    source, the score falls with the language's distance from that source (Spearman's rho over its languages of
    the seed-averaged score, Fisher-z interval over languages: :func:`xlt_utils.analysis.correlation`)."""
    import pandas as pd

    from xlt_utils.analysis import correlation

    worlds = sorted(set(df["world"]))
    if len(worlds) > 1:  # each world on its own, with its own distance (synth cards; lang2vec for real languages)
        return claims_frame(r for w in worlds
                            for r in rq5_claims(df[df["world"] == w], rq5_distance(df[df["world"] == w]))
                            .to_dict("records"))
    sd = source_distance(df, kind)
    eff = paired_effects(df, ["intermediate_train_language"])
    rows = []
    sources = sorted(set(sd["intermediate_train_language"]))
    others = [s for s in sources if s != "en"]
    for t, g in sd.groupby("target_task"):
        if "en" not in sources or not others:
            break
        far = g[(g["intermediate_train_language"] == "en") & (~g["lang"].isin(sources)) & (g["lang"] != "en")]
        if far.empty:
            continue
        cut = far["distance_from_en"].quantile(2 / 3)
        far_langs = sorted(far[far["distance_from_en"] >= cut]["lang"])
        near, eng, nearest, floor = [], [], [], []
        for lang in far_langs:
            cand = g[(g["lang"] == lang) & (g["intermediate_train_language"].isin(others))]
            src = cand.sort_values("distance_from_source").iloc[0]["intermediate_train_language"]
            at = eff[(eff["target_task"] == t) & (eff["lang"] == lang)]
            near.append(at[at["intermediate_train_language"] == src])
            eng.append(at[at["intermediate_train_language"] == "en"])
            nearest.append(f"{lang} ← {src}")
            # a language where both arms are at chance adds a difference of about 0 that says nothing
            if all(zero_shot_vs_chance(arm, t)[2] in AT_FLOOR for arm in (near[-1], eng[-1])):
                floor.append(lang)
        d = paired_difference(pd.concat(near), pd.concat(eng), one_language=True)
        note = f"distance: {kind}; nearest source per target: {', '.join(nearest)}"
        if len(far_langs) == 1:
            note += ("; one language: the interval is over its seeds and its test items" if d["n_item_known"] else
                     "; one language: the interval is over its seeds only (no test-set size recorded)")
        if floor:
            note += (f"; both arms at chance on {', '.join(floor)} (chance {chance_level(t):.2f}): no transfer to "
                     "compare there")
        rows.append(claim(f"For the targets most distant from English ({', '.join(far_langs)}), intermediate "
                          f"training in the nearest non-English source beats English on {t}", "question (rq5)",
                          d["estimate"], d["ci_lo"], d["ci_hi"], note=note,
                          why_no_interval="one language, one seed" if len(far_langs) == 1 else "too few languages"))
        for src in sources:  # one rho per source: pooled pairs would mix the sources' levels with distance
            # not zero-shot, so left out of the correlation: the source's own language (the encoder was trained in
            # it) and English (the target was fine-tuned in it)
            out = sorted({src, "en"})
            arm = g[(g["intermediate_train_language"] == src) & ~g["lang"].isin(out)]
            c = correlation(arm["distance_from_source"], arm["value"])
            flat = arm["value"].nunique() <= 1
            note = (f"{len(arm)} languages, seed-averaged; Fisher-z interval over languages only; left out, not "
                    f"zero-shot: {', '.join(out)}"
                    + ("; the same score in every language" if flat else ""))
            rows.append(claim(f"Zero-shot {t} falls with the target's {kind} distance from the intermediate source "
                              f"{src} (Spearman rho)", "question (rq5)", c["spearman"], c["spearman_lo"],
                              c["spearman_hi"], expected_sign=-1, unit="rho", note=note,
                              why_no_interval="no rank order" if flat else "too few languages"))
    return claims_frame(rows)

