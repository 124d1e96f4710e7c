"""The counterfactual lexicon override and the negation-swap diagnostic (xlt_utils.synth.diagnostics)."""

from __future__ import annotations

import pytest

from xlt_utils.errors import XLTError
from xlt_utils.synth import checkpoints, diagnostics
from xlt_utils.worlds import load_records


def _words(records):
    return [w for r in records for w in (r["text_a"] + " " + r["text_b"]).split()]


def test_override_changes_one_word_inside_the_block_and_nothing_after():
    before = load_records("synth_xnli", "test", "lx60", max_examples=200)
    assert "ser" in _words(before) and "not" not in _words(before)  # lx60 writes its negation `ser`
    with diagnostics.lexicon_override({"lx60": {"f:not": "not"}}):
        inside = load_records("synth_xnli", "test", "lx60", max_examples=200)
        other = load_records("synth_xnli", "test", "lx0", max_examples=50)
    assert [r["label"] for r in inside] == [r["label"] for r in before]  # the same items
    swapped = [w if w != "ser" else "not" for w in _words(before)]
    assert _words(inside) == swapped  # exactly the negation word changed, nowhere else
    assert load_records("synth_xnli", "test", "lx0", max_examples=50) == other  # other languages untouched
    assert load_records("synth_xnli", "test", "lx60", max_examples=200) == before  # restored on exit


def test_override_names_bad_concept_keys():
    with pytest.raises(XLTError, match="unknown concept key"), diagnostics.lexicon_override({"lx60": {"f:nope": "x"}}):
        pass


def test_negation_swap_leaves_a_language_that_already_says_not_unchanged(tmp_path):
    from xlt_utils.models import build_model, load_tokenizer
    from xlt_utils.tasks import get_task

    encoder = tmp_path / "encoder"
    checkpoints.copy_to("synth-tiny", encoder)
    model = build_model(get_task("synth_xnli"), encoder)
    model.save_pretrained(tmp_path / "clf")
    load_tokenizer(encoder).save_pretrained(tmp_path / "clf")
    rows = diagnostics.negation_swap(tmp_path / "clf", ["sw0", "lx60"], max_examples=64)
    by = {r["lang"]: r for r in rows}
    assert by["sw0"]["negation"] == "not" and by["sw0"]["change"] == 0.0  # identical inputs, identical output
    assert by["lx60"]["negation"] == "ser"
    assert 0.0 <= by["lx60"]["as_generated"] <= 100.0 and 0.0 <= by["lx60"]["negation_not"] <= 100.0


def test_negation_swap_rejects_bad_input_before_loading(tmp_path):
    with pytest.raises(XLTError, match="no test split in xx"):
        diagnostics.negation_swap(tmp_path, ["xx"])
    with pytest.raises(XLTError, match="no model in"):
        diagnostics.negation_swap(tmp_path, ["lx60"])

