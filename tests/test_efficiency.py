"""Efficiency measurement: FLOPs count by hand, layer truncation, precision variants, profile contract, Pareto."""

from __future__ import annotations

import contextlib
import copy
import json
import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from xlt_utils import efficiency
from xlt_utils.errors import XLTError
from xlt_utils.formats.pipelines import get_pipeline
from xlt_utils.models import build_model, encoder_of, load_tokenizer
from xlt_utils.tasks import get_task
from xlt_utils.worlds import load_records


def test_forward_flops_hand_computed():
    cfg = SimpleNamespace(num_hidden_layers=2, hidden_size=4, intermediate_size=8)
    # per layer, s = 3: 8*3*16 (QKVO) + 4*3*4*8 (FFN) + 4*9*4 (attention) = 384 + 384 + 144 = 912
    assert efficiency.forward_flops(cfg, 3) == 2 * 912
    assert efficiency.forward_flops(cfg, 3, num_layers=1) == 912
    # classification head: 2 * (d*d + d*C) = 2 * (16 + 12) = 56
    assert efficiency.forward_flops(cfg, 3, num_labels=3) == 2 * 912 + 56
    with pytest.raises(XLTError, match=r"1\.\.2"):
        efficiency.forward_flops(cfg, 3, num_layers=3)


def test_forward_flops_matches_two_n_tokens_for_xlmr_large():
    # a common approximation: forward ~ 2 * (non-embedding parameters) * tokens, plus attention
    cfg = SimpleNamespace(num_hidden_layers=24, hidden_size=1024, intermediate_size=4096)
    s = 128
    dense = 24 * (4 * 1024 * 1024 + 2 * 1024 * 4096)  # weights of the matmuls (biases, LayerNorm ignored)
    assert efficiency.forward_flops(cfg, s) == pytest.approx(2 * dense * s + 24 * 4 * s * s * 1024)


@pytest.fixture(scope="module")
def classifier(local_tasks, tiny_encoder):
    task = get_task(local_tasks["pair_classification"])
    torch.manual_seed(0)
    model = build_model(task, tiny_encoder).eval()
    tok = load_tokenizer(tiny_encoder)
    pipe = get_pipeline(task, tok, max_seq_length=64)
    feats = pipe.featurize(load_records(task, "test", "en"))
    return task, model, tok, pipe, feats


def _logits(model, pipe, feats):
    batch = pipe.collate([{k: v for k, v in f.items() if k != "labels"} for f in feats])
    with torch.no_grad():
        return model(**batch).logits.float()


def test_truncate_layers_copies_and_keeps_the_first_layers(classifier):
    _, model, _, pipe, feats = classifier
    n = encoder_of(model).config.num_hidden_layers
    cut = efficiency.truncate_layers(model, 1)
    assert len(encoder_of(cut).encoder.layer) == 1 and encoder_of(cut).config.num_hidden_layers == 1
    assert len(encoder_of(model).encoder.layer) == n  # the original is untouched
    assert torch.equal(encoder_of(cut).encoder.layer[0].attention.self.query.weight,
                       encoder_of(model).encoder.layer[0].attention.self.query.weight)
    assert not torch.allclose(_logits(cut, pipe, feats), _logits(model, pipe, feats))
    assert efficiency.truncate_layers(model, None) is model
    with pytest.raises(XLTError, match="num_layers must be in"):
        efficiency.truncate_layers(model, n + 1)


def test_cast_variants(classifier):
    _, model, _, pipe, feats = classifier
    ref = _logits(model, pipe, feats)
    q = efficiency.cast(model, "int8")
    assert efficiency.weight_bytes(q) < efficiency.weight_bytes(model)
    assert torch.allclose(_logits(q, pipe, feats), ref, atol=0.1)
    b = efficiency.cast(model, "bfloat16")
    assert next(b.parameters()).dtype == torch.bfloat16 and next(model.parameters()).dtype == torch.float32
    assert torch.allclose(_logits(b, pipe, feats), ref, atol=0.1)
    with pytest.raises(XLTError, match="float32, bfloat16, int8"):
        efficiency.cast(model, "float16", "cpu")
    with pytest.raises(XLTError, match="valid"):
        efficiency.cast(model, "fp8")


def test_inference_profile_contract(classifier):
    task, model, _, pipe, feats = classifier
    rows = efficiency.inference_profile(model, pipe, feats, batch_sizes=(1, 4), max_batches=3,
                                        num_labels=len(task.labels))
    assert [r["batch_size"] for r in rows] == [1, 4]
    cfg = encoder_of(model).config
    for r in rows:
        assert r["n_batches"] >= 1 and r["latency_p95_ms"] >= r["latency_p50_ms"] > 0
        assert r["throughput_ex_s"] > 0 and r["tokens_s"] > 0 and 0 <= r["padding_fraction"] < 1
        assert r["peak_memory_mb"] is None and r["weight_mb"] > 0
    # batch size 1 has no padding; its FLOPs are the mean over the timed features at their real lengths
    assert rows[0]["padding_fraction"] == 0
    timed = feats[1:4]  # one warm-up batch, then three timed ones
    want = sum(efficiency.forward_flops(cfg, f["length"], num_labels=len(task.labels)) for f in timed) / 3
    assert rows[0]["flops_per_example"] == pytest.approx(want)


def test_inference_profile_keeps_each_batchs_fastest_round(classifier, monkeypatch):
    """Each timed batch runs once per round, batch sizes interleaved; its time is its fastest round."""
    task, model, _, pipe, feats = classifier
    assert len(feats) >= 6  # batch 2: a warm-up batch and two timed ones (max_batches=2)
    clock = {"now": 0.0}
    seen: list[int] = []
    # forward calls in order: a warm-up per batch size, then per round two batch-1 and two batch-2 batches
    costs = iter([9.0, 9.0,                      # warm-ups (batch 1, batch 2): not timed
                  0.030, 0.050, 0.200, 0.400,    # round 1: batch 1 (two batches), batch 2 (two batches)
                  0.010, 0.060, 0.100, 0.500,    # round 2
                  0.020, 0.040, 0.300, 0.300])   # round 3

    def hook(module, args, kwargs, output):
        seen.append(int(kwargs["input_ids"].shape[0]))
        clock["now"] += next(costs)

    handle = model.register_forward_hook(hook, with_kwargs=True)
    monkeypatch.setattr(efficiency.time, "perf_counter", lambda: clock["now"])
    try:
        one, two = efficiency.inference_profile(model, pipe, feats, batch_sizes=(1, 2), max_batches=2, rounds=3,
                                                num_labels=len(task.labels))
    finally:
        handle.remove()
    assert seen == [1, 2] + [1, 1, 2, 2] * 3
    assert one["rounds"] == two["rounds"] == 3 and one["n_batches"] == two["n_batches"] == 2
    # batch 1: fastest rounds 10 and 40 ms -> p50 25 ms, p95 10 + 0.95 * 30 = 38.5 ms; 2 examples in 50 ms
    assert one["latency_p50_ms"] == pytest.approx(25.0)
    assert one["latency_p95_ms"] == pytest.approx(38.5)
    assert one["throughput_ex_s"] == pytest.approx(40.0)
    # batch 2: fastest rounds 100 and 300 ms -> p50 200 ms; 4 examples in 400 ms
    assert two["latency_p50_ms"] == pytest.approx(200.0) and two["throughput_ex_s"] == pytest.approx(10.0)


def test_inference_profile_rejects_bad_rounds(classifier):
    _, model, _, pipe, feats = classifier
    with pytest.raises(XLTError, match="rounds must be at least 1, got 0"):
        efficiency.inference_profile(model, pipe, feats, batch_sizes=(1,), rounds=0)


def test_pareto_front():
    df = pd.DataFrame({"cost": [1, 2, 3, 4, 2], "acc": [50, 60, 55, 70, 60], "g": ["a"] * 5})
    front = efficiency.pareto_front(df, "cost", "acc")
    assert list(zip(front["cost"], front["acc"])) == [(1, 50), (2, 60), (4, 70)]
    assert len(efficiency.pareto_front(df, "cost", "acc", group=["g"])) == 3
    assert not math.isnan(front["acc"].iloc[0])


def test_inference_profile_multiple_choice_counts_every_choice(local_tasks, tiny_encoder):
    task = get_task(local_tasks["multiple_choice"])
    torch.manual_seed(0)
    model = build_model(task, tiny_encoder).eval()
    pipe = get_pipeline(task, load_tokenizer(tiny_encoder), max_seq_length=64)
    feats = pipe.featurize(load_records(task, "test", "en"))
    (row,) = efficiency.inference_profile(model, pipe, feats, batch_sizes=(2,), max_batches=2)
    cfg = encoder_of(model).config

    def flops(fs):
        batch = pipe.collate([{k: v for k, v in f.items() if k != "labels"} for f in fs])
        mask = batch["attention_mask"]
        assert mask.dim() == 3 and mask.shape[1] == len(fs[0]["input_ids"])  # (examples, choices, tokens)
        return sum(efficiency.forward_flops(cfg, L) for L in mask.reshape(-1, mask.shape[-1]).sum(1).tolist())

    # one warm-up batch (features 0-1), then two timed batches (2-3, 4-5); every choice is counted
    assert row["n_batches"] == 2
    assert row["flops_per_example"] == pytest.approx((flops(feats[2:4]) + flops(feats[4:6])) / 4)


def test_dynamic_int8_output_depends_on_batch_mates():
    # why int8 is evaluated one example at a time: the activation range is taken over the whole input tensor
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    q = efficiency.cast(torch.nn.Sequential(lin), "int8")
    x = torch.tensor([[0.10, -0.20, 0.05, 0.30]])
    big = torch.tensor([[40.0, -35.0, 20.0, 50.0]])
    with torch.no_grad():
        alone = q(x)[0]
        batched = q(torch.cat([x, big]))[0]
        exact = lin(x)[0]
    assert not torch.allclose(alone, batched)  # the batch-mate's range coarsens x's quantisation
    assert (alone - exact).abs().max() < (batched - exact).abs().max()


def test_eval_batch_size_is_one_for_int8_only():
    assert efficiency.eval_batch_size("int8", 128) == 1
    assert efficiency.eval_batch_size("float32", 128) == 128
    assert efficiency.eval_batch_size("bfloat16", 32) == 32
    with pytest.raises(XLTError, match="valid.*int8"):
        efficiency.eval_batch_size("fp8", 32)


@pytest.mark.parametrize("dtype,expected", [("int8", 1), ("float32", 16)])
def test_evaluation_phase_uses_the_batch_invariant_batch_size(monkeypatch, local_tasks, tmp_path, dtype, expected):
    import contextlib

    from xlt_utils import evaluate as evaluate_mod
    from xlt_utils import phases

    seen = {}

    def fake_evaluate(model, tok, task, **kw):
        seen.update(kw)
        return []

    monkeypatch.setattr(evaluate_mod, "evaluate", fake_evaluate)
    monkeypatch.setattr(phases, "save_metrics", lambda run, rows: rows)
    task = get_task(local_tasks["pair_classification"])
    cfg = SimpleNamespace(target_task=task.name, split=None, languages=["en"], max_eval_samples=None, batch_size=16,
                          max_seq_length=64, layer=None, pooling=None, sample_seed=0, inference_dtype=dtype)
    run = SimpleNamespace(config=cfg, resolved={}, dir=tmp_path, timer=lambda name: contextlib.nullcontext())
    phases.evaluate_languages(run, (None, None))
    assert seen["batch_size"] == expected and run.resolved["eval_batch_size"] == expected


@pytest.mark.parametrize("arch", ["xlm-roberta", "bert"])
def test_a_model_built_at_n_layers_is_the_first_n_layers_of_its_encoder(local_tasks, tiny_encoder, tmp_path, arch):
    """target num_layers cuts the encoder before fine-tuning (synth encoders are XLM-R, e5-small is BERT): the model
    has n layers and says so in its config, its layers are the encoder's first n, and at step 0 its logits are its
    head applied to the full encoder's layer-n hidden states."""
    from transformers import AutoModel, BertConfig, BertModel

    from xlt_utils.models import init_encoder, tiny_xlmr_config

    task = get_task(local_tasks["pair_classification"])
    tok = load_tokenizer(tiny_encoder)
    enc = tmp_path / arch
    if arch == "bert":
        torch.manual_seed(0)
        BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                             intermediate_size=64, pad_token_id=tok.pad_token_id)).save_pretrained(str(enc))
        tok.save_pretrained(str(enc))
    else:
        init_encoder(tiny_xlmr_config(len(tok), num_hidden_layers=3), tok, enc)
    torch.manual_seed(0)
    cut = build_model(task, enc, num_layers=2).eval()
    base = encoder_of(cut)
    assert base.config.num_hidden_layers == cut.config.num_hidden_layers == 2 and len(base.encoder.layer) == 2
    full = AutoModel.from_pretrained(str(enc)).eval()
    assert len(full.encoder.layer) == 3
    for i in range(2):
        assert all(torch.equal(a, b) for a, b in zip(base.encoder.layer[i].state_dict().values(),
                                                    full.encoder.layer[i].state_dict().values()))
    pipe = get_pipeline(task, tok, max_seq_length=64)
    feats = pipe.featurize(load_records(task, "test", "en"))
    batch = pipe.collate([{k: v for k, v in f.items() if k != "labels"} for f in feats])
    with torch.no_grad():
        hidden = full(**batch, output_hidden_states=True).hidden_states[2]  # after the encoder's 2nd layer
        want = cut.classifier(full.pooler(hidden) if arch == "bert" else hidden)
        got = cut(**batch).logits
        everything = build_model(task, enc).eval()(**batch).logits  # the 3-layer model differs
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, everything, atol=1e-3)
    with pytest.raises(XLTError, match=r"num_layers 4 is not a depth of the encoder .* \(3 layers\); valid: 1\.\.3, "
                                       r"or None for all of them"):
        build_model(task, enc, num_layers=4)
    from xlt_utils.phases import _random_model  # the random_init baseline at the same depth

    assert len(encoder_of(_random_model(task, str(enc), 0, num_layers=2)).encoder.layer) == 2


def test_a_model_fine_tuned_at_n_layers_is_saved_and_evaluated_at_that_depth(tmp_path, monkeypatch):
    """A target run with num_layers 1 (synth-tiny has 2) trains and saves a 1-layer model; its evaluation loads it
    at that depth (num_layers None or 1) and refuses 2 layers in one line."""
    from safetensors.torch import load_file

    from xlt_utils import config as C
    from xlt_utils import paths, phases

    monkeypatch.setattr(paths, "RUNS", tmp_path)

    @contextlib.contextmanager
    def started(phase, params):
        run = phases.start(C.from_params(phase, params))
        try:
            yield run
        finally:
            if run.lock is not None:  # what the end of the kernel would do
                run.lock.__exit__(None, None, None)

    target = {**C.notebook_defaults("02_target"), "num_layers": 1, "max_steps": 2, "max_train_samples": 16,
              "max_dev_samples": 8, "checkpoint_every": None}
    with started("target", target) as run:
        data = phases.load_training_data(run)
        model = phases.build_model(run, data)
        assert encoder_of(model).config.num_hidden_layers == 1
        phases.train_model(run, model, data)
        phases.evaluate_dev(run, model, data)
        phases.save_model(run, model, data)
        phases.finish(run)
    saved = run.dir / "model"
    assert json.loads((saved / "config.json").read_text())["num_hidden_layers"] == 1
    assert not [k for k in load_file(str(saved / "model.safetensors")) if ".layer.1." in k]
    base = {**C.notebook_defaults("03_zero_shot_eval"), "upstream": run.id, "target_task": target["target_task"],
            "languages": ["en"], "max_eval_samples": 8}
    for n in (None, 1):
        with started("eval", {**base, "num_layers": n}) as ev:
            loaded, _ = phases.load_eval_model(ev)
        assert len(encoder_of(loaded).encoder.layer) == 1
    with started("eval", {**base, "num_layers": 2}) as ev, pytest.raises(XLTError) as e:
        phases.load_eval_model(ev)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg == (f"eval num_layers 2 exceeds the 1 layers of {run.id} (fine-tuned at that depth: target "
                   f"num_layers 1); valid: 1..1, or None for all of them")
    # time_reference: the 1-layer model at 32 tokens is timed beside the full-depth (2-layer) model at the target's
    # length (64), the encoder the target started from (here the base encoder: an intermediate run's encoder/ below)
    assert target["max_seq_length"] == 64
    with started("eval", {**base, "efficiency_batch_sizes": [1, 2], "time_reference": True,
                          "max_seq_length": 32}) as ev:
        loaded = phases.load_eval_model(ev)
        ref, length = phases.reference_model(ev, get_task(target["target_task"]))
        rows = phases.measure_efficiency(ev, loaded)
    assert encoder_of(ref).config.num_hidden_layers == 2 and length == target["max_seq_length"]
    assert list(rows["batch_size"]) == [1, 2]
    assert (rows["reference_num_layers"] == 2).all() and (rows["reference_max_seq_length"] == 64).all()
    assert (rows["max_seq_length"] == 32).all()
    assert phases.start_encoder("synth", "synth-tiny", "intermediate/x-0123456789") == str(
        paths.RUNS / "intermediate" / "x-0123456789" / "encoder")
    assert rows["speedup"].to_numpy() == pytest.approx(
        (rows["reference_latency_p50_ms"] / rows["latency_p50_ms"]).to_numpy())
    saved_rows = pd.read_csv(ev.dir / "efficiency.csv")
    assert {"speedup", "reference_latency_p50_ms", "reference_throughput_ex_s"} <= set(saved_rows.columns)


def test_inference_profile_times_the_reference_beside_the_model(classifier, monkeypatch):
    """With a reference, each batch of the model is timed next to the same batch of the reference, the two taking
    turns to go first (by round and batch); speed-up = the reference's p50 over the model's, each its batches'
    fastest rounds. A reference with other batches (windows, fewer examples) is refused."""
    task, model, _, pipe, feats = classifier
    ref = copy.deepcopy(model)
    clock = {"now": 0.0}
    seen: list[str] = []
    # forward calls: warm-ups (model, reference), then per round and batch the pair, the first mover alternating
    costs = iter([9.0, 9.0,
                  0.010, 0.040, 0.050, 0.030,    # round 1: batch 1 model, reference; batch 2 reference, model
                  0.060, 0.020, 0.040, 0.020,    # round 2: batch 1 reference, model; batch 2 model, reference
                  0.050, 0.050, 0.050, 0.050])   # round 3: as round 1

    def hook(name):
        def record(module, args, kwargs, output):
            seen.append(name)
            clock["now"] += next(costs)
        return record

    handles = [model.register_forward_hook(hook("m"), with_kwargs=True),
               ref.register_forward_hook(hook("r"), with_kwargs=True)]
    monkeypatch.setattr(efficiency.time, "perf_counter", lambda: clock["now"])
    try:
        (row,) = efficiency.inference_profile(model, pipe, feats, batch_sizes=(1,), max_batches=2, rounds=3,
                                              num_labels=len(task.labels), reference=(ref, feats[:4]))
    finally:
        for h in handles:
            h.remove()
    assert seen == ["m", "r"] + ["m", "r", "r", "m"] + ["r", "m", "m", "r"] + ["m", "r", "r", "m"]
    # model: fastest of its two batches 10 and 30 ms -> p50 20 ms; reference: 40 and 20 ms -> p50 30 ms
    assert row["latency_p50_ms"] == pytest.approx(20.0)
    assert row["reference_latency_p50_ms"] == pytest.approx(30.0)
    assert row["speedup"] == pytest.approx(1.5)
    assert row["reference_throughput_ex_s"] == pytest.approx(2 / 0.060)
    with pytest.raises(XLTError, match=r"^batch size 1: the model has 2 timed batches and the reference 1; a "
                                       r"reference needs one feature per example in both"):
        efficiency.inference_profile(model, pipe, feats, batch_sizes=(1,), max_batches=2, rounds=1,
                                     reference=(ref, feats[:2]))


def test_time_reference_is_not_timed_where_examples_become_windows(tmp_path, monkeypatch):
    """Span QA cuts a context into windows: at 64 tokens synth_xquad has more features than at 128, so the first n
    features of the two would be different examples. The reference is not timed there, and the run says why."""
    from xlt_utils import config as C
    from xlt_utils import paths, phases

    monkeypatch.setattr(paths, "RUNS", tmp_path)
    target = {**C.notebook_defaults("02_target"), "target_task": "synth_xquad", "max_seq_length": 128,
              "max_steps": 1, "max_train_samples": 8, "max_dev_samples": 4, "checkpoint_every": None}
    run = phases.start(C.from_params("target", target))
    try:
        data = phases.load_training_data(run)
        model = phases.build_model(run, data)
        phases.train_model(run, model, data)
        phases.evaluate_dev(run, model, data)
        phases.save_model(run, model, data)
        phases.finish(run)
    finally:
        if run.lock is not None:
            run.lock.__exit__(None, None, None)
    ev = phases.start(C.from_params("eval", {**C.notebook_defaults("03_zero_shot_eval"), "upstream": run.id,
                                             "target_task": "synth_xquad", "languages": ["en"],
                                             "max_eval_samples": 50, "max_seq_length": 64,
                                             "efficiency_batch_sizes": [1], "time_reference": True}))
    try:
        rows = phases.measure_efficiency(ev, phases.load_eval_model(ev))
    finally:
        ev.lock.__exit__(None, None, None)
    assert "reference_latency_p50_ms" not in rows.columns and rows["latency_p50_ms"].gt(0).all()
    assert ev.resolved["time_reference"].startswith("not timed: synth_xquad cuts examples into windows (")
    assert ev.resolved["time_reference"].endswith("so the two models would time different examples")
