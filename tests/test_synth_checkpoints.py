"""Committed synth encoders (checkpoints/synth/) and the word-level tokenizer option."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from xlt_utils import config as C
from xlt_utils.errors import XLTError
from xlt_utils.synth import checkpoints
from xlt_utils.synth.languages import GRAMMAR_VERSION

# ------------------------------------------------------------------------------------------- word-level tokenizer


def test_word_tokenizer_one_token_per_word_and_a_letter_mapped_control_tokenised_alike(tmp_path):
    from xlt_utils.models import load_tokenizer, train_tokenizer
    from xlt_utils.synth.corpus import mlm_corpus, probe_pairs

    texts = [d[1] for d in mlm_corpus(["en", "en_x"], 200, seed=0)]
    tok = train_tokenizer(texts, vocab_size=100_000, model="word", out_dir=tmp_path / "tok")
    assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tok.mask_token_id == len(tok) - 1
    tok = load_tokenizer(tmp_path / "tok")  # round trip through AutoTokenizer
    en, _ = probe_pairs("en", 20)
    en_x, _ = probe_pairs("en_x", 20)
    for a, b in zip(en, en_x):
        ia, ib = tok(a, add_special_tokens=False)["input_ids"], tok(b, add_special_tokens=False)["input_ids"]
        assert len(ia) == len(a.split()) == len(ib)  # one token per word in both scripts
    enc = tok("the dog runs .", "a cat", return_offsets_mapping=True)
    assert enc.word_ids() == [None, 0, 1, 2, 3, None, None, 0, 1, None]
    assert tok.convert_ids_to_tokens(enc.input_ids)[:2] == ["<s>", "\u2581the"]
    assert tok("zzqqxx", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]


def test_word_tokenizer_keeps_the_most_frequent_words_deterministically():
    from xlt_utils.models import train_tokenizer

    tok = train_tokenizer(["b b b a a c", "d c"], vocab_size=4 + 1 + 2, model="word")  # specials + <mask> + 2 words
    assert tok.convert_ids_to_tokens([4, 5]) == ["\u2581b", "\u2581a"]  # b (3) then a/c tied at 2: code-point order
    assert tok("c", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]


def test_unknown_tokenizer_model_names_the_choices():
    from xlt_utils.models import train_tokenizer

    with pytest.raises(XLTError, match="unknown tokenizer model 'bpe'; choose one of: unigram, word"):
        train_tokenizer(["a b"], model="bpe")


# ------------------------------------------------------------------------------------------- committed checkpoints


@pytest.mark.parametrize("name", checkpoints.names())
def test_committed_checkpoint_verifies_and_carries_its_provenance(name):
    folder = checkpoints.verify(name)
    prov = json.loads((folder / "provenance.json").read_text())
    recipe = checkpoints.recipe(name)
    assert prov["checkpoint"] == name and prov["recipe"] == recipe
    assert prov["command"] == f"python -m xlt_utils synth-checkpoint {name} --out checkpoints/synth/{name}"
    assert prov["steps"] == recipe["steps"] and prov["lr"] == recipe["learning_rate"]
    assert prov["size"] == name.removeprefix("synth-") and prov["parallel_frac"] == recipe["parallel_frac"]
    assert len(prov["corpus_sha256"]) == 64 and prov["git_revision"]
    log = [json.loads(line) for line in (folder / "pretrain_log.jsonl").read_text().splitlines()]
    losses = [r["mlm_loss"] for r in log if "mlm_loss" in r]
    probes = [r for r in log if "probe_p1" in r]
    assert log[-1]["step"] == recipe["steps"] and losses[-1] < losses[0]  # the loss curve is there and fell
    assert len(probes) == recipe["steps"] // recipe["probe_every"]  # the retrieval curve too
    assert prov["final_probe_p1"] == probes[-1]["probe_p1"]
    assert prov["grammar_version"] == GRAMMAR_VERSION and prov["bf16"] is False  # today's world, host-independent
    assert not any(p.name.startswith("step-") for p in folder.iterdir())  # no snapshots committed


def test_every_size_has_the_same_recipe():
    """rq2 compares sizes: data, steps and schedule must not differ between them."""
    recipes = [{k: v for k, v in checkpoints.recipe(n).items() if k != "model"} for n in checkpoints.names()]
    assert all(r == recipes[0] for r in recipes)


@pytest.fixture
def copied_checkpoints(tmp_path, monkeypatch):
    """A copy of checkpoints/synth that verify() reads instead of the committed one."""
    root = tmp_path / "synth"
    shutil.copytree(checkpoints.ROOT, root)
    monkeypatch.setattr(checkpoints, "ROOT", root)
    monkeypatch.setattr(checkpoints, "SUMS", root / "SHA256SUMS")
    return root


def test_a_changed_file_fails_verification(copied_checkpoints):
    name, root = checkpoints.names()[0], copied_checkpoints
    checkpoints.verify(name)
    (root / name / "tokenizer.json").write_text((root / name / "tokenizer.json").read_text() + " ")
    with pytest.raises(XLTError, match="does not match its SHA-256"):
        checkpoints.verify(name)
    (root / name / "tokenizer.json").unlink()
    with pytest.raises(XLTError, match="is missing"):
        checkpoints.verify(name)


def test_no_committed_file_is_over_the_size_limit_and_shards_join_back_byte_for_byte(tmp_path, copied_checkpoints):
    for f in checkpoints.ROOT.rglob("*"):
        assert f.stat().st_size <= checkpoints.MAX_FILE_BYTES, f
    # shard a copy of synth-tiny finely, then join: the same bytes as the single file
    folder = copied_checkpoints / "synth-tiny"
    original = (folder / checkpoints.WEIGHTS).read_bytes()
    shards = checkpoints.shard(folder, max_bytes=600_000)
    assert len(shards) >= 2 and not (folder / checkpoints.WEIGHTS).exists()
    assert all((folder / n).stat().st_size <= 600_000 for n in shards)
    assert checkpoints.files(folder)[1:1 + len(shards)] == shards
    checkpoints.write_sums()
    out = tmp_path / "run" / "encoder"
    checkpoints.copy_to("synth-tiny", out)
    assert (out / checkpoints.WEIGHTS).read_bytes() == original
    assert not list(out.glob("model-*"))
    (folder / shards[-1]).unlink()  # a lost shard is named, not silently skipped
    with pytest.raises(XLTError, match=f"is missing .*{shards[-1]}"):
        checkpoints.verify("synth-tiny")


def test_a_checkpoint_of_another_grammar_version_is_refused(copied_checkpoints):
    name, root = checkpoints.names()[0], copied_checkpoints
    prov = json.loads((root / name / "provenance.json").read_text())
    prov["grammar_version"] = "0"
    (root / name / "provenance.json").write_text(json.dumps(prov))
    checkpoints.write_sums()  # pinned, so only the version differs
    with pytest.raises(XLTError, match=f"pretrained on synth grammar 0, the generator is at {GRAMMAR_VERSION}"):
        checkpoints.verify(name)


def test_copy_to_gives_a_loadable_encoder_and_the_pretraining_summary(tmp_path):
    from transformers import AutoModel

    from xlt_utils.models import load_tokenizer

    s = checkpoints.copy_to("synth-tiny", tmp_path / "enc")
    assert s["n_parameters"] > 0 and s["final_loss"] > 0 and "en_x" in s["probe"]
    assert AutoModel.from_pretrained(str(tmp_path / "enc")).config.num_hidden_layers == 2
    assert load_tokenizer(tmp_path / "enc").mask_token_id == len(load_tokenizer(tmp_path / "enc")) - 1


def _pretrain_params(**kw):
    from xlt_utils.config import PHASE_NOTEBOOKS, notebook_defaults

    return {**notebook_defaults(PHASE_NOTEBOOKS["pretrain"]), **kw}


def test_checkpoint_parameter_replaces_every_pretraining_parameter_with_the_recipe():
    cfg = C.from_params("pretrain", _pretrain_params(model="synth-small", checkpoint="committed", steps=7))
    assert cfg.checkpoint == "synth-small"
    assert {k: getattr(cfg, k) for k in checkpoints.recipe("synth-small")} == checkpoints.recipe("synth-small")
    # the committed name and the alias are the same run
    assert cfg == C.from_params("pretrain", _pretrain_params(model="synth-small", checkpoint="synth-small"))


@pytest.mark.parametrize(("kw", "match"), [
    ({"model": "synth-small", "checkpoint": "synth-tiny"}, "checkpoint 'synth-tiny' is a synth-tiny encoder, not synth-small"),
    ({"model": "synth-deep", "checkpoint": "committed"},
     "no committed checkpoint for synth-deep; committed: synth-medium, synth-small, synth-tiny"),
    ({"checkpoint": "nope"}, "unknown synth checkpoint 'nope'; valid: synth-medium, synth-small, synth-tiny"),
    ({"tokenizer": "bpe"}, "unknown tokenizer 'bpe'; valid: unigram, word"),
])
def test_bad_checkpoint_parameters_are_one_line_errors(kw, match):
    with pytest.raises(XLTError, match=match) as e:
        C.from_params("pretrain", _pretrain_params(**kw))
    assert "\n" not in str(e.value)


def test_embedded_profiles_load_the_checkpoints_and_embedded_full_regenerates_them():
    from xlt_utils import grid

    for study in ("paper", "rq2_model_scale", "rq4_intermediate_data", "rq5_source_language"):
        pre = [c for c in grid.expand(study, "embedded").cells if c.phase == "pretrain"]
        # rq4 and rq5 run e5 on real data in embedded (their synth arms are embedded-full only)
        assert (pre or study in ("rq4_intermediate_data", "rq5_source_language")), study
        assert all(c.params["checkpoint"] == c.params["model"] for c in pre), study
        full = [c for c in grid.expand(study, "embedded-full").cells if c.phase == "pretrain"]
        assert full and all(c.params["checkpoint"] is None for c in full), study
        for c in full:
            recipe = checkpoints.recipe("synth-tiny")
            assert {k: c.params[k] for k in recipe if k != "model"} == {k: v for k, v in recipe.items() if k != "model"}


def test_an_imported_pretraining_run_is_restored_from_the_checkpoint_with_its_bytes(tmp_path, monkeypatch):
    """embedded-full pretrains with the recipe (checkpoint None). A run an imported bundle holds has no weights
    here; when the bundle recorded the SHA-256 of the committed checkpoint of its model, the phase copies that
    checkpoint instead of training (seconds, not 34 minutes for synth-small) and says so in resolved; other bytes
    recorded, or nothing recorded: it trains (here a stand-in for the pretraining, which takes minutes)."""
    from xlt_utils import paths, phases, results
    from xlt_utils.synth import pretrain as synth_pretrain

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    trained: list[str] = []

    def fake_pretrain(out, **kw):
        trained.append(str(out))
        return checkpoints.copy_to("synth-small", out)  # other bytes than synth-tiny's

    monkeypatch.setattr(synth_pretrain, "pretrain", fake_pretrain)
    recipe = {k: v for k, v in checkpoints.recipe("synth-tiny").items() if k != "model"}
    cfg = C.from_params("pretrain", _pretrain_params(model="synth-tiny", checkpoint=None, **recipe))
    sha = checkpoints._sha256(checkpoints.path("synth-tiny") / checkpoints.WEIGHTS)

    def run_phase(recorded, scores=None):
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)
        shutil.rmtree(tmp_path / "results", ignore_errors=True)
        run = phases.start(cfg)
        try:
            if recorded is not None:
                b = results.imported_dir() / "paper__embedded-full__0123456789"
                b.mkdir(parents=True)
                (b / results.BUNDLE_JSON).write_text(json.dumps({"runs": [run.id],
                                                                 "pretrain_encoders_sha256": {run.id: recorded}}))
                if scores is not None:  # the rows the bundle recorded for the run (and another run's)
                    lines = ["run_id,task,split,lang,metric,value,n_examples"]
                    lines += [f"{run.id},{'mlm' if m == 'mlm_loss' else 'probe_retrieval'},x,{lang},{m},{v},1"
                              for lang, m, v in scores]
                    lines += ["pretrain/other-0123456789,mlm,train,all,mlm_loss,9.0,1"]
                    (b / results.METRICS_CSV).write_text("\n".join(lines) + "\n")
            summary = phases.pretrain_encoder(run)
            return run, summary, phases.pretrain_metrics(run, summary)
        finally:
            run.lock.__exit__(None, None, None)

    # the scores are the bundle's for this run (the checkpoint's provenance averages its last loss over another
    # logging window: the paper's synth-small run recorded 3.9342, the same weights' checkpoint 3.9125)
    scores = [("all", "mlm_loss", 3.5), ("en_x", "p@1", 12.5), ("fr_like", "p@1", 50.0)]
    run, _, metrics = run_phase(sha, scores)
    assert trained == [] and results.weights_sha256(run.dir) == sha
    assert run.resolved["restored_from"] == "checkpoints/synth/synth-tiny"
    assert run.resolved["restored_because"] == (f"imported bundle paper__embedded-full__0123456789 recorded this "
                                                f"run's encoder as sha256 {sha}, the bytes of the committed checkpoint")
    assert run.resolved["restored_scores"] == "the rows imported bundle paper__embedded-full__0123456789 holds for this run"
    assert dict(zip(metrics["lang"], metrics["value"])) == {"all": 3.5, "en_x": 12.5, "fr_like": 50.0}
    assert run.resolved["global_step"] == recipe["steps"]
    assert results.training_rows(run.id) is None  # copied, not trained: its cost stays the bundle's row
    run, _, _ = run_phase(sha)  # a bundle without rows for it: no scores to keep, so it trains
    assert trained == [str(run.dir / "encoder")] and "restored_from" not in run.resolved
    trained.clear()
    run, _, _ = run_phase("0" * 64, scores)  # other bytes recorded: the copy is removed and the run trains
    assert trained == [str(run.dir / "encoder")] and "restored_from" not in run.resolved
    assert results.weights_sha256(run.dir) == checkpoints._sha256(checkpoints.path("synth-small") / checkpoints.WEIGHTS)
    run, _, _ = run_phase(None)  # nothing imported: it trains
    assert len(trained) == 2 and "restored_from" not in run.resolved
    # two bundles that disagree on its bytes: it trains (the one that matches the checkpoint does not decide)
    other = results.imported_dir() / "paper__embedded-full__9999999999"
    run, _, _ = run_phase(sha, scores)
    trained.clear()
    shutil.rmtree(run.dir)
    other.mkdir(parents=True)
    (other / results.BUNDLE_JSON).write_text(json.dumps({"runs": [run.id], "pretrain_encoders_sha256": {run.id: "1" * 64}}))
    run = phases.start(cfg)
    try:
        phases.pretrain_encoder(run)
    finally:
        run.lock.__exit__(None, None, None)
    assert len(trained) == 1 and "restored_from" not in run.resolved


def test_the_dry_run_names_the_pretraining_it_will_restore(tmp_path, monkeypatch):
    """rq4's synth arm needs the paper's synth-small pretraining run; with a bundle that recorded its bytes
    imported, the dry run marks it 'restore' (not counted in the CPU estimate) instead of 'todo'. The weights'
    SHA-256 of a sharded checkpoint is the joined file's, as the copy writes it."""
    from xlt_utils import grid, paths, results

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    g = grid.expand("rq4_intermediate_data", "embedded-full")
    (pre,) = [c for c in g.cells if c.phase == "pretrain"]
    down = next(c for c in g.cells if c.upstream is pre)
    b = results.imported_dir() / "paper__embedded-full__0123456789"
    b.mkdir(parents=True)
    sha = checkpoints.weights_sha256("synth-small")
    (b / results.BUNDLE_JSON).write_text(json.dumps({"runs": [pre.run_id, down.run_id],
                                                     "pretrain_encoders_sha256": {pre.run_id: sha}}))
    (b / results.METRICS_CSV).write_text(f"run_id,metric,lang,value\n{pre.run_id},mlm_loss,all,3.9\n"
                                         f"{pre.run_id},p@1,en_x,2.5\n")
    lines: list[str] = []
    grid.describe(g, out=lines.append, imported=results.imported_run_ids())
    assert f"  restore   {pre.run_id}  (copied from checkpoints/synth/synth-small: the bytes an imported bundle " \
           f"recorded for it)" in lines
    (b / results.BUNDLE_JSON).write_text(json.dumps({"runs": [pre.run_id, down.run_id],
                                                     "pretrain_encoders_sha256": {pre.run_id: "0" * 64}}))
    # the CPU estimate leaves a restored cell out (one cell fewer)
    from xlt_utils import estimate
    from xlt_utils.cells import CellResult

    ran = [CellResult(pre, "done", 2000.0, timings={"work": 2000.0})]
    todo = [c for c in g.cells if c.params["world"] != "xtreme"]
    both, without = (estimate.cpu_estimate(g, 1, ran=ran, skip=skip) for skip in (None, {pre.run_id}))
    assert f"for {len(todo)} cells" in both and f"for {len(todo) - 1} cells" in without
    lines = []
    grid.describe(g, out=lines.append, imported=results.imported_run_ids())
    assert f"  todo      {pre.run_id}" in lines
    copied = checkpoints.copy_to("synth-medium", tmp_path / "medium")
    assert checkpoints.weights_sha256("synth-medium") == checkpoints._sha256(Path(copied["out_dir"]) / "model.safetensors")
