"""The synth sanity-check script: its cheap parts and its input errors (the full table is run by hand)."""

from __future__ import annotations

from xlt_utils.__main__ import main
from xlt_utils.synth import sanity


def test_artefact_baselines_are_near_chance_on_rebalanced_nli():
    """Bag-of-words artefact baselines on the rebalanced NLI: near the 33% chance (docs/synth-world.md)."""
    out = sanity.artefact_baselines(n_train=3000, n_eval=600)
    assert set(out) == {"hypothesis-only BoW", "premise+hypothesis BoW"}
    assert all(25 <= v <= 48 for v in out.values()), out


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["synth-sanity", "--encoder", str(tmp_path), "--budget", "huge"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "valid: full, quick, smoke" in err[0]
    assert main(["synth-sanity", "--encoder", str(tmp_path / "none")]) == 2
    assert "no encoder at" in capsys.readouterr().err



def test_majority_baseline_scores_the_english_majority_tag_in_each_language(monkeypatch):
    """English train tags N N V / N D: NOUN is the majority; in xx it is 2 of 4 tokens, in yy 0 of 2."""
    data = {("train", "en"): [{"tags": ["NOUN", "NOUN", "VERB"]}, {"tags": ["NOUN", "DET"]}],
            ("test", "xx"): [{"tags": ["NOUN", "VERB", "DET", "NOUN"]}],
            ("test", "yy"): [{"tags": ["VERB", "DET"]}]}
    monkeypatch.setattr("xlt_utils.worlds.load_records",
                        lambda task, split, lang, max_examples=None, seed=0: data[(split, lang)])
    assert sanity.majority_baselines("synth_udpos", ["xx", "yy"], n_train=2, n_eval=1) == {"xx": 50.0, "yy": 0.0}


def test_majority_baseline_on_real_synth_pos_is_well_above_uniform_chance():
    out = sanity.majority_baselines("synth_udpos", ["en", "sw3"], n_train=500, n_eval=100)
    assert all(100 / 13 + 5 < v < 60 for v in out.values()), out
