"""Running a grid: each cell's notebook executed with papermill into its run directory, upstream first.

A cell whose run has ``DONE`` is skipped; the others run (up to ``jobs`` at a time, longest remaining chain first:
:func:`xlt_utils.estimate.critical_path`) as soon as their upstream cell is done, each in a fresh kernel through
papermill (:func:`run_cell`), with cwd = the project root and the torch threads shared out between the cells
(:data:`THREADS_ENV`). A failed cell stops its descendants only (``blocked``); the rest of the grid still runs,
and :func:`raise_on_failure` then fails with one line per failure. An interrupted grid keeps its finished runs
and resumes where it stopped. An evaluation that asks to time inference alone (``time_alone``,
:attr:`xlt_utils.cells.Cell.alone`) starts only when no other cell runs, nothing starts beside it, and it gets every
core's threads (unless the user set them).

What the Ray executor (:mod:`xlt_utils.ray_executor`) shares with the local one comes from here: :func:`run_cell`
(the grid lock, the ``DONE`` check, papermill), :func:`write_manifest`, :class:`Progress`, :class:`GridReport`
and :func:`threads_per_cell`, so a run directory is the same whichever executor produced it. This module does not
know the Ray executor; :mod:`xlt_utils.grid` picks one of the two.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlt_utils import config as C
from xlt_utils import paths, runs
from xlt_utils.cells import Cell, CellResult, Grid
from xlt_utils.errors import XLTError
from xlt_utils.estimate import critical_path, fmt_duration, wall_seconds

# Parameters of a fresh kernel: torch threads per concurrent cell (an execution resource, like the GPU; recorded
# in env.json, not a run parameter).
THREADS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
# What execute() last set them to: a later grid in this process sets them again, while a value the user set (one
# that differs from these) is left alone for every cell.
_GRID_THREADS: dict[str, str] = {}


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
        """Where the executed cells' time went: work (train/eval/inference timing/pretrain) and what surrounds it."""
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


# How every notebook of the project is executed (grid cells here, analysis notebooks in results.render_reports): the
# current environment's kernel (the notebooks name `xlt` for people), cwd = the project root, quiet, and the kernel
# killed as soon as the last cell has run. A graceful shutdown (nbclient's default) waited 1.4-2.5 s per notebook
# for the kernel's interpreter to tear itself down (and logged a KeyboardInterrupt from it), about 130 s of the
# embedded grid's 79 cells; by then every cell has finished and the run wrote its DONE, and the executed notebook is
# written by papermill in this process, so nothing is lost.
PAPERMILL_OPTIONS: dict[str, Any] = {
    "kernel_name": "python3", "cwd": str(paths.PROJECT_ROOT), "progress_bar": False, "log_output": False,
    "extra_arguments": ["--IPKernelApp.log_level=ERROR"], "shutdown_kernel": "immediate"}


def _run_notebook(cell: Cell) -> CellResult:
    import papermill as pm

    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(C.notebook_path(cell.notebook)), str(cell.output_notebook), parameters=cell.params,
            **PAPERMILL_OPTIONS)
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
        est = wall_seconds([r for r in self.results.values() if r.status == "done"], left, self.jobs)
        return "?" if est is None else "~" + fmt_duration(est)

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

    Finished cells (``DONE``) are skipped; cells whose upstream failed are not run (``blocked``); a cell that
    runs :attr:`~xlt_utils.cells.Cell.alone` waits for an idle machine and has it to itself (:func:`_schedule`).
    """
    if jobs < 1:
        raise XLTError(f"--jobs must be >= 1, got {jobs}")
    threads = str(threads_per_cell(jobs))
    # torch threads of each kernel (papermill's kernels inherit this process's environment): the cores shared out
    # among the cells; a value the user set stays for every cell
    managed = all(os.environ.get(var) in (None, _GRID_THREADS.get(var)) for var in THREADS_ENV)
    if managed:
        for var in THREADS_ENV:
            os.environ[var] = _GRID_THREADS[var] = threads
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
        _schedule(pool, pending, running, results, jobs, progress, runner, set_threads if managed else None)
    except KeyboardInterrupt:
        # Running cells are left unfinished (no DONE): the next run redoes them from their checkpoints. Their kernels
        # exit with this process; waiting for the worker threads would wait for the cells to finish.
        out("[grid] interrupted: finished runs are kept; run the same command again to resume")
        sys.stdout.flush()
        os._exit(130)
    pool.shutdown(wait=True)
    if managed:  # as before a lone cell: what later kernels of this process inherit
        set_threads(jobs, False)
    report = GridReport(grid, [results[c.run_id] for c in grid.cells], progress.elapsed(), jobs)
    return report


def set_threads(jobs: int, alone: bool) -> None:
    """Set the torch threads of the next kernel: :func:`threads_per_cell`, all cores for a cell that runs alone."""
    n = str(threads_per_cell(1 if alone else jobs))
    for var in THREADS_ENV:
        os.environ[var] = _GRID_THREADS[var] = n


def _schedule(pool: ThreadPoolExecutor, pending: list[Cell], running: dict[Future, Cell],
              results: dict[str, CellResult], jobs: int, progress: Progress,
              runner: Callable[[Cell], CellResult], threads: Callable[[int, bool], None] | None = None) -> None:
    """Launch ready cells (upstream done) up to ``jobs`` at a time until nothing is pending or running.

    A cell that runs :attr:`~xlt_utils.cells.Cell.alone` starts only when nothing runs (ready cells behind it start
    meanwhile, so it does not idle the machine while others wait), and nothing starts while it runs: with the
    longest-chain-first order these timed leaves run one after another once the rest is done. ``threads`` sets the
    next kernel's threads before each start (None: the user's setting is kept); a lone cell's kernel starts with
    nothing else starting, so changing the environment for it cannot reach another kernel."""
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
            if len(running) >= jobs or any(r.alone for r in running.values()):
                break
            up = c.upstream
            if up is None or (results.get(up.run_id) and results[up.run_id].status in ("done", "skipped")):
                if c.alone and running:
                    continue  # waits for an idle machine
                pending.remove(c)
                progress("start", c, " (alone: it times inference)" if c.alone and jobs > 1 else "")
                if threads is not None:
                    threads(jobs, c.alone)
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
        out(f"[grid] cell time {o['cell_seconds']:.0f}s: work (train/eval/inference timing/pretrain) "
            f"{o['work_seconds']:.0f}s, "
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
