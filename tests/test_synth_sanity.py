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
    assert main(["synth-sanity", "--encoder", str(tmp_path), "--lr", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "learning rate must be a number in (0, 1)" in err[0]



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


def _sanity_csv(path, seed, scores):
    """A minimal --out CSV: NLI transfer rows for one seed, plus the seed-free majority and retrieval rows."""
    import pandas as pd

    rows = [{"check": "transfer", "condition": "pretrained", "task": "synth_xnli", "lang": lg, "seed": seed,
             "value": v} for lg, v in scores.items()]
    rows += [{"check": "majority", "condition": "English-majority label", "task": "synth_xnli", "lang": lg,
              "seed": None, "value": 40.0} for lg in scores]
    rows.append({"check": "retrieval", "condition": "pretrained", "task": "synth_tatoeba", "lang": "sw0",
                 "seed": None, "value": 25.0})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_merge_keeps_seed_free_rows_once_and_summarizes_over_seeds(tmp_path, capsys):
    a = _sanity_csv(tmp_path / "a.csv", 13, {"sw0": 50.0, "sw1": 48.0})
    b = _sanity_csv(tmp_path / "b.csv", 14, {"sw0": 54.0, "sw1": 40.0})
    df = sanity.merge([a, b])
    assert len(df[df["check"] == "majority"]) == 2 and len(df[df["check"] == "retrieval"]) == 1
    tr = sanity.summarize(df, log=lambda *_: None).set_index("lang")
    # sw0: mean 52, sd sqrt(8) = 2.83, bar max(33.3, 40) + 10 = 50 -> pass; sw1: mean 44 < 50 -> fail
    assert tr.loc["sw0", "mean"] == 52.0 and tr.loc["sw0", "std"] == 2.8 and tr.loc["sw0", "count"] == 2
    assert bool(tr.loc["sw0", "pass"]) and not bool(tr.loc["sw1", "pass"])
    out = tmp_path / "merged.csv"
    assert main(["synth-sanity", "--merge", str(a), str(b), "--out", str(out)]) == 0
    assert "seeds [13, 14]" in capsys.readouterr().out and out.exists()


def test_merge_refuses_a_seed_twice_and_missing_files(tmp_path, capsys):
    a = _sanity_csv(tmp_path / "a.csv", 13, {"sw0": 50.0})
    b = _sanity_csv(tmp_path / "b.csv", 13, {"sw0": 52.0})
    assert main(["synth-sanity", "--merge", str(a), str(b)]) == 2
    assert "seed 13 is in both" in capsys.readouterr().err
    assert main(["synth-sanity", "--merge", str(a), str(tmp_path / "none.csv")]) == 2
    assert "no sanity CSV at" in capsys.readouterr().err
    assert main(["synth-sanity"]) == 2
    assert "--encoder DIR" in capsys.readouterr().err
