"""Evaluation per language: tidy metric rows and predictions in the XTREME submission layout.

Every format goes through the same path: load the split (:func:`xlt_utils.worlds.load_records`), featurize
with the format's pipeline, predict in length-sorted batches (dynamic padding, no wasted compute), decode to
one prediction per record, score with :func:`xlt_utils.metrics.compute`, write the predictions under
``<predictions_dir>/<task>/<split>-<lang>.<ext>``. Retrieval tasks embed texts with a chosen layer and
pooling (:func:`xlt_utils.retrieval.embed`) and need no head.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from xlt_utils import metrics
from xlt_utils.batching import sorted_batches
from xlt_utils.formats.pipelines import Pipeline, get_pipeline
from xlt_utils.models import encoder_of
from xlt_utils.tasks import Task, get_task
from xlt_utils.train import autocast_context, resolve_device
from xlt_utils.worlds import load_records

ROW_KEYS = ("task", "split", "lang", "metric", "value", "n_examples")


@torch.inference_mode()
def predict_features(model: torch.nn.Module, pipeline: Pipeline, features: Sequence[dict[str, Any]],
                     batch_size: int = 64, device: str | torch.device | None = None, bf16: bool | str = "auto",
                     sort_by_length: bool = True) -> list[Any]:
    """Run the model over features; returns the pipeline's per-feature outputs in feature order.

    Batches are sorted by length (``sort_by_length``) so dynamic padding wastes little; the order of the
    outputs is the order of ``features`` either way.
    """
    dev = resolve_device(device)
    model.to(dev)
    model.eval()
    lengths = [int(f["length"]) for f in features]
    batches = (sorted_batches(lengths, batch_size) if sort_by_length
               else [list(range(s, min(s + batch_size, len(features)))) for s in range(0, len(features), batch_size)])
    per_feature: list[Any] = [None] * len(features)
    for idx in batches:
        batch = pipeline.collate([{k: v for k, v in features[i].items() if k not in ("labels", "start_positions",
                                                                                   "end_positions")}
                                  for i in idx])
        batch = {k: v.to(dev) for k, v in batch.items()}
        with autocast_context(dev, bf16):
            out = model(**batch)
        rows = pipeline.output_of(out)
        for i, row in zip(idx, rows):
            per_feature[i] = row
    return per_feature


def predict_records(model: torch.nn.Module, pipeline: Pipeline, records: Sequence[dict[str, Any]],
                    batch_size: int = 64, device: str | torch.device | None = None,
                    bf16: bool | str = "auto") -> list[Any]:
    """One prediction per record (featurize → predict → decode)."""
    features = pipeline.featurize(records, train=False)
    outputs = predict_features(model, pipeline, features, batch_size=batch_size, device=device, bf16=bf16)
    return pipeline.decode(records, features, outputs)


def _write_predictions(path: Path, task: Task, records: Sequence[dict], predictions: Any) -> None:
    """Write predictions in the XTREME submission layout for the task's format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = task.format
    if fmt == "span_qa":
        path.write_text(json.dumps({r["id"]: p for r, p in zip(records, predictions)}, ensure_ascii=False, indent=0))
    elif fmt == "tagging":
        path.write_text("\n\n".join("\n".join(tags) for tags in predictions) + "\n")
    elif fmt == "retrieval":
        if task.retrieval_mode == "bucc":
            path.write_text("".join(f"{a}\t{b}\n" for a, b in predictions))
        elif task.retrieval_mode == "map":
            path.write_text(json.dumps(predictions, ensure_ascii=False))
        else:
            path.write_text("".join(f"{p}\n" for p in predictions))
    else:
        path.write_text("".join(f"{p}\n" for p in predictions))


def prediction_path(predictions_dir: str | Path, task: Task, split: str, lang: str) -> Path:
    """``<dir>/<task>/<split>-<lang>.<ext>`` (json for QA and ranked retrieval, tsv otherwise)."""
    ext = "json" if task.format == "span_qa" or task.retrieval_mode == "map" else "tsv"
    return Path(predictions_dir) / task.name / f"{split}-{lang}.{ext}"


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    task: Task | str,
    *,
    split: str | None = None,
    languages: Sequence[str] | None = None,
    max_examples: int | None = None,
    batch_size: int = 64,
    max_seq_length: int = 128,
    predictions_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    bf16: bool | str = "auto",
    layer: int | None = None,
    pooling: str | None = None,
    seed: int = 0,
    load_fn: Callable[..., list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate a model on every language of a task; return tidy rows.

    Args:
        model: a head model of the task's format, or (retrieval) any model with an encoder inside.
        tokenizer: its tokenizer.
        task: task or registry name.
        split: ``dev`` or ``test``; default: the task's ``eval_split``.
        languages: default: every language that has the split.
        max_examples: cap per language (smoke runs); ``None`` = all.
        batch_size: evaluation batch size.
        max_seq_length: maximum tokens per feature.
        predictions_dir: if given, predictions are written there in the XTREME layout.
        device: default CUDA when available.
        bf16: autocast policy (see :func:`xlt_utils.train.autocast_context`).
        layer: retrieval only: hidden-states index (default: the task's ``options['layer']``, scaled to this
            encoder's depth when the task gives ``layer_of``; see :func:`xlt_utils.retrieval.resolve_layer`).
        pooling: retrieval only: ``mean`` or ``cls`` (default: the task's ``options['pooling']`` or mean).
        seed: seed of the ``max_examples`` subsample.
        load_fn: loads one split of one language, with the signature and result of
            :func:`xlt_utils.worlds.load_records` (default); the grid passes a disk-cached version.

    Returns:
        Rows with keys ``task, split, lang, metric, value, n_examples`` (plus ``seconds``).
    """
    task = get_task(task) if isinstance(task, str) else task
    split = split or task.eval_split
    langs = list(languages) if languages is not None else list(task.languages_for(split))
    load = load_fn or load_records
    rows: list[dict[str, Any]] = []
    if task.format == "retrieval":
        return _evaluate_retrieval(model, tokenizer, task, split, langs, batch_size, max_seq_length,
                                   predictions_dir, device, layer, pooling, load)
    pipeline = get_pipeline(task, tokenizer, max_seq_length=max_seq_length)
    for lang in langs:
        t0 = time.perf_counter()
        records = load(task, split, lang, max_examples=max_examples, seed=seed)
        preds = predict_records(model, pipeline, records, batch_size=batch_size, device=device, bf16=bf16)
        refs = pipeline.references(records)
        result = metrics.compute(task.metric, preds, refs, **pipeline.metric_options(lang))
        seconds = time.perf_counter() - t0
        for key, value in result.items():
            rows.append({"task": task.name, "split": split, "lang": lang, "metric": key, "value": float(value),
                         "n_examples": len(records), "seconds": seconds})
        if predictions_dir is not None:
            _write_predictions(prediction_path(predictions_dir, task, split, lang), task, records, preds)
    return rows


def _evaluate_retrieval(model, tokenizer, task, split, langs, batch_size, max_seq_length, predictions_dir,
                        device, layer, pooling, load=load_records) -> list[dict[str, Any]]:
    from xlt_utils import retrieval

    encoder = encoder_of(model)
    layer = retrieval.resolve_layer(task.options, int(encoder.config.num_hidden_layers), layer)
    pooling = str(task.options.get("pooling", "mean") if pooling is None else pooling)
    # A task may set its own prefix; otherwise the encoder's (e5: "query: ", stored in its config at conversion).
    prefix = str(task.options.get("prefix", getattr(encoder.config, "xlt_embedding_prefix", "") or ""))
    k = int(task.options.get("k", 20))

    @retrieval.memoized  # the English side of a bitext set recurs in every language: embed each text once
    def embed_fn(texts: list[str]):
        return retrieval.embed(encoder, tokenizer, texts, layer=layer, pooling=pooling, batch_size=batch_size,
                               max_length=max_seq_length, device=device, prefix=prefix)

    rows = []
    for lang in langs:
        t0 = time.perf_counter()
        records = load(task, split, lang)
        dev_records = None
        if task.retrieval_mode == "bucc":
            dev_records = load(task, "dev", lang)
        result, preds = retrieval.evaluate_retrieval(task.retrieval_mode, records, embed_fn,
                                                     dev_records=dev_records, k=k)
        seconds = time.perf_counter() - t0
        n_queries = sum(1 for r in records if r["side"] == "query")
        for key, value in result.items():
            rows.append({"task": task.name, "split": split, "lang": lang, "metric": key, "value": float(value),
                         "n_examples": n_queries, "seconds": seconds, "layer": layer, "pooling": pooling})
        if predictions_dir is not None:
            _write_predictions(prediction_path(predictions_dir, task, split, lang), task, records, preds)
    return rows
