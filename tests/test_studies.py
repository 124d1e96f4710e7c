"""The six studies: every study file expands in every profile; the research-question analyses (paired effects,
intervals, claims, verdicts) on hand-computed results; the source-language parameter; merged grids."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xlt_utils import config as C
from xlt_utils import grid as G
from xlt_utils import selection, studies
from xlt_utils.errors import XLTError
from xlt_utils.execute import write_manifest
from xlt_utils.expand import expand_all, load_study, resolve_study, study_files
from xlt_utils.parts import merge

STUDIES = sorted(C.ANALYSIS_NOTEBOOKS)


def test_six_studies_each_with_its_notebook_and_four_profiles():
    assert STUDIES == ["paper", "rq1_batch_size", "rq2_model_scale", "rq3_efficiency", "rq4_intermediate_data",
                       "rq5_source_language"]
    assert set(study_files()) == set(STUDIES)
    for s in STUDIES:
        assert {"smoke", "embedded", "embedded-full", "xtreme-r"} <= set(load_study(resolve_study(s))["profiles"])
        assert s in studies.QUESTIONS


@pytest.mark.parametrize("study", STUDIES)
@pytest.mark.parametrize("profile", ["smoke", "embedded", "embedded-full", "xtreme-r"])
def test_every_study_profile_expands(study, profile):
    g = G.expand(study, profile)
    assert g.cells and len({c.run_id for c in g.cells}) == len(g.cells)
    if profile == "embedded-full":  # >= 3 seeds everywhere, >= 5 for the e5 real-task arms (issue #36)
        trained = [c for c in g.cells if c.phase in ("intermediate", "target")]
        assert {13, 14, 15} <= {c.params["seed"] for c in trained}
        real = {c.params["seed"] for c in trained if c.params["world"] == "offline-real"}
        assert real == {13, 14, 15, 16, 17} or (not real and study == "rq2_model_scale")


def test_embedded_studies_share_the_paper_cells():
    """Cells with the same parameters are the same run: the research questions reuse the paper study's (and rq5
    rq4's 300-sentence English POS cell), in embedded and in embedded-full."""
    for profile in ("embedded", "embedded-full"):
        def ids(study, phase="intermediate", profile=profile):
            return {c.run_id for c in G.expand(study, profile).cells if c.phase == phase}

        paper = ids("paper") | ids("paper", "target")
        assert ids("rq1_batch_size") & paper
        assert ids("rq4_intermediate_data") & paper  # Brown POS at 768 (embedded) / 6,400 sentences (embedded-full)
        assert ids("rq5_source_language") & ids("rq4_intermediate_data")
        rq3 = {c.run_id for c in G.expand("rq3_efficiency", profile).cells
               if c.phase == "target" and c.params.get("num_layers") is None and c.params["world"] == "offline-real"}
        assert rq3 and rq3 <= paper


def test_merged_grid_runs_each_cell_once_and_keeps_each_study_manifest(tmp_path, monkeypatch):
    from xlt_utils import paths

    monkeypatch.setattr(paths, "RESULTS", tmp_path)
    grids = expand_all(["paper", "rq5_source_language"], "smoke")
    merged = merge(grids)
    ids = [c.run_id for c in merged.cells]
    assert len(ids) == len(set(ids)) == len({c.run_id for g in grids for c in g.cells})
    assert len(ids) < sum(len(g.cells) for g in grids)  # shared cells
    write_manifest(merged)
    assert sorted(p.name for p in (tmp_path / "studies").glob("*.json")) == [
        "paper__smoke.json", "rq5_source_language__smoke.json"]


def test_rq3_budget_axes_do_not_multiply():
    """Each budget axis is its own sub-profile: their union, not their product."""
    g = G.expand("rq3_efficiency", "embedded")
    depth = {c.run_id: c.params.get("num_layers") for c in g.cells if c.phase == "target"}
    ev = [(depth.get(c.upstream.run_id) if c.upstream else None, c.params["inference_dtype"], c.params["max_seq_length"])
          for c in g.cells if c.phase == "eval"]
    # the layer budget is a model fine-tuned at that depth (target.num_layers), not a cut at evaluation
    assert {c.params["num_layers"] for c in g.cells if c.phase == "eval"} == {None}
    assert set(ev) == {(None, "float32", 128), (6, "float32", 128), (None, "int8", 128)}
    full = G.expand("rq3_efficiency", "embedded-full")
    assert {c.params["max_seq_length"] for c in full.cells if c.phase == "eval"
            and c.params["world"] == "offline-real"} == {128, 64, 32, 16}


# ---------------------------------------------------------------------------------------------- train_language


def _cfg(phase, **kw):
    base = {"intermediate": {"world": "synth", "model": "synth-tiny", "seed": 1, "upstream": None,
                             "intermediate_task": "synth_mnli"},
            "target": {"world": "synth", "model": "synth-tiny", "seed": 1, "upstream": None,
                       "target_task": "synth_xnli"}}[phase]
    return C.from_params(phase, {**dict(C.notebook_defaults(C.PHASE_NOTEBOOKS[phase])), **base, **kw})


def test_train_language_is_validated_naming_the_valid_ones():
    assert _cfg("intermediate", train_language="hi_like").train_language == "hi_like"
    assert _cfg("target", train_language=None).train_language is None
    with pytest.raises(XLTError, match=r"unknown train_language of task synth_mnli: 'xx'; valid: ar_like, en, en_inv"):
        _cfg("intermediate", train_language="xx")
    with pytest.raises(XLTError, match="trains on all of its languages"):
        _cfg("intermediate", intermediate_task="synth_mnli_multi", train_language="en")


# ---------------------------------------------------------------------------------------------- analyses


def _rows(spec, task="synth_xnli", model="synth-tiny", world="synth", **cols):
    """Eval rows: spec = {intermediate_task: {lang: value}}."""
    rows = []
    for it, langs in spec.items():
        for lang, v in langs.items():
            rows.append({"phase": "eval", "world": world, "model": model, "target_task": task, "task": task,
                         "intermediate_task": it, "seed": 13, "lang": lang, "metric": "accuracy", "value": v,
                         **cols})
    return rows


def test_paired_effects_and_summary_by_hand():
    df = pd.DataFrame(_rows({"none": {"en": 60, "a": 40, "b": 30, "c": 50},
                             "synth_mnli": {"en": 62, "a": 43, "b": 29, "c": 54}}))
    eff = studies.paired_effects(df)
    assert dict(zip(eff["lang"], eff["delta"])) == {"en": 2, "a": 3, "b": -1, "c": 4}
    s = studies.summarize(eff, ["intermediate_task"]).iloc[0]
    assert s["mean"] == 2.0 and s["english"] == 2.0 and s["n_languages"] == 3 and s["n_seeds"] == 1
    # one seed, deltas 3, -1, 4: variance (1 + 9 + 4) / 2 = 7, over 3 languages 7/3; t with 2 degrees of freedom
    half = stats.t.ppf(0.975, 2) * math.sqrt(7 / 3)
    assert (s["ci_lo"], s["ci_hi"]) == pytest.approx((2 - half, 2 + half), abs=0.005)
    assert math.isnan(s["seed_sd"])


def test_effects_need_a_baseline():
    with pytest.raises(XLTError, match="no no-intermediate baseline"):
        studies.paired_effects(pd.DataFrame(_rows({"synth_mnli": {"en": 1, "a": 2}})))


def test_paired_difference_and_verdicts():
    a = pd.DataFrame({"lang": ["en", "x", "y", "z"], "delta": [9, 3, 4, 5]})
    b = pd.DataFrame({"lang": ["en", "x", "y", "z"], "delta": [0, 1, 1, 1]})
    d = studies.paired_difference(a, b)
    # differences 2, 3, 4: variance 1, over 3 languages 1/3; t with 2 degrees of freedom
    half = stats.t.ppf(0.975, 2) * math.sqrt(1 / 3)
    assert d["estimate"] == 3.0 and d["n_languages"] == 3
    assert (d["ci_lo"], d["ci_hi"]) == pytest.approx((3 - half, 3 + half))
    assert studies.claim("c", "s", 3.0, 2.0, 4.0)["verdict"] == "supported"
    assert studies.claim("c", "s", -3.0, -4.0, -2.0)["verdict"] == "not supported"
    assert studies.claim("c", "s", 0.5, -1.0, 2.0)["verdict"] == "inconclusive"
    assert studies.claim("c", "s", -3.0, -4.0, -2.0, two_sided=True)["verdict"] == "supported"
    assert studies.claim("c", "s", 3.0, 2.0, 4.0, expected_sign=-1)["verdict"] == "not supported"
    assert studies.ratio_claim("faster", "s", 2.0)["verdict"] == "supported"
    assert studies.ratio_claim("faster", "s", 1.05)["verdict"] == "inconclusive"
    assert studies.ratio_claim("faster", "s", 0.5)["verdict"] == "not supported"
    assert studies.ratio_claim("unchanged", "s", 1.0, expected_above_one=False)["verdict"] == "supported"
    assert studies.ratio_claim("unchanged", "s", 1.5, expected_above_one=False)["verdict"] == "not supported"


def test_rq4_diminishing_returns_by_hand():
    """Effects a: 0 / 4 / 5, b: 0 / 2 / 3 at 1k / 4k / 16k (two doublings per step), and languages c, d as a, b:
    gain per doubling first (2, 1, 2, 1) minus last (0.5, 0.5, 0.5, 0.5) = (1.5, 0.5, 1.5, 0.5), mean 1.0;
    largest minus smallest: (5, 3, 5, 3), mean 4."""
    rows = _rows({"none": {"en": 50, "a": 30, "b": 30, "c": 30, "d": 30}})
    for n, (va, vb) in {1000: (30, 30), 4000: (34, 32), 16000: (35, 33)}.items():
        rows += _rows({"synth_mnli": {"en": 50, "a": va, "b": vb, "c": va, "d": vb}},
                      intermediate_max_train_samples=n)
    claims = studies.rq4_claims(pd.DataFrame(rows))
    more = claims[claims["claim"].str.startswith("More English")].iloc[0]
    dim = claims[claims["claim"].str.startswith("Returns")].iloc[0]
    assert more["ours"] == "+4.00 points" and dim["ours"] == "+1.00 points per doubling"
    assert more["note"] == "synth_mnli vs no intermediate task: +0.00 at 1000 examples, +4.00 at 16000"
    # the first step's gains (2, 1, 2, 1): variance 1/3, over 4 languages 1/12; 1.5 ± t(3) sqrt(1/12) = ± 0.92
    assert dim["note"] == "per doubling: first +1.50 [+0.58, +2.42], last +0.50"
    assert dim["verdict"] == "supported"
    fit = studies.log_fit(studies.data_table(pd.DataFrame(rows)))
    # least squares over (log2 n, mean effect) = (9.97, 0), (11.97, 3), (13.97, 4): slope 1.0 per doubling
    assert fit.iloc[0]["gain_per_doubling"] == 1.0


def test_rq4_multilingual_set_against_the_largest_and_an_equal_english_set():
    """synth_mnli_multi capped at 20,000 per language has 2,000 items in each of 5 languages: 10,000 distinct
    examples, so it is compared with English 20,000 (the largest) and English 10,000 (the same size). Effects by
    hand, languages a / b: English 10k (+1, +1), 20k (+2, +4), multilingual (+3, +5)."""
    rows = _rows({"none": {"en": 50, "a": 30, "b": 30}})
    for n, (va, vb) in {2500: (30, 30), 10000: (31, 31), 20000: (32, 34)}.items():
        rows += _rows({"synth_mnli": {"en": 50, "a": va, "b": vb}}, intermediate_max_train_samples=n)
    rows += _rows({"synth_mnli_multi": {"en": 50, "a": 33, "b": 35}}, intermediate_max_train_samples=20000)
    df = pd.DataFrame(rows)
    assert studies.train_set_size("synth_mnli_multi", 20000) == 10000.0
    assert studies.train_set_size("synth_mnli", 1e9) == 20000.0  # bounded by what the task has
    assert math.isnan(studies.train_set_size("mnli", None))  # a Hub set used whole: unknown here
    table = studies.data_table(df)
    assert dict(zip(table["intermediate_task"] + "@" + table["intermediate_max_train_samples"].astype(int).astype(str),
                    table["n_train_examples"])) == {"synth_mnli@2500": 2500, "synth_mnli@10000": 10000,
                                                    "synth_mnli@20000": 20000, "synth_mnli_multi@20000": 10000}
    claims = studies.rq4_claims(df).set_index("claim")["ours"]
    assert claims["The small multilingual synth_mnli_multi beats 20000 English synth_mnli examples on synth_xnli"] \
        == "+1.00 points"  # (3 - 2 + 5 - 4) / 2
    assert claims["The multilingual synth_mnli_multi beats as many English synth_mnli examples (10000) on "
                  "synth_xnli"] == "+3.00 points"  # (3 - 1 + 5 - 1) / 2


def test_rq4_returns_that_never_rose_do_not_diminish():
    """Effects a: 0 / 0 / -4, b: 0 / 2 / -2 at 1k / 4k / 16k: gain per doubling first (0, 1), last (-2, -2), so
    first minus last (2, 3) lies above 0, but the first step's gain is not shown positive (its interval reaches
    0): a curve that is flat and then falls is not one of diminishing returns. Languages c, d repeat a, b: with
    4 languages, 2.5 ± t(3) sqrt(1/12) = [1.58, 3.42] and 0.5 ± 0.92."""
    rows = _rows({"none": {"en": 50, "a": 30, "b": 30, "c": 30, "d": 30}})
    for n, (va, vb) in {1000: (30, 30), 4000: (30, 32), 16000: (26, 28)}.items():
        rows += _rows({"synth_mnli": {"en": 50, "a": va, "b": vb, "c": va, "d": vb}},
                      intermediate_max_train_samples=n)
    dim = studies.rq4_claims(pd.DataFrame(rows)).set_index("claim").filter(like="Returns", axis=0).iloc[0]
    assert dim["ours"] == "+2.50 points per doubling" and dim["95% interval"] == "[+1.58, +3.42]"
    assert dim["verdict"] == "inconclusive"
    assert dim["note"] == ("per doubling: first +0.50 [-0.42, +1.42], last -2.00; the first step's gain is not "
                           "shown to be positive")


def test_paired_difference_pairs_by_seed_and_resamples_seeds():
    """Two seeds whose runs differ by 20 points everywhere, with the same +3 advantage of ``a`` in every
    (seed, language): paired by seed the difference is exactly 3 with no spread; a seed effect that is not
    shared (``c``: +13 with seed 1, -7 with seed 2, the same in every language) gives an interval reaching
    both seeds' values, which an interval over languages alone (every language's seed mean is +3) would hide."""
    langs = ["x", "y", "z", "w"]
    b = pd.DataFrame([{"lang": lang, "seed": s, "delta": base + i}
                      for s, base in ((1, 0.0), (2, 20.0)) for i, lang in enumerate(langs)])
    a = b.assign(delta=b["delta"] + 3)
    d = studies.paired_difference(a, b)
    assert (d["estimate"], d["ci_lo"], d["ci_hi"], d["n_languages"]) == (3.0, 3.0, 3.0, 4)
    c = b.assign(delta=b["delta"] + np.where(b["seed"] == 1, 13.0, -7.0))
    d = studies.paired_difference(c, b)
    # seed means 13 and -7: variance 200, over 2 seeds 100; t with 1 degree of freedom: 3 ± 12.71 x 10
    half = stats.t.ppf(0.975, 1) * 10
    assert (d["estimate"], d["ci_lo"], d["ci_hi"]) == pytest.approx((3.0, 3 - half, 3 + half))


def test_rq5_nearest_source_vs_english_by_hand():
    """Sources en and hi_like; non-source languages fr_like (d_syn 0.1), ar_like (0.3), sw5 (0.5), ja_like (0.7):
    the top third from English is sw5 and ja_like; hi_like minus en: sw5 3 - 1, ja_like 4 - 0 -> mean 3."""
    base = {"en": 60, "fr_like": 40, "ar_like": 35, "sw5": 30, "ja_like": 20, "hi_like": 25}
    en = {"en": 62, "fr_like": 41, "ar_like": 36, "sw5": 31, "ja_like": 20, "hi_like": 26}
    hi = {"en": 61, "fr_like": 40, "ar_like": 37, "sw5": 33, "ja_like": 24, "hi_like": 30}
    rows = _rows({"none": base}) + _rows({"synth_mnli": en}) + _rows({"synth_mnli": hi},
                                                                    intermediate_train_language="hi_like")
    df = pd.DataFrame(rows)
    assert studies.rq5_distance(df) == "d_syn"
    m = studies.source_matrix(df)
    assert list(m.index) == ["en", "hi_like"] and m.loc["hi_like", ("synth_xnli", "ja_like")] == 4
    claims = studies.rq5_claims(df, "d_syn")
    near = claims[claims["claim"].str.startswith("For the targets")].iloc[0]
    assert "(ja_like, sw5)" in near["claim"] and near["ours"] == "+3.00 points"
    # every arm there scores under 33.33 (chance on 3 labels): the note names them, the number stands
    assert near["note"] == ("distance: d_syn; nearest source per target: ja_like ← hi_like, sw5 ← hi_like; both arms at chance on "
                            "ja_like, sw5 (chance 33.33): no transfer to compare there")
    lifted = pd.DataFrame([dict(r, value=r["value"] + 30) if r["lang"] == "sw5" else r for r in rows])
    note = studies.rq5_claims(lifted, "d_syn").iloc[0]["note"]
    assert note.endswith("both arms at chance on ja_like (chance 33.33): no transfer to compare there")
    # One rho per source over the languages that are zero-shot after it: not its own (trained in it), not English
    # (the target's training language). en: distance ranks fr 1, ar 2, sw5 3.5, hi 3.5, ja 5 (sw5 and hi_like tie at
    # 0.5) against score ranks 5, 4, 3, 2, 1 -> r of the ranks = -9.5 / sqrt(9.5 x 10) = -0.9747. hi_like: distance
    # ranks (fr 3, ar 4, sw5 2, ja 1) vs score ranks (4, 3, 2, 1): sum d^2 = 2 -> 1 - 6*2/(4*15) = +0.80.
    rho = claims[claims["claim"].str.contains("Spearman")].set_index("claim")
    assert list(rho.index.str.extract(r"source (\w+) ")[0]) == ["en", "hi_like"]
    assert list(rho["ours"]) == ["-0.97 rho", "+0.80 rho"]
    assert list(rho["note"]) == [
        "5 languages, seed-averaged; Fisher-z interval over languages only; left out, not zero-shot: en",
        "4 languages, seed-averaged; Fisher-z interval over languages only; left out, not zero-shot: en, hi_like"]


def test_rq5_one_distant_language_gets_an_interval_over_its_seeds():
    """One language in the top third from English (ja_like: fr_like 0.1, ar_like 0.3, ja_like 0.7, cut at 0.43):
    hi_like minus en there is (45 - 40) - (41 - 40) = 4 with seed 13 and (50 - 40) - (42 - 40) = 8 with seed 14,
    mean 6; the seeds' variance 8, over 2 seeds 4, with 1 degree of freedom: 6 ± 12.71 x 2. With 100 test items
    (synth_xnli does not share its items across languages, but one language's own items still count), each seed's
    difference has the two arms' 100² p(1 - p) / 100: seed 13 24.75 + 24.19 = 48.94, seed 14 25 + 24.36 = 49.36;
    their standard deviations averaged, squared: ((6.9957 + 7.0257) / 2)² = 49.15. The seeds' 4 is under 10% of
    the total, so the degrees of freedom are Welch-Satterthwaite's, 53.15² / (4² / 1) = 176.6. One seed: no
    interval."""
    rows = []
    for seed, (en_ja, hi_ja) in {13: (41, 45), 14: (42, 50)}.items():
        base = {"en": 60, "fr_like": 50, "ar_like": 45, "ja_like": 40, "hi_like": 42}
        rows += (_rows({"none": base}, seed=seed) + _rows({"synth_mnli": dict(base, ja_like=en_ja)}, seed=seed)
                 + _rows({"synth_mnli": dict(base, ja_like=hi_ja)}, seed=seed, intermediate_train_language="hi_like"))
    df = pd.DataFrame(rows)
    near = studies.rq5_claims(df, "d_syn").iloc[0]
    half = stats.t.ppf(0.975, 1) * 2
    assert "(ja_like)" in near["claim"] and near["ours"] == "+6.00 points"
    assert near["95% interval"] == f"[{6 - half:+.2f}, {6 + half:+.2f}]" and near["verdict"] == "inconclusive"
    assert near["note"].endswith("ja_like ← hi_like; one language: the interval is over its seeds only (no test-set "
                                 "size recorded)")
    near = studies.rq5_claims(df.assign(n_examples=100), "d_syn").iloc[0]
    items = ((math.sqrt(48.94) + math.sqrt(49.36)) / 2) ** 2
    half = stats.t.ppf(0.975, (4 + items) ** 2 / 16) * math.sqrt(4 + items)
    assert near["95% interval"] == f"[{6 - half:+.2f}, {6 + half:+.2f}]"
    assert near["note"].endswith("ja_like ← hi_like; one language: the interval is over its seeds and its test items")
    one_seed = studies.rq5_claims(df[df["seed"] == 13], "d_syn").iloc[0]
    assert one_seed["ours"] == "+4.00 points" and one_seed["95% interval"] == "n/a (one language, one seed)"


def test_rq5_flat_source_arm_is_inconclusive_not_an_error():
    """An arm at one score in every language (a source that learned nothing) has no rank order: its rho is n/a."""
    base = {"en": 60, "fr_like": 40, "ja_like": 20, "hi_like": 25}
    en = {"en": 62, "fr_like": 41, "ja_like": 20, "hi_like": 26}
    flat = dict.fromkeys(base, 33.3)
    rows = _rows({"none": base}) + _rows({"synth_mnli": en}) + _rows({"synth_mnli": flat},
                                                                    intermediate_train_language="hi_like")
    rho = studies.rq5_claims(pd.DataFrame(rows), "d_syn")
    row = rho[rho["claim"].str.contains("source hi_like")].iloc[0]
    assert row["ours"] == "n/a" and row["verdict"] == "inconclusive" and "same score in every language" in row["note"]
    assert row["95% interval"] == "n/a (no rank order)"


def test_rq3_variants_and_claims_by_hand():
    assert studies.variant_name(0, "float32", 64, 64) == "full"
    assert studies.variant_name(0, "float32", 64, 64, 6) == "6 layers (fine-tuned)"
    assert studies.variant_name(6, "float32", 64, 64) == "6 layers (cut at eval)"
    assert studies.variant_name(3, "float32", 64, 64, 6) == "6 layers (fine-tuned), 3 layers (cut at eval)"
    assert studies.variant_name(0, "int8", 32, 64) == "int8, 32 tokens"
    assert studies.variant_name(0, "float32", 64, 64, 1) == "1 layer (fine-tuned)"
    full = {"none": {"en": 80, "a": 60, "b": 50}, "synth_mnli": {"en": 80, "a": 62, "b": 53}}
    cut = {"none": {"en": 70, "a": 50, "b": 44}, "synth_mnli": {"en": 70, "a": 50, "b": 45}}
    df = pd.DataFrame(_rows(full, num_layers=None, inference_dtype="float32", max_seq_length=64)
                      + _rows(cut, target_num_layers=6, num_layers=None, inference_dtype="float32",
                              max_seq_length=64))
    budget = studies.budget_table(df, None)
    assert set(budget["variant"]) == {"full", "6 layers (fine-tuned)"}
    claims = studies.rq3_claims(df, budget)
    cost = claims[claims["claim"].str.startswith("6 layers (fine-tuned) costs")].iloc[0]
    change = claims[claims["claim"].str.startswith("The synth_mnli effect")].iloc[0]
    assert cost["ours"] == "+8.00 points"  # (60-50 + 50-44) / 2
    assert change["ours"] == "-2.00 points"  # effects (0, 1) under the budget vs (2, 3) at full budget
    # budgets in the claims table read in numeric order, not as text ("10 layers" after "2 layers")
    names = ["10 layers", "2 layers", "int8, 32 tokens", "int8, 128 tokens", "bf16", "6 layers"]
    assert sorted(names, key=studies.natural_key) == ["2 layers", "6 layers", "10 layers", "bf16", "int8, 32 tokens",
                                                      "int8, 128 tokens"]
    df = pd.concat([df, pd.DataFrame(_rows(cut, target_num_layers=10, inference_dtype="float32",
                                           max_seq_length=64))])
    order = [c.split(" costs")[0] for c in studies.rq3_claims(df, None)["claim"] if " costs " in c]
    assert order == ["6 layers (fine-tuned)", "10 layers (fine-tuned)"]


def test_rq3_layers_cut_at_evaluation_still_read_but_are_no_budget():
    """Results of the older design (eval num_layers: a model fine-tuned with all its layers, read at layer n) keep
    their rows, named apart from a model fine-tuned at n layers, in the budget table; the Pareto front and the claims
    use the fine-tuned models only (a cut model at chance would otherwise be the cheapest point of the front)."""
    full = {"none": {"en": 80, "a": 60, "b": 50}, "synth_mnli": {"en": 80, "a": 62, "b": 53}}
    tuned = {"none": {"en": 75, "a": 55, "b": 47}, "synth_mnli": {"en": 76, "a": 57, "b": 49}}
    chance = {"none": {"en": 34, "a": 33, "b": 33}, "synth_mnli": {"en": 34, "a": 33, "b": 33}}
    common = {"inference_dtype": "float32", "max_seq_length": 64}
    df = pd.DataFrame(_rows(full, **common) + _rows(tuned, target_num_layers=6, **common)
                      + _rows(chance, num_layers=6, **common))
    eff = pd.DataFrame([{"model": "synth-tiny", "target_task": "synth_xnli", "intermediate_task": it,
                         "target_num_layers": tl, "num_layers": nl, "inference_dtype": "float32",
                         "max_seq_length": 64, "batch_size": 1, "latency_p50_ms": ms, "throughput_ex_s": 1000 / ms,
                         "flops_per_example": 1e9}
                        for it in ("none", "synth_mnli") for tl, nl, ms in ((None, None, 20.0), (6, None, 11.0),
                                                                             (None, 6, 10.0))])
    budget = studies.budget_table(df, eff)
    assert set(budget["variant"]) == {"full", "6 layers (fine-tuned)", "6 layers (cut at eval)"}
    by = budget.set_index(["intermediate_task", "variant"])
    assert by.loc[("none", "6 layers (fine-tuned)"), "latency_ms_b1"] == 11.0
    assert by.loc[("none", "6 layers (cut at eval)"), "latency_ms_b1"] == 10.0
    front = studies.pareto(budget)
    assert "6 layers (cut at eval)" not in set(front["variant"])
    assert set(front["variant"]) == {"full", "6 layers (fine-tuned)"}
    claims = studies.rq3_claims(df, budget)
    assert not claims["claim"].str.contains("cut at eval").any()
    cost = claims[claims["claim"].str.startswith("6 layers (fine-tuned) costs")].iloc[0]
    assert cost["ours"] == "+4.00 points" and "batch-1 speed-up 1.82x" in cost["note"]  # (5 + 3) / 2; 20 / 11
    # an older bundle: eval-time cuts only, and efficiency rows without the new column, still render
    old = df[df["target_num_layers"].isna()].drop(columns="target_num_layers")
    budget = studies.budget_table(old, eff[eff["target_num_layers"].isna()].drop(columns="target_num_layers"))
    assert set(budget["variant"]) == {"full", "6 layers (cut at eval)"}
    assert set(studies.pareto(budget)["variant"]) == {"full"}
    assert not studies.rq3_claims(old, budget)["claim"].str.contains("layers").any()


def test_rq3_effect_change_at_the_floor_is_inconclusive():
    """Under 2 layers both arms score 33.33 (chance on a 3-label target) in every language: the +2.5 effect at full
    budget 'changes' by -2.5 with the interval [-3.42, -1.58] (languages c, d repeat a, b: -2.5 ± t(3)
    sqrt(1/12)), but the model is broken, not the effect: inconclusive."""
    full = {"none": {"en": 80, "a": 60, "b": 50, "c": 60, "d": 50},
            "synth_mnli": {"en": 80, "a": 62, "b": 53, "c": 62, "d": 53}}
    chance = dict.fromkeys("abcd", 100 / 3)
    cut = {"none": {"en": 34, **chance}, "synth_mnli": {"en": 34, **chance}}
    df = pd.DataFrame(_rows(full, num_layers=None, inference_dtype="float32", max_seq_length=64)
                      + _rows(cut, target_num_layers=2, inference_dtype="float32", max_seq_length=64))
    claims = studies.rq3_claims(df, studies.budget_table(df, None))
    change = claims[claims["claim"].str.startswith("The synth_mnli effect")].iloc[0]
    assert change["ours"] == "-2.50 points" and change["95% interval"] == "[-3.42, -1.58]"
    assert change["verdict"] == "inconclusive" and change["note"].startswith("at the floor: under 2 layers")
    cost = claims[claims["claim"].str.startswith("2 layers (fine-tuned) costs")].iloc[0]
    assert cost["verdict"] == "supported" and "at chance zero-shot (33.33, chance 33.33)" in cost["note"]
    # one arm above chance under the budget: the change is measurable and decided as before
    cut["synth_mnli"] = {"en": 70, "a": 50, "b": 45, "c": 50, "d": 45}
    df = pd.DataFrame(_rows(full, num_layers=None, inference_dtype="float32", max_seq_length=64)
                      + _rows(cut, target_num_layers=2, inference_dtype="float32", max_seq_length=64))
    change = studies.rq3_claims(df, None)
    change = change[change["claim"].str.startswith("The synth_mnli effect")].iloc[0]
    assert change["verdict"] == "supported" and "floor" not in change["note"]


def test_a_tight_inconclusive_interval_says_the_difference_is_small():
    tight = studies.claim("bf16 costs accuracy", "q", 0.05, -0.02, 0.13, note="full minus reduced")
    assert tight["verdict"] == "inconclusive"
    assert tight["note"] == "full minus reduced; the interval rules out a difference of 1 point or more either way"
    assert "rules out" not in studies.claim("x", "q", 0.4, -0.2, 1.0)["note"]  # reaches 1 point: not ruled out
    assert "rules out" not in studies.claim("x", "q", 0.5, 0.2, 0.8)["note"]  # decided: the verdict says it
    assert "rules out" not in studies.claim("x", "q", 0.1, -0.2, 0.3, unit="rho")["note"]  # only for points


def test_answer_warns_about_many_claims_without_correction():
    claims = studies.claims_frame([studies.claim("x", "s", 1.0, 0.5, 1.5), studies.claim("y", "s", 0.0, -1.0, 1.0)])
    df = pd.DataFrame(_rows({"none": {"en": 50, "a": 30}, "synth_mnli": {"en": 50, "a": 35}}))
    cfg = type("C", (), {"study": "paper", "profile": "embedded"})()
    text = studies.answer(claims, df, cfg).data
    assert "counts 1 of 2 claims as decided" in text and "no correction for the 2 claims made together" in text
    one = studies.answer(claims.iloc[:1], df, cfg).data
    assert "no correction" not in one


def test_rq3_budget_table_joins_the_timings_by_hand():
    """Timings of two seeds per arm: batch-1 latency is their mean (full none 20 and 24 -> 22; 6 layers 10 and 12
    -> 11), so the claimed speed-up is 2.00x; weights in MB."""
    full = {"none": {"en": 80, "a": 60}, "synth_mnli": {"en": 80, "a": 62}}
    cut = {"none": {"en": 70, "a": 50}, "synth_mnli": {"en": 70, "a": 51}}
    df = pd.DataFrame(_rows(full, num_layers=None, inference_dtype="float32", max_seq_length=64)
                      + _rows(cut, target_num_layers=6, inference_dtype="float32", max_seq_length=64))
    eff = []
    for it in ("none", "synth_mnli"):
        for layers, lat in ((None, (20.0, 24.0)), (6, (10.0, 12.0))):
            for seed, ms in zip((13, 14), lat):
                for bs, mult in ((1, 1), (8, 4)):
                    eff.append({"model": "synth-tiny", "target_task": "synth_xnli", "intermediate_task": it,
                                "seed": seed, "target_num_layers": layers, "inference_dtype": "float32",
                                "max_seq_length": 64, "batch_size": bs, "latency_p50_ms": ms * mult,
                                "throughput_ex_s": 1000.0 * bs / (ms * mult), "flops_per_example": 2e9,
                                "weight_mb": 4.0 if layers is None else 2.5})
    budget = studies.budget_table(df, pd.DataFrame(eff)).set_index(["intermediate_task", "variant"])
    six = "6 layers (fine-tuned)"
    assert budget.loc[("none", "full"), "latency_ms_b1"] == 22.0
    assert budget.loc[("none", six), "latency_ms_b1"] == 11.0
    assert budget.loc[("none", "full"), "weights_mb"] == 4.0 and budget.loc[("none", six), "weights_mb"] == 2.5
    assert budget.loc[("none", "full"), "gflops_per_example"] == 2.0
    claims = studies.rq3_claims(df, budget.reset_index())
    assert "batch-1 speed-up 2.00x" in claims[claims["claim"].str.startswith(f"{six} costs")].iloc[0]["note"]


def test_rq3_side_by_side_speed_ups_by_hand():
    """Evaluations timed beside the full-budget model (time_reference): the speed-up is the mean over seeds of each
    cell's own ratio, not the ratio of two cells' latencies, and the Pareto front's cost is the relative latency.
    Full: 24 ms beside 20 (seed 13: the machine was busier then) and 20 beside 20 -> relative 1.1, speed-up
    (20/24 + 1) / 2 = 0.9167; 6 layers: 10 beside 20 and 12 beside 30 -> speed-ups 2.0 and 2.5 -> 2.25x (the
    separate cells would say 22 / 11 = 2.00x); relative 0.5 and 0.4 -> 0.45."""
    full = {"none": {"en": 80, "a": 60}, "synth_mnli": {"en": 80, "a": 62}}
    cut = {"none": {"en": 70, "a": 50}, "synth_mnli": {"en": 70, "a": 51}}
    df = pd.DataFrame(_rows(full, num_layers=None, inference_dtype="float32", max_seq_length=64)
                      + _rows(cut, target_num_layers=6, inference_dtype="float32", max_seq_length=64))
    eff = [{"model": "synth-tiny", "target_task": "synth_xnli", "intermediate_task": it, "seed": seed,
            "target_num_layers": layers, "inference_dtype": "float32", "max_seq_length": 64, "batch_size": 1,
            "latency_p50_ms": ms, "reference_latency_p50_ms": ref, "throughput_ex_s": 1000.0 / ms,
            "flops_per_example": 2e9}
           for it in ("none", "synth_mnli")
           for layers, seed, ms, ref in ((None, 13, 24.0, 20.0), (None, 14, 20.0, 20.0), (6, 13, 10.0, 20.0),
                                         (6, 14, 12.0, 30.0))]
    budget = studies.budget_table(df, pd.DataFrame(eff))
    by = budget.set_index(["intermediate_task", "variant"])
    six = "6 layers (fine-tuned)"
    assert by.loc[("none", six), "speedup_b1"] == pytest.approx(2.25)
    assert by.loc[("none", six), "relative_latency_b1"] == pytest.approx(0.45)
    assert by.loc[("none", "full"), "speedup_b1"] == pytest.approx(0.917, abs=1e-3)
    assert by.loc[("none", "full"), "relative_latency_b1"] == pytest.approx(1.1)
    claims = studies.rq3_claims(df, budget)
    note = claims[claims["claim"].str.startswith(f"{six} costs")].iloc[0]["note"]
    assert "batch-1 speed-up 2.25x, timed side by side with the full model" in note
    assert studies.budget_cost(budget) == "relative_latency_b1"
    front = studies.pareto(budget)  # synth_mnli's (same costs, higher scores): 6 layers cheaper, full more accurate
    assert list(front["intermediate_task"]) == ["synth_mnli"] * 2 and list(front["variant"]) == [six, "full"]
    assert list(front["relative_latency_b1"]) == pytest.approx([0.45, 1.1])
    # one seed of a variant timed without a reference (an older bundle's): no side-by-side ratio for it, not
    # seed 13's alone
    mixed = pd.DataFrame(eff).assign(reference_latency_p50_ms=lambda e: e["reference_latency_p50_ms"].where(
        e["target_num_layers"].isna() | (e["seed"] == 13)))
    budget = studies.budget_table(df, mixed)
    by = budget.set_index(["intermediate_task", "variant"])
    assert math.isnan(by.loc[("none", six), "speedup_b1"]) and by.loc[("none", "full"), "speedup_b1"] > 0
    note = studies.rq3_claims(df, budget)
    assert "2.00x, timed in separate cells" in note[note["claim"].str.startswith(f"{six} costs")].iloc[0]["note"]
    assert studies.budget_cost(budget) == "latency_ms_b1"
    # a variant timed without a reference: the separate cells' ratio, and the front falls back to milliseconds
    partial = pd.DataFrame(eff).assign(reference_latency_p50_ms=lambda e: e["reference_latency_p50_ms"].where(
        e["target_num_layers"].isna()))
    budget = studies.budget_table(df, partial)
    note = studies.rq3_claims(df, budget)
    note = note[note["claim"].str.startswith(f"{six} costs")].iloc[0]["note"]
    assert "batch-1 speed-up 2.00x, timed in separate cells" in note  # (24 + 20) / 2 = 22 over (10 + 12) / 2 = 11
    assert studies.budget_cost(budget) == "latency_ms_b1"


def test_rq3_timings_come_from_one_cpu_by_hand():
    """Seed 13 timed on a CPU with avx512_bf16, seed 14 on one with AVX2 only: a mean of their speed-ups would
    describe neither. 6 layers: 10 ms beside 20 (2.0x) on A, 12 beside 30 (2.5x) on B; full 24 beside 20 on A, 20
    beside 20 on B. Four runs each: the tie goes to the first name, A, so the table says 2.0x and 10 ms, timed on
    A; a third seed on B makes B the CPU (2.5x and (12 + 12) / 2 ms). Every CPU's own speed-ups are in the
    per-CPU table."""
    full = {"none": {"en": 80, "a": 60}, "synth_mnli": {"en": 80, "a": 62}}
    cut = {"none": {"en": 70, "a": 50}, "synth_mnli": {"en": 70, "a": 51}}
    df = pd.DataFrame(_rows(full, num_layers=None, inference_dtype="float32", max_seq_length=64)
                      + _rows(cut, target_num_layers=6, inference_dtype="float32", max_seq_length=64))
    a, b = "A [avx2 avx512_bf16]", "B [avx2]"
    timings = ((None, 13, 24.0, 20.0, a), (None, 14, 20.0, 20.0, b), (6, 13, 10.0, 20.0, a), (6, 14, 12.0, 30.0, b))
    eff = [{"run_id": f"eval/{it}-{layers}-{seed}", "model": "synth-tiny", "target_task": "synth_xnli",
            "intermediate_task": it, "seed": seed, "target_num_layers": layers, "inference_dtype": "float32",
            "max_seq_length": 64, "batch_size": 1, "latency_p50_ms": ms, "reference_latency_p50_ms": ref,
            "speedup": ref / ms, "throughput_ex_s": 1000.0 / ms, "flops_per_example": 2e9, "processor": cpu}
           for it in ("none", "synth_mnli") for layers, seed, ms, ref, cpu in timings]
    six = "6 layers (fine-tuned)"
    assert studies.timing_cpu(pd.DataFrame(eff)) == a
    by = studies.budget_table(df, pd.DataFrame(eff)).set_index(["intermediate_task", "variant"])
    assert by.loc[("none", six), "speedup_b1"] == pytest.approx(2.0) and by.loc[("none", six), "latency_ms_b1"] == 10
    assert by.loc[("none", six), "timed_on"] == a and by.loc[("none", six), "gflops_per_example"] == 2.0
    note = studies.rq3_claims(df, by.reset_index())
    note = note[note["claim"].str.startswith(f"{six} costs")].iloc[0]["note"]
    assert f"batch-1 speed-up 2.00x, timed side by side with the full model on {a} (other CPUs: speed-ups by CPU)" \
        in note
    third = eff + [dict(r, run_id=r["run_id"] + "-15", seed=15) for r in eff if r["processor"] == b]
    assert studies.timing_cpu(pd.DataFrame(third)) == b
    by = studies.budget_table(df, pd.DataFrame(third)).set_index(["intermediate_task", "variant"])
    assert by.loc[("none", six), "speedup_b1"] == pytest.approx(2.5) and by.loc[("none", six), "latency_ms_b1"] == 12
    per = studies.speedup_by_cpu(pd.DataFrame(third)).set_index(["intermediate_task", "variant", "processor"])
    assert per.loc[("none", six, a), "speedup_b1"] == 2.0 and per.loc[("none", six, a), "cells"] == 1
    assert per.loc[("none", six, b), "speedup_b1"] == 2.5 and per.loc[("none", six, b), "cells"] == 2
    assert per.loc[("none", "full", a), "speedup_b1"] == pytest.approx(0.83)
    # a variant the chosen CPU did not time keeps the timing of the CPU that did, and says so: A timed the full
    # model only (2 runs), B the 6 layers only (2 runs); the tie goes to A, and 6 layers is B's 2.5x
    split = pd.DataFrame([r for r in eff if (r["processor"] == a) == (r["target_num_layers"] is None)])
    by = studies.budget_table(df, split).set_index(["intermediate_task", "variant"])
    assert by.loc[("none", six), "timed_on"] == b and by.loc[("none", six), "speedup_b1"] == pytest.approx(2.5)
    assert by.loc[("none", "full"), "timed_on"] == a
    # runs timed side by side count before runs timed alone: B's three runs without a reference lose to A's two
    untimed = pd.DataFrame([{"run_id": f"r{i}", "processor": cpu, "reference_latency_p50_ms": ref}
                            for i, (cpu, ref) in enumerate([(a, 20.0), (a, 20.0), (b, None), (b, None), (b, None)])])
    assert studies.timing_cpu(untimed) == a
    # rows without a CPU are one more CPU, not averaged into a named one
    unnamed = untimed.assign(processor=[a, a, None, None, None], reference_latency_p50_ms=20.0)
    assert studies.timing_cpu(unnamed) == studies.NOT_RECORDED
    # one CPU (or none recorded): no choice to make, no CPU named
    assert studies.timing_cpu(untimed.assign(processor=None)) is None
    one = pd.DataFrame(eff).assign(processor=a)
    assert studies.timing_cpu(one) is None and "timed_on" not in studies.budget_table(df, one).columns
    assert studies.speedup_by_cpu(pd.DataFrame(eff).drop(columns="speedup")).empty


def test_rq1_and_rq2_claims_by_hand():
    rows = _rows({"none": {"en": 50, "a": 30, "b": 30}})
    rows += _rows({"synth_mnli": {"en": 50, "a": 31, "b": 32}}, intermediate_batch_size=8)
    rows += _rows({"synth_mnli": {"en": 50, "a": 35, "b": 34}}, intermediate_batch_size=128)
    training = pd.DataFrame([{"phase": "intermediate", "model": "synth-tiny", "intermediate_task": "synth_mnli",
                              "batch_size": b, "steps": s, "train_seconds": t, "tokens_per_s": 1.0, "peak_rss_mb": 1.0}
                             for b, s, t in ((8, 320, 90.0), (128, 20, 30.0))])
    claims = studies.rq1_claims(pd.DataFrame(rows), training, None)
    assert claims.iloc[0]["ours"] == "+3.00 points"  # batch 128 minus batch 8: a 5 - 1, b 4 - 2 -> mean 3
    # each end's effect against no intermediate task: batch 8 (1 + 2) / 2 = +1.5, batch 128 (5 + 4) / 2 = +4.5
    assert claims.iloc[0]["note"] == "synth_mnli vs no intermediate task: +1.50 at batch 8, +4.50 at 128; helps at both"
    # a task that hurts at every batch size: the larger batch "improves" transfer by hurting less
    worse = [dict(r, value=r["value"] - 10) if r["intermediate_task"] != "none" and r["lang"] != "en" else r
             for r in rows]
    note = studies.rq1_claims(pd.DataFrame(worse), training, None).iloc[0]["note"]
    assert note == ("synth_mnli vs no intermediate task: -8.50 at batch 8, -5.50 at 128; harmful at both, the larger "
                    "batch hurts less")
    assert claims.iloc[1]["ours"] == "3.00x" and claims.iloc[1]["verdict"] == "supported"


def test_rq1_never_pools_models():
    """Two models (as embedded-full has: e5-small and synth-small) with different costs: each model's training-time
    ratio and inference-cost ratio are its own. Pooled, the FLOPs ratio would be e5's over synth's (10x,
    "not supported") and the time ratios would mix the models."""
    rows = []
    for m in ("multilingual-e5-small", "synth-small"):
        rows += _rows({"none": {"en": 50, "a": 30, "b": 30}}, model=m)
        rows += _rows({"synth_mnli": {"en": 50, "a": 31, "b": 31}}, model=m, intermediate_batch_size=8)
        rows += _rows({"synth_mnli": {"en": 50, "a": 33, "b": 33}}, model=m, intermediate_batch_size=128)
    training = pd.DataFrame([{"phase": "intermediate", "model": m, "intermediate_task": "synth_mnli", "batch_size": b,
                              "steps": 1, "train_seconds": t, "tokens_per_s": 1.0, "peak_rss_mb": 1.0}
                             for m, b, t in (("multilingual-e5-small", 8, 400.0), ("multilingual-e5-small", 128, 100.0),
                                             ("synth-small", 8, 40.0), ("synth-small", 128, 20.0))])
    efficiency = pd.DataFrame([{"model": m, "intermediate_task": "synth_mnli", "intermediate_batch_size": b,
                                "batch_size": 1, "flops_per_example": f, "latency_p50_ms": f / 1e8}
                               for m, f in (("multilingual-e5-small", 1e10), ("synth-small", 1e9)) for b in (8, 128)])
    claims = studies.rq1_claims(pd.DataFrame(rows), training, efficiency).set_index("claim")
    time = "A larger intermediate batch (128 vs 8) shortens synth_mnli training of {} (time ratio small/large)"
    assert claims.loc[time.format("multilingual-e5-small"), "ours"] == "4.00x"
    assert claims.loc[time.format("synth-small"), "ours"] == "2.00x"
    unchanged = claims[claims.index.str.startswith("The intermediate batch size leaves")]
    assert list(unchanged["ours"]) == ["1.00x", "1.00x"] and set(unchanged["verdict"]) == {"supported"}
    effects = claims[claims.index.str.startswith("A larger intermediate batch (128 vs 8, same examples)")]
    assert len(effects) == 2 and set(effects["ours"]) == {"+2.00 points"}
    table = studies.batch_size_table(pd.DataFrame(rows), training)
    assert sorted(zip(table["model"], table["intermediate_batch_size"], table["train_seconds"])) == [
        ("multilingual-e5-small", 8, 400.0), ("multilingual-e5-small", 128, 100.0), ("synth-small", 8, 40.0),
        ("synth-small", 128, 20.0)]
    rows = (_rows({"none": {"en": 50, "a": 30, "b": 30}, "synth_mnli": {"en": 50, "a": 31, "b": 31}})
            + _rows({"none": {"en": 60, "a": 40, "b": 40}, "synth_mnli": {"en": 60, "a": 44, "b": 46}},
                    model="synth-small"))
    claims = studies.rq2_claims(pd.DataFrame(rows))
    diff = claims[claims["claim"].str.contains("differs")].iloc[0]
    assert "synth-small and synth-tiny" in diff["claim"] and diff["ours"] == "+4.00 points"
    # a shuffled-label control is no answer to the question: per model, it is set against its task instead
    # (synth-tiny: synth_mnli +1 against the control's +3 = -2; no training rows, so not known to be matched)
    rows += _rows({"synth_mnli_shuffled": {"en": 50, "a": 33, "b": 33}})
    claims = studies.rq2_claims(pd.DataFrame(rows)).set_index("claim")
    assert not any(c.startswith("synth_mnli_shuffled") for c in claims.index)
    ctrl = claims.loc[claims.index.str.contains("comes from its labels")]
    assert len(ctrl) == 1 and ctrl["ours"].iloc[0] == "-2.00 points" and ctrl["verdict"].iloc[0] == "inconclusive"


def test_models_are_drawn_smallest_first(monkeypatch):
    table = pd.DataFrame([{"model": m, "target_task": "synth_xnli", "intermediate_task": "synth_mnli", "mean": v,
                           "ci_lo": v - 1, "ci_hi": v + 1, "n_parameters": n}
                          for m, v, n in (("synth-small", -0.7, 1_070_000), ("synth-medium", 1.0, 3_870_000),
                                          ("synth-tiny", 2.7, 240_000))])
    assert studies.size_order(table) == ["synth-tiny", "synth-small", "synth-medium"]  # not alphabetical
    # without parameter counts: the registry's order (tiny, small, ..., medium)
    assert studies.size_order(table.drop(columns="n_parameters")) == ["synth-tiny", "synth-small", "synth-medium"]
    from xlt_utils import plots

    drawn = {}

    def keep(fig, config, name):
        ax = fig.axes[0]
        drawn["ticks"] = [t.get_text() for t in ax.get_xticklabels()]
        drawn["y"] = list(ax.lines[0].get_ydata())
        return name

    monkeypatch.setattr(plots, "_save", keep)
    plots.effect_figure(table, x="model", config=None, name="f.png", xlabel="model",
                        order=studies.size_order(table))
    assert drawn["ticks"] == ["synth-tiny", "synth-small", "synth-medium"]
    assert drawn["y"] == [2.7, -0.7, 1.0]
    # several intermediate tasks: each drawn a little to the side, at the same offset and in the same colour in
    # every panel, also where a panel lacks a task (here synth_squad has no synth_pawsx row)
    two = pd.concat([table, table.assign(intermediate_task="synth_squad"),
                     table.assign(target_task="synth_pawsx")], ignore_index=True)

    def keep_all(fig, config, name):
        drawn["panels"] = [{c.get_label(): (list(c.lines[0].get_xdata()), c.lines[0].get_color())
                            for c in ax.containers} for ax in fig.axes if ax.get_title()]
        return name

    monkeypatch.setattr(plots, "_save", keep_all)
    plots.effect_figure(two, x="model", config=None, name="f.png", xlabel="model", order=studies.size_order(table))
    pawsx, xnli = drawn["panels"]
    assert xnli["synth_mnli"][0] == pytest.approx([-0.15, 0.85, 1.85])
    assert xnli["synth_squad"][0] == pytest.approx([0.15, 1.15, 2.15])
    assert set(pawsx) == {"synth_mnli"} and pawsx["synth_mnli"] == xnli["synth_mnli"]


def test_evidence_grades():
    c = studies.claims_frame([studies.claim("c", "s", 3.0, 2.0, 4.0)])
    assert studies.evidence(c, 3) == "strong"
    assert studies.evidence(c, 1).startswith("weak to moderate")
    c = studies.claims_frame([studies.claim("c", "s", 0.0, -1.0, 1.0)])
    assert studies.evidence(c, 3) == "weak"
    # a tight interval around 0 decides "no difference that matters"; a claim at a floor is not counted
    tight = studies.claim("t", "s", 0.0, -0.5, 0.5)
    floor = studies.claim("f", "s", 8.0, 6.0, 11.0, two_sided=True)
    floor.update(verdict="inconclusive", note="at the floor: under 2 layers both arms are at chance")
    assert studies.evidence(studies.claims_frame([tight]), 3) == "strong"
    assert studies.evidence(studies.claims_frame([studies.claim("c", "s", 3.0, 2.0, 4.0), floor]), 3) == "strong"
    assert studies.evidence(studies.claims_frame([floor]), 3) == "none (every claim at a floor)"
    mixed = [studies.claim("c", "s", 3.0, 2.0, 4.0), studies.claim("c", "s", 0.0, -1.0, 1.0),
             studies.claim("c", "s", 0.0, -2.0, 1.0)]
    assert studies.evidence(studies.claims_frame(mixed), 3) == "weak"  # 1 of 3 decided
    assert studies.evidence(studies.claims_frame(mixed + [tight]), 3) == "moderate"  # 2 of 4


def test_a_seed_free_baseline_pairs_with_every_seed():
    """A retrieval task evaluates the pretrained encoder once (no seed); each seed's run is paired with it."""
    from xlt_utils.results import primary_metric

    metric = primary_metric("synth_tatoeba")
    rows = [r | {"seed": None} for r in _rows({"none": {"a": 10, "b": 20}}, task="synth_tatoeba")]
    rows += [r | {"seed": s} for s in (13, 14)
             for r in _rows({"synth_mnli": {"a": 10 + s - 12, "b": 20}}, task="synth_tatoeba")]
    df = pd.DataFrame([r | {"metric": metric} for r in rows])
    eff = studies.paired_effects(df)
    assert sorted(zip(eff["seed"], eff["lang"], eff["delta"])) == [(13, "a", 1), (13, "b", 0), (14, "a", 2),
                                                                     (14, "b", 0)]
    s = studies.summarize(eff, ["intermediate_task"]).iloc[0]
    assert s["mean"] == 0.75 and s["n_seeds"] == 2 and s["seed_sd"] == 0.35  # sd of the seed means 0.5 and 1.0


def _dev_rows(model, target, task, value, seed=13, world="synth", metric="accuracy"):
    """The English dev row a target run records (its selected checkpoint's score)."""
    return {"phase": "target", "split": "dev", "world": world, "model": model, "target_task": target,
            "task": target, "intermediate_task": task, "seed": seed, "lang": "en", "metric": metric,
            "value": value}


def _paper_claims_of(effects_per_model, dev=None):
    """paper_claims of one NLI-like target per model: none scores 30 in languages a and b, each intermediate task
    30 + its effect (English 50 throughout); each target run's English dev score is 50 + the effect, or
    ``dev[model][task]`` where given."""
    rows = []
    for m, effects in effects_per_model.items():
        rows += _rows({"none": {"en": 50, "a": 30, "b": 30}}, model=m)
        rows.append(_dev_rows(m, "synth_xnli", "none", 50))
        for it, e in effects.items():
            rows += _rows({it: {"en": 50, "a": 30 + e, "b": 30 + e}}, model=m)
            rows.append(_dev_rows(m, "synth_xnli", it, (dev or {}).get(m, {}).get(it, 50 + e)))
    return studies.paper_claims(pd.DataFrame(rows)).set_index("claim")


def _ranking(claims):
    """The "best intermediate tasks" claims: {model: (claim's tail, ours, verdict)}."""
    r = claims[claims.index.str.startswith("The best intermediate tasks are MNLI, SQuAD and HellaSwag (")]
    return {c.split("(", 1)[1].split(")", 1)[0]: (c.split("): ", 1)[1], o, v)
            for c, o, v in zip(r.index, r["ours"], r["verdict"])}


def test_paper_ranks_the_intermediate_tasks_per_model():
    """The best-task ranking is per model (e5 and synth-small are trained on different sets of tasks): the best of
    the paper's tasks against the best of the others, both chosen on English dev; the gap to the runner-up is the
    claim (here MNLI +2 vs SST-2 +1 on e5: +1 in every language; MNLI +1 vs QQP +6 on synth-small: -5)."""
    claims = _paper_claims_of({"multilingual-e5-small": {"synth_mnli": 2, "synth_sst2": 1},
                               "synth-small": {"synth_mnli": 1, "synth_qqp": 6}})
    assert _ranking(claims) == {
        "multilingual-e5-small": ("synth_mnli beats synth_sst2", "+1.00 points", "supported"),
        "synth-small": ("synth_mnli beats synth_qqp", "-5.00 points", "not supported")}


def test_paper_selection_is_on_english_dev_where_dev_and_test_disagree():
    """QQP-like is best on test (+6) but SST-2-like on English dev: SST-2-like is the task chosen for the target,
    and the ranking compares MNLI-like with SST-2-like (dev's choice among the others), not with QQP-like."""
    claims = _paper_claims_of({"synth-small": {"synth_mnli": 1, "synth_qqp": 6, "synth_sst2": 2}},
                              dev={"synth-small": {"synth_qqp": 51, "synth_sst2": 60, "synth_mnli": 52}})
    best = claims[claims.index.str.startswith("English intermediate training improves")]
    assert dict(zip(best.index, best["ours"])) == {
        "English intermediate training improves zero-shot transfer on synth_xnli (synth-small; task chosen on "
        "English dev: synth_sst2)": "+2.00 points"}
    assert _ranking(claims) == {"synth-small": ("synth_mnli beats synth_sst2", "-1.00 points", "not supported")}
    # a selection never reads test rows: handed them, it refuses
    from xlt_utils import selection

    test_rows = pd.DataFrame(_rows({"synth_qqp": {"en": 90}, "synth_sst2": {"en": 80}})).assign(split="test")
    with pytest.raises(XLTError, match="a selection reads English dev rows only"):
        selection.pick(test_rows, "intermediate_task")
    # no dev rows: no pick (never a test pick instead)
    rows = _rows({"none": {"en": 50, "a": 30, "b": 30}, "synth_qqp": {"en": 50, "a": 36, "b": 36}})
    claims = studies.paper_claims(pd.DataFrame(rows)).set_index("claim")
    row = claims.loc["English intermediate training improves zero-shot transfer on synth_xnli (synth-tiny)"]
    assert row["ours"] == "n/a" and row["95% interval"] == "n/a (no English dev score to choose the task on)"


def test_paper_treats_a_multitask_arm_as_an_intermediate_task(tmp_path, monkeypatch):
    """A multi-task arm ("a+b", #40) has its own effect claim and keeps its name in the tables; it is no single task,
    so neither a candidate for "English intermediate training improves transfer" (the best single task on English
    dev is, synth_qqp here, although the multi-task arm's dev score is higher: it has its own claim against its best
    component) nor for the best-task ranking (synth_mnli against synth_qqp); the transfer figure labels it short."""
    from types import SimpleNamespace

    import matplotlib.figure

    from xlt_utils import paths, plots, results

    arm = "synth_mnli+synth_qqp+synth_sst2+synth_squad"
    claims = _paper_claims_of({"synth-small": {"synth_mnli": 1, "synth_qqp": 2, arm: 3}})
    assert claims.loc[f"{arm} improves zero-shot transfer of synth-small averaged over its 1 target(s)",
                      "ours"] == "+3.00 points"
    best = claims[claims.index.str.startswith("English intermediate training improves")]
    assert list(best.index) == [("English intermediate training improves zero-shot transfer on synth_xnli "
                                 "(synth-small; task chosen on English dev: synth_qqp)")]
    assert best["note"].iloc[0].startswith("of 2 task(s), controls and the multi-task and translated arms excluded")
    assert _ranking(claims) == {"synth-small": ("synth_mnli beats synth_qqp", "-1.00 points", "not supported")}
    df = pd.DataFrame(_rows({"none": {"en": 50, "a": 30}, "synth_mnli": {"en": 50, "a": 31},
                             arm: {"en": 50, "a": 33}}, kind=""))
    table = results.transfer_table(df)
    assert arm in set(table["intermediate_task"])
    drawn = {}

    def keep(fig, *args, **kwargs):
        drawn["rows"] = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        drawn["legend"] = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    monkeypatch.setattr(paths, "FIGURES", tmp_path)
    plots.transfer_figure(df, table, SimpleNamespace(study="paper", profile="smoke"))
    assert drawn == {"rows": ["mnli+qqp+sst2+squad", "synth_mnli"], "legend": ["none", "synth_mnli",
                                                                                "mnli+qqp+sst2+squad"]}


def test_paper_best_task_leaves_out_the_shuffled_label_control():
    """The shuffled-label MNLI-like is a control: its +3 on synth-small is reported as its own claim but never
    picked as the best task (that is QQP-like's +1 here, then SQuAD-like's -1 on e5), though its English dev score
    is the highest. On e5 every task hurts, so the ranking claim reads inconclusive: a ranking of harms says
    nothing about which tasks help most."""
    assert studies.is_control("synth_mnli_shuffled") and not studies.is_control("synth_mnli")
    assert not studies.is_control("none") and not studies.is_control("not_a_task")
    claims = _paper_claims_of({"synth-small": {"synth_mnli": -1, "synth_qqp": 1, "synth_mnli_shuffled": 3},
                               "multilingual-e5-small": {"synth_mnli": -4, "synth_squad": -1, "synth_qqp": -2,
                                                         "synth_mnli_shuffled": 2}})
    best = claims[claims.index.str.startswith("English intermediate training improves")]
    assert dict(zip(best.index, best["ours"])) == {
        "English intermediate training improves zero-shot transfer on synth_xnli "
        "(multilingual-e5-small; task chosen on English dev: synth_squad)": "-1.00 points",
        "English intermediate training improves zero-shot transfer on synth_xnli "
        "(synth-small; task chosen on English dev: synth_qqp)": "+1.00 points"}
    assert claims.loc["synth_mnli_shuffled improves zero-shot transfer of synth-small averaged over its 1 target(s)",
                      "ours"] == "+3.00 points"
    assert _ranking(claims) == {
        "multilingual-e5-small": ("synth_squad beats synth_qqp", "+1.00 points", "inconclusive"),
        "synth-small": ("synth_mnli beats synth_qqp", "-2.00 points", "not supported")}
    e5 = "The best intermediate tasks are MNLI, SQuAD and HellaSwag (multilingual-e5-small): synth_squad beats synth_qqp"
    assert claims.loc[e5, "note"].startswith("neither helps: a ranking of harms")


def test_control_claims_pair_a_task_with_its_shuffled_labels_by_hand():
    """MNLI-like changes a and b (and c, d alike) by -5 and -3, its shuffled-label control by -1 and 0: the labels
    account for -4 and -3, mean -3.5 ± t(3) sqrt(1/12) = [-4.42, -2.58], so the two-sided claim is supported when
    the control is matched to its task, and its note says the labels hurt (both passed on at step 625 after 20,000 examples). Unmatched (the control
    passed on at step 160), or with no steps recorded, the numbers stay and the claim is refused: inconclusive.
    A control without its task, or a model without a control, makes no claim."""
    rows = _rows({"none": {"en": 50, "a": 30, "b": 30, "c": 30, "d": 30},
                  "synth_mnli": {"en": 60, "a": 25, "b": 27, "c": 25, "d": 27},
                  "synth_mnli_shuffled": {"en": 40, "a": 29, "b": 30, "c": 29, "d": 30}}, model="synth-small")
    rows += _rows({"none": {"en": 50, "a": 30}, "synth_mnli_shuffled": {"en": 50, "a": 31}}, model="synth-tiny")
    rows += _rows({"none": {"en": 50, "a": 30}, "synth_mnli": {"en": 50, "a": 31}}, model="synth-medium")
    def passed(control_step):
        return pd.DataFrame([{"phase": "intermediate", "model": "synth-small", "intermediate_task": t, "seed": 13,
                              "passed_step": step, "passed_examples": step * 32}
                             for t, step in (("synth_mnli", 625), ("synth_mnli_shuffled", control_step))])

    eff = studies.paired_effects(pd.DataFrame(rows))
    c = studies.claims_frame(studies.control_claims(eff, studies.passed_training(passed(625))))
    assert list(c["claim"]) == [("synth_mnli's effect on synth-small comes from its labels: synth_mnli minus its "
                                 "shuffled-label control synth_mnli_shuffled, averaged over 1 target(s)")]
    assert (c["ours"].iloc[0], c["95% interval"].iloc[0], c["verdict"].iloc[0]) == (
        "-3.50 points", "[-4.42, -2.58]", "supported")
    assert c["note"].iloc[0].startswith("matched: ")
    assert c["note"].iloc[0].endswith("; direction: synth_mnli transfers worse than its control, so its real labels "
                                      "hurt")
    c = studies.claims_frame(studies.control_claims(eff, studies.passed_training(passed(160))))
    assert (c["ours"].iloc[0], c["verdict"].iloc[0]) == ("-3.50 points", "inconclusive")
    assert c["note"].iloc[0] == ("not matched, so not a control comparison (control vs task passed step: seed 13: "
                                 "step 160 vs 625)")
    c = studies.claims_frame(studies.control_claims(eff))
    assert c["verdict"].iloc[0] == "inconclusive" and "steps not recorded" in c["note"].iloc[0]
    # unknown counts as unmatched; the same step after other examples is named; only the compared seeds count
    p = studies.passed_training(passed(625))
    assert studies.unmatched(p.assign(passed_examples=[20000, float("nan")]), "synth-small", "synth_mnli",
                             "synth_mnli_shuffled", [13]) == "seed 13: step or examples not recorded"
    assert studies.unmatched(p.assign(passed_examples=[20000, 10000]), "synth-small", "synth_mnli",
                             "synth_mnli_shuffled", [13]) == "seed 13: 10000 vs 20000 examples"
    assert studies.unmatched(p, "synth-small", "synth_mnli", "synth_mnli_shuffled", [13, 14]) == \
        "seed 14: task not recorded"
    # in paper_claims, beside the per-task claims
    assert c["claim"].iloc[0] in set(studies.paper_claims(pd.DataFrame(rows))["claim"])


def test_paper_comparison_chooses_the_x_stilts_task_on_english_dev_by_hand():
    """XNLI, two languages, two seeds: the task score averages English too; qqp is best on test but mnli on English
    dev, so mnli is the X-STILTs task; its gain is +4.00 with the interval 4 ± t(1) sqrt(2) (language means 3 and
    5, seed means 5 and 3: variances 1 + 1, each with 1 degree of freedom), which holds the published +1.2."""
    spec = {13: {"none": {"en": 80, "de": 70}, "mnli": {"en": 84, "de": 76}, "qqp": {"en": 90, "de": 80}},
            14: {"none": {"en": 80, "de": 70}, "mnli": {"en": 82, "de": 74}, "qqp": {"en": 90, "de": 80}}}
    rows = [r for seed, s in spec.items()
            for r in _rows(s, task="xnli", model="xlmr-large", world="xtreme", seed=seed)]
    dev = [{"phase": "target", "split": "dev", "world": "xtreme", "model": "xlmr-large", "target_task": "xnli",
            "task": "xnli", "intermediate_task": it, "seed": seed, "lang": "en", "metric": "accuracy", "value": v}
           for it, v in (("mnli", 85), ("qqp", 80)) for seed in (13, 14)]
    c = studies.paper_comparison(pd.DataFrame(rows + dev)).iloc[0]
    assert (c["X-STILTs task (ours)"], c["chosen on"]) == ("mnli", "English dev")
    assert (c["XLM-R ours"], c["X-STILTs ours"], c["gain ours"]) == (75.0, 79.0, 4.0)
    assert (c["X-STILTs published"], c["XLM-R published"], c["gain published"]) == (80.4, 79.2, 1.2)
    half = stats.t.ppf(0.975, 1) * math.sqrt(2)
    assert c["gain 95% interval"] == f"[{4 - half:+.2f}, {4 + half:+.2f}]" and c["published gain in interval"]
    assert (c["n_languages"], c["n_seeds"]) == (2, 2)
    # without dev rows there is no pick, and no row: never the best test score instead
    assert studies.paper_comparison(pd.DataFrame(rows)).empty
    # the embedded worlds' tasks are analogs: nothing to compare
    assert studies.paper_comparison(pd.DataFrame(_rows({"none": {"en": 1}, "synth_mnli": {"en": 2}}))).empty


def test_rq4_size_of_a_set_used_whole_is_what_its_runs_loaded():
    """A Hub set used whole (tydiqa_mul, no cap) has no size before the run; the table takes the records its
    intermediate runs loaded (training.csv's n_train_records), and a capped English set keeps its cap."""
    kw = {"task": "xnli", "model": "xlmr-large", "world": "xtreme"}
    rows = _rows({"none": {"en": 80, "de": 70}}, **kw)
    rows += _rows({"mnli": {"en": 82, "de": 73}}, intermediate_max_train_samples=5000, **kw)
    rows += _rows({"tydiqa_mul": {"en": 81, "de": 74}}, intermediate_max_train_samples=None, **kw)
    df = pd.DataFrame(rows)
    assert math.isnan(studies.data_table(df).set_index("intermediate_task").loc["tydiqa_mul", "n_train_examples"])
    training = pd.DataFrame([
        {"phase": "intermediate", "intermediate_task": "tydiqa_mul", "max_train_samples": None, "n_train_records": 49881},
        {"phase": "intermediate", "intermediate_task": "mnli", "max_train_samples": 5000, "n_train_records": 5000},
        {"phase": "target", "intermediate_task": "mnli", "max_train_samples": None, "n_train_records": 392702}])
    sizes = studies.data_table(df, training).set_index("intermediate_task")["n_train_examples"]
    assert sizes.to_dict() == {"mnli": 5000.0, "tydiqa_mul": 49881.0}


def test_paper_transfer_gap_is_claimed_per_model():
    """English minus zero-shot, by hand: synth-tiny 60 - 40 = 20 in both conditions; synth-small 70 - 65 = 5 (none)
    and 72 - 67 = 5 (mnli). Pooled, the two would read one +12.5."""
    rows = _rows({"none": {"en": 60, "a": 40}, "synth_mnli": {"en": 62, "a": 42}}, model="synth-tiny")
    rows += _rows({"none": {"en": 70, "a": 65}, "synth_mnli": {"en": 72, "a": 67}}, model="synth-small")
    claims = studies.paper_claims(pd.DataFrame(rows)).set_index("claim")["ours"]
    gap = "Zero-shot scores stay below English (a transfer gap remains)"
    assert claims[f"{gap} (synth-tiny)"] == "+20.00 points" and claims[f"{gap} (synth-small)"] == "+5.00 points"
    assert gap not in claims.index


def test_paper_comparison_averages_the_published_languages_by_hand():
    """PAN-X: the published 64.7 / 65.4 average XTREME's 40 languages; XTREME-R adds eight (pl among them). With
    en, de (XTREME) and pl (added): published-language scores are none (80+70)/2 = 75, mnli (82+74)/2 = 78, gain
    +3; over all three run, none 190/3 = 63.33, mnli 216/3 = 72, gain +8.67. The label names what is averaged and
    the 38 published languages these runs lack."""
    rows = _rows({"none": {"en": 80, "de": 70, "pl": 40}, "mnli": {"en": 82, "de": 74, "pl": 60}},
                 task="panx", model="xlmr-large", world="xtreme", metric="f1")
    rows.append(_dev_rows("xlmr-large", "panx", "mnli", 80, world="xtreme", metric="f1"))
    c = studies.paper_comparison(pd.DataFrame(rows)).iloc[0]
    assert (c["XLM-R ours"], c["X-STILTs ours"], c["gain ours"], c["n_languages"]) == (75.0, 78.0, 3.0, 2)
    assert c["languages"].startswith("XTREME's 40; missing 38 published (af, ar, bg, bn, el, es and 32 more): not comparable")
    a = studies.paper_comparison(pd.DataFrame(rows), languages="all").iloc[0]
    assert (a["XLM-R ours"], a["X-STILTs ours"], a["gain ours"], a["n_languages"]) == (63.33, 72.0, 8.67, 3)
    assert a["languages"] == "all 3 run"
    # a task whose languages are the same in both benchmarks (XNLI) averages all of them under either option
    x = _rows({"none": {"en": 80, "de": 70}, "mnli": {"en": 84, "de": 76}}, task="xnli", model="xlmr-large",
              world="xtreme") + [_dev_rows("xlmr-large", "xnli", "mnli", 80, world="xtreme")]
    assert studies.paper_comparison(pd.DataFrame(x)).iloc[0]["languages"] == "all 2 run"
    assert studies.paper_comparison(pd.DataFrame(x)).iloc[0]["note"] == ""
    # TyDiQA's published gain carries the all-language training-file caveat
    t = _rows({"none": {"en": 70, "sw": 60}, "mnli": {"en": 71, "sw": 62}}, task="tydiqa", model="xlmr-large",
              world="xtreme", metric="f1") + [_dev_rows("xlmr-large", "tydiqa", "mnli", 70, world="xtreme",
                                                        metric="f1")]
    assert "xtreme#95" in studies.paper_comparison(pd.DataFrame(t)).iloc[0]["note"]
    with pytest.raises(XLTError, match="unknown languages 'xtreme-r'.*valid: published, all"):
        studies.paper_comparison(pd.DataFrame(rows), languages="xtreme-r")


def test_effect_figure_never_joins_two_models_points(monkeypatch):
    """rq1 with two models: a target one model has is titled with it; a target both have gets a line per model
    (pooled by intermediate task, one line would zig-zag between the models' points at each batch size)."""
    from xlt_utils import plots

    table = pd.DataFrame([{"model": m, "target_task": t, "intermediate_task": "synth_mnli",
                           "intermediate_batch_size": b, "mean": v + b / 100, "ci_lo": v, "ci_hi": v + 2}
                          for m, t, v in (("e5", "debian_topic", -20.0), ("e5", "synth_xnli", 5.0),
                                          ("synth-small", "synth_xnli", 1.0))
                          for b in (8, 128)])
    drawn = {}

    def keep(fig, config, name):
        for ax in fig.axes[:2]:
            drawn[ax.get_title()] = {c.get_label(): [round(float(y), 2) for y in c.lines[0].get_ydata()]
                                     for c in ax.containers}
        return name

    monkeypatch.setattr(plots, "_save", keep)
    plots.effect_figure(table, x="intermediate_batch_size", config=None, name="f.png", xlabel="batch", log_x=True)
    assert drawn["debian_topic (e5)"] == {"synth_mnli": [-19.92, -18.72]}
    assert drawn["synth_xnli"] == {"e5 / synth_mnli": [5.08, 6.28], "synth-small / synth_mnli": [1.08, 2.28]}


# ---- floors: is there anything to transfer? -----------------------------------------------------------------

def test_chance_levels_by_hand():
    assert studies.chance_level("synth_xnli") == pytest.approx(100 / 3)
    assert studies.chance_level("synth_pawsx") == 50.0
    assert studies.chance_level("synth_xcopa") == 50.0  # multiple choice: 100 / its 2 choices
    assert studies.chance_level("synth_hellaswag") == 25.0  # 4 choices
    assert studies.chance_level("synth_tatoeba", 1000) == pytest.approx(0.1)
    assert math.isnan(studies.chance_level("synth_tatoeba"))  # candidates unknown
    assert math.isnan(studies.chance_level("synth_udpos")) and math.isnan(studies.chance_level("synth_xquad"))


def _floor_rows():
    def row(task, it, seed, lang, value, metric="accuracy"):
        return {"phase": "eval", "world": "synth", "model": "synth-tiny", "target_task": task, "task": task,
                "intermediate_task": it, "seed": seed, "lang": lang, "metric": metric, "value": value,
                "n_examples": 1000}
    rows = []
    # NLI: English learnt in both seeds; zero-shot per-language seed means a 32.5, b 34.5 → 33.5, around chance
    for seed, en, a, b in ((13, 60, 33, 34), (14, 62, 32, 35)):
        rows += [row("synth_xnli", "none", seed, "en", en), row("synth_xnli", "none", seed, "a", a),
                 row("synth_xnli", "none", seed, "b", b),
                 # an intermediate task's rows (far above chance) must not count as the baseline
                 row("synth_xnli", "synth_mnli", seed, "a", 90), row("synth_xnli", "synth_mnli", seed, "b", 90)]
    # PAWS-X, one seed: English 51.0 on 1,000 examples (Wald half-width 1.96·sqrt(.51·.49/1000) = 3.10 points)
    rows += [row("synth_pawsx", "none", 13, "en", 51.0), row("synth_pawsx", "none", 13, "a", 70.0),
             row("synth_pawsx", "none", 13, "b", 80.0), row("synth_pawsx", "none", 13, "c", 75.0),
             row("synth_pawsx", "none", 13, "d", 75.0)]
    # POS has no chance level
    rows += [row("synth_udpos", "none", 13, lang, v) for lang, v in (("en", 95.0), ("a", 40.0), ("b", 50.0))]
    return rows


def test_floor_table_by_hand():
    ft = studies.floor_table(pd.DataFrame(_floor_rows())).set_index("target_task")
    nli, paws, pos = ft.loc["synth_xnli"], ft.loc["synth_pawsx"], ft.loc["synth_udpos"]
    assert nli["english"] == 61.0 and nli["english_vs_chance"] == "above chance"
    assert nli["zero_shot"] == 33.5 and nli["zero_shot_vs_chance"] == "at chance" and nli["n_seeds"] == 2
    assert paws["english_ci"] == "[47.90, 54.10]" and paws["english_vs_chance"] == "at chance"
    assert paws["zero_shot"] == 75.0 and paws["zero_shot_vs_chance"] == "above chance"
    assert pos["english_vs_chance"] == pos["zero_shot_vs_chance"] == "no chance level"


def test_floor_note_names_the_targets_at_the_floor():
    note = studies.floor_note(pd.DataFrame(_floor_rows()))
    assert "Not learnt in English" in note and "synth_pawsx (synth-tiny)" in note
    assert "Zero-shot at or below chance" in note and "synth_xnli (synth-tiny)" in note
    assert "synth_udpos" not in note
    # every target above chance, in English and zero-shot: nothing to say
    above = [dict(r, value=90.0) if r["target_task"] != "synth_udpos" else r for r in _floor_rows()]
    assert studies.floor_note(pd.DataFrame(above)) == ""


def test_the_papers_further_arms_are_set_against_the_task_they_extend():
    """Multi-task against its best component chosen on English dev (not on test), an aux arm against the plain
    task, a translated copy against its English original: per target, the zero-shot difference paired by language
    (one seed). By hand: synth_mnli+synth_squad minus synth_squad (dev 80 > 70 for synth_mnli, so squad is chosen
    although mnli is better on test) = mean(+2, +4) = +3; the aux arm minus the plain task = mean(-1, -3) = -2; the
    translated arm's name pattern needs the registry's train language (rt_sentiment_es has es)."""
    spec = {"none": {"en": 60, "a": 40, "b": 30}, "synth_mnli": {"en": 62, "a": 50, "b": 40},
            "synth_squad": {"en": 61, "a": 42, "b": 31}, "synth_mnli+synth_squad": {"en": 63, "a": 44, "b": 35},
            "synth_mnli [aux mlm]": {"en": 62, "a": 49, "b": 37}}
    rows = _rows(spec, split="test")
    for it, dev in (("synth_mnli", 70.0), ("synth_squad", 80.0), ("synth_mnli+synth_squad", 75.0)):
        rows.append({"phase": "target", "world": "synth", "model": "synth-tiny", "target_task": "synth_xnli",
                     "task": "synth_xnli", "intermediate_task": it, "seed": 13, "lang": "en", "split": "dev",
                     "metric": "accuracy", "value": dev})
    df = pd.DataFrame(rows)
    eff = studies.paired_effects(df[df["phase"] == "eval"])
    got = {r["claim"]: r for r in studies.counterpart_claims(eff, selection.dev_rows(df))}
    multi = got["multi-task synth_mnli+synth_squad beats its best single task (synth_squad, chosen on English dev) "
                "on synth_xnli (synth-tiny)"]
    assert multi["ours"] == "+3.00 points" and multi["source"] == "paper: multi-task small extra gains"
    aux = got["synth_mnli [aux mlm] beats synth_mnli alone on synth_xnli (synth-tiny)"]
    assert aux["ours"] == "-2.00 points"
    assert studies.counterpart("rt_sentiment_es", {"rt_sentiment"}) == ("translated", "rt_sentiment")
    assert studies.counterpart("rt_sentiment_shuffled", {"rt_sentiment"}) is None  # a control, not a translation
    assert studies.counterpart("synth_mnli [aux mlm]", {"synth_squad"}) is None  # its plain task did not run
    assert multi["note"] == "zero-shot languages, paired by seed"  # no training rows: nothing said about steps
    # the multi-task run took its two components' optimizer steps together, and ran on another CPU: the note says
    # both; the aux arm took the same steps on the same CPU: nothing added
    training = pd.DataFrame([{"phase": ph, "model": "synth-tiny", "intermediate_task": it, "seed": 13, "steps": n,
                              "processor": cpu}
                             for it, n, cpu in (("synth_mnli", 100, "A"), ("synth_squad", 100, "A"),
                                                ("synth_mnli+synth_squad", 200, "B"), ("synth_mnli [aux mlm]", 100, "A"))
                             for ph in ("intermediate", "target")])
    got = {r["claim"]: r for r in studies.counterpart_claims(eff, selection.dev_rows(df), training)}
    assert got[multi["claim"]]["note"] == ("zero-shot languages, paired by seed; optimizer steps differ: 200 "
                                           "intermediate steps against 100; ran on different CPUs (synth_mnli+synth_squad:"
                                           " B; synth_squad: A), and a run is not bit-exact across CPUs")
    assert got[aux["claim"]]["note"] == "zero-shot languages, paired by seed"
    # steps that vary by seed (early stopping) are given as ranges, never taken as matched; a seed the comparison
    # does not pair (here 14) is not counted
    varied = pd.concat([training, training.assign(seed=14, steps=[150, 150, 90, 90, 400, 400, 100, 100])])
    note = studies._steps_note(varied, "synth-tiny", "synth_mnli+synth_squad", "synth_squad", {13, 14})
    assert note == "; optimizer steps differ: 200–400 intermediate steps against 90–100"
    assert studies._steps_note(varied, "synth-tiny", "synth_mnli+synth_squad", "synth_squad", {13}).endswith(
        "200 intermediate steps against 100")
    assert studies._steps_note(training.drop(columns="seed"), "synth-tiny", "synth_mnli+synth_squad", "synth_squad",
                               {13}) == ""  # not recorded per seed: nothing claimed either way
    assert studies._cpu_note(training.assign(processor=None), "synth-tiny", "synth_mnli+synth_squad", "synth_squad",
                             {13}) == ""
    # a retrieval-like target has no English dev score: the multi-task claim is there, with no number, and says why
    dev = selection.dev_rows(df)
    rows = studies.counterpart_claims(eff, dev[dev["target_task"] != "synth_xnli"])
    gone = [r for r in rows if r["claim"].startswith("multi-task")]
    assert len(gone) == 1 and gone[0]["ours"] == "n/a" and "no English dev score" in gone[0]["95% interval"]


def test_training_time_ratio_is_paired_by_seed():
    """Seed 13 on a fast CPU: 100 s at batch 8, 50 s at 128 (2.0); seed 14 on a slow one: 300 s and 100 s (3.0):
    the mean of the seeds' own ratios is 2.5, where the ratio of the means, 200 / 75 = 2.67, would mix CPUs. A
    seed with one batch size only adds nothing; no seed with both gives NaN."""
    tr = pd.DataFrame([{"phase": "intermediate", "model": "m", "intermediate_task": "t", "seed": seed,
                        "batch_size": b, "train_seconds": t}
                       for seed, b, t in ((13, 8, 100.0), (13, 128, 50.0), (14, 8, 300.0), (14, 128, 100.0),
                                          (15, 8, 999.0))])
    assert studies.paired_time_ratio(tr, "m", "t", 8, 128) == pytest.approx(2.5)
    assert math.isnan(studies.paired_time_ratio(tr[tr["seed"] != 15].assign(seed=[13, 14, 15, 16]), "m", "t", 8, 128))


def test_training_costs_say_how_many_cpus_their_means_span():
    """Seeds 13 and 14 of batch 8 ran on two CPUs (100 s and 300 s: mean 200, cpus 2); batch 128's two seeds on
    one; a run without a CPU counts as one more ("not recorded"). training_cost groups by phase and task alone."""
    tr = pd.DataFrame([{"phase": "intermediate", "model": "m", "intermediate_task": "t", "seed": seed,
                        "batch_size": b, "train_seconds": t, "steps": 10, "tokens_per_s": 1.0, "peak_rss_mb": 5.0,
                        "processor": cpu}
                       for seed, b, t, cpu in ((13, 8, 100.0, "A"), (14, 8, 300.0, "B"), (13, 128, 50.0, "A"),
                                               (14, 128, 70.0, "A"), (15, 128, 90.0, None))])
    cost = studies.intermediate_cost(tr).set_index("intermediate_batch_size")
    assert cost.loc[8, "train_seconds"] == 200.0 and cost.loc[8, "cpus"] == 2
    assert cost.loc[128, "train_seconds"] == 70.0 and cost.loc[128, "cpus"] == 2  # A and "not recorded"
    assert studies.intermediate_cost(tr[tr["processor"] == "A"])["cpus"].tolist() == [1, 1]
    whole = studies.training_cost(tr.drop(columns="processor"))  # rows from before the column: one unknown CPU
    assert whole["cpus"].tolist() == [1] and whole["train_seconds"].iloc[0] == 122.0
