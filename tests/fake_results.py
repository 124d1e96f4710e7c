"""Fake run directories for a whole study grid, in the exact layout the phases write, for checking analyses.

A study's ``embedded-full`` or ``xtreme-r`` grid takes hours (or GPUs) to run, so an analysis notebook would
otherwise meet that grid's shape (two models, three seeds, five batch sizes, many languages) only after the
hours are spent. ``write_fake_runs`` expands the real grid and writes, for every cell, what its phase writes:
``params.json`` (params, lineage, resolved), ``env.json`` (timings), ``metrics.csv`` (the task's primary metric
in every language the phase evaluates), ``efficiency.csv`` where the cell times inference, and ``DONE``. The
numbers are random (deterministic per run and language) around a task base with an intermediate-task effect; they
exercise the analyses and say nothing about transfer.

Run as a script (``XLT_OUTPUTS`` pointing at a scratch folder): ``python tests/fake_results.py STUDY PROFILE``.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import numpy as np

from xlt_utils import grid as G
from xlt_utils import phases, runs
from xlt_utils.cells import Cell, Grid
from xlt_utils.execute import write_manifest
from xlt_utils.results import primary_metric
from xlt_utils.tasks import get_task

TRAINING_PHASES = ("pretrain", "intermediate", "target")


def _rng(*key: Any) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _score(cell: Cell, lang: str, base: float) -> float:
    """Base + a per-(intermediate task, model) effect + a per-language offset + per-run noise, in [0, 100]."""
    lin = cell.lineage
    effect = _rng("effect", lin.get("intermediate_task"), cell.params.get("model")).normal(2.0, 4.0)
    if not lin.get("intermediate_task"):
        effect = 0.0
    offset = 0.0 if lang == "en" else _rng("lang", lang).normal(-15.0, 8.0)
    noise = _rng("noise", cell.run_id, lang).normal(0.0, 2.5)
    return float(np.clip(base + effect + offset + noise, 0.0, 100.0))


def _eval_languages(cell: Cell, task: Any) -> tuple[str, list[str]]:
    p = cell.params
    split = p.get("split") or task.eval_split
    langs = list(p["languages"]) if p.get("languages") is not None else list(task.languages_for(split))
    if cell.phase == "baselines" and p.get("kind") == "in_language":
        have = set(task.languages_for("train")) & set(task.languages_for("dev"))
        langs = [lang for lang in langs if lang in have]
    return split, langs


def _metric_rows(cell: Cell) -> list[dict[str, Any]]:
    p = cell.params
    if cell.phase == "pretrain":
        return [{"task": "mlm", "split": "train", "lang": "all", "metric": "mlm_loss",
                 "value": 3.0 + _rng(cell.run_id).random(), "n_examples": 1000}]
    name = p.get("target_task") or p.get("intermediate_task")
    if cell.phase == "intermediate" and "+" in name:  # multi-task: one English dev row per task, as the phase writes
        from xlt_utils.multitask import components

        return [row for part in components(name)
                for row in _metric_rows(Cell(cell.phase, {**p, "intermediate_task": part}, cell.upstream,
                                             cell.lineage, f"{cell.run_id}:{part}"))]
    task = get_task(name)
    metric = primary_metric(name)
    base = 45.0 + 30.0 * _rng("task", name).random()
    if cell.phase in ("intermediate", "target"):
        return [{"task": name, "split": "dev", "lang": "en", "metric": metric, "value": _score(cell, "en", base),
                 "n_examples": 200}]
    split, langs = _eval_languages(cell, task)
    if p.get("kind") == "majority":
        return [{"task": name, "split": split, "lang": lang, "metric": metric, "value": 100.0 / max(len(task.labels or ()), 2),
                 "n_examples": 200} for lang in langs]
    return [{"task": name, "split": split, "lang": lang, "metric": metric, "value": _score(cell, lang, base),
             "n_examples": 200} for lang in langs]


def _efficiency_rows(cell: Cell) -> list[dict[str, Any]]:
    p = cell.params
    task = get_task(p["target_task"])
    split, langs = _eval_languages(cell, task)
    up = cell.upstream  # a layer budget: the model fine-tuned at that depth, or (older design) cut at evaluation
    layers = p.get("num_layers") or (up.params.get("num_layers") if up is not None and up.phase == "target" else None) or 12
    scale = layers / 12 * {"float32": 1.0, "int8": 0.5}.get(p.get("inference_dtype") or "float32", 0.6)
    rows = []
    for bs in p["efficiency_batch_sizes"]:
        r = _rng("latency", cell.run_id, bs)
        p50 = scale * bs * 8.0 * (1 + 0.1 * r.random())
        rows.append({"task": task.name, "split": split, "lang": langs[0], "device": "cpu", "threads": 1,
                     "num_layers": p.get("num_layers"), "inference_dtype": p.get("inference_dtype"),
                     "max_seq_length": p.get("max_seq_length"), "batch_size": bs, "n_batches": 4, "rounds": 5,
                     "latency_p50_ms": p50, "latency_p95_ms": p50 * 1.2, "throughput_ex_s": 1000.0 * bs / p50,
                     "tokens_s": 30000.0 * bs / p50, "flops_per_example": 1e9 * scale * (p.get("max_seq_length") or 128) / 128,
                     "padding_fraction": 0.2, "peak_memory_mb": None, "weight_mb": 100.0 * scale})
    return rows


def _resolved(cell: Cell) -> dict[str, Any]:
    p = cell.params
    if cell.phase not in TRAINING_PHASES and not (cell.phase == "baselines" and p.get("kind") == "in_language"):
        return {}
    bs = p.get("per_device_train_batch_size") or p.get("batch_size") or 32
    examples = int(p.get("max_train_samples") or 2000) * int(p.get("num_train_epochs") or 1)
    records = int(p.get("max_train_samples") or 3000 + _rng("size", p.get("intermediate_task")).integers(0, 2000))
    return {"global_step": max(1, examples // int(bs)), "train_examples": examples, "train_tokens": examples * 40,
            "padding_fraction": 0.2, "n_parameters": 1_000_000, "n_train_records": records}


def write_fake_runs(study: str, profile: str, only: set[str] | None = None) -> Grid:
    """Write a finished fake run for every cell of the study's grid (``only``: for these run ids) and the grid's
    manifest; returns the grid."""
    import pandas as pd

    grid = G.expand(study, profile)
    for cell in grid.cells:
        d = cell.dir
        if runs.is_done(d) or (only is not None and cell.run_id not in only):  # shared with a study written before
            continue
        d.mkdir(parents=True, exist_ok=True)
        resolved = _resolved(cell)
        runs.write_json_atomic(d / runs.PARAMS, {"run_id": cell.run_id, "phase": cell.phase,
                                                 "protocol": runs.protocol_version(cell.phase), "params": cell.params,
                                                 "lineage": cell.lineage, "resolved": resolved})
        timings = {"eval": 5.0}
        if resolved:
            step = "pretrain" if cell.phase == "pretrain" else "train_loop"
            timings = {step: resolved["global_step"] * 0.05 * (1 + _rng("t", cell.run_id).random())}
        runs.write_json_atomic(d / runs.ENV, {"status": "done", "timings": timings, "peak_rss_mb": 900.0,
                                              "torch_threads": 1})
        rows = _metric_rows(cell)
        pd.DataFrame(rows, columns=list(phases.METRIC_COLUMNS)).to_csv(d / runs.METRICS, index=False)
        if cell.phase == "eval" and cell.params.get("efficiency_batch_sizes"):
            pd.DataFrame(_efficiency_rows(cell)).to_csv(d / "efficiency.csv", index=False)
        runs.mark_done(d)
    write_manifest(grid)
    return grid


if __name__ == "__main__":
    for s in sys.argv[1:-1]:
        g = write_fake_runs(s, sys.argv[-1])
        print(f"{s} / {sys.argv[-1]}: {len(g.cells)} fake runs")
