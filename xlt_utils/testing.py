"""Test helpers: a tiny XLM-R and a full round trip (featurize → train a few steps → evaluate) for any task.

Used by the test suite for every world (the real ``xtreme`` loaders run on local fixture files in the Hub
schema) so that each task is proven end to end on CPU in seconds, without any download.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xlt_utils.evaluate import evaluate
from xlt_utils.formats.pipelines import get_pipeline
from xlt_utils.models import build_model, init_encoder, load_tokenizer, tiny_xlmr_config, train_tokenizer
from xlt_utils.tasks import Task, get_task
from xlt_utils.train import TrainConfig, TrainResult, dataset_loss, train
from xlt_utils.worlds import load_records


def record_texts(records: Iterable[dict[str, Any]]) -> Iterable[str]:
    """Every piece of text in records of any format (for training a tokenizer)."""
    for r in records:
        for key in ("text", "text_a", "text_b", "context", "question"):
            if isinstance(r.get(key), str) and r[key]:
                yield r[key]
        if "tokens" in r:
            yield " ".join(r["tokens"])
        yield from r.get("choices", ())


def make_tiny_encoder(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 400, seed: int = 0,
                      **config: Any) -> Path:
    """Train a tokenizer on ``texts`` and save a random tiny XLM-R encoder with it in ``out_dir``."""
    tok = train_tokenizer(list(texts), vocab_size=vocab_size)
    return init_encoder(tiny_xlmr_config(len(tok), **config), tok, out_dir, seed=seed)


@dataclass
class RoundTrip:
    """What :func:`tiny_roundtrip` did: training (``None`` for evaluation-only tasks) and evaluation rows."""

    train: TrainResult | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    initial_train_loss: float | None = None
    final_train_loss: float | None = None


def tiny_roundtrip(task: Task | str, *, steps: int = 6, batch_size: int = 4, max_seq_length: int = 64,
                   languages: Sequence[str] | None = None, split: str | None = None,
                   workdir: str | Path | None = None, learning_rate: float = 3e-3
                   ) -> RoundTrip:
    """Featurize a task, train a tiny XLM-R for a few steps (if trainable) and evaluate every language.

    Args:
        task: task or name.
        steps: optimizer steps.
        batch_size: micro-batch size.
        max_seq_length: maximum tokens per feature.
        languages: evaluation languages (default: all with the split).
        split: evaluation split (default: the task's eval split).
        workdir: where the encoder and predictions go (default: a temporary folder).
        learning_rate: a high rate so that the loss visibly falls within a few steps.

    Returns:
        A :class:`RoundTrip`: the training result and the whole-training-set loss before and after
        (``None`` for evaluation-only tasks), and the tidy evaluation rows.
    """
    task = get_task(task) if isinstance(task, str) else task
    split = split or task.eval_split
    langs = list(languages) if languages is not None else list(task.languages_for(split))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        train_recs = load_records(task, "train", task.train_language) if task.trainable else []
        eval_recs = [r for lang in langs for r in load_records(task, split, lang)]
        if task.retrieval_mode == "bucc":
            eval_recs += [r for lang in langs for r in load_records(task, "dev", lang)]
        enc_dir = make_tiny_encoder(record_texts(train_recs + eval_recs), work / "encoder")
        tok = load_tokenizer(enc_dir)
        torch.manual_seed(0)
        model = build_model(task, enc_dir)
        out = RoundTrip(train=None)
        if task.trainable and task.format != "retrieval":
            pipe = get_pipeline(task, tok, max_seq_length=max_seq_length)
            feats = pipe.featurize(train_recs, train=True)
            cfg = TrainConfig(learning_rate=learning_rate, max_steps=steps, per_device_train_batch_size=batch_size,
                              warmup_ratio=0.0, log_every=1, progress=False, seed=0)
            out.initial_train_loss = dataset_loss(model, feats, pipe.collate)
            out.train = train(model, feats, pipe.collate, cfg)
            out.final_train_loss = dataset_loss(model, feats, pipe.collate)
        out.rows = evaluate(model, tok, task, split=split, languages=langs, max_seq_length=max_seq_length,
                            predictions_dir=work / "predictions", batch_size=8)
    return out
