"""Analysis statistics: hand-computed correlations, bootstrap intervals, gaps and distances."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

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


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    lo, hi = analysis.bootstrap_ci(x, seed=3)
    assert 1.0 <= lo < 3.0 < hi <= 5.0
    assert (lo, hi) == analysis.bootstrap_ci(x, seed=3)
    assert analysis.bootstrap_ci([7.0, 7.0, 7.0]) == (7.0, 7.0)
    assert all(math.isnan(v) for v in analysis.bootstrap_ci([1.0]))


def test_crossed_bootstrap_by_hand():
    langs = ["a", "b", "c", "d"]
    # one seed (or none): exactly the bootstrap over the languages' values
    assert analysis.bootstrap_ci_crossed([1.0, 5.0, 2.0, 8.0], langs, [13] * 4, seed=3) == \
        analysis.bootstrap_ci([1.0, 5.0, 2.0, 8.0], seed=3)
    assert analysis.bootstrap_ci_crossed([1.0, 5.0, 2.0, 8.0], langs) == analysis.bootstrap_ci([1.0, 5.0, 2.0, 8.0])
    # two seeds, +10 in every language with one and -10 with the other: the languages agree (a bootstrap over
    # them alone gives [0, 0]); resampling seeds draws (1,1) -> +10, (2,2) -> -10, one of each -> 0, each with
    # probability >= 1/4, so the 95% interval is [-10, +10]
    v = [10.0] * 4 + [-10.0] * 4
    assert analysis.bootstrap_ci_crossed(v, langs * 2, [1] * 4 + [2] * 4) == (-10.0, 10.0)
    assert analysis.bootstrap_ci([0.0] * 4) == (0.0, 0.0)
    # repeats of one (language, seed) are averaged; a missing (language, seed) is skipped in that language's mean
    lo, hi = analysis.bootstrap_ci_crossed([4.0, 6.0, 5.0, 5.0, 5.0], ["a", "a", "b", "a", "b"], [1, 1, 1, 2, 2])
    assert (lo, hi) == (5.0, 5.0)
    # "b" lacks seed 2: seeds (1,1) give 5 (p 1/4); seeds (2,2) leave "a" alone at 7 (p 1/4 x 3/4 that "a" is
    # drawn); a resample with no language left is dropped
    assert analysis.bootstrap_ci_crossed([5.0, 5.0, 7.0], ["a", "b", "a"], [1, 1, 2]) == (5.0, 7.0)
    assert all(math.isnan(x) for x in analysis.bootstrap_ci_crossed([1.0, 2.0], ["a", "a"], [1, 2]))


def test_correlation_interval_contains_estimate():
    rng = np.random.default_rng(0)
    d = np.linspace(0, 1, 30)
    gap = 10 * d + rng.normal(0, 1, 30)
    c = analysis.correlation(d, gap)
    assert c["n"] == 30 and c["spearman"] > 0.8
    assert c["spearman_lo"] <= c["spearman"] <= c["spearman_hi"]
    assert c["pearson_lo"] <= c["pearson"] <= c["pearson_hi"]


def test_resampled_ranks_and_rowwise_pearson_match_the_one_sample_functions():
    """The bootstrap ranks and correlates all resamples at once; each row must equal _ranks / pearson of that
    resample, ties (average ranks) and constant resamples (nan) included."""
    x = np.array([3.0, 1.0, 3.0, 2.0, 3.0])
    y = np.array([1.0, 2.0, 2.0, 5.0, 4.0])
    idx = np.array([[0, 1, 2, 3, 4], [0, 0, 2, 4, 4], [1, 1, 1, 1, 1], [3, 1, 3, 0, 2]])
    ranks = analysis._resampled_ranks(x, idx)
    assert ranks[0].tolist() == [3.0, 0.0, 3.0, 1.0, 3.0]  # 0-based: the three 3s share ranks 2, 3, 4
    assert ranks[1].tolist() == [2.0] * 5 and ranks[2].tolist() == [2.0] * 5
    for b in range(len(idx)):
        assert ranks[b].tolist() == analysis._ranks(x[idx[b]]).tolist()
    r = analysis._rowwise_pearson(x[idx], y[idx])
    for b in range(len(idx)):
        want = analysis.pearson(x[idx[b]], y[idx[b]])
        assert (math.isnan(r[b]) and math.isnan(want)) or r[b] == pytest.approx(want, abs=1e-12)
    assert math.isnan(r[1]) and math.isnan(r[2])  # x is constant in those resamples


def test_correlation_with_a_constant_side_is_nan_not_an_error():
    c = analysis.correlation([0.0, 0.1, 0.3, 0.5], [33.3, 33.3, 33.3, 33.3])
    assert c["n"] == 4 and all(math.isnan(c[k]) for k in ("spearman", "spearman_lo", "spearman_hi", "pearson_hi"))


def test_one_outlier_in_a_flat_arm_is_not_a_decided_correlation():
    # rq5 embedded-full, hi_like source: chance (33.6) in 14 languages, 33.93 in the source language (distance 0).
    # A resample misses that point with probability (14/15)^15 = 0.355 and then has no rank order: it counts as 0,
    # so the interval reaches 0 (dropping those resamples gave [-0.79, -0.44], a false "supported").
    d = [0.0, 0.2, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.8]
    v = [33.93] + [33.6] * 14
    c = analysis.correlation(d, v)
    assert c["spearman"] < -0.4
    assert c["spearman_lo"] < -0.4 and c["spearman_hi"] == 0.0


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
