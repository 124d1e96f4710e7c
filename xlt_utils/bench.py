"""Throughput benchmarks, measured side by side in one run on the same model and data.

``python -m xlt_utils bench train`` compares:

* **training**: our loop (:func:`xlt_utils.train.train`: length-grouped batches, dynamic padding) against the
  Hugging Face ``Trainer`` with its defaults (random batches, ``DataCollatorWithPadding``), same model
  initialisation, data, batch size, optimizer and number of steps;
* **evaluation**: our length-sorted evaluation (:func:`xlt_utils.evaluate.predict_features`) against unsorted
  fixed-size batches with the same dynamic padding.

The data have a realistic length spread (log-normal sentence lengths, as in XNLI/PAN-X). The figures printed
are examples/s for each side, their ratio, and the fraction of padded token positions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import statistics
import sys
import tempfile
import time
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
}
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


def _setup(model_name: str, n: int, max_len: int, workdir: Path):
    if model_name not in (*PRESETS, *REAL_MODELS):
        raise XLTError(f"unknown bench model {model_name!r}; valid: {', '.join((*PRESETS, *REAL_MODELS))}")
    if model_name in REAL_MODELS:
        from xlt_utils.offline.encoder import encoder_dir

        recs = make_records(n, mean_words=10.0, max_words=60)  # e5 pieces ≈ 3 per pseudo-word
        enc = encoder_dir()
    else:
        recs = make_records(n)
        tok = train_tokenizer((r["text"] for r in recs), vocab_size=400)
        enc = init_encoder(tiny_xlmr_config(len(tok), **PRESETS[model_name]), tok, workdir / "encoder")
    tok = load_tokenizer(enc)
    pipe = get_pipeline(BENCH_TASK, tok, max_seq_length=max_len)
    return enc, tok, pipe, pipe.featurize(recs, train=True)


def _fresh_model(enc: Path, freeze_embeddings: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(BENCH_TASK, enc, freeze_embeddings=freeze_embeddings)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def bench_train(model_name: str = "tiny", n: int = 1024, batch_size: int = 32, max_len: int = 256,
                device: str | None = None, repeats: int = 3) -> dict[str, Any]:
    """Our training loop vs the Hugging Face Trainer on identical model, data and step count.

    The sides run interleaved (ours, Trainer, ours without length grouping, then again), each time from the
    same fresh initialisation for one epoch, and the median examples/s of each side is reported, so that a
    change in background load affects both sides alike.
    """
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        enc, tok, pipe, feats = _setup(model_name, n, max_len, tmp)
        steps = math.ceil(len(feats) / batch_size)  # one epoch for both sides
        bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()
        hf_feats = [{k: f[k] for k in ("input_ids", "attention_mask", "labels")} for f in feats]
        collator = DataCollatorWithPadding(tok)

        def ours(group: bool) -> tuple[float, float]:
            cfg = TrainConfig(learning_rate=1e-4, max_steps=steps, per_device_train_batch_size=batch_size,
                              progress=False, seed=0, warmup_ratio=0.1, log_every=10**9, group_by_length=group)
            model = _fresh_model(enc)
            _sync(dev)
            t0 = time.perf_counter()
            res = train(model, feats, pipe.collate, cfg, device=dev)
            _sync(dev)
            return res.train_examples / (time.perf_counter() - t0), res.padding_fraction

        def hf(max_steps: int = steps) -> tuple[float, float]:
            args = TrainingArguments(output_dir=str(tmp / "hf"), per_device_train_batch_size=batch_size,
                                     max_steps=max_steps, learning_rate=1e-4, warmup_steps=int(0.1 * max_steps),
                                     weight_decay=0.01, report_to=[], save_strategy="no", logging_strategy="no",
                                     disable_tqdm=True, dataloader_num_workers=0, seed=0, bf16=bf16,
                                     use_cpu=dev.type == "cpu")
            trainer = Trainer(model=_fresh_model(enc), args=args, train_dataset=hf_feats, data_collator=collator)
            _sync(dev)
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its metrics; keep --json clean
                trainer.train()
            _sync(dev)
            secs = time.perf_counter() - t0
            return min(len(feats), max_steps * batch_size) / secs, padding_fraction(list(trainer.get_train_dataloader()))

        # Warm-up both code paths (allocator, kernels, lazy imports) before measuring.
        train(_fresh_model(enc), feats[: 2 * batch_size], pipe.collate,
              TrainConfig(max_steps=2, per_device_train_batch_size=batch_size, progress=False), device=dev)
        hf(max_steps=2)
        runs: dict[str, list[tuple[float, float]]] = {"ours": [], "trainer": [], "ours_ungrouped": []}
        for _ in range(repeats):
            runs["ours"].append(ours(True))
            runs["trainer"].append(hf())
            runs["ours_ungrouped"].append(ours(False))
    med = {k: statistics.median(x for x, _ in v) for k, v in runs.items()}
    pad = {k: v[0][1] for k, v in runs.items()}
    return {"comparison": "train", "device": str(dev), "model": model_name, "examples": len(feats),
            "batch_size": batch_size, "repeats": repeats,
            "ours_examples_per_s": med["ours"], "trainer_examples_per_s": med["trainer"],
            "ours_ungrouped_examples_per_s": med["ours_ungrouped"],
            "speedup": med["ours"] / med["trainer"],
            "ours_padding_fraction": pad["ours"], "trainer_padding_fraction": pad["trainer"],
            "ours_ungrouped_padding_fraction": pad["ours_ungrouped"],
            "all_examples_per_s": {k: [round(x, 2) for x, _ in v] for k, v in runs.items()}}


def bench_eval(model_name: str = "tiny", n: int = 2048, batch_size: int = 64, max_len: int = 256,
               device: str | None = None, repeats: int = 3) -> dict[str, Any]:
    """Length-sorted evaluation vs unsorted fixed-size batches (both with dynamic padding)."""
    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        enc, _, pipe, feats = _setup(model_name, n, max_len, Path(tmp))
        model = _fresh_model(enc).to(dev)
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
        same = all(torch.allclose(torch.as_tensor(a), torch.as_tensor(b), atol=1e-4)
                   for a, b in zip(out["sorted"]["preds"], out["unsorted"]["preds"]))
    return {"comparison": "eval", "device": str(dev), "model": model_name, "examples": len(feats),
            "batch_size": batch_size, "repeats": repeats, "ours_examples_per_s": out["sorted"]["examples_per_s"],
            "unsorted_examples_per_s": out["unsorted"]["examples_per_s"],
            "speedup": out["sorted"]["examples_per_s"] / out["unsorted"]["examples_per_s"],
            "ours_padding_fraction": out["sorted"]["padding_fraction"],
            "unsorted_padding_fraction": out["unsorted"]["padding_fraction"], "same_predictions": same}


def bench_freeze(model_name: str = "e5-small", n: int = 128, batch_size: int = 32, max_len: int = 64,
                 device: str | None = None, repeats: int = 3) -> dict[str, Any]:
    """Fine-tuning with frozen vs trainable word embeddings (our loop, same data), interleaved, medians."""
    import resource

    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        enc, _, pipe, feats = _setup(model_name, n, max_len, Path(tmp))
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
    other = "trainer" if r["comparison"] == "train" else "unsorted"
    label = "HF Trainer (defaults)" if other == "trainer" else "unsorted fixed batches"
    print(f"\n{r['comparison']}  ·  {r['model']} on {r['device']}  ·  {r['examples']} examples, batch {r['batch_size']}"
          f"  ·  median of {r['repeats']} interleaved runs")
    print(f"  {'':26s}{'examples/s':>12s}{'padding':>10s}")
    print(f"  {'xlt (length-grouped)':26s}{r['ours_examples_per_s']:12.1f}{r['ours_padding_fraction']:10.1%}")
    print(f"  {label:26s}{r[other + '_examples_per_s']:12.1f}{r[other + '_padding_fraction']:10.1%}")
    if "ours_ungrouped_examples_per_s" in r:
        print(f"  {'xlt, no length grouping':26s}{r['ours_ungrouped_examples_per_s']:12.1f}"
              f"{r['ours_ungrouped_padding_fraction']:10.1%}")
    print(f"  speed-up {r['speedup']:.2f}×" + (f"  (identical predictions: {r['same_predictions']})"
                                              if "same_predictions" in r else ""))


def main(args: argparse.Namespace) -> int:
    """Entry of ``python -m xlt_utils bench``."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = []
    kw = {"model_name": args.model, "device": args.device}
    if args.model in REAL_MODELS:
        # A real pretrained encoder on CPU: the question is what freezing its word embeddings buys.
        results.append(bench_freeze(n=args.examples or 128, repeats=args.repeats, **kw))
        results.append(bench_eval(n=2 * (args.examples or 128), max_len=64, repeats=args.repeats, **kw))
    else:
        n_train = args.examples or 1024
        results.append(bench_train(n=n_train, repeats=args.repeats, **kw))
        results.append(bench_eval(n=2 * n_train, repeats=args.repeats, **kw))
    for r in results:
        if args.json:
            print(json.dumps(r))
        else:
            _print_table(r)
    return 0
