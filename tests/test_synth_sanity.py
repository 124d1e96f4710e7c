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

