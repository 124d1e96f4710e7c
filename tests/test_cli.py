"""The command line: listing, one-line errors with exit code 2, and the benchmark's JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xlt_utils.__main__ import main


def test_tasks_lists_local_world(local_tasks, capsys):
    assert main(["tasks", "--world", "local"]) == 0
    out = capsys.readouterr().out
    for name in local_tasks.values():
        assert name in out


def test_unknown_world_is_one_line_exit_2(capsys):
    assert main(["tasks", "--world", "mars"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown world 'mars'; valid: ") and "synth" in err and "\n" not in err


def test_bench_json_contract():
    # A small run: the figures themselves are timing (printed, not asserted); padding is deterministic.
    # the contract of the two sides every comparison has (the other sides: tests/test_bench.py)
    proc = subprocess.run([sys.executable, "-m", "xlt_utils", "bench", "train", "--json", "--examples", "192",
                           "--repeats", "1", "--device", "cpu", "--sides", "ours", "trainer"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["comparison"] for r in rows] == ["train", "eval"]
    train, ev = rows
    for key in ("ours_examples_per_s", "trainer_examples_per_s", "ours_padding_fraction",
                "trainer_padding_fraction", "speedup", "ours_tokens_per_s", "trainer_tokens_per_s", "ours_mfu",
                "trainer_mfu", "ours_peak_memory_gb", "trainer_peak_memory_gb", "train_flops", "peak_tflops"):
        assert key in train
    # both sides see every example once: the same real tokens, so tokens/s and examples/s give the same ratio
    assert train["ours_tokens_per_s"] / train["trainer_tokens_per_s"] == pytest.approx(train["speedup"])
    assert train["peak_tflops"] is None and train["ours_mfu"] is None  # a CPU has no bf16 peak in the table
    # With only 192 examples the long tail dominates a few batches; the ≤10% target is for the default size.
    assert train["ours_padding_fraction"] < train["trainer_padding_fraction"] / 2
    assert ev["ours_padding_fraction"] < ev["unsorted_padding_fraction"] / 2
    assert ev["same_predictions"] is True and ev["prediction_agreement"] == 1.0
    assert 0.0 <= ev["max_logit_diff"] < 1e-3  # float32 on a CPU: rounding only
