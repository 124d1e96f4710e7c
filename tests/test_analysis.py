"""Analysis statistics: hand-computed correlations, crossed-design intervals (and their coverage), gaps and distances."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xlt_utils import analysis
from xlt_utils.errors import XLTError


def test_pearson_and_spearman_hand_computed():
    # x = 1..4, y = 1,3,2,4: mean 2.5 each; cov sum = (-1.5)(-1.5)+(-.5)(.5)+(.5)(-.5)+(1.5)(1.5) = 4.0;
    # var sums 5 and 5 -> r = 0.8. Ranks equal the values, so rho = 0.8 too.
    assert analysis.pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert analysis.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # monotone but not linear: rho = 1, r < 1
    assert analysis.spearman([1, 2, 3, 4], [1, 4, 9, 100]) == pytest.approx(1.0)
    assert analysis.pearson([1, 2, 3, 4], [1, 4, 9, 100]) < 0.9
    # ties share the mean rank: x ranks (0, 1.5, 1.5, 3) vs y ranks (0, 1, 2, 3):
    # centred x (-1.5, 0, 0, 1.5), y (-1.5, -.5, .5, 1.5): cov 4.5, var 4.5 and 5 -> 4.5 / sqrt(22.5)
    assert analysis.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert math.isnan(analysis.pearson([1, 1, 1], [1, 2, 3]))


def test_crossed_interval_by_hand():
    t = stats.t.ppf
    langs = ["a", "b", "c", "d"]
    # one seed: a t interval over the languages. Mean 4; variance (9 + 1 + 4 + 16) / 3 = 10, over 4 languages
    # 2.5; 3 degrees of freedom
    lo, hi = analysis.crossed_interval([1.0, 5.0, 2.0, 8.0], langs, [13] * 4)
    assert (lo, hi) == pytest.approx((4 - t(0.975, 3) * math.sqrt(2.5), 4 + t(0.975, 3) * math.sqrt(2.5)))
    assert (lo, hi) == pytest.approx(analysis.crossed_interval([1.0, 5.0, 2.0, 8.0], langs))
    # two seeds, +10 in every language with one and -10 with the other: the languages agree (their means are all
    # 0), the seed means 10 and -10 have variance 200, over 2 seeds 100, with 1 degree of freedom: a seed shift
    # common to every language is what the interval must not miss
    lo, hi = analysis.crossed_interval([10.0] * 4 + [-10.0] * 4, langs * 2, [1] * 4 + [2] * 4)
    assert (lo, hi) == pytest.approx((-t(0.975, 1) * 10, t(0.975, 1) * 10))
    # shared items: item variance 4 in every row (sd 2, fully correlated across languages) adds 2^2 = 4 to the
    # languages' 2.5; the languages' part is 38% of 6.5, so it sets the degrees of freedom: 3
    lo, hi = analysis.crossed_interval([1.0, 5.0, 2.0, 8.0], langs, [13] * 4, item_var=[4.0] * 4)
    half = t(0.975, 3) * math.sqrt(6.5)
    assert (lo, hi) == pytest.approx((4 - half, 4 + half))
    # two targets with their own items (sd 2 for a, b; sd 4 for c, d), each half of the units: the item part is
    # (0.5 x 2)^2 + (0.5 x 4)^2 = 5, not the one-test-set (mean sd 3)^2 = 9
    iv = [4.0, 4.0, 16.0, 16.0]
    lo, hi = analysis.crossed_interval([1.0, 5.0, 2.0, 8.0], langs, [13] * 4, item_var=iv, strata="xxyy")
    assert (lo, hi) == pytest.approx((4 - t(0.975, 3) * math.sqrt(7.5), 4 + t(0.975, 3) * math.sqrt(7.5)))
    lo, hi = analysis.crossed_interval([1.0, 5.0, 2.0, 8.0], langs, [13] * 4, item_var=iv)
    assert (lo, hi) == pytest.approx((4 - t(0.975, 3) * math.sqrt(11.5), 4 + t(0.975, 3) * math.sqrt(11.5)))
    # repeats of one (language, seed) are averaged; a missing cell is skipped: no spread at all -> a point
    assert analysis.crossed_interval([4.0, 6.0, 5.0, 5.0, 5.0], ["a", "a", "b", "a", "b"], [1, 1, 1, 2, 2]) == \
        (5.0, 5.0)
    # one language, opted into: no language part, the interval is over its seeds (and items). Seeds 1, 2, 6: mean
    # 3, variance (4 + 1 + 9) / 2 = 7, over 3 seeds 7/3, 2 degrees of freedom; items (variance 2 per row) add 2
    one = ["a"] * 3
    lo, hi = analysis.crossed_interval([1.0, 2.0, 6.0], one, [1, 2, 3], one_unit=True)
    assert (lo, hi) == pytest.approx((3 - t(0.975, 2) * math.sqrt(7 / 3), 3 + t(0.975, 2) * math.sqrt(7 / 3)))
    lo, hi = analysis.crossed_interval([1.0, 2.0, 6.0], one, [1, 2, 3], item_var=[2.0] * 3, one_unit=True)
    assert (lo, hi) == pytest.approx((3 - t(0.975, 2) * math.sqrt(7 / 3 + 2), 3 + t(0.975, 2) * math.sqrt(7 / 3 + 2)))
    # not opted into (a claim about languages), one seed, seeds that agree exactly, or nothing: no interval
    assert all(math.isnan(x) for x in analysis.crossed_interval([1.0, 2.0, 6.0], one, [1, 2, 3]))
    assert all(math.isnan(x) for x in analysis.crossed_interval([1.0, 2.0], ["a", "a"], [1, 1], one_unit=True))
    assert all(math.isnan(x) for x in analysis.crossed_interval([1.0], ["a"], [1], item_var=[4.0], one_unit=True))
    assert all(math.isnan(x) for x in analysis.crossed_interval([5.0, 5.0], ["a", "a"], [1, 2], item_var=[4.0] * 2,
                                                                one_unit=True))
    assert all(math.isnan(x) for x in analysis.crossed_interval([math.nan], ["a"], [1], one_unit=True))


def test_seed_interval_and_binomial_item_variance_by_hand():
    # accuracy 60 on 100 items: 100^2 * 0.6 * 0.4 / 100 = 24
    assert analysis.binomial_item_var([60.0, 50.0], [100, 0]).tolist() == pytest.approx([24.0, 0.0])
    # one seed: a Wald interval of the items alone
    mean, lo, hi = analysis.seed_interval([60.0], 100)
    assert (mean, lo, hi) == pytest.approx((60.0, 60 - stats.norm.ppf(0.975) * math.sqrt(24), 60 + stats.norm.ppf(
        0.975) * math.sqrt(24)))
    # three seeds 58, 60, 62: seed variance 4 / 3; plus items 24; df = (4/3 + 24)^2 * 2 / (4/3)^2
    a = 4.0 / 3
    mean, lo, hi = analysis.seed_interval([58.0, 60.0, 62.0], 100)
    half = stats.t.ppf(0.975, (a + 24) ** 2 * 2 / a**2) * math.sqrt(a + 24)
    assert (mean, lo, hi) == pytest.approx((60.0, 60 - half, 60 + half))
    assert all(math.isnan(v) for v in analysis.seed_interval([60.0])[1:])


def _crossed_design(rng, n_seeds, n_langs, seed_sd, lang_sd, resid_sd, n_items, shared, missing=0.0):
    """One simulated study: per (seed, language) a paired delta = true effect + a seed shift common to every
    language + a language effect + residual + item sampling error (one error for all languages when they share
    their items, one per language otherwise); returns values, units, seeds, item variances and the truth."""
    truth = 1.0
    item_sd = math.sqrt(2 * 100**2 * 0.25 / n_items)  # the delta of two ~50% accuracies on n_items items
    seed_shift = rng.normal(0, seed_sd, n_seeds)
    lang_effect = rng.normal(0, lang_sd, n_langs)
    item_error = (np.full(n_langs, rng.normal(0, item_sd)) if shared else rng.normal(0, item_sd, n_langs))
    v = (truth + seed_shift[:, None] + lang_effect[None, :] + item_error[None, :]
         + rng.normal(0, resid_sd, (n_seeds, n_langs)))
    seeds = np.repeat(np.arange(n_seeds), n_langs)
    units = np.tile(np.arange(n_langs), n_seeds)
    iv = np.full(v.size, item_sd**2 if shared else 0.0)
    v = v.ravel()
    if missing:  # cells that did not run (a failed run), never a whole language
        drop = rng.random(v.size) < missing
        drop[:n_langs] = False
        v = np.where(drop, np.nan, v)
    return v, units, seeds, iv, truth


@pytest.mark.parametrize("design", [
    # 3 seeds with a seed shift common to every language (the e5 SQuAD-like seeds differed by 20 points), items
    # shared by the languages (translations of one test set), few and many languages
    {"n_seeds": 3, "n_langs": 8, "seed_sd": 3.0, "lang_sd": 1.0, "resid_sd": 0.5, "n_items": 500, "shared": True},
    {"n_seeds": 3, "n_langs": 20, "seed_sd": 1.0, "lang_sd": 2.0, "resid_sd": 1.0, "n_items": 200, "shared": True},
    {"n_seeds": 5, "n_langs": 6, "seed_sd": 0.5, "lang_sd": 0.5, "resid_sd": 0.5, "n_items": 1000, "shared": True},
    # languages with their own items: the item error is part of the language spread
    {"n_seeds": 3, "n_langs": 7, "seed_sd": 2.0, "lang_sd": 1.0, "resid_sd": 1.0, "n_items": 300, "shared": False},
    # two seeds (one degree of freedom for the seed part), with a dominant and a moderate seed shift
    {"n_seeds": 2, "n_langs": 10, "seed_sd": 3.0, "lang_sd": 1.0, "resid_sd": 0.5, "n_items": 10**6, "shared": False},
    {"n_seeds": 2, "n_langs": 10, "seed_sd": 1.0, "lang_sd": 1.0, "resid_sd": 0.5, "n_items": 10**6, "shared": False},
    # many languages and a residual as large as both effects; 40% of the cells missing
    {"n_seeds": 3, "n_langs": 30, "seed_sd": 1.0, "lang_sd": 1.0, "resid_sd": 1.0, "n_items": 10**6, "shared": False},
    {"n_seeds": 3, "n_langs": 12, "seed_sd": 2.0, "lang_sd": 1.0, "resid_sd": 1.0, "n_items": 500, "shared": True,
     "missing": 0.4},
])
def test_crossed_interval_holds_its_coverage(design):
    """Coverage of the nominal 95% interval over 2,000 simulated studies (fixed seed): at least 93%. The percentile
    bootstrap this replaced covered 76-85% on designs like the first one; Welch-Satterthwaite degrees of freedom
    (before the smallest-large-part rule) 89-93% on the two-seed and many-language designs."""
    rng = np.random.default_rng(20261207)
    hits = 0
    reps = 2000
    for _ in range(reps):
        v, units, seeds, iv, truth = _crossed_design(rng, **design)
        lo, hi = analysis.crossed_interval(v, units, seeds, item_var=iv)
        hits += lo <= truth <= hi
    assert hits / reps >= 0.93, hits / reps


@pytest.mark.parametrize("n_seeds,seed_sd,n_items", [(2, 3.0, 10**6), (2, 1.0, 200), (3, 1.0, 300), (5, 0.5, 2000)])
def test_one_language_interval_holds_its_coverage(n_seeds, seed_sd, n_items):
    """A claim about one target language (rq5's Japanese) is about that language's own effect (the overall effect
    plus the language's own deviation, drawn anew in each study): the interval over its seeds and its own items
    covers it in at least 93% of 2,000 simulated studies. Its test set is drawn once per study and read by every
    seed, so the item error does not average out over seeds."""
    rng = np.random.default_rng(20261207)
    item_sd = math.sqrt(2 * 100**2 * 0.25 / n_items)  # the delta of two ~50% accuracies on n_items items
    hits, reps = 0, 2000
    for _ in range(reps):
        lang_truth = 1.0 + rng.normal(0, 2.0)
        v = lang_truth + rng.normal(0, item_sd) + rng.normal(0, seed_sd, n_seeds) + rng.normal(0, 0.5, n_seeds)
        lo, hi = analysis.crossed_interval(v, ["ja"] * n_seeds, list(range(n_seeds)),
                                           item_var=[item_sd**2] * n_seeds, one_unit=True)
        hits += lo <= lang_truth <= hi
    assert hits / reps >= 0.93, hits / reps


def test_correlation_interval_contains_estimate():
    rng = np.random.default_rng(0)
    d = np.linspace(0, 1, 30)
    gap = 10 * d + rng.normal(0, 1, 30)
    c = analysis.correlation(d, gap)
    assert c["n"] == 30 and c["spearman"] > 0.8
    assert c["spearman_lo"] <= c["spearman"] <= c["spearman_hi"]
    assert c["pearson_lo"] <= c["pearson"] <= c["pearson_hi"]


def test_correlation_intervals_by_hand():
    """Five points in perfect reverse order: rho = -1 enters as -0.95 (halfway to -0.9, the next value 5 points can
    give); z = atanh(-0.95) = -1.8318, Bonett-Wright se = sqrt((1 + 0.95²/2) / 2) = 0.8517, so
    tanh(-1.8318 ± 1.96 x 0.8517) = [-0.9982, -0.1608]. One swap (rho = -0.9): se = sqrt(1.405 / 2) = 0.8382,
    tanh(-1.4722 ± 1.6428) = [-0.9961, +0.1689]; Pearson r = -0.9, se = 1/sqrt(2): [-0.9934, -0.0861]. Three
    points: no interval."""
    c = analysis.correlation([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert c["spearman"] == pytest.approx(-1.0)
    assert (c["spearman_lo"], c["spearman_hi"]) == pytest.approx((-0.99818, -0.16080), abs=1e-5)
    c = analysis.correlation([1, 2, 3, 4, 5], [5, 4, 3, 1, 2])
    assert c["spearman"] == pytest.approx(-0.9)
    assert (c["spearman_lo"], c["spearman_hi"]) == pytest.approx((-0.99607, 0.16890), abs=1e-5)
    assert (c["pearson_lo"], c["pearson_hi"]) == pytest.approx((-0.99344, -0.08610), abs=1e-5)
    # only a perfect correlation is moved: Pearson r = 0.99840 (y's last point off the line) keeps its own value,
    # tanh(atanh(0.99840) ± 1.96/sqrt(2)) = [0.97475, 0.99990], around its estimate; tied x (rho = 0.97468) too:
    # se = sqrt((1 + 0.4750) / 2) = 0.8588, tanh(2.1783 ± 1.6832) = [0.45825, 0.99912]
    c = analysis.correlation([1, 2, 3, 4, 5], [1, 2, 3, 4, 5.3])
    assert c["pearson"] == pytest.approx(0.99840, abs=1e-5)
    assert (c["pearson_lo"], c["pearson_hi"]) == pytest.approx((0.97475, 0.99990), abs=1e-5)
    c = analysis.correlation([1, 2, 3, 4, 4], [1, 2, 3, 4, 5])
    assert c["spearman"] == pytest.approx(0.97468, abs=1e-5)
    assert (c["spearman_lo"], c["spearman_hi"]) == pytest.approx((0.45825, 0.99912), abs=1e-5)
    c = analysis.correlation([1, 2, 3], [3, 2, 1])
    assert c["spearman"] == pytest.approx(-1.0) and math.isnan(c["spearman_lo"]) and math.isnan(c["spearman_hi"])


@pytest.mark.parametrize("n", [5, 8])
def test_correlation_interval_holds_its_coverage_with_few_languages(n):
    """The studies correlate 5-15 languages. Under no association the 95% interval of Spearman's rho excludes 0
    in at most about 5% of samples (the percentile bootstrap used before: 12% at n=5); with an association
    (bivariate normal, r = 0.6: Spearman's rho 6/pi asin(0.3)) it covers the truth in at least about 95%."""
    rng = np.random.default_rng(7)
    reps = 1500
    false = sum(not (c["spearman_lo"] <= 0 <= c["spearman_hi"])
                for c in (analysis.correlation(rng.normal(size=n), rng.normal(size=n)) for _ in range(reps)))
    assert false / reps <= 0.06, false / reps
    truth = 6 / math.pi * math.asin(0.3)
    xy = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=(reps, n))
    hits = sum(c["spearman_lo"] <= truth <= c["spearman_hi"]
               for c in (analysis.correlation(s[:, 0], s[:, 1]) for s in xy))
    assert hits / reps >= 0.94, hits / reps


def test_correlation_with_a_constant_side_is_nan_not_an_error():
    c = analysis.correlation([0.0, 0.1, 0.3, 0.5], [33.3, 33.3, 33.3, 33.3])
    assert c["n"] == 4 and all(math.isnan(c[k]) for k in ("spearman", "spearman_lo", "spearman_hi", "pearson_hi"))


def test_one_outlier_in_a_flat_arm_is_not_a_decided_correlation():
    # rq5 embedded-full, hi_like source: chance (33.6) in 14 languages, 33.93 in the source language (distance 0).
    # Spearman's rho -0.461 (ties at average ranks); z = -0.4987, se = sqrt((1 + 0.1063) / 12) = 0.3036, so the
    # interval [-0.798, +0.096] reaches 0 (a bootstrap that dropped the resamples without a rank order gave
    # [-0.79, -0.44], a false "supported").
    d = [0.0, 0.2, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.8]
    v = [33.93] + [33.6] * 14
    c = analysis.correlation(d, v)
    assert c["spearman"] == pytest.approx(-0.46103, abs=1e-5)
    assert (c["spearman_lo"], c["spearman_hi"]) == pytest.approx((-0.79823, 0.09618), abs=1e-5)


def _rows():
    rows = []
    for inter, shift in (("none", 0.0), ("synth_mnli", 5.0)):
        for seed in (13, 14):
            for lang, v in (("en", 90.0), ("de", 80.0), ("ja", 60.0)):
                rows.append({"phase": "eval", "world": "offline-real", "model": "multilingual-e5-small",
                             "target_task": "debian_topic", "intermediate_task": inter, "seed": seed, "lang": lang,
                             "metric": "accuracy", "value": v + shift + (seed - 13)})
    return pd.DataFrame(rows)


def test_language_gaps_pairs_each_language_with_its_runs_english_score():
    g = analysis.language_gaps(_rows(), "debian_topic")
    assert len(g) == 8  # 2 intermediate tasks x 2 seeds x 2 languages
    row = g[(g["intermediate_task"] == "synth_mnli") & (g["seed"] == 14) & (g["lang"] == "ja")].iloc[0]
    assert row["english"] == 96.0 and row["value"] == 66.0 and row["gap"] == 30.0
    with pytest.raises(XLTError, match="valid"):
        analysis.language_gaps(_rows(), "xnli")


def test_distance_gap_with_given_distances(monkeypatch):
    monkeypatch.setattr(analysis, "distances_from_english", lambda world, kind: {"de": 0.1, "ja": 0.6})
    per, summary = analysis.distance_gap(_rows(), "debian_topic", "syntactic", world="offline-real")
    assert set(per["lang"]) == {"de", "ja"}
    assert per[(per["intermediate_task"] == "none") & (per["lang"] == "ja")]["gap"].iloc[0] == 30.0
    assert list(summary["spearman"]) == [1.0, 1.0] and list(summary["n"]) == [2, 2]


def test_distances_from_english():
    synth = analysis.distances_from_english("synth", "d_syn")
    assert synth["en"] == 0.0 and synth["en_x"] == 0.0 and synth["sw3"] == pytest.approx(0.3)
    with pytest.raises(XLTError, match="d_syn"):
        analysis.distances_from_english("synth", "syntactic")
    with pytest.raises(XLTError, match="offline-real"):
        analysis.distances_from_english("xtreme", "syntactic")


def test_real_distances_from_lang2vec():
    try:
        real = analysis.distances_from_english("offline-real", "syntactic")
    except XLTError as e:
        pytest.skip(str(e))
    assert real["de"] == pytest.approx(0.10, abs=0.02)  # reference sheet: deu .10, fra .19, hin .38
    assert real["hi"] > real["fr"] > real["de"]


def test_verdicts_and_distance_claims():
    assert analysis.verdict(0.1, 0.5) == "supported"
    assert analysis.verdict(-0.5, -0.1) == "not supported"
    assert analysis.verdict(-0.1, 0.5) == "inconclusive"
    assert analysis.verdict(float("nan"), 0.5) == "inconclusive"
    assert analysis.verdict(-0.5, -0.1, expected_sign=-1) == "supported"
    summary = pd.DataFrame([{"model": "m", "intermediate_task": "none", "task": "t", "distance": "syntactic",
                             "n": 20, "spearman": 0.4, "spearman_lo": 0.1, "spearman_hi": 0.7}])
    (row,) = analysis.distance_claims(summary).to_dict("records")
    assert row["verdict"] == "supported" and row["ci95"] == "[+0.10, +0.70]" and row["n_languages"] == 20


def test_world_distance_gaps(monkeypatch):
    monkeypatch.setattr(analysis, "distances_from_english", lambda world, kind: {"de": 0.1, "ja": 0.6})
    per, summary = analysis.world_distance_gaps(_rows(), "offline-real", kinds=["syntactic", "genetic"])
    assert set(summary["distance"]) == {"syntactic", "genetic"} and len(summary) == 4
    assert set(per.columns) >= {"lang", "gap", "distance_value", "distance", "task"}
    assert analysis.world_distance_gaps(_rows(), "synth") is None
