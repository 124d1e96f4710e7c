"""The synth world in the registry: every task loads and validates; export writes cards; MLM pretraining smoke."""

from __future__ import annotations

import json

import pytest

from xlt_utils.tasks import list_tasks
from xlt_utils.worlds import load_records

EXPECTED = {"synth_xnli", "synth_pawsx", "synth_udpos", "synth_panx", "synth_xquad", "synth_tatoeba",
            "synth_xcopa", "synth_mnli", "synth_mnli_shuffled", "synth_mnli_multi", "synth_squad",
            "synth_hellaswag", "synth_qqp", "synth_sst2"}


def test_registry_has_every_synth_task():
    tasks = {t.name: t for t in list_tasks(world="synth")}
    assert EXPECTED <= set(tasks)
    assert {t.name for t in list_tasks(world="synth", role="target")} >= {n for n in EXPECTED if "_x" in n
                                                                         or n in ("synth_udpos", "synth_panx",
                                                                                  "synth_pawsx", "synth_tatoeba")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_task_loads_and_validates(name):
    task = next(t for t in list_tasks(world="synth") if t.name == name)
    for split in ("dev", "test"):
        for lang in ("en", "en_x", "sw3", "ja_like", "en_inv"):
            recs = load_records(task, split, lang)
            assert len(recs) == task.options[f"n_{split}"] * (2 if task.format == "retrieval" else 1)
    if task.trainable:
        langs = task.languages_for("train")
        recs = load_records(task, "train", langs[-1], max_examples=50)
        assert len(recs) == 50


def test_dev_test_parallel_across_languages_and_shuffled_control():
    en = load_records("synth_xnli", "test", "en")
    hi = load_records("synth_xnli", "test", "hi_like")
    assert [r["id"] for r in en] == [r["id"] for r in hi] and [r["label"] for r in en] == [r["label"] for r in hi]
    true = [r["label"] for r in load_records("synth_mnli", "dev", "en")]
    shuf = [r["label"] for r in load_records("synth_mnli_shuffled", "dev", "en")]
    assert sorted(true) == sorted(shuf) and true != shuf


def test_export_writes_cards(tmp_path):
    from dataclasses import replace

    from xlt_utils.tasks import get_task
    from xlt_utils.worlds.synth import export

    task = replace(get_task("synth_xcopa"), options={**get_task("synth_xcopa").options, "n_train": 20})
    out = export(task, tmp_path / "xcopa")
    assert (out / "test-ja_like.jsonl").exists() and (out / "train-en.jsonl").exists()
    card = json.loads((out / "cards" / "ja_like.json").read_text())
    assert card["distances"]["en"]["d_script"] == 1.0 and card["switches"]["ov"] is True


def test_pretrain_smoke(tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from xlt_utils.synth.pretrain import pretrain

    res = pretrain(tmp_path / "enc", size="tiny", languages=("en", "en_x"), steps=4, batch_size=4, max_len=32,
                   n_per_language=60, vocab_size=400, log_every=2, probe_every=2, log=None)
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "enc"))
    assert (tok.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>"]) == [0, 1, 2, 3]
            and tok.mask_token_id == len(tok) - 1)
    model = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "enc"))
    assert model.config.model_type == "xlm-roberta"
    prov = json.loads((tmp_path / "enc" / "provenance.json").read_text())
    assert prov["steps"] == 4 and "en_x" in prov["language_cards"] and (tmp_path / "enc" / "model.safetensors").exists()
    assert 0.0 <= res["probe"]["en_x"] <= 1.0 and res["final_loss"] > 0


def test_generator_options_name_the_language_only_for_per_language_items():
    from xlt_utils.worlds.synth import generator_options

    assert generator_options({"n_train": 5, "seed": 3, "topic": "x", "shuffle_labels": True}, "fr_like") == {
        "n_train": 5, "seed": 3, "topic": "x"}
    assert generator_options({"seed": 3, "per_language_items": True}, "fr_like") == {"seed": "3:fr_like"}
    assert generator_options({"per_language_items": True}, "en") == {"seed": "0:en"}


def test_generator_options_give_the_items_behind_each_languages_records():
    """Diagnostics read an item's logical form by record id: per-language samples need the language's seed."""
    from xlt_utils.synth.builders import items
    from xlt_utils.tasks import get_task
    from xlt_utils.worlds.synth import generator_options

    t = get_task("synth_mnli_multi")
    langs = list(t.languages_for("train"))[:2]
    labels = {}
    for lang in langs:
        lfs = items("nli", "train", **generator_options(t.options, lang))
        recs = load_records(t, "train", lang)[:200]
        labels[lang] = [r["label"] for r in recs]
        assert [lfs[int(r["id"].rsplit("-", 1)[1])][2] for r in recs] == labels[lang]
    assert labels[langs[0]] != labels[langs[1]]  # different samples, not translations
