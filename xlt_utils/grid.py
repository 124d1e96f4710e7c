"""The grid's command line and public face: ``python -m xlt_utils grid | results | report | reproduce``.

``studies/<study>.yaml`` ──expand──▶ cells ──DAG──▶ executor (local | ray) ──papermill──▶ run directories. Each
step has its own module; this one parses the commands, checks what a command needs before any work starts (the
executor, the Hub for a real study: :func:`preflight`), prints the dry run (:func:`describe`) and picks the
executor. The rooms, bottom up:

* :mod:`xlt_utils.cells`: the records: ``Cell``, ``Grid``, ``CellResult``.
* :mod:`xlt_utils.expand`: study files and profiles → validated cells and their run ids (:func:`expand`).
* :mod:`xlt_utils.parts`: ``--where`` (:func:`select`), several studies as one grid (``merge``), imported results
  left out (``leave_out_imported``).
* :mod:`xlt_utils.estimate`: what a grid costs: GPU-hours, CPU time from the runs finished here, the critical path.
* :mod:`xlt_utils.execute`: the local executor (:func:`execute`): papermill per cell, the DAG schedule, progress.
* :mod:`xlt_utils.ray_executor`: the same cells as Ray tasks (``--executor ray``), built on :mod:`xlt_utils.execute`.

:func:`expand`, :func:`expand_all`, :func:`select`, :func:`execute` and :func:`describe` can be imported from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from xlt_utils import paths, ray_executor, runs
from xlt_utils.cells import Grid
from xlt_utils.errors import XLTError, unknown
from xlt_utils.estimate import cpu_estimate, fmt_duration, gpu_hours, hyperparameter_lines
from xlt_utils.execute import (
    GridReport,
    auto_jobs,
    execute,
    idle_fraction,
    parse_jobs,
    raise_on_failure,
    summarize,
)
from xlt_utils.expand import expand, expand_all, studies_with_profile
from xlt_utils.parts import WHERE_KEYS, leave_out_imported, merge, parse_where, select

__all__ = ["add_commands", "describe", "execute", "expand", "expand_all", "preflight", "select"]


# ---------------------------------------------------------------------------------------------- the dry run


def describe(grid: Grid, out: Callable[[str], None] = print, jobs: int | None = None,
             imported: set[str] | None = None) -> None:
    """Print the cells of a grid with their status (the dry run: done, imported, restore (a pretraining run copied
    from a committed checkpoint, :func:`xlt_utils.phases.restorable`) or todo), and a GPU-hour floor for zoo
    models."""
    from xlt_utils.phases import restorable

    runnable = leave_out_imported(grid, imported or set(), out=lambda _: None)
    to_run = {c.run_id for c in runnable.cells if not c.done()}
    restored = {c.run_id: name for c in runnable.cells if c.phase == "pretrain" and c.run_id in to_run
                and (imported and c.run_id in imported) and (name := restorable(c.run_id, c.params["model"]))}
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
        status = ("done" if c.done() else "restore" if c.run_id in restored else "todo" if c.run_id in to_run
                  else "imported")
        out(f"  {status:<8}  {c.run_id}{up}" + (f"  [~{h:.2f} GPU-h]" if h is not None else "")
            + (f"  (copied from checkpoints/synth/{restored[c.run_id]}: the bytes an imported bundle recorded for "
               f"it)" if c.run_id in restored else ""))
    for line in hyperparameter_lines(grid.cells):
        out(line)
    if hours:
        total = sum(hours.values())
        parts = ", ".join(f"{ph} {v:.1f}" for ph, v in hours.items())
        out(f"[grid] GPU-hour floor (H100 bf16, 35% MFU, 6 × non-embedding params × padded tokens; "
            f"evaluation not counted): {parts}; total {total:.1f} GPU-h"
            + (f"; {len(unknown_size)} training cells of unknown size not counted" if unknown_size else ""))
    if any(c.params.get("world") != "xtreme" for c in grid.cells):
        out(cpu_estimate(runnable, jobs or auto_jobs(), skip=set(restored)))


def _zoo_models() -> set[str]:
    from xlt_utils import zoo

    return set(zoo.MODELS)


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
        from xlt_utils.multitask import components

        names = {c.params.get("intermediate_task") or c.params.get("target_task") for c in todo} - {None}
        for t in sorted({part for n in names for part in components(n)}):  # a multi-task cell: each of its tasks
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
        ray_executor.import_ray()


def run_with(args: Any, grid: Grid, jobs: int) -> GridReport:
    """Execute a grid with the executor the command line names (``local`` or ``ray``)."""
    if args.executor == "ray":
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
        reused = meta.get("reused", {})
        print(f"[results] bundle {args.export}: {len(meta['runs'])} runs of {meta['study']} / {meta['profile']} "
              f"({meta['part_cells']} cells in this part, {meta['grid_cells']} in the grid"
              + (f"; {len(reused)} of the runs from imported bundles, see bundle.json 'reused'" if reused else "")
              + f"), rows {meta['rows']}")
        if len(meta["runs"]) < meta["part_cells"]:
            print(f"[results] warning: {meta['part_cells'] - len(meta['runs'])} cell(s) of this part have not finished "
                  f"here and no imported bundle holds them; a machine that imports the bundle runs them (and the "
                  f"cells they need) itself")
        for what, d in sorted(meta.get("reused_differs", {}).items()):
            print(f"[results] warning: the reused runs were computed from another {what} (sha256 "
                  f"{str(d['reused'])[:12]}) than this machine's runs of this part ({str(d['here'])[:12]}): arms from "
                  f"the two should not be compared")
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
    p.add_argument("--executor", default="local",
                   help="local (threads on this machine) or ray (each cell a Ray task; pip install -e .[distributed])")
    p.add_argument("--ray-address", default=None,
                   help="with --executor ray: a cluster to join (auto, or host:port of its head); default: start a "
                        "local Ray instance for this run and stop it at the end")
    p.add_argument("--retries", type=int, default=ray_executor.DEFAULT_RETRIES,
                   help=f"with --executor ray: attempts after the first for a cell whose worker or kernel died "
                        f"(default {ray_executor.DEFAULT_RETRIES}); a cell whose notebook raised is not retried")
