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


def test_override_refuses_english_keys_that_would_change_nothing():
    """English realises verbs (do-support included) and nouns by morphology: overriding them is an error, not a
    silent no-op; its function words can be overridden."""
    for key in ("f:do", "f:be", "v:see"):
        with pytest.raises(XLTError, match=f"en realises nouns and verbs .* overriding {key} would change nothing"), \
                diagnostics.lexicon_override({"en": {key: "fu"}}):
            pass
    before = load_records("synth_xnli", "test", "en", max_examples=100)
    with diagnostics.lexicon_override({"en": {"f:not": "ser"}}):
        inside = load_records("synth_xnli", "test", "en", max_examples=100)
    assert "not" in _words(before) and "not" not in _words(inside) and "ser" in _words(inside)


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
    assert by["lx60"]["negation"] == "ser" and by["lx60"]["form"] == "not"
    assert 0.0 <= by["lx60"]["as_generated"] <= 100.0 and 0.0 <= by["lx60"]["swapped"] <= 100.0


def test_negation_swap_rejects_bad_input_before_loading(tmp_path):
    with pytest.raises(XLTError, match="no test split in xx"):
        diagnostics.negation_swap(tmp_path, ["xx"])
    with pytest.raises(XLTError, match="no model in"):
        diagnostics.negation_swap(tmp_path, ["lx60"])
    for bad in ("", " not", "does  not"):
        with pytest.raises(XLTError, match="--form must be one or more words"):
            diagnostics.negation_swap(tmp_path, ["lx60"], form=bad)
    with pytest.raises(XLTError, match="no model in"):
        diagnostics.nli_breakdown(tmp_path, ["sw0"])
    with pytest.raises(XLTError, match="--max-examples must be at least 1"):
        diagnostics.nli_breakdown(tmp_path, ["sw0"], max_examples=0)


def test_a_multiword_form_replaces_the_negation_word_only():
    before = load_records("synth_xnli", "test", "sw0", max_examples=200)
    with diagnostics.lexicon_override({"sw0": {"f:not": "does not"}}):
        inside = load_records("synth_xnli", "test", "sw0", max_examples=200)
    assert _words(inside) == [x for w in _words(before) for x in (["does", "not"] if w == "not" else [w])]


def test_constructions_follow_the_nli_item_table():
    """From nli_item's table: entailment toggles polarity only in the copular (s, not a); neutral and
    contradiction toggle it in both clause kinds; every label also has same-polarity items of both kinds."""
    from xlt_utils.synth.builders import items

    seen: dict[str, set[str]] = {}
    for p, h, label in items("nli", "test"):
        seen.setdefault(label, set()).add(diagnostics.construction(p, h))
    both = {"verbal, same polarity", "copular, same polarity", "verbal, negation toggled",
            "copular, negation toggled"}
    assert seen == {"entailment": both - {"verbal, negation toggled"}, "neutral": both, "contradiction": both}


def test_breakdown_adds_up_to_the_overall_accuracy(tmp_path):
    from xlt_utils.evaluate import evaluate
    from xlt_utils.models import build_model, load_tokenizer
    from xlt_utils.tasks import get_task

    encoder = tmp_path / "encoder"
    checkpoints.copy_to("synth-tiny", encoder)
    model = build_model(get_task("synth_xnli"), encoder)
    model.save_pretrained(tmp_path / "clf")
    tok = load_tokenizer(encoder)
    tok.save_pretrained(tmp_path / "clf")
    rows = diagnostics.nli_breakdown(tmp_path / "clf", ["sw0"], max_examples=120)
    assert sum(r["n"] for r in rows) == 120 and {r["lang"] for r in rows} == {"sw0"}
    for r in rows:
        assert abs(r["pred_entailment"] + r["pred_neutral"] + r["pred_contradiction"] - 100.0) < 1e-9
        assert r["accuracy"] == r[f"pred_{r['label']}"]
    overall = next(x["value"] for x in evaluate(model.eval(), tok, "synth_xnli", split="test", languages=["sw0"],
                                               max_examples=120, seed=0) if x["metric"] == "accuracy")
    assert abs(sum(r["n"] * r["accuracy"] for r in rows) / 120 - overall) < 1e-9
    # sw0 already writes `not`: the same inputs with form="not", so the same table
    assert diagnostics.nli_breakdown(tmp_path / "clf", ["sw0"], max_examples=120, form="not") == rows

