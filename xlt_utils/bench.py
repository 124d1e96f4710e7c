"""Throughput benchmarks, measured side by side in one run on the same model and data.

``python -m xlt_utils bench train`` compares:

* **training**: our loop (:func:`xlt_utils.train.train`: length-grouped batches, dynamic padding; also without
  grouping, packed without padding, and compiled: :data:`SIDES`) against the Hugging Face ``Trainer`` twice, with
  its defaults (random batches, ``DataCollatorWithPadding``) and at its best settings (its length grouping,
  ``train_sampling_strategy="group_by_length"``; on CUDA also bf16 and fused AdamW), same model initialisation,
  data, batch size, optimizer and number of steps;
* **evaluation**: our length-sorted evaluation (:func:`xlt_utils.evaluate.predict_features`) against unsorted
  fixed-size batches with the same dynamic padding.

The data have a realistic length spread (log-normal sentence lengths, as in XNLI/PAN-X). The figures printed
are examples/s and tokens/s (real, non-padding tokens) for each side, their ratio, the fraction of padded token
positions, the peak GPU memory, and the model FLOPs utilisation (MFU): the FLOPs the model needs for the real
tokens (:func:`train_flops`) per second, over the device's peak dense bf16 throughput (:func:`peak_tflops`).

On a GPU, the XLM-R configurations with random weights measure the real model's cost without a download::

    python -m xlt_utils bench train --model xlmr-large-random --device cuda --seq-len 128

``python -m xlt_utils bench gpu --out DIR`` runs the GPU checks (:data:`GPU_STEPS`, :func:`gpu_suite`) as one
time-limited script; ``--tiny`` runs them on a micro model on CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from xlt_utils.errors import XLTError
from xlt_utils.evaluate import predict_features
from xlt_utils.formats.pipelines import get_pipeline, padding_fraction
from xlt_utils.models import build_model, init_encoder, load_tokenizer, tiny_xlmr_config, train_tokenizer
from xlt_utils.tasks import Task
from xlt_utils.train import TrainConfig, resolve_device, train

PRESETS = {
    # A small XLM-R: big enough that compute (not Python overhead) dominates on CPU.
    "tiny": {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 512},
    # The smallest XLM-R: `bench gpu --tiny` (a test of the GPU script's plumbing on CPU, not a measurement).
    "micro": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
}
# The zoo's architectures, randomly initialised (full vocabulary: its AdamW update is part of the real cost).
ZOO_RANDOM = {"xlmr-base-random": "xlmr-base", "xlmr-large-random": "xlmr-large", "xlmr-xl-random": "xlmr-xl"}
# Real pretrained encoders available offline (built by `make setup`): the bench loads them from the cache.
REAL_MODELS = ("e5-small",)
BENCH_TASK = Task(name="bench_classification", format="classification", world="local", languages=("en",),
                  metric="accuracy", labels=("a", "b", "c"), source={"dir": "."})


def make_records(n: int, seed: int = 0, mean_words: float = 22.0, sigma: float = 0.6, max_words: int = 200
                 ) -> list[dict[str, Any]]:
    """Classification records whose lengths follow a log-normal spread (median ≈ ``mean_words`` words)."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(300)] + ["alpha", "beta", "gamma"]
    recs = []
    for i in range(n):
        length = max(3, min(max_words, int(rng.lognormvariate(math.log(mean_words), sigma))))
        words = [rng.choice(vocab) for _ in range(length)]
        label = ("a", "b", "c")[i % 3]
        words[rng.randrange(length)] = {"a": "alpha", "b": "beta", "c": "gamma"}[label]
        recs.append({"id": str(i), "text": " ".join(words), "label": label})
    return recs


MODELS = (*PRESETS, *ZOO_RANDOM, *REAL_MODELS)


def _setup(model_name: str, n: int, max_len: int, workdir: Path, device: torch.device | str = "cpu",
           mean_words: float = 22.0):
    """(encoder: a directory, or a zoo name for the random configurations), tokenizer, pipeline, features.

    Batches are padded to a multiple of 8 on CUDA, as the run layer's pipelines are on a CUDA machine
    (:func:`xlt_utils.formats.pipelines.default_pad_multiple`); until 2026-12-05 only the training comparison did,
    and the GPU run of that day evaluated batches of any length. ``mean_words``: the median record length in
    words (22: ≈50 XLM-R-like tokens; ≈170 fills 384 tokens), for the models trained from scratch here."""
    if model_name not in MODELS:
        raise XLTError(f"unknown bench model {model_name!r}; valid: {', '.join(MODELS)}")
    if model_name in REAL_MODELS:
        from xlt_utils.offline.encoder import encoder_dir

        recs = make_records(n, mean_words=10.0, max_words=60)  # e5 pieces ≈ 3 per pseudo-word
        enc: Path | str = encoder_dir()
        tok = load_tokenizer(enc)
    else:
        recs = make_records(n, mean_words=mean_words, max_words=max(200, int(3 * mean_words)))
        tok = train_tokenizer((r["text"] for r in recs), vocab_size=400)
        if model_name in ZOO_RANDOM:
            enc = ZOO_RANDOM[model_name]  # built in memory by _fresh_model; token ids < 400 fit its vocabulary
            tok.save_pretrained(str(workdir / "tokenizer"))
            tok = load_tokenizer(workdir / "tokenizer")
        else:
            enc = init_encoder(tiny_xlmr_config(len(tok), **PRESETS[model_name]), tok, workdir / "encoder")
            tok = load_tokenizer(enc)
    pipe = get_pipeline(BENCH_TASK, tok, max_seq_length=max_len, pad_to_multiple_of=8 if torch.device(device).type == "cuda" else 1)
    return enc, tok, pipe, pipe.featurize(recs, train=True)


def _fresh_model(enc: Path | str, freeze_embeddings: bool = False,
                 device: torch.device | str | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    if isinstance(enc, str):  # a zoo architecture with random weights (no download, nothing on disk)
        from transformers import XLMRobertaForSequenceClassification, XLMRobertaXLForSequenceClassification

        from xlt_utils import zoo

        spec = zoo.get_model(enc)
        config = spec.config(num_labels=len(BENCH_TASK.labels), attn_implementation="sdpa")
        cls = (XLMRobertaXLForSequenceClassification if spec.model_type == "xlm-roberta-xl"
               else XLMRobertaForSequenceClassification)
        with torch.device(device or "cpu"):  # initialised where it trains: seconds on a GPU, not a minute on CPU
            return cls(config)
    return build_model(BENCH_TASK, enc, freeze_embeddings=freeze_embeddings)


# ---------------------------------------------------------------------------------------------- FLOPs and MFU


def matmul_params(model: torch.nn.Module) -> int:
    """Weights that multiply every token: the ``nn.Linear`` weights (attention projections, feed-forward, head).
    Embedding lookups, biases and LayerNorms cost no multiply-accumulates and are not counted."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def train_flops(lengths: Sequence[int], matmul_params: int, num_layers: int, hidden_size: int) -> float:
    """Model FLOPs of one training pass (forward + backward) over sequences of the given real lengths.

    ``6 N l`` per sequence for the weights (2 per multiply-accumulate forward, twice that backward) plus
    ``12 L h l^2`` for attention (scores ``Q K^T`` and the weighted sum of values: ``2 x 2 l^2 h`` per layer
    forward, x 3 with backward); padding positions are not counted (they are not model work).
    """
    tokens = sum(int(x) for x in lengths)
    squares = sum(int(x) ** 2 for x in lengths)
    return 6.0 * matmul_params * tokens + 12.0 * num_layers * hidden_size * squares


def mfu(flops: float, seconds: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: ``flops / seconds`` over ``peak`` TFLOP/s (``None`` when the peak is unknown)."""
    if not peak or seconds <= 0:
        return None
    return flops / seconds / (peak * 1e12)


def peak_tflops(device: torch.device, override: float | None = None) -> tuple[float | None, str]:
    """The device's peak dense bf16 TFLOP/s (``xlt_utils.zoo.GPU_TFLOPS``, from NVIDIA's datasheets) and its name;
    ``None`` for CPUs and unknown GPUs (pass ``--peak-tflops``)."""
    from xlt_utils.zoo import GPU_TFLOPS

    if device.type != "cuda":
        return override, platform.processor() or "cpu"
    name = torch.cuda.get_device_name(device)
    if override:
        return override, name
    upper = name.upper()
    for key, pattern in (("h200-nvl", "H200 NVL"), ("h200", "H200"), ("h100-pcie", "H100 PCIE"),
                         ("h100-sxm", "H100"), ("a100", "A100"), ("l40s", "L40S")):
        if pattern in upper and not (key == "h100-sxm" and "NVL" in upper):
            return GPU_TFLOPS[key], name
    return None, name


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _peak_memory_reset(dev: torch.device) -> None:
    gc.collect()  # the previous side's model and optimizer (a Trainer holds them in reference cycles)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


def _peak_memory_gb(dev: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None


# The sides `bench train` can run: (whose loop, its options). Ours: length-grouped unless said otherwise.
SIDES: dict[str, tuple[str, dict[str, Any]]] = {
    "ours": ("ours", {}),
    "trainer": ("hf", {"best": False}),
    "trainer_grouped": ("hf", {"best": True}),
    "ours_ungrouped": ("ours", {"group_by_length": False}),
    "ours_packed": ("ours", {"packing": True}),
    "ours_compiled": ("ours", {"compile": True}),
    "ours_packed_compiled": ("ours", {"packing": True, "compile": True}),
}
DEFAULT_SIDES = ("ours", "trainer", "trainer_grouped", "ours_ungrouped", "ours_packed")
SIDE_LABELS = {"ours": "xlt (length-grouped)", "trainer": "HF Trainer (defaults)",
               "trainer_grouped": "HF Trainer (group_by_length)", "ours_ungrouped": "xlt, no length grouping",
               "ours_packed": "xlt, packed (no padding)", "ours_compiled": "xlt, torch.compile",
               "ours_packed_compiled": "xlt, packed + compile"}


class StepTimeout(Exception):
    """A time limit of :func:`time_limit` ran out (``what`` says whose)."""

    def __init__(self, what: str, seconds: float):
        super().__init__(f"{what} ran past its time limit of {seconds:g} s")
        self.what, self.seconds = what, seconds


_DEADLINES: list[tuple[float, str, float]] = []  # (monotonic deadline, what, seconds), innermost last


def _arm() -> None:
    import signal

    deadline, what, seconds = min(_DEADLINES)

    def expired(signum: int, frame: Any) -> None:
        raise StepTimeout(what, seconds)

    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, max(1e-3, deadline - time.monotonic()))


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str):
    """Raise :class:`StepTimeout` in this block once ``seconds`` have passed (limits nest: the earliest deadline
    fires). ``None``, or a thread other than the main one (no SIGALRM there): no limit."""
    import signal
    import threading

    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGALRM)
    _DEADLINES.append((time.monotonic() + seconds, what, seconds))
    _arm()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _DEADLINES.pop()
        signal.signal(signal.SIGALRM, previous)
        if _DEADLINES:
            _arm()


def profile_summary(run: Any, dev: torch.device, top: int = 12) -> dict[str, Any]:
    """``run()`` under ``torch.profiler``: the ``top`` operators by self time on the device (CUDA) or the CPU, with
    their calls, milliseconds and share of the total."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=activities) as prof:
        run()
        _sync(dev)
    key = "self_device_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    events = list(prof.key_averages())
    total = sum(getattr(e, key) for e in events) or 1.0
    rows = sorted(events, key=lambda e: -getattr(e, key))[:top]
    return {"sorted_by": key, "total_ms": round(total / 1e3, 2),
            "top": [{"name": e.key, "calls": e.count, "self_ms": round(getattr(e, key) / 1e3, 3),
                     "share": round(getattr(e, key) / total, 4)} for e in rows]}


def bench_train(model_name: str = "tiny", n: int = 1024, batch_size: int = 32, max_len: int = 256,
                device: str | None = None, repeats: int = 3, torch_compile: bool | str = False,
                peak: float | None = None, sides: Sequence[str] | None = None, max_tokens: int | None = None,
                mean_words: float = 22.0, compile_limit_s: float | None = None, profile: bool = False
                ) -> dict[str, Any]:
    """Our training loop vs the Hugging Face Trainer on identical model, data and step count.

    The sides (:data:`SIDES`; default :data:`DEFAULT_SIDES`: ours, the Trainer with its defaults and with its
    length grouping, ours without length grouping and ours packed) run interleaved, each time from the same fresh
    initialisation for one epoch, and the median of each side is reported, so that a change in background load
    affects them alike. Every side sees every example once, so all do the same model FLOPs (:func:`train_flops`
    over the real lengths); tokens/s counts real tokens. On CUDA every side trains in bf16 (our autocast; the
    Trainer's ``bf16=True``) with SDPA attention, our padded batches padded to a multiple of 8.

    ``torch_compile`` (True or a backend name) adds the compiled sides (ours and ours packed) to the default ones
    and is what those compile with. Each side is warmed up untimed first (two steps; a compiled side one whole
    epoch, so that its compilation is out of the timed runs), a compiled side's warm-up within
    ``compile_limit_s``: past it the compiled sides are dropped and ``compile_timed_out`` says so.
    ``max_tokens``: our sides cut micro-batches by tokens (``TrainConfig.max_tokens_per_batch``), one epoch each.
    ``profile``: a short ``torch.profiler`` summary of a few steps of our first side (:func:`profile_summary`).

    Launched as several processes (``accelerate launch``, ``torchrun``), every side trains data-parallel with
    ``batch_size`` per process for one epoch, and MFU is per GPU (peak x processes).
    """
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    if sides is None:
        sides = DEFAULT_SIDES + (("ours_compiled", "ours_packed_compiled") if torch_compile else ())
    unknown_sides = [x for x in sides if x not in SIDES]
    if unknown_sides or not sides:
        raise XLTError(f"unknown bench sides {unknown_sides or '(none)'}; valid: {', '.join(SIDES)}")
    compile_with = torch_compile or True
    dev = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        enc, tok, pipe, feats = _setup(model_name, n, max_len, tmp, dev, mean_words=mean_words)
        steps = math.ceil(len(feats) / (batch_size * world))  # one epoch for every side
        bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()
        hf_feats = [{k: f[k] for k in ("input_ids", "attention_mask", "labels")} for f in feats]
        collator = DataCollatorWithPadding(tok)
        probe = _fresh_model(enc, device="meta") if isinstance(enc, str) else _fresh_model(enc)
        n_matmul, cfg_model = matmul_params(probe), probe.config
        attn = getattr(cfg_model, "_attn_implementation", None)
        del probe
        flops = train_flops([f["length"] for f in feats], n_matmul, cfg_model.num_hidden_layers,
                            cfg_model.hidden_size)
        tokens = sum(int(f["length"]) for f in feats)

        def ours(group_by_length: bool = True, packing: bool = False, compile: bool = False,
                 max_steps: int | None = None) -> tuple[float, float, float | None]:
            # max_steps None: one epoch (with a token budget its steps are the budget's, not `steps`)
            if max_steps is None and max_tokens is None:
                max_steps = steps
            cfg = TrainConfig(learning_rate=1e-4, per_device_train_batch_size=batch_size, progress=False, seed=0,
                              warmup_ratio=0.1, log_every=10**9, group_by_length=group_by_length, packing=packing,
                              torch_compile=compile_with if compile else False, max_tokens_per_batch=max_tokens,
                              max_steps=max_steps, num_train_epochs=1)
            model = _fresh_model(enc, device=dev)
            _peak_memory_reset(dev)
            _sync(dev)
            t0 = time.perf_counter()
            res = train(model, feats, pipe.collate, cfg, device=dev)
            _sync(dev)
            secs = time.perf_counter() - t0
            del model
            return secs, res.padding_fraction, _peak_memory_gb(dev)

        def hf(best: bool = False, max_steps: int | None = None) -> tuple[float, float, float | None]:
            max_steps = max_steps or steps
            # best: the Trainer's own length grouping, and fused AdamW where CUDA has it (bf16 is on in both)
            # (transformers 5: train_sampling_strategy="group_by_length"; before it, group_by_length=True)
            grouping = ({"train_sampling_strategy": "group_by_length"} if "train_sampling_strategy" in
                        TrainingArguments.__dataclass_fields__ else {"group_by_length": True})
            extra = {**grouping, **({"optim": "adamw_torch_fused"} if dev.type == "cuda" else {})} if best else {}
            args = TrainingArguments(output_dir=str(tmp / "hf"), per_device_train_batch_size=batch_size,
                                     max_steps=max_steps, learning_rate=1e-4, warmup_steps=int(0.1 * max_steps),
                                     weight_decay=0.01, report_to=[], save_strategy="no", logging_strategy="no",
                                     disable_tqdm=True, dataloader_num_workers=0, seed=0, bf16=bf16,
                                     use_cpu=dev.type == "cpu", **extra)
            trainer = Trainer(model=_fresh_model(enc, device=dev), args=args, train_dataset=hf_feats,
                              data_collator=collator)
            _peak_memory_reset(dev)
            _sync(dev)
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its metrics; keep --json clean
                trainer.train()
            _sync(dev)
            secs = time.perf_counter() - t0
            pad = padding_fraction(list(trainer.get_train_dataloader()))
            mem = _peak_memory_gb(dev)
            del trainer
            return secs, pad, mem

        def run(side: str, **over: Any) -> tuple[float, float, float | None]:
            kind, options = SIDES[side]
            return (ours if kind == "ours" else hf)(**options, **over)

        # Warm-up every side untimed before measuring (allocator, kernels, lazy imports); a compiled side for a
        # whole epoch of lengths, so that its compilation stays out of the timed runs, within compile_limit_s.
        compile_warmup_s: float | None = None
        compile_timed_out = False
        for side in sides:
            if not SIDES[side][1].get("compile"):
                run(side, max_steps=2)
            elif not compile_timed_out:
                t0 = time.perf_counter()
                try:
                    with time_limit(compile_limit_s, "the torch.compile warm-up"):
                        run(side)
                except StepTimeout as e:
                    if e.what != "the torch.compile warm-up":
                        raise
                    compile_timed_out = True
                compile_warmup_s = (compile_warmup_s or 0.0) + time.perf_counter() - t0
        sides = [x for x in sides if not (compile_timed_out and SIDES[x][1].get("compile"))]
        runs: dict[str, list[tuple[float, float, float | None]]] = {side: [] for side in sides}
        for _ in range(repeats):
            for side in sides:
                runs[side].append(run(side))
        profiled = None
        if profile:
            first = next((x for x in sides if SIDES[x][0] == "ours"), sides[0])
            profiled = {"side": first, "steps": min(3, steps),
                        **profile_summary(lambda: run(first, max_steps=min(3, steps)), dev)}
    secs = {k: statistics.median(x for x, _, _ in v) for k, v in runs.items()}
    pad = {k: v[0][1] for k, v in runs.items()}
    mem = {k: max((m for _, _, m in v if m is not None), default=None) for k, v in runs.items()}
    peak_tf, device_name = peak_tflops(dev, peak)
    examples = min(len(feats), steps * batch_size * world)
    out: dict[str, Any] = {
        "comparison": "train", "device": str(dev), "device_name": device_name, "model": model_name,
        "processes": world, "examples": len(feats), "batch_size": batch_size, "max_seq_length": max_len,
        "mean_tokens": tokens / len(feats), "max_tokens_per_batch": max_tokens, "repeats": repeats,
        "bf16": bf16, "attn_implementation": attn, "torch_compile": torch_compile,
        "compile_warmup_s": compile_warmup_s, "compile_timed_out": compile_timed_out, "sides": list(sides),
        "matmul_params": n_matmul, "train_flops": flops, "tokens": tokens, "peak_tflops": peak_tf}
    for side in runs:
        out[f"{side}_examples_per_s"] = examples / secs[side]
        out[f"{side}_tokens_per_s"] = tokens / secs[side]
        out[f"{side}_mfu"] = mfu(flops, secs[side], peak_tf * world if peak_tf else None)
        out[f"{side}_padding_fraction"] = pad[side]
        out[f"{side}_peak_memory_gb"] = mem[side]
    # ratios of tokens/s (= inverse ratios of seconds), where both sides ran
    for key, slow, fast in (("speedup", "trainer", "ours"), ("speedup_vs_grouped", "trainer_grouped", "ours"),
                            ("packed_speedup_vs_grouped", "trainer_grouped", "ours_packed"),
                            ("packed_vs_padded", "ours", "ours_packed"),
                            ("compiled_vs_eager", "ours", "ours_compiled"),
                            ("packed_compiled_vs_eager", "ours_packed", "ours_packed_compiled")):
        if slow in secs and fast in secs:
            out[key] = secs[slow] / secs[fast]
    out["all_examples_per_s"] = {k: [round(examples / x, 2) for x, _, _ in v] for k, v in runs.items()}
    if profiled is not None:
        out["profile"] = profiled
    return out


def bench_eval(model_name: str = "tiny", n: int = 2048, batch_size: int = 64, max_len: int = 256,
               device: str | None = None, repeats: int = 3) -> dict[str, Any]:
    """Length-sorted evaluation vs unsorted fixed-size batches (both with dynamic padding)."""
    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        enc, _, pipe, feats = _setup(model_name, n, max_len, Path(tmp), dev)
        model = _fresh_model(enc, device=dev).to(dev)
        predict_features(model, pipe, feats[:batch_size], batch_size=batch_size, device=dev)  # warm-up
        out: dict[str, dict[str, Any]] = {"sorted": {"speeds": []}, "unsorted": {"speeds": []}}
        for _ in range(repeats):  # interleaved, median reported (see bench_train)
            for name, sort in (("sorted", True), ("unsorted", False)):
                _sync(dev)
                t0 = time.perf_counter()
                preds = predict_features(model, pipe, feats, batch_size=batch_size, device=dev, sort_by_length=sort)
                _sync(dev)
                out[name]["speeds"].append(len(feats) / (time.perf_counter() - t0))
                out[name]["preds"] = preds
        for name, sort in (("sorted", True), ("unsorted", False)):
            order = (sorted(range(len(feats)), key=lambda i: -feats[i]["length"]) if sort
                     else list(range(len(feats))))
            batches = [pipe.collate([feats[i] for i in order[s : s + batch_size]])
                       for s in range(0, len(order), batch_size)]
            out[name]["examples_per_s"] = statistics.median(out[name]["speeds"])
            out[name]["padding_fraction"] = padding_fraction(batches)
        # Padding changes a batch's shape and so its kernels: logits agree to float rounding, not bit for bit
        # (in bf16 on a GPU, to ~1e-2). Predicted labels are what evaluation reads; with random weights near-tied
        # logits can still flip one, so the agreement is reported as a fraction beside the largest logit change.
        pairs = [(torch.as_tensor(a).float(), torch.as_tensor(b).float())
                 for a, b in zip(out["sorted"]["preds"], out["unsorted"]["preds"])]
        agree = [bool((a.argmax(-1) == b.argmax(-1)).all()) for a, b in pairs]
        max_diff = max((float((a - b).abs().max()) for a, b in pairs if a.numel()), default=0.0)
    return {"comparison": "eval", "device": str(dev), "model": model_name, "examples": len(feats),
            "batch_size": batch_size, "repeats": repeats, "ours_examples_per_s": out["sorted"]["examples_per_s"],
            "unsorted_examples_per_s": out["unsorted"]["examples_per_s"],
            "speedup": out["sorted"]["examples_per_s"] / out["unsorted"]["examples_per_s"],
            "ours_padding_fraction": out["sorted"]["padding_fraction"],
            "unsorted_padding_fraction": out["unsorted"]["padding_fraction"],
            "same_predictions": all(agree), "prediction_agreement": sum(agree) / len(agree) if agree else 1.0,
            "max_logit_diff": max_diff}


def bench_freeze(model_name: str = "e5-small", n: int = 128, batch_size: int = 32, max_len: int = 64,
                 device: str | None = None, repeats: int = 3) -> dict[str, Any]:
    """Fine-tuning with frozen vs trainable word embeddings (our loop, same data), interleaved, medians."""
    import resource

    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        enc, _, pipe, feats = _setup(model_name, n, max_len, Path(tmp), dev)
        steps = math.ceil(len(feats) / batch_size)
        speeds: dict[str, list[float]] = {"frozen": [], "trainable": []}
        trainable_params = {}
        for _ in range(repeats):
            for name in ("frozen", "trainable"):
                model = _fresh_model(enc, freeze_embeddings=name == "frozen")
                trainable_params[name] = sum(p.numel() for p in model.parameters() if p.requires_grad)
                cfg = TrainConfig(learning_rate=2e-5, max_steps=steps, per_device_train_batch_size=batch_size,
                                  progress=False, seed=0, log_every=10**9)
                _sync(dev)
                t0 = time.perf_counter()
                res = train(model, feats, pipe.collate, cfg, device=dev)
                _sync(dev)
                speeds[name].append(res.train_examples / (time.perf_counter() - t0))
                del model
    med = {k: statistics.median(v) for k, v in speeds.items()}
    return {"comparison": "freeze", "device": str(dev), "model": model_name, "examples": len(feats),
            "batch_size": batch_size, "repeats": repeats, "max_seq_length": max_len,
            "frozen_examples_per_s": med["frozen"], "trainable_examples_per_s": med["trainable"],
            "speedup": med["frozen"] / med["trainable"],
            "frozen_trainable_params": trainable_params["frozen"],
            "trainable_trainable_params": trainable_params["trainable"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _print_table(r: dict[str, Any]) -> None:
    if r["comparison"] == "freeze":
        print(f"\nfine-tuning  ·  {r['model']} on {r['device']}  ·  {r['examples']} examples, batch {r['batch_size']}, "
              f"length ≤ {r['max_seq_length']}  ·  median of {r['repeats']} interleaved runs")
        print(f"  {'word embeddings frozen':26s}{r['frozen_examples_per_s']:12.1f} ex/s  "
              f"({r['frozen_trainable_params'] / 1e6:.1f}M trainable)")
        print(f"  {'word embeddings trained':26s}{r['trainable_examples_per_s']:12.1f} ex/s  "
              f"({r['trainable_trainable_params'] / 1e6:.1f}M trainable)")
        print(f"  speed-up {r['speedup']:.2f}×")
        return
    if r["comparison"] == "train":
        procs = f" x {r['processes']} processes" if r["processes"] > 1 else ""
        print(f"\ntrain  ·  {r['model']} on {r['device']} ({r['device_name']}){procs}  ·  {r['examples']} examples, "
              f"batch {r['batch_size']}{' per process' if procs else ''}, length ≤ {r['max_seq_length']}, bf16 {r['bf16']}, attention "
              f"{r['attn_implementation']}, torch.compile {r['torch_compile']}  ·  median of {r['repeats']} "
              f"interleaved runs")
        if r.get("max_tokens_per_batch"):
            print(f"  our micro-batches cut at {r['max_tokens_per_batch']} tokens")
        if r.get("compile_warmup_s") is not None:
            print(f"  torch.compile warm-up (untimed): {r['compile_warmup_s']:.1f} s"
                  + ("  -- ran past its limit: compiled sides dropped" if r.get("compile_timed_out") else ""))
        peak = f"{r['peak_tflops']:g} TFLOP/s peak" if r["peak_tflops"] else "peak unknown: --peak-tflops"
        print(f"  {'':26s}{'examples/s':>12s}{'tokens/s':>12s}{'padding':>10s}{'MFU':>8s}{'peak mem':>10s}"
              f"   ({r['matmul_params'] / 1e6:.1f}M matmul parameters; MFU of {peak})")
        for side in r.get("sides", ("ours", "trainer", "trainer_grouped", "ours_ungrouped")):
            m, g = r[f"{side}_mfu"], r[f"{side}_peak_memory_gb"]
            print(f"  {SIDE_LABELS[side]:26s}{r[side + '_examples_per_s']:12.1f}{r[side + '_tokens_per_s']:12.0f}"
                  f"{r[side + '_padding_fraction']:10.1%}{'-' if m is None else f'{m:.1%}':>8s}"
                  f"{'-' if g is None else f'{g:.1f} GB':>10s}")
        ratios = [f"{r[key]:.2f}× {text}" for key, text in (
            ("speedup", "ours over the Trainer's defaults"), ("speedup_vs_grouped", "ours over it grouped"),
            ("packed_speedup_vs_grouped", "packed over the grouped Trainer"), ("packed_vs_padded", "packed over ours"),
            ("compiled_vs_eager", "compiled over ours"), ("packed_compiled_vs_eager", "packed+compile over packed"))
            if key in r]
        if ratios:
            print("  tokens/s: " + ", ".join(ratios))
        if "profile" in r:
            p = r["profile"]
            print(f"  profile of {p['steps']} steps of {SIDE_LABELS[p['side']]} ({p['sorted_by']}, "
                  f"{p['total_ms']:.0f} ms):")
            for row in p["top"][:8]:
                print(f"    {row['share']:6.1%}  {row['self_ms']:10.1f} ms  {row['calls']:6d}x  {row['name'][:60]}")
        return
    other = "unsorted"
    label = "unsorted fixed batches"
    print(f"\n{r['comparison']}  ·  {r['model']} on {r['device']}  ·  {r['examples']} examples, batch {r['batch_size']}"
          f"  ·  median of {r['repeats']} interleaved runs")
    print(f"  {'':26s}{'examples/s':>12s}{'padding':>10s}")
    print(f"  {'xlt (length-sorted)':26s}{r['ours_examples_per_s']:12.1f}{r['ours_padding_fraction']:10.1%}")
    print(f"  {label:26s}{r[other + '_examples_per_s']:12.1f}{r[other + '_padding_fraction']:10.1%}")
    print(f"  speed-up {r['speedup']:.2f}×" + (f"  (same predicted labels: {100 * r['prediction_agreement']:.2f}%"
                                              f" of examples; largest logit change {r['max_logit_diff']:.1e})"
                                              if "prediction_agreement" in r else ""))


# ------------------------------------------------------------------------------------ the GPU checks, one script

# `bench gpu`: (step, time limit in s, bench_train arguments), in priority order. Sized for one H100 within 9 minutes
# (GPU_BUDGET_S) including every warm-up: XLM-R large at ≈50 tokens per example and at up to 384, packed vs padded vs
# the Trainer at its best settings (length grouping, bf16, fused AdamW), then XL, then torch.compile with the time
# that is left. The 2026-12-05 H100 run took 43 s for large (1,024 examples x 4 sides x 3 repeats) and 64 s for XL.
_VS_TRAINER = ("ours_packed", "ours", "trainer_grouped")
GPU_STEPS: tuple[tuple[str, float | None, dict[str, Any]], ...] = (
    ("large_50", 120, {"model_name": "xlmr-large-random", "n": 2048, "batch_size": 64, "max_len": 128,
                       "repeats": 2, "sides": _VS_TRAINER, "profile": True}),
    ("large_384", 110, {"model_name": "xlmr-large-random", "n": 512, "batch_size": 16, "max_len": 384,
                        "mean_words": 170, "repeats": 2, "sides": _VS_TRAINER, "profile": True}),
    ("xl_50", 130, {"model_name": "xlmr-xl-random", "n": 1024, "batch_size": 32, "max_len": 128, "repeats": 1,
                    "sides": _VS_TRAINER}),
    ("large_50_compile", None, {"model_name": "xlmr-large-random", "n": 2048, "batch_size": 64, "max_len": 128,
                                "repeats": 1, "sides": ("ours_packed", "ours_packed_compiled"),
                                "torch_compile": True}),
)
GPU_BUDGET_S = 540.0
# --tiny: the same steps on the micro preset on CPU (compile with the eager backend), a test of the script in seconds
_TINY = {"model_name": "micro", "n": 16, "batch_size": 8, "max_len": 48, "repeats": 1, "mean_words": 12}


def gpu_suite(out_dir: str | Path, tiny: bool = False, budget_s: float | None = None,
              device: str | None = None) -> list[dict[str, Any]]:
    """Run :data:`GPU_STEPS` in order, each within its time limit and all within ``budget_s`` (default
    :data:`GPU_BUDGET_S`): a step that runs past its limit or fails is recorded as such and the next one starts;
    the last step (compile) gets the time that is left, its warm-up all but 30 s of it. Writes one JSON file per
    step (:func:`bench_train`'s result: tokens/s, MFU, peak memory per side, a ``torch.profiler`` summary where
    asked, plus ``step``, ``status``, ``limit_s``, ``wall_s``) and ``summary.json`` under ``out_dir``.
    Refuses (one line) without CUDA unless ``tiny``."""
    dev = resolve_device(device or ("cpu" if tiny else None))
    if dev.type != "cuda" and not tiny:
        raise XLTError("bench gpu needs a CUDA device (torch.cuda.is_available() is False here); --tiny runs the "
                       "same steps on a micro model on CPU (a test of the script)")
    import transformers

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    budget = budget_s if budget_s is not None else (120.0 if tiny else GPU_BUDGET_S)
    t_start = time.monotonic()
    summary: dict[str, Any] = {
        "device": str(dev), "device_name": peak_tflops(dev)[1], "torch": torch.__version__,
        "transformers": transformers.__version__, "python": platform.python_version(), "tiny": tiny,
        "budget_s": budget, "steps": []}
    for name, limit, kwargs in GPU_STEPS:
        left = budget - (time.monotonic() - t_start)
        kwargs = {**kwargs, **(_TINY if tiny else {}), "device": str(dev)}
        if tiny and kwargs.get("torch_compile"):
            kwargs["torch_compile"] = "eager"
        if tiny and name.endswith("_384"):
            kwargs.update(max_len=96, mean_words=30)
        limit = left if limit is None else min(limit, left)
        record: dict[str, Any] = {"step": name, "limit_s": round(limit, 1)}
        if left < (5 if tiny else 45):
            record["status"] = "skipped: the time budget is spent"
        else:
            if kwargs.get("torch_compile"):
                kwargs["compile_limit_s"] = max(1.0, limit - (5 if tiny else 30))
            t0 = time.monotonic()
            try:
                with time_limit(limit, f"step {name}"):
                    record.update(bench_train(**kwargs))
                record["status"] = "ok"
            except StepTimeout as e:
                record["status"] = f"timed out: {e}"
            except Exception as e:  # noqa: BLE001 -- an out-of-memory step must not cost the steps after it
                record["status"] = f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            record["wall_s"] = round(time.monotonic() - t0, 1)
            gc.collect()
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        (out / f"{name}.json").write_text(json.dumps(record, indent=1))
        summary["steps"].append({k: v for k, v in record.items() if k not in ("profile", "all_examples_per_s")})
        print(f"bench gpu: {name}: {record['status']} ({record.get('wall_s', 0)} s of {record['limit_s']})",
              file=sys.stderr)
        if record["status"] == "ok":
            _print_table(record)
    summary["total_s"] = round(time.monotonic() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary["steps"]


def main(args: argparse.Namespace) -> int:
    """Entry of ``python -m xlt_utils bench``."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1 and torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if args.what == "gpu":
        gpu_suite(args.out, tiny=args.tiny, budget_s=args.budget, device=args.device)
        return 0
    results = []
    kw = {"model_name": args.model, "device": args.device}
    if args.model in REAL_MODELS:
        # A real pretrained encoder on CPU: the question is what freezing its word embeddings buys.
        results.append(bench_freeze(n=args.examples or 128, repeats=args.repeats, **kw))
        results.append(bench_eval(n=2 * (args.examples or 128), max_len=64, repeats=args.repeats, **kw))
    else:
        n_train = args.examples or 1024
        zoo = args.model in ZOO_RANDOM
        seq = args.seq_len or (128 if zoo else 256)
        batch = args.batch_size or (64 if zoo else 32)
        results.append(bench_train(n=n_train, repeats=args.repeats, max_len=seq, batch_size=batch,
                                   torch_compile=args.compile, peak=args.peak_tflops, sides=args.sides,
                                   max_tokens=args.max_tokens, mean_words=args.words,
                                   compile_limit_s=args.compile_limit, profile=args.profile, **kw))
        if world == 1:  # evaluation is one process's job
            results.append(bench_eval(n=2 * n_train, repeats=args.repeats, max_len=seq, batch_size=2 * batch, **kw))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if rank != 0:
        return 0
    for r in results:
        if args.json:
            print(json.dumps(r))
        else:
            _print_table(r)
    return 0
