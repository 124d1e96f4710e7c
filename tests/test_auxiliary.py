"""The auxiliary multilingual objective of intermediate training (issue #40 item 2): the gradient the loop applies
at aux and non-aux steps, the MLM masking and head, the InfoNCE loss, the held-out rule for the parallel pairs and
the results layer's zero_shot flag, and the parameter checks."""

from __future__ import annotations

import json
import math

import pytest
import torch

from xlt_utils import auxiliary, paths, runs
from xlt_utils import config as C
from xlt_utils.errors import XLTError

TEXTS = [
    "the cat sat on the mat", "a dog ran in the park", "le chat est sur le tapis", "un chien court dans le parc",
    "the bird sings in the tree", "l oiseau chante dans l arbre", "we read a book today", "nous lisons un livre",
    "it rains in the city", "il pleut dans la ville", "the sun is warm", "le soleil est chaud",
]


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory):
    """A tiny XLM-R saved with its MLM head (no dropout, so a gradient is a function of the weights and the batch)."""
    from transformers import XLMRobertaForMaskedLM

    from xlt_utils.models import tiny_xlmr_config, train_tokenizer

    out = tmp_path_factory.mktemp("tiny_mlm")
    tok = train_tokenizer(TEXTS, vocab_size=200, model="word")
    torch.manual_seed(0)
    conf = tiny_xlmr_config(len(tok), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    XLMRobertaForMaskedLM(conf).save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    return out


def _task_model(mlm_dir):
    from transformers import XLMRobertaForSequenceClassification
    from transformers.utils import logging as hf_logging

    torch.manual_seed(1)
    hf_logging.set_verbosity_error()  # the MLM head is meant to be unused by the classifier
    return XLMRobertaForSequenceClassification.from_pretrained(str(mlm_dir), num_labels=2)


def _features(tok):
    feats = []
    for i, t in enumerate(TEXTS * 2):
        ids = tok(t)["input_ids"]
        feats.append({"input_ids": ids, "labels": i % 2, "length": len(ids)})
    return feats


def _collate(feats):
    width = max(len(f["input_ids"]) for f in feats)
    ids = torch.full((len(feats), width), 1, dtype=torch.long)
    mask = torch.zeros((len(feats), width), dtype=torch.long)
    for r, f in enumerate(feats):
        ids[r, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
        mask[r, : len(f["input_ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([f["labels"] for f in feats])}


def _objective(kind, mlm_dir, tok, weight, every):
    common = {"weight": weight, "every": every, "batch_size": 4, "seed": 3}
    if kind == "mlm":
        head, tied = auxiliary.mlm_head(mlm_dir)
        seqs = auxiliary.pack_texts({"xx": TEXTS[2::2]}, tok, 16)
        return auxiliary.MLMObjective(head, tied, seqs, tok, **common)
    pairs = [{"lang": "fr", "en": TEXTS[i], "xx": TEXTS[i + 1]} for i in (0, 4, 8, 10)]
    pairs += [{"lang": "de", "en": TEXTS[i], "xx": TEXTS[i + 1][::-1]} for i in (0, 4, 8)]
    return auxiliary.ContrastiveObjective(pairs, tok, prefix="query: ", temperature=0.1, max_length=16, **common)


@pytest.mark.parametrize("kind", ["mlm", "contrastive"])
def test_the_loop_applies_task_plus_weighted_aux_gradient_at_aux_steps_only(kind, mlm_dir):
    """With aux_weight w and aux_every k, the gradient the optimizer receives at step s is grad(task) + w grad(aux)
    when k divides s and grad(task) otherwise, each computed separately at the same weights."""
    from xlt_utils.models import load_tokenizer
    from xlt_utils.train import TrainConfig, length_grouped_batches, train

    tok = load_tokenizer(mlm_dir)
    model = _task_model(mlm_dir)
    w, k = 0.7, 2
    aux = _objective(kind, mlm_dir, tok, w, k)
    setattr(model, auxiliary.ATTR, aux)
    feats = _features(tok)
    cfg = TrainConfig(learning_rate=1e-2, max_steps=4, per_device_train_batch_size=4, max_grad_norm=0.0,
                      warmup_ratio=0.0, progress=False, log_every=1, seed=5)
    batches = length_grouped_batches([f["length"] for f in feats], 4, cfg.seed, 0, cfg.group_by_length,
                                     cfg.length_group_size)
    params = [p for p in model.parameters() if p.requires_grad]
    seen = []

    def check(optimizer, args, kwargs):
        s = len(seen) + 1
        got = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in params]
        with torch.enable_grad():
            task = torch.autograd.grad(model(**_collate([feats[i] for i in batches[s - 1]])).loss, params,
                                       allow_unused=True)
            extra = torch.autograd.grad(aux.loss(model, s), params, allow_unused=True)
        task = [torch.zeros_like(p) if g is None else g for p, g in zip(params, task)]
        extra = [torch.zeros_like(p) if g is None else g for p, g in zip(params, extra)]
        want = [t + w * e for t, e in zip(task, extra)] if s % k == 0 else task
        for g, ref in zip(got, want):
            torch.testing.assert_close(g, ref, rtol=1e-4, atol=1e-6)
        # the aux term is not negligible: grad(task) alone would fail at an aux step
        gap = max(float((w * e).abs().max()) for e in extra)
        assert gap > 1e-4
        seen.append(s)

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(check)
    try:
        result = train(model, feats, _collate, cfg, device="cpu")
    finally:
        handle.remove()
    assert seen == [1, 2, 3, 4] and result.global_step == 4
    assert aux.record["aux_steps"] == 2 and aux.record["last_step"] == 4


def test_a_run_resumed_from_its_checkpoint_draws_the_same_aux_batches(mlm_dir, tmp_path):
    """An aux batch is a function of (seed, step): a run stopped after step 2 and resumed ends with the weights of
    one that never stopped (aux head included)."""
    from xlt_utils.models import load_tokenizer
    from xlt_utils.train import TrainConfig, train

    tok = load_tokenizer(mlm_dir)
    feats = _features(tok)
    cfg = TrainConfig(learning_rate=1e-2, max_steps=4, per_device_train_batch_size=4, warmup_ratio=0.0,
                      progress=False, seed=5, checkpoint_every=2)

    def fresh():
        m = _task_model(mlm_dir)
        setattr(m, auxiliary.ATTR, _objective("mlm", mlm_dir, tok, 0.5, 1))
        return m

    whole = fresh()
    train(whole, feats, _collate, cfg, output_dir=tmp_path / "a", device="cpu")

    def stop(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fresh(), feats, _collate, cfg, output_dir=tmp_path / "b", on_step=stop, device="cpu")
    resumed = fresh()
    assert train(resumed, feats, _collate, cfg, output_dir=tmp_path / "b", device="cpu").resumed_from_step == 2
    a, b = whole.state_dict(), resumed.state_dict()
    assert any(k.startswith(auxiliary.ATTR + ".dense") for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_mlm_masking_rate_and_rule(mlm_dir):
    """15% of the non-special positions are chosen (80% <mask>, 10% random, 10% kept), labels hold the original
    ids there and -100 elsewhere; the masking is a function of (seed, step) and leaves the global RNG alone."""
    from xlt_utils.models import load_tokenizer

    tok = load_tokenizer(mlm_dir)
    body = [tok.convert_tokens_to_ids(t) for t in tok.tokenize(" ".join(TEXTS))][:48]
    seqs = [[tok.cls_token_id] + body[i % 7:] + body[: i % 7] + [tok.sep_token_id] for i in range(60)]
    head, tied = auxiliary.mlm_head(mlm_dir)
    aux = auxiliary.MLMObjective(head, tied, seqs, tok, weight=1.0, every=1, batch_size=60, seed=0)
    state = torch.get_rng_state()
    batch = aux.masked(range(60), step=1)
    assert torch.equal(torch.get_rng_state(), state)
    orig = torch.tensor(seqs)
    chosen = batch["labels"] != -100
    special = (orig == tok.cls_token_id) | (orig == tok.sep_token_id)
    assert not chosen[special].any()
    n = int((~special).sum())  # 60 x 48 = 2880 positions
    rate = int(chosen.sum()) / n
    assert abs(rate - 0.15) < 0.025, rate  # sd 0.0067 at n = 2880
    assert torch.equal(batch["labels"][chosen], orig[chosen])
    assert torch.equal(batch["input_ids"][~chosen], orig[~chosen])
    to_mask = (batch["input_ids"][chosen] == tok.mask_token_id).float().mean()
    kept = (batch["input_ids"][chosen] == orig[chosen]).float().mean()
    assert abs(float(to_mask) - 0.8) < 0.07 and float(kept) < 0.2
    again, other = aux.masked(range(60), step=1), aux.masked(range(60), step=2)
    assert torch.equal(again["input_ids"], batch["input_ids"]) and not torch.equal(other["labels"], batch["labels"])


def test_mlm_loss_is_the_masked_lm_heads_loss(mlm_dir):
    """The aux MLM loss on a masked batch equals XLMRobertaForMaskedLM's loss on it (same encoder, same head)."""
    from transformers import XLMRobertaForMaskedLM

    from xlt_utils.models import load_tokenizer

    tok = load_tokenizer(mlm_dir)
    reference = XLMRobertaForMaskedLM.from_pretrained(str(mlm_dir)).eval()
    aux = _objective("mlm", mlm_dir, tok, 1.0, 1)
    items = aux.batch_at(1)
    batch = aux.masked(items, 1)
    with torch.no_grad():
        want = reference(**batch).loss
        got = aux.batch_loss(reference, items, 1)
    torch.testing.assert_close(got, want)


def test_info_nce_by_hand():
    """Two pairs with known cosines, temperature 0.1: each direction's cross-entropy from the similarity matrix."""
    x = torch.tensor([[3.0, 0.0], [0.0, 1.0]])  # norms differ: cosine, not dot product
    y = torch.tensor([[0.8, 0.6], [0.6, 0.8]])  # cos(x1,y1)=.8 cos(x1,y2)=.6 cos(x2,y1)=.6 cos(x2,y2)=.8
    assert float(auxiliary.info_nce(x, y, 0.1)) == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)
    y = torch.tensor([[0.8, 0.6], [0.0, 2.0]])  # S/t = [[8, 0], [6, 10]]
    rows = (math.log(1 + math.exp(-8)) + math.log(1 + math.exp(-4))) / 2  # x -> y: 8 vs 0, 10 vs 6
    cols = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-10))) / 2  # y -> x: 8 vs 6, 10 vs 0
    assert float(auxiliary.info_nce(x, y, 0.1)) == pytest.approx((rows + cols) / 2, abs=1e-6)


def test_contrastive_batches_are_one_language_and_cover_every_pair():
    pairs = [{"lang": lang, "en": f"{lang} {i}", "xx": f"x {lang} {i}"} for lang in ("de", "fr") for i in range(7)]
    aux = auxiliary.ContrastiveObjective(pairs, None, prefix="", temperature=0.1, max_length=8, weight=1.0,
                                         every=1, batch_size=3, seed=0)
    batches = aux.epoch_batches(0)
    assert all(len({pairs[i]["lang"] for i in b}) == 1 and len(b) > 1 for b in batches)
    used = [i for b in batches for i in b]  # 7 pairs a language in batches of 3: 3 + 3, a last single one left out
    assert len(used) == len(set(used)) == 12
    assert aux.epoch_batches(0) == batches and aux.epoch_batches(1) != batches
    assert [aux.batch_at(s) for s in range(1, len(batches) + 1)] == batches


# ---------------------------------------------------------------------------------------------- held-out pairs


def test_pairs_sharing_a_text_with_a_retrieval_task_are_dropped_and_its_languages_flagged():
    from xlt_utils.offline import auxpairs

    rows = [{"lang": "fr", "key": "s:1", "en": "Build the docs now.", "xx": "Construire la doc maintenant."},
            {"lang": "fr", "key": "s:2", "en": "is not a directory.", "xx": "n'est pas un dossier."},
            {"lang": "fr", "key": "s:3", "en": "Search the index here.", "xx": "Ouvrir le fichier source."},
            {"lang": "ka", "key": "s:1", "en": "Build the docs now.", "xx": "doc ka"},
            {"lang": "de", "key": "s:1", "en": "Build the docs now.", "xx": "Jetzt bauen."}]
    retrieval = [{"task": "debian_bitext", "corpus": "debian", "languages": ["fr", "de"],
                  "texts": {auxpairs._loose("Is not a directory"), auxpairs._loose("ouvrir le fichier source")}}]
    pairs, report = auxpairs.select(rows, ["fr", "ka"], 10, retrieval)
    assert [(p["lang"], p["key"]) for p in pairs] == [("fr", "s:1"), ("ka", "s:1")]
    assert report["dropped_overlap"] == {"fr": 2}
    assert report["not_zero_shot"] == {"debian_bitext": ["fr"]}  # ka is evaluated by no retrieval task
    with pytest.raises(XLTError, match="not held out: retrieval task.s. debian_bitext"):
        auxpairs.select(rows, ["fr"], 10, retrieval, source="debian")
    with pytest.raises(XLTError, match="no held-out pairs in 'de'"):
        auxpairs.select(rows, ["de"], 10, [{**retrieval[0], "texts": {auxpairs._loose("Build the docs now")}}])


def _sphinx_built() -> bool:
    from xlt_utils.offline import auxpairs, fetch
    from xlt_utils.offline.layout import cache_dir

    return (cache_dir() / "tasks" / "manifest.json").exists() and (
        (auxpairs.aux_dir() / "sphinx.jsonl.gz").exists()
        or (cache_dir() / "downloads" / fetch.PINS["sphinx"].filename).exists())


@pytest.mark.skipif(not _sphinx_built(), reason="needs make setup (offline-real world and the Sphinx wheel)")
def test_the_real_pair_set_is_held_out_of_every_retrieval_task(monkeypatch):
    """On the built world: the Sphinx pairs share no catalog and no text with any retrieval task; each of their
    languages that a retrieval task evaluates is named as not zero-shot; the language table is the wheel's."""
    from xlt_utils.offline import auxpairs

    meta = auxpairs.build_corpus()
    assert {k: v for k, v in meta["pairs_per_language"].items() if v >= auxpairs.MIN_PAIRS} == auxpairs.LANGUAGES
    retrieval = auxpairs.retrieval_sets()
    monkeypatch.setattr(auxpairs, "retrieval_sets", lambda: retrieval)  # read once (a few seconds)
    pairs, prov = auxpairs.pair_set(["fr", "ka", "ko"], 60)
    assert {r["corpus"] for r in retrieval} >= {"django"} and auxpairs.SOURCE not in {r["corpus"] for r in retrieval}
    texts = set().union(*(r["texts"] for r in retrieval))
    assert len(pairs) == 180 and not any(auxpairs._loose(p["en"]) in texts or auxpairs._loose(p["xx"]) in texts
                                         for p in pairs)
    evaluated = {r["task"]: sorted({"fr", "ka", "ko"} & set(r["languages"])) for r in retrieval}
    assert prov["not_zero_shot"] == {t: v for t, v in evaluated.items() if v}
    assert auxpairs.pair_set(["fr", "ka", "ko"], 60) == (pairs, prov)  # cached, with its hash and sha256
    assert (auxpairs.aux_dir() / f"pairs-{prov['hash']}.jsonl").exists() and len(prov["sha256"]) == 64


# ---------------------------------------------------------------------------------------------- results


def _run(root, rid, phase, params, lineage, rows, resolved=None):
    d = root / rid
    d.mkdir(parents=True)
    (d / runs.PARAMS).write_text(json.dumps({"run_id": rid, "phase": phase, "params": params, "lineage": lineage,
                                             "resolved": resolved or {}}))
    lines = ["task,split,lang,metric,value,n_examples"] + [",".join(map(str, r)) for r in rows]
    (d / runs.METRICS).write_text("\n".join(lines) + "\n")
    (d / runs.DONE).write_text("x\n")


def test_retrieval_scores_in_a_language_whose_pairs_trained_the_encoder_are_not_zero_shot(tmp_path, monkeypatch):
    import pandas as pd

    from xlt_utils import results

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    inter = "intermediate/e5__rt_sentiment__s13-aaaaaaaaaa"
    base = {"world": "offline-real", "model": "multilingual-e5-small", "seed": 13,
            "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1}
    lin = {"world": "offline-real", "model": "multilingual-e5-small", "intermediate_task": "rt_sentiment", "seed": 13,
           "intermediate_batch_size": 8, "runs": {}}
    _run(paths.RUNS, inter, "intermediate", {**base, "intermediate_task": "rt_sentiment",
                                             "aux_objective": "contrastive"}, lin,
         [("rt_sentiment", "dev", "en", "accuracy", 80.0, 10)], {"aux": {"not_zero_shot_languages": ["fr"]}})
    down = {**lin, "runs": {"intermediate": inter}}
    ev = {"world": "offline-real", "model": "multilingual-e5-small", "upstream": inter}
    _run(paths.RUNS, "eval/e5__rt_sentiment__django_bitext-bbbbbbbbbb", "eval",
         {**ev, "target_task": "django_bitext"}, {**down, "target_task": "django_bitext"},
         [("django_bitext", "test", "fr", "accuracy", 90.0, 100), ("django_bitext", "test", "de", "accuracy", 91.0, 100)])
    _run(paths.RUNS, "eval/e5__rt_sentiment__django_topic-cccccccccc", "eval",
         {**ev, "target_task": "django_topic"}, {**down, "target_task": "django_topic"},
         [("django_topic", "test", "fr", "accuracy", 70.0, 100)])
    df = pd.read_csv(results.collect(), keep_default_na=False)
    flag = {(r.task, r.lang): r.zero_shot for r in df.itertuples() if r.phase == "eval"}
    assert flag == {("django_bitext", "fr"): False, ("django_bitext", "de"): True, ("django_topic", "fr"): True}
    assert set(df[df["phase"] == "eval"]["intermediate_aux_objective"]) == {"contrastive"}  # the arm, on its rows
    transfer = results.zero_shot(df).set_index(["task", "lang"])["transfer"]
    assert transfer[("django_bitext", "fr")] == results.NOT_ZERO_SHOT
    assert transfer[("django_bitext", "de")] == transfer[("django_topic", "fr")] == "zero-shot"


# ---------------------------------------------------------------------------------------------- parameters


def _params(**over):
    return {**C.notebook_defaults("01_intermediate"), **over}


def test_aux_parameters_are_off_and_id_neutral_by_default():
    defaults = C.notebook_defaults("01_intermediate")
    assert {k: defaults[k] for k in auxiliary.DEFAULTS} == auxiliary.DEFAULTS
    assert {k: runs.ID_NEUTRAL_DEFAULTS[k] for k in auxiliary.DEFAULTS} == auxiliary.DEFAULTS
    p = C.from_params("intermediate", defaults).to_params()
    without = {k: v for k, v in p.items() if k not in auxiliary.DEFAULTS}
    assert runs.params_hash("intermediate", p) == runs.params_hash("intermediate", without)
    assert runs.params_hash("intermediate", {**p, "aux_weight": 0.5}) != runs.params_hash("intermediate", p)


@pytest.mark.parametrize("over, message", [
    ({"aux_objective": "tlm"}, "unknown aux_objective 'tlm'; valid: contrastive, mlm, none"),
    ({"world": "offline-real", "model": "multilingual-e5-small", "intermediate_task": "rt_sentiment",
      "aux_objective": "mlm"}, "needs an encoder with an MLM head; multilingual-e5-small (offline-real) has none"),
    ({"world": "offline-real", "model": "multilingual-e5-small", "intermediate_task": "rt_sentiment",
      "aux_objective": "mlm"}, "use 'contrastive' (valid for offline-real: none, contrastive)"),
    ({"aux_objective": "contrastive", "upstream": None}, "has an MLM head: use 'mlm' (valid for synth: none, mlm)"),
    ({"aux_objective": "mlm"}, "set upstream to a pretrain run"),
    ({"aux_weight": 0.5}, "aux_weight applies to an auxiliary objective; with aux_objective 'none' leave it at 1.0"),
    ({"world": "offline-real", "model": "multilingual-e5-small", "intermediate_task": "rt_sentiment",
      "aux_objective": "contrastive", "aux_batch_size": 1}, "aux_batch_size must be >= 2 (in-batch negatives"),
    ({"world": "offline-real", "model": "multilingual-e5-small", "intermediate_task": "rt_sentiment",
      "aux_objective": "contrastive", "aux_languages": ["de"]}, "unknown aux language of world offline-real: 'de'"),
    ({"world": "offline-real", "model": "multilingual-e5-small", "intermediate_task": "rt_sentiment",
      "aux_objective": "contrastive", "aux_every": 0}, "aux_every must be >= 1"),
])
def test_bad_aux_parameters_fail_in_one_line(over, message):
    with pytest.raises(XLTError) as e:
        C.from_params("intermediate", _params(**over))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_valid_aux_parameters_pass():
    up = "pretrain/synth-tiny__s0-0123456789"
    C.from_params("intermediate", _params(aux_objective="mlm", upstream=up, aux_weight=0.5, aux_every=2,
                                          aux_languages=["fr_like", "ja_like"]))
    C.from_params("intermediate", _params(world="offline-real", model="multilingual-e5-small",
                                          intermediate_task="rt_sentiment", aux_objective="contrastive",
                                          aux_temperature=0.02, aux_languages=["fr", "ka"]))


def test_an_intermediate_run_with_aux_mlm_trains_the_pretrained_head_and_saves_the_encoder_alone(tmp_path, monkeypatch):
    """Through the phase calls of 01_intermediate: the MLM head comes from the pretrain run's encoder (the committed
    synth-tiny), joins every second step, and what it trained on is in params.json; encoder/ holds no head."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from xlt_utils import phases

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(runs, "environment", dict)  # versions and hardware: 5 s on first use, not under test
    pre = phases.start(C.from_params("pretrain", {**C.notebook_defaults("00_pretrain"), "checkpoint": "committed"}))
    phases.pretrain_metrics(pre, phases.pretrain_encoder(pre))
    phases.finish(pre)
    cfg = C.from_params("intermediate", _params(upstream=pre.id, aux_objective="mlm", aux_every=2, aux_weight=0.5,
                                                aux_languages=["fr_like", "ja_like"], aux_per_language=12,
                                                aux_batch_size=4, max_steps=4, checkpoint_every=None))
    run = phases.start(cfg)
    data = phases.load_training_data(run)
    model = phases.build_model(run, data)
    aux = auxiliary.attach(run, model, data)
    head = load_file(str(pre.dir / "encoder" / "model.safetensors"))["lm_head.dense.weight"]
    assert torch.equal(aux.dense.weight.detach().cpu(), head)  # the pretrained head, not a fresh one
    phases.train_model(run, model, data)
    assert not torch.equal(aux.dense.weight.detach().cpu(), head)  # trained with the aux loss
    phases.evaluate_dev(run, model, data)
    phases.save_encoder(run, model, data)
    phases.finish(run)
    rec = json.loads((run.dir / runs.PARAMS).read_text())["resolved"]["aux"]
    assert rec["objective"] == "mlm" and rec["languages"] == ["fr_like", "ja_like"] and rec["aux_steps"] == 2
    assert rec["n_sequences"] > 0 and len(rec["sequences_sha256"]) == 64 and rec["first_loss"] > 0
    with safe_open(str(run.dir / "encoder" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith((auxiliary.ATTR, "lm_head", "classifier")) for k in keys)


def test_an_aux_arm_is_its_own_arm_in_the_analysis():
    """Rows of an intermediate task trained with an auxiliary objective get ``<task> [aux <objective>]`` (the
    descendant's ``intermediate_aux_objective``, or the intermediate run's own ``aux_objective``); the plain task,
    ``none`` and rows without the columns keep their names."""
    import pandas as pd

    from xlt_utils.results import arm_names

    df = pd.DataFrame({"phase": ["eval", "eval", "eval", "intermediate", "eval"],
                       "intermediate_task": ["rt_sentiment", "rt_sentiment", "none", "brown_pos", None],
                       "intermediate_aux_objective": ["contrastive", "none", None, None, None],
                       "aux_objective": [None, None, None, "mlm", None]})
    assert list(arm_names(df)["intermediate_task"].fillna("-")) == [
        "rt_sentiment [aux contrastive]", "rt_sentiment", "none", "brown_pos [aux mlm]", "-"]
    plain = df.drop(columns=["intermediate_aux_objective", "aux_objective"])
    assert arm_names(plain).equals(plain)
