"""Inference efficiency: FLOPs, latency, throughput and memory of an encoder model, and cheaper variants of it.

Used by the evaluation phase (``03_zero_shot_eval`` with ``efficiency_batch_sizes``) and by the efficiency and
batch-size studies. Variants are evaluation parameters, so a grid sweep over them yields accuracy (in
``metrics.csv``) and cost (in each run's ``efficiency.csv``, collected into ``outputs/results/efficiency.csv``)
for the same model:

- ``num_layers``: keep the first *n* transformer layers (the head reads layer *n*);
- ``max_seq_length``: truncate inputs;
- ``inference_dtype``: ``float32``, ``bfloat16``, ``float16`` (GPU) or ``int8`` (dynamic quantisation of the
  linear layers, CPU; its accuracy is measured one example at a time, see :func:`eval_batch_size`);
- the model itself (size, intermediate task) through the run's lineage.

FLOPs are counted analytically (:func:`forward_flops`): a multiply-add is 2 FLOPs; the dense layers and the
attention score/value products of every kept layer are counted, embeddings lookups and softmax/LayerNorm are not
(they are a few per cent at these sizes). Training costs about 3x the forward pass.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from xlt_utils.choices import DTYPES
from xlt_utils.errors import XLTError, unknown


def _dims(config: Any) -> tuple[int, int, int]:
    return int(config.num_hidden_layers), int(config.hidden_size), int(config.intermediate_size)


def forward_flops(config: Any, seq_len: int, num_layers: int | None = None, num_labels: int = 0) -> float:
    """Forward FLOPs of one sequence of ``seq_len`` tokens through a BERT/XLM-R encoder (see module docstring).

    Per layer with hidden size d and feed-forward size f: Q, K, V and output projections 4 x 2sd^2, the two
    feed-forward matrices 2 x 2sdf, scores QK^T and the weighted sum of V 2 x 2s^2 d. A classification head adds
    2 x (d^2 + d x num_labels) on one position.

    Args:
        config: a ``transformers`` config (``num_hidden_layers``, ``hidden_size``, ``intermediate_size``).
        seq_len: tokens in the sequence (including special tokens).
        num_layers: layers kept (default: all).
        num_labels: classes of a sequence-classification head (0: none).
    """
    n_layers, d, f = _dims(config)
    if num_layers is not None:
        if not 1 <= num_layers <= n_layers:
            raise XLTError(f"num_layers must be in 1..{n_layers}, got {num_layers}")
        n_layers = num_layers
    s = float(seq_len)
    per_layer = 8 * s * d * d + 4 * s * d * f + 4 * s * s * d
    return n_layers * per_layer + head_flops(config, num_labels)


def head_flops(config: Any, num_labels: int) -> float:
    """FLOPs of a sequence-classification head on one example: dense d x d, then d x num_labels (0: no head)."""
    d = int(config.hidden_size)
    return float(2 * (d * d + d * num_labels)) if num_labels else 0.0


def truncate_layers(model: Any, num_layers: int | None) -> Any:
    """The model with only its first ``num_layers`` transformer layers (a copy; ``None`` returns the model)."""
    if num_layers is None:
        return model
    from xlt_utils.models import encoder_of

    n = int(encoder_of(model).config.num_hidden_layers)
    if not 1 <= num_layers <= n:
        raise XLTError(f"num_layers must be in 1..{n} for this encoder, got {num_layers}")
    if num_layers == n:
        return model
    model = copy.deepcopy(model)
    enc = encoder_of(model)
    enc.encoder.layer = enc.encoder.layer[:num_layers]
    enc.config.num_hidden_layers = num_layers
    if model.config is not enc.config:
        model.config.num_hidden_layers = num_layers
    return model


def cast(model: Any, dtype: str, device: Any = "cpu") -> Any:
    """The model in an inference precision (see :data:`DTYPES`).

    ``int8`` is PyTorch dynamic quantisation of every ``nn.Linear`` (weights int8, activations quantised on the
    fly): CPU only. ``float16`` needs a GPU; ``bfloat16`` runs anywhere (fast on GPUs and CPUs with AMX).

    Raises:
        XLTError: unknown dtype, or one the device cannot run.
    """
    import torch

    if dtype not in DTYPES:
        raise unknown("inference dtype", dtype, DTYPES)
    dev = torch.device(device)
    if dtype == "float32":
        return model
    if dtype == "int8":
        if dev.type != "cpu":
            raise XLTError("inference_dtype int8 (dynamic quantisation) runs on CPU only; valid on GPU: "
                           "float32, bfloat16, float16")
        import warnings

        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():  # torch 2.13 deprecates quantised tensors in favour of torchao
            warnings.simplefilter("ignore")
            return quantize_dynamic(copy.deepcopy(model).float(), {torch.nn.Linear}, dtype=torch.qint8)
    if dtype == "float16" and dev.type == "cpu":
        raise XLTError("inference_dtype float16 needs a GPU; valid on CPU: float32, bfloat16, int8")
    return copy.deepcopy(model).to(getattr(torch, dtype))


def eval_batch_size(dtype: str, batch_size: int) -> int:
    """The evaluation batch size that keeps a precision variant's predictions independent of its batch-mates.

    Dynamic int8 quantisation scales each ``nn.Linear``'s input by one range computed over the whole input tensor
    (every example of the batch, padding positions included), so an example's prediction changes with the examples
    and the padding it is batched with. ``int8`` is therefore evaluated one example at a time (unpadded: what a
    batch-1 deployment predicts, and the setting its batch-1 latency is measured in); other dtypes use
    ``batch_size``.
    """
    if dtype not in DTYPES:
        raise unknown("inference dtype", dtype, DTYPES)
    return 1 if dtype == "int8" else batch_size


def weight_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers (int8-quantised linear layers counted as packed)."""
    total = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    for m in model.modules():  # dynamically quantised linear layers keep their weights outside parameters()
        packed = getattr(m, "_packed_params", None)
        if packed is not None and hasattr(packed, "_weight_bias"):
            w, b = packed._weight_bias()
            total += w.numel() * w.element_size() + (b.numel() * b.element_size() if b is not None else 0)
    return int(total)


def inference_profile(model: Any, pipeline: Any, features: Sequence[dict[str, Any]],
                      batch_sizes: Sequence[int] = (1, 8, 32), device: Any = "cpu", max_batches: int = 20,
                      warmup: int = 1, num_labels: int = 0, rounds: int = 5,
                      reference: tuple[Any, Sequence[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """Latency (p50/p95 per batch), throughput and memory of the model's forward pass at several batch sizes.

    Works for every format: batches are collated by the task's pipeline
    (:func:`xlt_utils.formats.pipelines.get_pipeline`) from consecutive eval features, in the given order (as
    requests would come, so with the padding that order implies), without labels. Each batch size runs
    ``warmup`` untimed batches, then up to ``max_batches`` timed ones.

    The timed batches run ``rounds`` times, the batch sizes interleaved within each round, and each batch's
    time is its fastest round: a forward pass cannot run faster than the machine allows, but it can be slowed
    by anything else running (another cell, the OS), so the minimum over rounds is the estimate that such
    interference biases least (as ``timeit`` does). Latency percentiles and throughput are computed over
    these per-batch times. (On a busy 2-core CPU, the batch-1 p50 of one round of one model ranged 22-55 ms.)

    With ``reference`` (a model and its features: the same examples, one feature each, featurized for it), the
    reference model is timed side by side with ``model``: batch by batch, each batch of the one right after the
    same batch of the other, taking turns to go first, so a change of load between them lasts milliseconds, not
    the minutes between two cells. Timing them in separate processes minutes apart compares moments: rq3's first
    grid timed the 32- and 64-token budgets at batch 1 in 24-25 ms and the full-length model in 19 ms, though at
    batch 1 the 64-token inputs are mostly the very inputs of the full-length model (35.5 against 37.8 tokens
    each) and the 16-token budget timed 15-19 ms: the cells' moments, not the lengths, made the difference.

    Args:
        model: the model evaluated (head model, or a bare encoder for retrieval), already in its dtype.
        pipeline: the task's pipeline (its ``collate`` builds the model inputs).
        features: featurized eval records (``pipeline.featurize(records)``).
        batch_sizes: batch sizes to measure.
        device: where to run.
        max_batches: timed batches per batch size.
        warmup: untimed batches first (allocator and kernel selection), in the first round.
        num_labels: classes of a sequence-classification head, for the FLOPs count.
        rounds: how many times each timed batch runs (its fastest is kept).
        reference: ``(model, features)`` timed beside ``model`` (its dtype and device as given; moved to
            ``device``); None = none.

    Returns:
        One dict per batch size: ``batch_size``, ``n_batches``, ``rounds``, ``latency_p50_ms``,
        ``latency_p95_ms``, ``throughput_ex_s``, ``tokens_s`` (real tokens), ``flops_per_example`` (at the real
        lengths; a multiple-choice example counts all its choices), ``padding_fraction``, ``peak_memory_mb``
        (CUDA: the model's weights plus the most the forward passes at that batch size allocated on top of what
        was resident, so neither the reference's weights nor the preloaded batches count; with a reference, its
        passes and the model's are interleaved, so the working memory is the larger of the two; CPU: None, not
        measurable in-process), ``weight_mb``; with ``reference`` also ``reference_latency_p50_ms``,
        ``reference_throughput_ex_s`` and ``speedup`` (the reference's p50 latency over the model's: above 1, the
        model is faster).
    """
    import torch

    from xlt_utils.models import encoder_of

    if not features:
        raise XLTError("inference_profile needs at least one feature")
    bad = [bs for bs in batch_sizes if bs < 1]
    if bad:
        raise XLTError(f"batch sizes must be positive, got {bad[0]}")
    if rounds < 1:
        raise XLTError(f"rounds must be at least 1, got {rounds}")
    dev = torch.device(device)
    timed = [(model, features)] if reference is None else [(model, features), reference]
    for m, feats in timed:
        if not feats:
            raise XLTError("inference_profile needs at least one feature for each model timed")
        m.to(dev)
        m.eval()
    drop = ("labels", "start_positions", "end_positions")

    def forward(m: Any, batch: dict[str, Any]) -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        with torch.inference_mode():
            m(**batch)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - t0

    def prepare(m: Any, feats: Sequence[dict[str, Any]], bs: int) -> dict[str, Any]:
        """The timed batches of one model at one batch size, their counts, and the warm-up run."""
        cfg = encoder_of(m).config
        n = min((warmup + max_batches) * bs, max(len(feats), (warmup + 1) * bs))
        pool = [feats[i % len(feats)] for i in range(n)]
        collated = [pipeline.collate([{k: v for k, v in f.items() if k not in drop} for f in pool[s:s + bs]])
                    for s in range(0, len(pool) - bs + 1, bs)]
        batches = [{k: v.to(dev) for k, v in b.items()} for b in collated[warmup:]]
        if not batches:
            raise XLTError(f"batch size {bs}: not enough features ({len(feats)}) for a timed batch after warmup")
        st: dict[str, Any] = {"batches": batches, "n_ex": 0, "n_tok": 0, "n_pad": 0, "flops": 0.0, "peak": 0.0,
                              "best": [math.inf] * len(batches)}
        for batch in batches:
            mask = batch["attention_mask"].reshape(-1, batch["attention_mask"].shape[-1])
            lengths = mask.sum(1).tolist()
            n_batch = int(batch["input_ids"].shape[0])
            st["n_ex"] += n_batch
            st["n_tok"] += int(sum(lengths))
            st["n_pad"] += int(mask.numel() - sum(lengths))
            st["flops"] += sum(forward_flops(cfg, L) for L in lengths) + head_flops(cfg, num_labels) * n_batch
        for b in collated[:warmup]:
            forward(m, {k: v.to(dev) for k, v in b.items()})
        return st

    stats = {(i, bs): prepare(m, feats, bs) for bs in batch_sizes for i, (m, feats) in enumerate(timed)}
    if reference is not None:
        for bs in batch_sizes:
            if len(stats[(0, bs)]["batches"]) != len(stats[(1, bs)]["batches"]):
                raise XLTError(f"batch size {bs}: the model has {len(stats[(0, bs)]['batches'])} timed batches and the "
                               f"reference {len(stats[(1, bs)]['batches'])}; a reference needs one feature per "
                               f"example in both (give the same examples, not windows of them)")
    for r in range(rounds):
        for bs in batch_sizes:
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
                resident = torch.cuda.memory_allocated(dev)  # both models, every batch already on the device
            for j in range(len(stats[(0, bs)]["batches"])):
                # batch by batch, the model and the reference taking turns going first
                order = range(len(timed)) if (r + j) % 2 == 0 else reversed(range(len(timed)))
                for i in order:
                    st = stats[(i, bs)]
                    st["best"][j] = min(st["best"][j], forward(timed[i][0], st["batches"][j]))
            if dev.type == "cuda":  # a model's weights and the most the forward passes added (the larger model's)
                added = torch.cuda.max_memory_allocated(dev) - resident
                for i, (m, _feats) in enumerate(timed):
                    stats[(i, bs)]["peak"] = max(stats[(i, bs)]["peak"], (weight_bytes(m) + added) / 2**20)
    out = []
    for bs in batch_sizes:
        row = _profile_row(stats[(0, bs)], bs, rounds, dev, model)
        if reference is not None:
            ref = _profile_row(stats[(1, bs)], bs, rounds, dev, reference[0])
            row.update(reference_latency_p50_ms=ref["latency_p50_ms"], reference_throughput_ex_s=ref["throughput_ex_s"],
                       speedup=ref["latency_p50_ms"] / row["latency_p50_ms"])
        out.append(row)
    return out


def _profile_row(st: dict[str, Any], bs: int, rounds: int, dev: Any, model: Any) -> dict[str, Any]:
    ms = np.array(st["best"]) * 1000
    total = float(np.sum(st["best"]))
    return {
        "batch_size": bs, "n_batches": len(st["best"]), "rounds": rounds,
        "latency_p50_ms": float(np.percentile(ms, 50)), "latency_p95_ms": float(np.percentile(ms, 95)),
        "throughput_ex_s": st["n_ex"] / total, "tokens_s": st["n_tok"] / total,
        "flops_per_example": st["flops"] / st["n_ex"],
        "padding_fraction": st["n_pad"] / (st["n_pad"] + st["n_tok"]),
        "peak_memory_mb": st["peak"] if dev.type == "cuda" else None,
        "weight_mb": weight_bytes(model) / 2**20,
    }


def pareto_front(df: Any, cost: str, value: str, group: Sequence[str] = ()) -> Any:
    """Rows not dominated on (lower ``cost``, higher ``value``), within each ``group``; sorted by cost.

    A row is on the front when no other row has cost <= its cost and value >= its value with one strict."""
    import pandas as pd

    def front(g: Any) -> Any:
        g = g.sort_values([cost, value], ascending=[True, False])
        keep, best = [], -np.inf
        for idx, v in zip(g.index, g[value]):
            if v > best:
                keep.append(idx)
                best = v
        return g.loc[keep]

    if not group:
        return front(df).reset_index(drop=True)
    return pd.concat([front(g) for _, g in df.groupby(list(group), dropna=False)]).reset_index(drop=True)
