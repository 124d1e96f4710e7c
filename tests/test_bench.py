"""The benchmark's FLOPs and MFU arithmetic (checked against hand-computed counts), the peak-throughput lookup,
and (on a CUDA machine only) the GPU benchmark a user runs on an H100/H200."""

from __future__ import annotations

import pytest
import torch

from xlt_utils import bench


def _tiny_classifier():
    from transformers import XLMRobertaForSequenceClassification

    from xlt_utils.models import tiny_xlmr_config

    return XLMRobertaForSequenceClassification(tiny_xlmr_config(100, num_labels=3))


def test_matmul_parameters_and_flops_by_hand():
    # tiny XLM-R: hidden 32, 2 layers, feed-forward 64, 3 labels.
    # per layer: Q, K, V, O 4 x 32 x 32 = 4096; feed-forward 32 x 64 + 64 x 32 = 4096  -> 8192, x 2 layers = 16384
    # head: dense 32 x 32 = 1024, out_proj 32 x 3 = 96                                  -> 17504
    model = _tiny_classifier()
    assert bench.matmul_params(model) == 17_504
    # two sequences of 10 and 20 real tokens: 6 x 17504 x 30 = 3,150,720 (weights)
    # + 12 x 2 layers x 32 hidden x (10^2 + 20^2) = 384,000 (attention scores and values) = 3,534,720
    assert bench.train_flops([10, 20], 17_504, num_layers=2, hidden_size=32) == 3_534_720
    # 3,534,720 FLOPs in 10 ms = 353.472 MFLOP/s; on a 0.001 TFLOP/s (1 GFLOP/s) device that is 35.3472 %
    assert bench.mfu(3_534_720, 0.01, 0.001) == pytest.approx(0.353472)
    assert bench.mfu(3_534_720, 0.01, None) is None


def test_xlmr_large_matmul_parameters():
    """24 x (4 x 1024^2 + 2 x 1024 x 4096) + 1024^2 + 1024 x 3 = 303,041,536, counted on the meta device."""
    from transformers import XLMRobertaForSequenceClassification

    from xlt_utils import zoo

    with torch.device("meta"):
        model = XLMRobertaForSequenceClassification(zoo.get_model("xlmr-large").config(num_labels=3))
    assert bench.matmul_params(model) == 303_041_536
    # per 128-token sequence: 6 x 303,041,536 x 128 + 12 x 24 x 1024 x 128^2 = 237.57 GFLOPs
    assert bench.train_flops([128], 303_041_536, 24, 1024) == pytest.approx(237.5666e9, rel=1e-5)


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.0),
    ("NVIDIA H200 NVL", 835.0), ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA H100 NVL", None), ("Tesla T4", None),
])
def test_peak_tflops_lookup(monkeypatch, name, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    assert bench.peak_tflops(torch.device("cuda")) == (peak, name)
    assert bench.peak_tflops(torch.device("cuda"), override=500.0) == (500.0, name)


def test_unknown_bench_model_names_the_valid_ones(tmp_path):
    from xlt_utils.errors import XLTError

    with pytest.raises(XLTError, match=r"unknown bench model 'xlmr-huge'; valid: tiny, micro, xlmr-base-random, "
                                       r"xlmr-large-random, xlmr-xl-random, e5-small"):
        bench._setup("xlmr-huge", 8, 16, tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_benchmark_xlmr_large_random():
    """What `python -m xlt_utils bench train --model xlmr-large-random --device cuda --seq-len 128` runs, small."""
    r = bench.bench_train("xlmr-large-random", n=256, batch_size=32, max_len=128, device="cuda", repeats=1)
    assert r["bf16"] is True and r["attn_implementation"] == "sdpa"
    assert r["matmul_params"] == 303_041_536
    for side in ("ours", "trainer"):
        assert r[f"{side}_tokens_per_s"] > 0 and r[f"{side}_peak_memory_gb"] > 0
        assert r["peak_tflops"] is None or 0 < r[f"{side}_mfu"] < 1


@pytest.mark.slow
def test_cpu_training_benchmark_has_the_trainer_at_its_best_as_a_side():
    """`bench train` on the tiny preset, small: four sides; the Trainer's own length grouping pads less than its
    defaults (the speed-up over the grouped Trainer is the comparison a user would make). The Trainer groups
    within "megabatches" of min(n // (4 x batch), 50) batches, so it needs a few batches per megabatch to group."""
    r = bench.bench_train("tiny", n=192, batch_size=8, max_len=48, device="cpu", repeats=1)
    for side in ("ours", "trainer", "trainer_grouped", "ours_ungrouped"):
        assert r[f"{side}_tokens_per_s"] > 0 and 0 <= r[f"{side}_padding_fraction"] < 1
    assert r["trainer_grouped_padding_fraction"] < r["trainer_padding_fraction"]
    assert r["ours_padding_fraction"] < r["ours_ungrouped_padding_fraction"]
    assert r["speedup_vs_grouped"] > 0 and r["speedup"] > 0


def test_time_limits_nest_and_the_earliest_fires():
    import time

    with pytest.raises(bench.StepTimeout, match="inner ran past its time limit of 0.2 s"), \
            bench.time_limit(5, "outer"), bench.time_limit(0.2, "inner"):
        time.sleep(2)
    with pytest.raises(bench.StepTimeout) as e, bench.time_limit(0.2, "outer"), bench.time_limit(5, "inner"):
        time.sleep(2)
    assert e.value.what == "outer"
    with bench.time_limit(None, "none"):
        pass
    time.sleep(0.3)  # no timer left armed


def test_gpu_suite_refuses_without_cuda_and_records_each_step(tmp_path, monkeypatch):
    """Without CUDA `bench gpu` is a one-line error; --tiny runs the steps in order, each within its limit: a step
    past its limit is recorded as timed out and the next runs; when the budget is spent the rest are skipped."""
    import json
    import time

    from xlt_utils.errors import XLTError

    if not torch.cuda.is_available():
        with pytest.raises(XLTError, match=r"^bench gpu needs a CUDA device .*--tiny runs the same steps"):
            bench.gpu_suite(tmp_path / "refused")
        assert not (tmp_path / "refused").exists()

    def fake_bench_train(**kw):
        if kw["model_name"] == "slow":
            time.sleep(5)
        return {"comparison": "train", "model": kw["model_name"], "sides": [], "repeats": 1}

    monkeypatch.setattr(bench, "bench_train", fake_bench_train)
    monkeypatch.setattr(bench, "_print_table", lambda r: None)
    monkeypatch.setattr(bench, "_TINY", {})
    monkeypatch.setattr(bench, "GPU_STEPS", (("first", 10, {"model_name": "m1"}), ("hangs", 0.3, {"model_name": "slow"}),
                                             ("compile", None, {"model_name": "slow", "torch_compile": True}),
                                             ("late", None, {"model_name": "m3"})))
    steps = bench.gpu_suite(tmp_path / "out", tiny=True, budget_s=8.0)
    assert [(s["step"], s["status"].split(":")[0]) for s in steps] == [
        ("first", "ok"), ("hangs", "timed out"), ("compile", "ok"), ("late", "skipped")]
    compile_step = json.loads((tmp_path / "out" / "compile.json").read_text())
    assert compile_step["model"] == "slow" and 5 <= compile_step["wall_s"] < compile_step["limit_s"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["tiny"] is True and [s["step"] for s in summary["steps"]] == ["first", "hangs", "compile", "late"]


@pytest.mark.slow
def test_gpu_script_runs_tiny_on_cpu(tmp_path):
    """`bench gpu --tiny`: every step of the GPU script on the micro model on CPU (≈1-2 min on a busy 2-core CPU):
    tokens/s for packed, padded and the Trainer, no padding packed, a profiler summary, the compile step."""
    import json

    steps = bench.gpu_suite(tmp_path, tiny=True, budget_s=300)
    assert [s["status"] for s in steps] == ["ok"] * 4, steps
    first = json.loads((tmp_path / "large_50.json").read_text())
    assert first["ours_packed_padding_fraction"] == 0 < first["ours_padding_fraction"]
    assert first["profile"]["top"] and first["packed_speedup_vs_grouped"] > 0
    last = json.loads((tmp_path / "large_50_compile.json").read_text())
    assert last["torch_compile"] == "eager" and last["compile_warmup_s"] > 0 and "packed_compiled_vs_eager" in last
