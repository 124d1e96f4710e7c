"""Studies as grids: ``studies/<study>.yaml`` → cells → a DAG of papermill executions into run directories.

Study files, profiles and their expansion into cells live in :mod:`xlt_utils.expand`; the records (``Cell``,
``Grid``, ``CellResult``) in :mod:`xlt_utils.cells`; ``--where``, merged studies and imported results
(:func:`select`, :func:`merge`, :func:`leave_out_imported`) in :mod:`xlt_utils.parts`; cost estimates (the dry
run's GPU-hours and CPU time, the critical path, the ETA) in :mod:`xlt_utils.estimate`.

Execution: a cell whose run has ``DONE`` is skipped; the others run (up to ``jobs`` at a time) as soon as their
upstream cell is done, each in a fresh kernel through papermill, with cwd = the project root. A failed cell stops
its descendants only; the rest of the grid still runs, and the command then fails with one line per failure.
``--executor ray`` runs the same cells as Ray tasks, on a local instance or a cluster (:mod:`xlt_utils.ray_executor`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlt_utils import config as C
from xlt_utils import paths, runs
from xlt_utils.cells import Cell, CellResult, Grid
from xlt_utils.errors import XLTError, unknown
from xlt_utils.estimate import (
    cpu_estimate,
    critical_path,
    estimate_seconds,
    fmt_duration,
    gpu_hours,
    hyperparameter_lines,
)
from xlt_utils.expand import expand, expand_all, studies_with_profile
from xlt_utils.parts import WHERE_KEYS, leave_out_imported, merge, parse_where, select

# Parameters of a fresh kernel: torch threads per concurrent cell (an execution resource, like the GPU; recorded
# in env.json, not a run parameter).
THREADS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------------------------------------- execution


def write_manifest(grid: Grid) -> Path:
    """Record which runs belong to (study, profile): ``outputs/results/studies/<study>__<profile>.json`` (for a
    merged grid, one file per study it merges). Returns the (last) file written."""
    d = paths.RESULTS / "studies"
    d.mkdir(parents=True, exist_ok=True)
    for g in grid.parts or [grid]:
        p = d / f"{g.study}__{g.profile}.json"
        runs.write_json_atomic(p, g.manifest())
    return p


@dataclass
class GridReport:
    """The outcome of :func:`execute`."""

    grid: Grid
    results: list[CellResult]
    wall: float
    jobs: int

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def overhead(self) -> dict[str, float]:
        """Where the executed cells' time went: work (train/eval/pretrain) and what surrounds it."""
        ran = [r for r in self.results if r.status == "done"]
        total = sum(r.seconds for r in ran)
        work = sum(r.timings.get("work", 0.0) for r in ran)
        kernel = sum(max(0.0, r.seconds - r.cells_seconds) for r in ran)
        data = sum(r.timings.get("data", 0.0) + r.timings.get("build", 0.0) for r in ran)
        return {"cells": len(ran), "cell_seconds": total, "work_seconds": work, "kernel_and_papermill": kernel,
                "data_and_model_loading": data, "imports_and_rest": max(0.0, total - work - kernel - data),
                "wall": self.wall, "jobs": self.jobs}


def idle_fraction(results: Sequence[CellResult], start: float, end: float) -> float:
    """Fraction of the clock interval [start, end] during which no cell was training or evaluating."""
    spans = sorted((max(a, start), min(b, end)) for r in results for a, b in r.intervals if b > start and a < end)
    covered, cur_a, cur_b = 0.0, None, None
    for a, b in spans:
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                covered += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        covered += cur_b - cur_a
    return 1.0 - covered / (end - start) if end > start else 0.0


def _cell_durations(nb_path: Path) -> float:
    try:
        nb = json.loads(nb_path.read_text())
    except (OSError, ValueError):
        return 0.0
    return sum(float((c.get("metadata", {}).get("papermill", {}) or {}).get("duration") or 0.0) for c in nb["cells"])


def run_cell(cell: Cell) -> CellResult:
    """Execute one cell's notebook with papermill into its run directory (fresh kernel, cwd = project root)."""
    # Another grid running this cell: wait for it. A kernel of an interrupted attempt: wait until it has exited
    # (kernels die within about a second of their executor). Then a cell finished meanwhile is not run again, and
    # papermill never writes over a finished run's notebook.
    with runs.locked(cell.dir, timeout=None, name=runs.GRID_LOCK):
        with runs.locked(cell.dir, timeout=600, name=runs.LOCK):
            pass
        if cell.done():
            return CellResult(cell, "skipped")
        return _run_notebook(cell)


def _run_notebook(cell: Cell) -> CellResult:
    import papermill as pm

    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(C.notebook_path(cell.notebook)), str(cell.output_notebook), parameters=cell.params,
            kernel_name="python3",  # the current environment's kernel (the notebooks name `xlt` for people)
            cwd=str(paths.PROJECT_ROOT), progress_bar=False, log_output=False,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except pm.PapermillExecutionError as e:
        msg = f"{e.ename}: {str(e.evalue).splitlines()[0] if e.evalue else ''}".strip()
        return CellResult(cell, "failed", time.perf_counter() - t0, f"{msg} (see {cell.output_notebook})")
    except Exception as e:  # noqa: BLE001 - kernel died, notebook unreadable...: the grid goes on, one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return CellResult(cell, "failed", time.perf_counter() - t0, f"{type(e).__name__}: {first}", retryable=True)
    seconds = time.perf_counter() - t0
    if not cell.done():
        return CellResult(cell, "failed", seconds, f"the notebook finished without writing {cell.dir}/DONE "
                                                   f"(did it derive another run id?)")
    env = json.loads((cell.dir / runs.ENV).read_text())
    return CellResult(cell, "done", seconds, timings=env.get("timings", {}),
                      cells_seconds=_cell_durations(cell.output_notebook),
                      intervals=[tuple(x) for x in env.get("work_intervals", [])])


def auto_jobs() -> int:
    """Cells at once by default: one on a GPU machine (they would share the GPU), else two (1 thread each on 2 cores:
    a tiny model uses one core well, and one cell's kernel start-up overlaps the other's training)."""
    try:
        import torch

        if torch.cuda.is_available():
            return 1
    except ImportError:
        pass
    return max(1, min(2, os.cpu_count() or 1))


def parse_jobs(value: str | int) -> int:
    """``--jobs``: a positive integer or ``auto``."""
    if str(value) == "auto":
        return auto_jobs()
    try:
        jobs = int(value)
    except ValueError:
        raise XLTError(f"--jobs must be a positive integer or auto, got {value!r}") from None
    if jobs < 1:
        raise XLTError(f"--jobs must be a positive integer or auto, got {value!r}")
    return jobs


def threads_per_cell(jobs: int) -> int:
    """Torch threads for each of ``jobs`` concurrent cells (cores shared evenly)."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def describe(grid: Grid, out: Callable[[str], None] = print, jobs: int | None = None,
             imported: set[str] | None = None) -> None:
    """Print the cells of a grid with their status (the dry run: done, imported or todo), and a GPU-hour floor
    for zoo models."""
    runnable = leave_out_imported(grid, imported or set(), out=lambda _: None)
    to_run = {c.run_id for c in runnable.cells if not c.done()}
    done = sum(c.done() for c in grid.cells)
    n_imported = sum(not c.done() and c.run_id not in to_run for c in grid.cells)
    by_phase: dict[str, int] = {}
    for c in grid.cells:
        by_phase[c.phase] = by_phase.get(c.phase, 0) + 1
    out(f"[grid] {grid.study} / {grid.profile}: {len(grid.cells)} cells "
        f"({', '.join(f'{n} {p}' for p, n in by_phase.items())}); {done} done, "
        + (f"{n_imported} imported, " if n_imported else "") + f"{len(to_run)} to run")
    hours: dict[str, float] = {}
    unknown_size: list[str] = []
    for c in grid.cells:
        up = f"  <- {c.upstream.run_id}" if c.upstream else ""
        h = gpu_hours(c)
        if h is not None:
            hours[c.phase] = hours.get(c.phase, 0.0) + h
        elif c.phase in ("intermediate", "target") and c.params.get("model") in _zoo_models():
            unknown_size.append(c.run_id)
        status = "done" if c.done() else "todo" if c.run_id in to_run else "imported"
        out(f"  {status:<8}  {c.run_id}{up}" + (f"  [~{h:.2f} GPU-h]" if h is not None else ""))
    for line in hyperparameter_lines(grid.cells):
        out(line)
    if hours:
        total = sum(hours.values())
        parts = ", ".join(f"{ph} {v:.1f}" for ph, v in hours.items())
        out(f"[grid] GPU-hour floor (H100 bf16, 35% MFU, 6 × non-embedding params × padded tokens; "
            f"evaluation not counted): {parts}; total {total:.1f} GPU-h"
            + (f"; {len(unknown_size)} training cells of unknown size not counted" if unknown_size else ""))
    if any(c.params.get("world") != "xtreme" for c in grid.cells):
        out(cpu_estimate(runnable, jobs or auto_jobs()))


def _zoo_models() -> set[str]:
    from xlt_utils import zoo

    return set(zoo.MODELS)


class Progress:
    """Progress lines of a grid run: ``[done/total] verb run-id | elapsed | left ~ETA`` (the ETA extrapolates the
    finished cells' work per unit, by phase). Shared by the local and the Ray executor."""

    def __init__(self, grid: Grid, results: dict[str, CellResult], jobs: int, out: Callable[[str], None] = print):
        self.grid, self.results, self.jobs, self.out = grid, results, jobs, out
        self.total = len(grid.cells)
        self.t_start = time.perf_counter()
        self.lock = threading.Lock()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def eta(self) -> str:
        left = [c for c in self.grid.cells if c.run_id not in self.results]
        if not left:
            return "0m00s"
        est = estimate_seconds([r for r in self.results.values() if r.status == "done"], left)
        return "?" if est is None else "~" + fmt_duration(est / self.jobs)

    def __call__(self, verb: str, c: Cell, extra: str = "") -> None:
        n = len(self.results)
        with self.lock:
            self.out(f"[{n:>3}/{self.total}] {verb:<7} {c.run_id}{extra} | elapsed {fmt_duration(self.elapsed())}"
                     f" | left {self.eta()}")

    def finished(self, r: CellResult) -> None:
        """The line for a cell that has just finished (its result is already in ``results``)."""
        c = r.cell
        again = f", attempt {r.attempts}" if r.attempts > 1 else ""
        if r.status == "done":
            work = r.timings.get("work", 0.0)
            self("done", c, f" in {r.seconds:.1f}s (work {work:.1f}s{again})")
        elif r.status == "skipped":
            self("skipped", c, " (finished by another process meanwhile)")
        elif r.status == "blocked":
            self("blocked", c)
        else:
            self("FAILED", c, f": {r.error}")


def execute(grid: Grid, jobs: int = 1, out: Callable[[str], None] = print,
            runner: Callable[[Cell], CellResult] = run_cell) -> GridReport:
    """Run every unfinished cell of a grid, upstream first, ``jobs`` at a time, with progress lines.

    Finished cells (``DONE``) are skipped; cells whose upstream failed are not run (``blocked``).
    """
    if jobs < 1:
        raise XLTError(f"--jobs must be >= 1, got {jobs}")
    threads = str(threads_per_cell(jobs))
    for var in THREADS_ENV:
        os.environ.setdefault(var, threads)
    write_manifest(grid)
    total = len(grid.cells)
    results: dict[str, CellResult] = {}
    for c in grid.cells:
        if c.done():
            results[c.run_id] = CellResult(c, "skipped")
    n_skip = len(results)
    out(f"[grid] {grid.study} / {grid.profile}: {total} cells, {n_skip} already done, {total - n_skip} to run "
        f"(jobs {jobs}, {os.environ.get('OMP_NUM_THREADS')} torch threads each)")
    progress = Progress(grid, results, jobs, out)

    priority = critical_path(grid.cells)
    # longest remaining chain first; ties keep the grid's (topological, readable) order
    pending = sorted((c for c in grid.cells if c.run_id not in results), key=lambda c: -priority[c.run_id])
    running: dict[Future, Cell] = {}
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        _schedule(pool, pending, running, results, jobs, progress, runner)
    except KeyboardInterrupt:
        # Running cells are left unfinished (no DONE): the next run redoes them from their checkpoints. Their kernels
        # exit with this process; waiting for the worker threads would wait for the cells to finish.
        out("[grid] interrupted: finished runs are kept; run the same command again to resume")
        sys.stdout.flush()
        os._exit(130)
    pool.shutdown(wait=True)
    report = GridReport(grid, [results[c.run_id] for c in grid.cells], progress.elapsed(), jobs)
    return report


def _schedule(pool: ThreadPoolExecutor, pending: list[Cell], running: dict[Future, Cell],
              results: dict[str, CellResult], jobs: int, progress: Progress,
              runner: Callable[[Cell], CellResult]) -> None:
    """Launch ready cells (upstream done) up to ``jobs`` at a time until nothing is pending or running."""
    while pending or running:
        # block descendants of failed cells; launch ready ones
        for c in list(pending):
            up = c.upstream
            if up is not None and results.get(up.run_id) and results[up.run_id].status in ("failed", "blocked"):
                pending.remove(c)
                results[c.run_id] = CellResult(c, "blocked", error=f"upstream run {up.run_id} "
                                               f"{results[up.run_id].status}")
                progress("blocked", c)
        for c in list(pending):
            if len(running) >= jobs:
                break
            up = c.upstream
            if up is None or (results.get(up.run_id) and results[up.run_id].status in ("done", "skipped")):
                pending.remove(c)
                progress("start", c)
                running[pool.submit(runner, c)] = c
        if not running:
            if pending:  # nothing can start: upstream of every pending cell is unresolved (cannot happen)
                raise XLTError("grid deadlock: pending cells whose upstream is not in the grid")
            break
        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for f in finished:
            c = running.pop(f)
            r = f.result()
            results[c.run_id] = r
            progress.finished(r)


def summarize(report: GridReport, out: Callable[[str], None] = print) -> None:
    """Print the outcome and the time spent outside training and evaluation."""
    g = report.grid
    out(f"[grid] {g.study} / {g.profile}: {report.count('done')} ran, {report.count('skipped')} already done, "
        f"{report.count('failed')} failed, {report.count('blocked')} blocked, in {fmt_duration(report.wall)}")
    o = report.overhead()
    if o["cells"]:
        share = 1 - o["work_seconds"] / o["cell_seconds"] if o["cell_seconds"] else 0.0
        out(f"[grid] cell time {o['cell_seconds']:.0f}s: work (train/eval/pretrain) {o['work_seconds']:.0f}s, "
            f"kernel start + papermill {o['kernel_and_papermill']:.0f}s, data/model loading "
            f"{o['data_and_model_loading']:.0f}s, imports and rest {o['imports_and_rest']:.0f}s "
            f"-> {100 * share:.0f}% outside training and evaluation")
    retried = [r for r in report.results if r.attempts > 1]
    if retried:
        out(f"[grid] {len(retried)} cell(s) needed more than one attempt (worker or kernel died): "
            + ", ".join(f"{r.cell.run_id} ({r.attempts} attempts, {r.status})" for r in retried))


def raise_on_failure(report: GridReport) -> None:
    """One line per failed cell, then raise with the counts (the CLI exits non-zero)."""
    failed = [r for r in report.results if r.status == "failed"]
    blocked = [r for r in report.results if r.status == "blocked"]
    if not failed and not blocked:
        return
    for r in failed:
        print(f"error: {r.cell.run_id} failed: {r.error}", file=sys.stderr)
    raise XLTError(f"{len(failed)} cell(s) failed and {len(blocked)} were not run because their upstream run failed "
                   f"({report.count('done') + report.count('skipped')} finished runs kept); fix the cause and rerun "
                   f"the same command to resume")


# ---------------------------------------------------------------------------------------------- command line


def _hub_ids(obj: Any) -> list[str]:
    """Every ``hub_id`` value inside a task's source description."""
    if isinstance(obj, Mapping):
        found = [obj["hub_id"]] if isinstance(obj.get("hub_id"), str) else []
        return found + [h for v in obj.values() for h in _hub_ids(v)]
    if isinstance(obj, (list, tuple)):
        return [h for v in obj for h in _hub_ids(v)]
    return []


def preflight(grid: Grid) -> None:
    """Fail at once, naming it, when a model or dataset that unfinished cells need cannot be reached.

    Models count as available when their config is in the local Hugging Face cache; datasets when
    ``XLT_XTREME_LOCAL_DIR`` holds local copies. Otherwise the Hub must answer (one short connection probe),
    so that a real study without network stops before starting hundreds of kernels that would each fail.
    """
    todo = [c for c in grid.cells if not c.done() and c.params.get("world") == "xtreme"]
    if not todo:
        return
    from huggingface_hub import try_to_load_from_cache

    from xlt_utils import zoo
    from xlt_utils.tasks import get_task
    from xlt_utils.xtreme import source

    if source.hub_reachable():
        return
    for name in sorted({c.params["model"] for c in todo if c.params.get("model") in zoo.MODELS}):
        spec = zoo.get_model(name)
        if spec.hub_id and not isinstance(try_to_load_from_cache(spec.hub_id, "config.json",
                                                                 revision=spec.revision), str):
            n = sum(c.params.get("model") == name for c in todo)
            raise XLTError(f"cannot reach the Hugging Face Hub for model {spec.hub_id} (revision {spec.revision}), "
                           f"needed by {n} cells, and it is not in the local cache; run where the Hub is "
                           f"reachable or download it first")
    if source.local_root() is None:
        tasks = sorted({c.params.get("intermediate_task") or c.params.get("target_task") for c in todo} - {None})
        for t in tasks:
            ids = sorted(set(_hub_ids(dict(get_task(t).source))))
            if ids:
                raise XLTError(f"cannot reach the Hugging Face Hub for dataset {ids[0]} (task {t}) and "
                               f"XLT_XTREME_LOCAL_DIR is not set; run where the Hub is reachable or point "
                               f"XLT_XTREME_LOCAL_DIR at local copies in the Hub layout")


EXECUTORS = ("local", "ray")


def check_executor(args: Any) -> None:
    """Validate ``--executor`` (one line naming the valid ones) and, for Ray, that it is installed, before any
    work starts."""
    if args.executor not in EXECUTORS:
        raise unknown("executor", args.executor, EXECUTORS)
    if args.executor == "local" and getattr(args, "ray_address", None):
        raise XLTError("--ray-address needs --executor ray")
    if args.executor == "ray":
        from xlt_utils import ray_executor

        ray_executor.import_ray()


def run_with(args: Any, grid: Grid, jobs: int) -> GridReport:
    """Execute a grid with the executor the command line names (``local`` or ``ray``)."""
    if args.executor == "ray":
        from xlt_utils import ray_executor

        return ray_executor.execute_ray(grid, jobs=jobs, address=args.ray_address, retries=args.retries)
    return execute(grid, jobs=jobs)


def _cmd_grid(args: Any) -> int:
    from xlt_utils import results

    check_executor(args)
    where = parse_where(args.where)
    grid = select(expand(args.study, args.profile), where)
    imported = results.imported_run_ids()
    if args.dry_run:
        describe(grid, jobs=parse_jobs(args.jobs), imported=imported)
        return 0
    grid = leave_out_imported(grid, imported)
    preflight(grid)
    report = run_with(args, grid, parse_jobs(args.jobs))
    summarize(report)
    raise_on_failure(report)
    return 0


def _cmd_results(args: Any) -> int:
    from xlt_utils import results

    if args.export and (not args.study or not args.profile):
        raise XLTError("--export DIR needs --study S and --profile P (the grid whose rows it writes)")
    if (args.study or args.profile) and not args.export:
        raise XLTError("--study and --profile only go with --export DIR")
    if args.where and not args.export:
        raise XLTError("--where only goes with --export DIR (the part of the grid whose rows it writes)")
    if args.export:
        where = parse_where(args.where)
        part = select(expand(args.study, args.profile), where) if where else None
        results.grid_manifest(args.study, args.profile)  # the grid ran here: checked before any work
        meta = results.export_bundle(args.study, args.profile, args.export,
                                     only=None if part is None else {c.run_id for c in part.cells},
                                     where=args.where)
        print(f"[results] bundle {args.export}: {len(meta['runs'])} runs of {meta['study']} / {meta['profile']} "
              f"({meta['part_cells']} cells in this part, {meta['grid_cells']} in the grid), rows {meta['rows']}")
        if len(meta["runs"]) < meta["part_cells"]:
            print(f"[results] warning: {meta['part_cells'] - len(meta['runs'])} cell(s) of this part have not finished "
                  f"here; a machine that imports the bundle runs them (and the cells they need) itself")
        return 0
    for src in args.import_ or []:
        results.import_bundle(src)
    path = results.collect()
    import pandas as pd

    df = pd.read_csv(path, usecols=["run_id"])
    print(f"[results] {path}: {len(df)} rows from {df['run_id'].nunique()} runs")
    return 0


def _cmd_report(args: Any) -> int:
    from xlt_utils import results

    results.render_reports(args.profile, jobs=parse_jobs(args.jobs))
    return 0


def _cmd_reproduce(args: Any) -> int:
    """Grid(s) → results → report, with a summary of where everything is and of the time outside the work."""
    from xlt_utils import results

    t0, clock0 = time.perf_counter(), time.time()
    check_executor(args)
    jobs = parse_jobs(args.jobs)
    studies = studies_with_profile(args.profile) if args.study == "all" else [args.study]
    grids = expand_all(studies, args.profile)  # every study is validated before anything runs
    # one pass over the union of the studies' cells: shared cells run once, the longest chains of every study
    # start first, and no study waits for another's tail
    report = run_with(args, leave_out_imported(merge(grids), results.imported_run_ids()), jobs)
    summarize(report)
    reports = [report]
    csv = results.collect()
    print(f"[results] {csv}")
    failed = [r for rep in reports for r in rep.results if r.status in ("failed", "blocked")]
    htmls = [] if failed else results.render_reports(args.profile, [g.study for g in grids], jobs=jobs)
    wall = time.perf_counter() - t0
    ran = [r for rep in reports for r in rep.results if r.status == "done"]
    work = sum(r.timings.get("work", 0.0) for r in ran)
    print(f"[reproduce] {', '.join(studies)} / {args.profile} finished in {fmt_duration(wall)}")
    print(f"  results : {csv}")
    figs = sorted((paths.FIGURES).glob(f"*/{args.profile}/*.png")) if paths.FIGURES.exists() else []
    print(f"  figures : {', '.join(str(f) for f in figs) or '(none)'}")
    print(f"  report  : {', '.join(str(h) for h in htmls) or '(none)'}")
    print(f"  runs    : {runs.runs_dir()}")
    if ran:
        idle = idle_fraction(ran, clock0, time.time())
        share = 1 - work / (wall * jobs)
        print(f"  time outside training and evaluation: {100 * idle:.0f}% of the wall time (no cell training or "
              f"evaluating); {100 * share:.0f}% of core time (work {work:.0f}s of {fmt_duration(wall)} x {jobs} job(s), "
              f"{len(ran)} cells)")
    else:
        print("  nothing to run: every cell was already done (no training)")
    for rep in reports:
        raise_on_failure(rep)
    return 0


def add_commands(sub: Any) -> None:
    """Add ``grid``, ``results``, ``report`` and ``reproduce`` to the ``python -m xlt_utils`` parser."""
    g = sub.add_parser("grid", help="expand a study's grid and run its cells with papermill")
    g.add_argument("study", help="studies/<study>.yaml (or the study's name)")
    g.add_argument("--profile", default="embedded", help="profile in the study file (default: embedded)")
    g.add_argument("--dry-run", action="store_true", help="list the cells and their status; run nothing")
    g.add_argument("--where", action="append", default=None, metavar="KEY=VALUE[,VALUE]",
                   help=f"only the cells that match (and what they descend from); repeatable; keys: "
                        f"{', '.join(WHERE_KEYS)}")
    g.add_argument("--jobs", default="auto", help="cells run at once, or auto (1 with a GPU, else 2); "
                   "torch threads are shared out")
    _executor_arguments(g)
    g.set_defaults(func=_cmd_grid)

    r = sub.add_parser("results", help="collect every finished run into outputs/results/metrics.csv")
    r.add_argument("--import", dest="import_", nargs="+", default=None, metavar="BUNDLE",
                   help="first import these result bundles (their rows count for runs that are not here)")
    r.add_argument("--export", default=None, metavar="DIR",
                   help="write the rows of --study/--profile from the runs finished here to a new folder DIR")
    r.add_argument("--study", default=None, help="with --export: the study")
    r.add_argument("--profile", default=None, help="with --export: the profile")
    r.add_argument("--where", action="append", default=None, metavar="KEY=VALUE[,VALUE]",
                   help="with --export: only the runs of this part of the grid (as for grid --where)")
    r.set_defaults(func=_cmd_results)

    rp = sub.add_parser("report", help="render the analysis notebooks to HTML under outputs/report/")
    rp.add_argument("--profile", default="embedded", help="which profile's results (default: embedded)")
    rp.add_argument("--jobs", default="auto", help="notebooks executed at once, or auto (as for cells)")
    rp.set_defaults(func=_cmd_report)

    rr = sub.add_parser("reproduce", help="grid(s) + results + report: what `make reproduce` runs")
    rr.add_argument("--study", default="all", help="a study name, or all (every study with the profile)")
    rr.add_argument("--profile", default="embedded", help="smoke | embedded | embedded-full | xtreme-r")
    rr.add_argument("--jobs", default="auto", help="cells run at once, or auto (1 with a GPU, else 2)")
    _executor_arguments(rr)
    rr.set_defaults(func=_cmd_reproduce)


def _executor_arguments(p: Any) -> None:
    from xlt_utils.ray_executor import DEFAULT_RETRIES

    p.add_argument("--executor", default="local",
                   help="local (threads on this machine) or ray (each cell a Ray task; pip install -e .[distributed])")
    p.add_argument("--ray-address", default=None,
                   help="with --executor ray: a cluster to join (auto, or host:port of its head); default: start a "
                        "local Ray instance for this run and stop it at the end")
    p.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                   help=f"with --executor ray: attempts after the first for a cell whose worker or kernel died "
                        f"(default {DEFAULT_RETRIES}); a cell whose notebook raised is not retried")
