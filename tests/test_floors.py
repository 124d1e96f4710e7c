"""Floors without fine-tuning (``04_baselines`` kinds ``probe`` and ``lexical``): features by hand, selection on
English dev, the rows they write, and the grid and config rules around them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xlt_utils import config as C
from xlt_utils import floors
from xlt_utils import grid as G
from xlt_utils.errors import XLTError
from xlt_utils.models import load_tokenizer
from xlt_utils.results import primary_metric
from xlt_utils.tasks import Task, get_task
from xlt_utils.worlds import load_records


def test_token_features_are_character_ngrams_of_the_word_and_its_neighbours():
    f = floors.token_features(["Ab", "c"], 0)
    assert {"0:w=ab", "-1:w=<s>", "+1:w=c"} <= set(f)
    # "<ab>": 4 one-grams, 3 two-grams, 2 three-grams, 1 four-gram, under each of the three offsets
    own = [x for x in f if x.startswith("0:") and not x.startswith("0:w=")]
    assert own == ["0:<", "0:a", "0:b", "0:>", "0:<a", "0:ab", "0:b>", "0:<ab", "0:ab>", "0:<ab>"]
    assert "+1:<c>" in f and "-1:<s>" in f
    assert "+1:w=</s>" in floors.token_features(["Ab", "c"], 1)


class _Fixed:
    def __init__(self, out):
        self.out = out

    def predict(self, X):
        return self.out


def test_selection_is_on_english_dev_and_keeps_the_first_of_ties():
    task = Task(name="_t", format="classification", world="local", languages=("en",), metric="accuracy",
                labels=("a", "b"))
    dev = [{"id": "1", "text": "x", "label": "a"}, {"id": "2", "text": "y", "label": "b"}]
    preds = {1: ["a", "a"], 2: ["a", "b"], 3: ["a", "b"]}
    fit = lambda X, y, opt: _Fixed(preds[opt])
    opt, _clf, score, table = floors._select(task, fit, (lambda o: None, ["a", "b"]), (lambda o: None, None),
                                            dev, [1, 2, 3])
    assert opt == 2 and score == {"accuracy": 100.0}
    assert [t["dev"] for t in table] == [50.0, 100.0, 100.0]


@pytest.mark.parametrize("fmt", ["classification", "tagging"])
def test_lexical_floor_learns_spelling_and_reports_dev_and_each_language(fmt, local_tasks):
    task = get_task(local_tasks[fmt])
    train, dev = load_records(task, "train", "en"), load_records(task, "dev", "en")
    tests = {lang: load_records(task, "test", lang) for lang in ("en", "de")}
    rows, chosen = floors.lexical(task, train, dev, tests)
    by = {(r["split"], r["lang"], r["metric"]): r for r in rows}
    main = primary_metric(task.name)
    assert by[("dev", "en", main)]["n_examples"] == len(dev)
    assert by[("test", "de", main)]["n_examples"] == len(tests["de"])
    assert by[("dev", "en", main)]["value"] > 90  # the local tasks' English signal is lexical
    assert chosen["C"] in floors.LEXICAL_CS and len(chosen["dev_table"]) == len(floors.LEXICAL_CS)
    assert max(t["dev"] for t in chosen["dev_table"]) == pytest.approx(by[("dev", "en", main)]["value"], abs=1e-3)


def test_probe_word_features_are_the_mean_of_their_sub_tokens(local_tasks, tiny_encoder):
    from transformers import AutoModel

    task = get_task(local_tasks["tagging"])
    tok = load_tokenizer(tiny_encoder)
    enc = AutoModel.from_pretrained(str(tiny_encoder), add_pooling_layer=False).eval()
    recs = load_records(task, "train", "en")[:3]
    feats = floors.encode(enc, tok, task, recs, [1, 2], max_seq_length=64)
    assert feats[2].shape == (sum(len(r["tokens"]) for r in recs), enc.config.hidden_size)
    r = recs[1]
    b = tok([r["tokens"]], is_split_into_words=True, return_tensors="pt")
    with torch.inference_mode():
        h = enc(**b, output_hidden_states=True).hidden_states[1][0]
    words = b.word_ids(0)
    first = len(recs[0]["tokens"])
    for w in range(len(r["tokens"])):
        pos = [i for i, x in enumerate(words) if x == w]
        np.testing.assert_allclose(feats[1][first + w], h[pos].mean(0).numpy(), atol=1e-5)


@pytest.mark.parametrize("fmt", ["classification", "tagging"])
def test_probe_chooses_layer_and_c_on_english_dev(fmt, local_tasks, tiny_encoder):
    from transformers import AutoModel

    task = get_task(local_tasks[fmt])
    tok = load_tokenizer(tiny_encoder)
    enc = AutoModel.from_pretrained(str(tiny_encoder), add_pooling_layer=False)
    train, dev = load_records(task, "train", "en"), load_records(task, "dev", "en")
    rows, chosen = floors.probe(enc, tok, task, train, dev, {"de": load_records(task, "test", "de")}, 64)
    assert chosen["layer"] <= enc.config.num_hidden_layers and chosen["C"] in floors.CS
    assert {(r["split"], r["lang"]) for r in rows} == {("dev", "en"), ("test", "de")}
    best = max(t["dev"] for t in chosen["dev_table"])
    assert next(r["value"] for r in rows if r["split"] == "dev" and r["metric"] == primary_metric(task.name)) == \
        pytest.approx(best, abs=1e-3)


def test_floors_refuse_formats_they_cannot_score(local_tasks):
    params = dict(C.notebook_defaults(C.PHASE_NOTEBOOKS["baselines"]))
    params.update(target_task="synth_tatoeba", kind="probe")
    with pytest.raises(XLTError, match="needs a classification or tagging target; synth_tatoeba is retrieval"):
        C.from_params("baselines", params)
    params.update(target_task="synth_xnli", kind="lexical", upstream="intermediate/x__y__s13-0123456789")
    with pytest.raises(XLTError, match="baseline kind 'lexical' uses no upstream run"):
        C.from_params("baselines", params)
    params.update(kind="floor", upstream=None)
    with pytest.raises(XLTError, match="valid: in_language, lexical, majority, probe, random_init"):
        C.from_params("baselines", params)


def test_grid_adds_one_probe_per_encoder_and_one_lexical_cell_per_scorable_target(tmp_path):
    study = tmp_path / "floors.yaml"
    study.write_text("""
profiles:
  p:
    world: synth
    models: [synth-tiny]
    seeds: [13, 14]
    pretrain: true
    intermediate_tasks: [none]
    target_tasks: [synth_xnli, synth_udpos, synth_tatoeba]
    baselines: [majority, probe, lexical]
""")
    g = G.expand(study, "p")
    base = [c for c in g.cells if c.phase == "baselines"]
    kinds = sorted((c.params["kind"], c.params["target_task"]) for c in base)
    assert kinds == [("lexical", "synth_udpos"), ("lexical", "synth_xnli"), ("majority", "synth_tatoeba"),
                     ("majority", "synth_udpos"), ("majority", "synth_xnli"), ("probe", "synth_udpos"),
                     ("probe", "synth_xnli")]
    probe = next(c for c in base if c.params["kind"] == "probe")
    assert probe.upstream is not None and probe.upstream.phase == "pretrain"
    assert all(c.upstream is None for c in base if c.params["kind"] == "lexical")


@pytest.mark.parametrize("kind", ["probe", "lexical"])
def test_the_baselines_phase_runs_a_floor_and_repeats_it_exactly(kind, tmp_path, monkeypatch):
    from xlt_utils import paths, phases

    params = dict(C.notebook_defaults("04_baselines"), kind=kind, target_task="synth_udpos",
                  languages=["en", "sw3"], max_train_samples=48, max_dev_samples=24, max_eval_samples=16)
    cfg = C.from_params("baselines", params)

    def cell(root):
        monkeypatch.setattr(paths, "RUNS", root)
        run = phases.start(cfg)
        try:
            metrics = phases.run_baseline(run)
            phases.finish(run)
        finally:
            if run.lock is not None:
                run.lock.__exit__(None, None, None)
        return run, metrics

    a, metrics = cell(tmp_path / "a")
    b, _ = cell(tmp_path / "b")
    assert (a.dir / "metrics.csv").read_bytes() == (b.dir / "metrics.csv").read_bytes()
    got = {(r.split, r.lang) for r in metrics.itertuples()}
    assert got == {("dev", "en"), ("test", "en"), ("test", "sw3")}
    assert a.resolved["n_train_records"] == 48 and a.resolved["n_dev_records"] == 24
    assert ("layer" in a.resolved["chosen"]) == (kind == "probe") and "dev_table" in a.resolved["chosen"]
