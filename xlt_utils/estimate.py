"""What a grid will cost, before and while it runs: estimates only; nothing here runs a cell or changes a run id.

* The cost model of a cell: :func:`work_units` (training steps x examples x sequence length, or the forward
  passes of an evaluation) x :func:`cell_cost`'s per-token compute of its model (non-embedding parameters).
* :func:`critical_path`: per cell, its cost plus the costliest chain below it; the executors start the longest
  chain first.
* :func:`gpu_hours`: the dry run's GPU-hour floor for training cells of the real models (world ``xtreme``).
* :func:`estimate_seconds` and :func:`cpu_estimate`: CPU time of the cells still to run, extrapolated from the
  runs finished here (:func:`finished_results`; runs finished by a resumed attempt are left out, :func:`resumed`),
  as used by the dry run and by the progress lines' ETA; :func:`wall_seconds` turns it into wall time at
  ``jobs`` cells at a time (cells that run alone count whole).
* :func:`hyperparameter_lines`: the dry run's summary of the real study's per-task hyperparameters and their origin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from xlt_utils import runs
from xlt_utils.cells import Cell, CellResult, Grid
from xlt_utils.errors import XLTError


def fmt_duration(seconds: float) -> str:
    """``1h02m03s``, or ``2m03s`` under an hour (estimates, progress lines and summaries)."""
    seconds = max(0, round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def work_units(cell: Cell) -> float:
    """A rough cost of a cell in token-steps (examples x sequence length), for the progress estimate only."""
    p = cell.params
    if cell.phase == "pretrain":
        return float(p["steps"] * p["batch_size"] * p["max_len"])
    n_langs = len(p["languages"]) if p.get("languages") else 8
    if cell.phase == "eval":
        return n_langs * (p["max_eval_samples"] or 1000) * p["max_seq_length"] / 3.0  # forward only
    if cell.phase == "baselines" and p["kind"] == "majority":
        return 0.0
    batch = p["per_device_train_batch_size"] * p["gradient_accumulation_steps"]
    steps = p["max_steps"] or (p["num_train_epochs"] * epoch_examples(cell) / batch)
    train = steps * batch * p["max_seq_length"]
    return train * (n_langs if cell.phase == "baselines" and p["kind"] == "in_language" else 1)  # one model a language


@cache
def _task_train_size(name: str) -> int:
    """Training examples (per language) of a task when a cell takes them all: the synth generator's default
    size, the offline-real task's recorded count; 10,000 where neither is known (the Hub's)."""
    from xlt_utils.tasks import get_task

    try:
        task = get_task(name)
    except XLTError:
        return 10000
    if task.world == "synth":  # also a synth English task trained into a real encoder (offline-real)
        from xlt_utils.synth.builders import KINDS

        kind = KINDS.get(task.source.get("kind", ""))
        return kind.sizes[0] if kind is not None else 10000
    counts = (task.source.get("counts") or {}).get("train") or {}
    return max(counts.values()) if counts else 10000


def cell_task(cell: Cell) -> str | None:
    """The task a cell trains or evaluates on (``None`` for pretraining)."""
    p = cell.params
    return p.get("intermediate_task") if cell.phase == "intermediate" else p.get("target_task")


def train_size(cell: Cell) -> int:
    """:func:`_task_train_size` of the task a training cell trains on."""
    name = cell_task(cell)
    return _task_train_size(name) if name else 10000


def epoch_examples(cell: Cell) -> int:
    """Examples in one epoch of a training cell: ``max_train_samples`` or the task's size; for a multi-task cell
    the sum over its tasks of each one's size capped at ``max_train_samples`` and ``multitask_cap`` (an epoch's
    length, :func:`xlt_utils.multitask.steps_per_epoch`)."""
    from xlt_utils.multitask import components, is_multitask

    p, name = cell.params, cell_task(cell)
    if not is_multitask(name):
        return p["max_train_samples"] or train_size(cell)
    caps = [c for c in (p.get("max_train_samples"), p.get("multitask_cap")) if c]
    return sum(min([_task_train_size(n), *caps]) for n in components(name))


def _model_cost(cell: Cell) -> float:
    """Per-token compute of the cell's model relative to the others: its non-embedding (matmul) parameters."""
    world, model = cell.params["world"], cell.params["model"]
    if world == "synth":
        from xlt_utils.choices import SIZES

        layers, d, _, ff = SIZES.get(model.removeprefix("synth-"), (2, 64, 2, 256))
        return float(layers * (4 * d * d + 2 * d * ff))
    if world == "offline-real":
        return float(12 * (4 * 384 * 384 + 2 * 384 * 1536))  # multilingual-e5-small (BERT, 12 x 384)
    if world == "xtreme":
        from xlt_utils.zoo import MODELS

        if model in MODELS:
            return float(MODELS[model].non_embedding_params)
    return 1.0e6


def cell_cost(cell: Cell, floor: float = 0.0) -> float:
    """Estimated compute of a cell: :func:`work_units` (at least ``floor``) x its model's per-token cost."""
    return max(work_units(cell), floor) * _model_cost(cell)


def critical_path(cells: Sequence[Cell]) -> dict[str, float]:
    """Per cell, its estimated cost plus the costliest chain of cells below it (work units x model cost): the
    scheduler starts the cell with the longest remaining path first, so a slow chain (a real encoder's
    intermediate -> target -> eval) is not left for the end of a grid."""
    children: dict[str, list[Cell]] = {}
    for c in cells:
        if c.upstream is not None:
            children.setdefault(c.upstream.run_id, []).append(c)
    memo: dict[str, float] = {}

    def path(c: Cell) -> float:
        if c.run_id not in memo:
            own = cell_cost(c, floor=1.0)
            memo[c.run_id] = own + max((path(k) for k in children.get(c.run_id, [])), default=0.0)
        return memo[c.run_id]

    for c in reversed(list(cells)):  # topological order reversed: children first (keeps the recursion shallow)
        path(c)
    return memo


def gpu_hours(cell: Cell) -> float | None:
    """A GPU-hour floor for a training cell of a zoo model (``None`` when it does not apply or is unknown).

    Tokens = examples × epochs (or steps × batch) × max_seq_length × choices: every example padded to the
    maximum, an upper bound that dynamic padding lowers; FLOPs = 6 × non-embedding parameters × tokens,
    on one H100 at 35% MFU (:func:`xlt_utils.zoo.estimate_gpu_hours`, assumptions in docs/xtreme.md).
    Evaluation cells are forward passes only and are not counted (minutes).
    """
    from xlt_utils import zoo
    from xlt_utils.multitask import is_multitask
    from xlt_utils.tasks import get_task

    p = cell.params
    if cell.phase not in ("intermediate", "target") or p.get("model") not in zoo.MODELS:
        return None
    if is_multitask(p.get("intermediate_task")):
        return _multitask_gpu_hours(p)
    task = get_task(p.get("intermediate_task") or p["target_task"])
    batch = p["per_device_train_batch_size"] * p["gradient_accumulation_steps"]
    if p.get("max_steps"):
        examples = p["max_steps"] * batch
    else:
        n = p.get("max_train_samples") or task.options.get("train_examples")
        if not n:
            return None
        examples = n * p["num_train_epochs"]
    choices = int(task.options.get("num_choices", 2 if task.name == "xcopa" else 1))
    return zoo.estimate_gpu_hours(p["model"], examples * p["max_seq_length"] * choices)


def _multitask_gpu_hours(p: Mapping[str, Any]) -> float | None:
    """:func:`gpu_hours` of a multi-task intermediate cell: each task's share of the examples (its capped size with
    epochs; its sampling weight with ``max_steps``) times its length and choices; ``None`` when a size is unknown."""
    from xlt_utils import zoo
    from xlt_utils.multitask import sampling_weights, tasks_of

    tasks = tasks_of(p["intermediate_task"])
    sizes = [p.get("max_train_samples") or t.options.get("train_examples") for t in tasks]
    if not all(sizes):
        return None
    choices = [int(t.options.get("num_choices", 1)) for t in tasks]
    if p.get("max_steps"):
        batch = p["per_device_train_batch_size"] * p["gradient_accumulation_steps"]
        weights = sampling_weights(sizes, p["multitask_sampling"], p["multitask_cap"])
        examples = [w * p["max_steps"] * batch for w in weights]
    else:
        examples = [min(n, p["multitask_cap"] or n) * p["num_train_epochs"] for n in sizes]
    return zoo.estimate_gpu_hours(p["model"], sum(e * c for e, c in zip(examples, choices)) * p["max_seq_length"])


def estimate_seconds(ran: Sequence[CellResult], todo: Sequence[Cell]) -> float | None:
    """Seconds of cell time that ``todo`` will take, extrapolated from the finished cells ``ran``: seconds of work
    per unit of :func:`cell_cost` by (world, phase, task) where a cell of that task finished, else by (world,
    phase), else by phase, else overall; plus the finished cells' mean fixed cost (kernel start-up, imports, data).
    ``None`` when nothing finished has measurable work."""
    ran = [r for r in ran if r.status == "done"]
    if not ran or not sum(work_units(r.cell) for r in ran):
        return None

    def rate(rs: list[CellResult]) -> float | None:  # seconds of work per unit of cost (comparable across models)
        u = sum(cell_cost(r.cell) for r in rs)
        return sum(r.timings.get("work", 0.0) for r in rs) / u if u else None

    keys: list[Callable[[Cell], tuple]] = [lambda c: (c.params["world"], c.phase, cell_task(c)),
                                           lambda c: (c.params["world"], c.phase), lambda c: (c.phase,)]
    levels = []  # finest first
    for key in keys:
        groups: dict[tuple, list[CellResult]] = {}
        for r in ran:
            groups.setdefault(key(r.cell), []).append(r)
        levels.append((key, {k: rate(rs) for k, rs in groups.items()}))
    overall = rate(ran)
    fixed = sum(max(0.0, r.seconds - r.timings.get("work", 0.0)) for r in ran) / len(ran)
    return sum(fixed + next((v for key, rates in levels if (v := rates.get(key(c)))), overall or 0.0) * cell_cost(c)
               for c in todo)


def resumed(resolved: Mapping[str, Any]) -> bool:
    """Whether a finished run was finished by a later attempt that took over work an interrupted one had done
    (training resumed from a checkpoint; an in-language baseline with a language's model trained or begun before), so that its
    recorded timings are only part of what the cell costs."""
    return bool(resolved.get("resumed_from_step") or resolved.get("resumed_languages"))


def finished_results(root: Path | None = None) -> list[CellResult]:
    """Every finished run under the runs directory as a :class:`CellResult` (its parameters, its recorded timings
    and its kernel's wall time): the measurements that :func:`describe` extrapolates from. A run finished by a
    resumed attempt (:func:`resumed`) is left out: its timings are only the last attempt's."""
    from datetime import datetime

    root = root or runs.runs_dir()
    out = []
    for done in sorted(root.glob(f"*/*/{runs.DONE}")):
        try:
            p = json.loads((done.parent / runs.PARAMS).read_text())
            env = json.loads((done.parent / runs.ENV).read_text())
            seconds = (datetime.fromisoformat(env["finished"]) - datetime.fromisoformat(env["started"])).total_seconds()
            cell = Cell(p["phase"], p["params"], None, p.get("lineage", {}), p["run_id"])
            work_units(cell)  # parameters of an older layout: not comparable, skip
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if resumed(p.get("resolved") or {}) or (p.get("resolved") or {}).get("restored_from"):
            continue  # its timings cover only the attempt that finished it, or a copy: not the cell's cost
        out.append(CellResult(cell, "done", seconds, timings=env.get("timings", {})))
    return out


def wall_seconds(ran: Sequence[CellResult], todo: Sequence[Cell], jobs: int) -> float | None:
    """Wall-clock seconds of ``todo`` at ``jobs`` cells at a time (:func:`estimate_seconds` of cell time): the
    cells that share the machine divide by ``jobs``; those that run alone (:attr:`Cell.alone`) count whole.
    ``None`` when nothing finished has measurable work."""
    est = estimate_seconds(ran, todo)
    lone = [c for c in todo if c.alone]
    if est is None or not lone or jobs == 1:
        return None if est is None else est / jobs
    shared = [c for c in todo if not c.alone]
    shared_s = (estimate_seconds(ran, shared) or 0.0) if shared else 0.0
    return shared_s / jobs + (estimate_seconds(ran, lone) or 0.0)


def cpu_estimate(grid: Grid, jobs: int, ran: Sequence[CellResult] | None = None, skip: set[str] | None = None) -> str:
    """One line: the CPU time the grid's unfinished cells will take on this machine, extrapolated from the runs
    already finished here (:func:`estimate_seconds`), or why there is no estimate. ``skip``: cells that cost
    seconds (pretraining runs restored from a committed checkpoint)."""
    todo = [c for c in grid.cells if not c.done() and c.params.get("world") != "xtreme" and c.run_id not in
            (skip or set())]
    if not todo:
        return "[grid] nothing left to run in the embedded worlds"
    ran = finished_results() if ran is None else ran
    est = estimate_seconds(ran, todo)
    if est is None:
        return ("[grid] no CPU estimate: no finished run here to measure rates from (run the smoke or embedded "
                "profile first)")
    worlds = sorted({r.cell.params["world"] for r in ran})
    lone = sum(c.alone for c in todo)
    note = f" ({lone} timed evaluations alone)" if lone and jobs > 1 else ""
    return (f"[grid] CPU estimate for {len(todo)} cells: ~{fmt_duration(est)} of cell time ({est / 3600:.1f} "
            f"CPU-hours{per_world(ran, todo)}), "
            f"~{fmt_duration(wall_seconds(ran, todo, jobs) or est / jobs)} wall at {jobs} cells at a time{note} "
            f"(extrapolated from {len(ran)} finished runs here, {', '.join(worlds)}; "
            f"training steps x tokens x model size; a rough guide, often off by 2x)")


def per_world(ran: Sequence[CellResult], todo: Sequence[Cell]) -> str:
    """``: offline-real 12.3, synth 0.4 (no finished run of synth here: borrowed rates)`` - the estimate split by
    world, each world's cells costed alone; empty for a one-world grid. A world with no finished run here is
    costed from the other worlds' rates, which says little (a synth cell is mostly start-up)."""
    by: dict[str, list[Cell]] = {}
    for c in todo:
        by.setdefault(c.params["world"], []).append(c)
    if len(by) < 2:
        return ""
    have = {r.cell.params["world"] for r in ran if r.status == "done"}
    parts = [f"{w} {(estimate_seconds(ran, cells) or 0.0) / 3600:.1f}" for w, cells in sorted(by.items())]
    lent = sorted(set(by) - have)
    return (": " + ", ".join(parts)
            + (f"; no finished run of {', '.join(lent)} here: borrowed rates" if lent else ""))


# run parameter -> its short name in the dry run's hyperparameter lines
_HP_LABELS = {"learning_rate": "lr", "num_train_epochs": "epochs", "per_device_train_batch_size": "batch",
              "gradient_accumulation_steps": "accum", "max_seq_length": "len", "warmup_ratio": "warmup",
              "weight_decay": "wd"}


def hyperparameter_lines(cells: Sequence[Cell]) -> list[str]:
    """The dry run's summary of the real study's hyperparameters: one line per intermediate and target task,
    each value tagged with where it came from (``Cell.origin``: the catalog's toolkit, the task's own
    ``options``, the study file, or the notebook ``default``); evaluation's length and QA's doc stride (a task
    option) on the target's line. Empty for grids without world-xtreme cells."""
    from xlt_utils.multitask import tasks_of

    groups: dict[tuple[str, str], dict[str, dict[str, set[Any]]]] = {}
    for c in cells:
        if c.params.get("world") != "xtreme" or c.phase not in ("intermediate", "target", "eval"):
            continue
        role = "intermediate" if c.phase == "intermediate" else "target"
        task = c.params[f"{role}_task"]
        by_origin = groups.setdefault((role, task), {})
        names = ("max_seq_length",) if c.phase == "eval" else tuple(_HP_LABELS)
        for n in names:
            label = ("eval " if c.phase == "eval" else "") + _HP_LABELS[n]
            by_origin.setdefault(c.origin.get(n, "default"), {}).setdefault(label, set()).add(c.params[n])
        for stride in {t.options.get("doc_stride") for t in tasks_of(task)} - {None}:  # a multi-task name: its tasks'
            by_origin.setdefault("options", {}).setdefault("doc stride", set()).add(stride)
    if not groups:
        return []
    rank = {"jiant": 0, "xtreme": 1, "options": 2, "yaml": 3, "default": 4}
    lines = [("[grid] hyperparameters per task ([jiant]/[xtreme]: the catalog's options.hparams, first toolkit of the "
              "profile's hparams that has the task; [options]: the task's own; [yaml]: params/per_task/sweep; "
              "[default]: the notebook's):")]
    width = max(len(t) for _, t in groups)
    for (role, task), by_origin in sorted(groups.items(), key=lambda kv: kv[0][0] != "intermediate"):
        parts = [f"[{o}] " + ", ".join(f"{label} {'/'.join(f'{v:g}' for v in sorted(vals))}"
                                        for label, vals in values.items())
                 for o, values in sorted(by_origin.items(), key=lambda kv: rank.get(kv[0], 9))]
        lines.append(f"  {role:<12} {task:<{width}}  " + "  ".join(parts))
    return lines
