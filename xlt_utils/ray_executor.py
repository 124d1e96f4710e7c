"""The Ray executor: ``python -m xlt_utils grid studies/<s>.yaml --profile P --executor ray [--ray-address A]``.

Every unfinished cell of the grid becomes one Ray task that runs the same code as the local executor
(:func:`xlt_utils.execute.run_cell`: the grid lock, the ``DONE`` check, papermill into the run directory), so a run
directory, its ``metrics.csv`` and the collected results are the same whichever executor produced them.

* **Dependencies**: a cell's task takes its upstream cell's task (an ``ObjectRef``) as an argument, so Ray starts
  it only once the upstream cell has finished. A cell whose upstream failed returns ``blocked`` at once; cells
  elsewhere in the grid go on (as with the local executor).
* **Resources**: each task reserves ``num_cpus`` (the torch threads of the cell; an evaluation that times inference
  alone, ``time_alone``, every CPU of a node: of the local instance, or of the cluster's largest node, so no other
  cell shares its node while it runs; its torch threads stay the per-cell count), ``num_gpus`` (1 for cells
  that train or evaluate a real XLM-R in the ``xtreme`` world; 0 in ``synth`` / ``offline-real`` and for
  majority baselines) and ``memory`` (host RAM, from the model size); see :func:`cell_resources`. A need that
  no node of the instance can meet fails at once, naming the cell.
* **Retries**: a task whose worker process dies (killed, out of memory, node lost) or whose notebook kernel
  dies is retried up to ``retries`` times (Ray's ``max_retries``, and ``retry_exceptions`` for
  :class:`CellCrashed`); the retry waits for the dead attempt's kernel to release the run lock and resumes
  from the cell's last training checkpoint. A notebook that *raises* is a deterministic failure and is not
  retried. Every attempt after the first is printed (``retry``), and the summary lists the cells that needed
  more than one.
* **Where**: by default a local Ray instance is started for the run (``num_cpus`` = jobs x threads per cell,
  no dashboard, a 200 MB object store: results are small) and stopped at the end. ``--ray-address auto`` (or
  ``host:port``) joins a running cluster instead; its nodes need this checkout and environment at the same
  path and ``XLT_OUTPUTS`` on a shared file system (see docs/scale-out.md). On a cluster every ``start`` and
  ``retry`` line names the node that runs the attempt (``on node <node id>[:8] (<ip>)``) and the summary counts
  the attempts per node. The attempt-counting actor is pinned to the driver's node, so that losing any other node
  loses only the cells running there (retried elsewhere), never the bookkeeping.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from xlt_utils import paths
from xlt_utils.cells import Cell, CellResult, Grid
from xlt_utils.errors import XLTError
from xlt_utils.execute import THREADS_ENV, GridReport, Progress, run_cell, threads_per_cell, write_manifest

DEFAULT_RETRIES = 2
OBJECT_STORE_BYTES = 200 * 2**20  # results are small dataclasses; the object store holds nothing else
INSTALL_HINT = "pip install -e '.[distributed]'"
# Environment the cells' kernels need, passed to every worker (a cluster's workers do not inherit the driver's).
ENV_PREFIXES = ("XLT_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "PYTHONHASHSEED")
GIB = 2**30


class CellCrashed(RuntimeError):
    """A cell's notebook kernel died (not an error raised by the notebook's code): the task is retried."""


def import_ray() -> Any:
    """``import ray``, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise XLTError(f"--executor ray needs Ray, which is not installed in this environment; install the "
                       f"extra: {INSTALL_HINT}") from None
    return ray


# ---------------------------------------------------------------------------------------------- resources


def _needs_gpu(cell: Cell) -> bool:
    p = cell.params
    if p.get("world") != "xtreme" or (cell.phase == "baselines" and p.get("kind") == "majority"):
        return False
    from xlt_utils import zoo

    spec = zoo.MODELS.get(zoo.ALIASES.get(p.get("model"), p.get("model")))
    return spec is None or spec.hub_id is not None  # the config-built tiny test model runs on CPU


def cell_resources(cell: Cell, threads: int, node_cpus: int | None = None) -> dict[str, Any]:
    """What a cell's Ray task reserves: ``num_cpus`` (its torch threads; a cell that runs
    :attr:`~xlt_utils.cells.Cell.alone`: ``node_cpus``, a whole node's, when given), ``num_gpus`` and ``memory``
    (bytes).

    GPU: 1 for cells that run a real XLM-R of the ``xtreme`` world (training, evaluation, trained baselines;
    ``num_processes`` for a training cell with several processes), else 0 (the synth and offline-real worlds are
    CPU worlds). Host memory: 1 GiB for the small encoders of the embedded worlds; for a zoo model 2 GiB plus 8 bytes per parameter (fp32 weights loaded on the host, and a
    copy while saving), an estimate that keeps several large models from loading on one node at once.
    """
    from xlt_utils import zoo

    p = cell.params
    memory = 1 * GIB
    if cell.phase == "baselines" and p.get("kind") == "majority":
        memory = GIB // 2
    elif p.get("model") in zoo.MODELS or p.get("model") in zoo.ALIASES:
        spec = zoo.get_model(p["model"])
        if spec.hub_id is not None:
            memory = 2 * GIB + 8 * spec.params
    gpus = int(p.get("num_processes") or 1) if _needs_gpu(cell) else 0  # one GPU per training process
    cpus = max(threads, node_cpus) if cell.alone and node_cpus else threads
    return {"num_cpus": cpus, "num_gpus": gpus, "memory": int(memory)}


def node_cpus(ray: Any) -> int:
    """CPUs of the largest live node (what a cell that runs alone reserves)."""
    return int(max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0))


def _check_feasible(ray: Any, cells: list[Cell], threads: int, local: bool, out: Callable[[str], None],
                    whole: int | None = None) -> None:
    """Fail (local instance) or warn (cluster: an autoscaler may still add nodes) when no node can host a cell."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    keys = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
    for c in cells:
        need = cell_resources(c, threads, whole)
        if any(all(node.get(keys[k], 0) >= v for k, v in need.items() if v) for node in nodes):
            continue
        have = ", ".join(f"{node.get('CPU', 0):g} CPU / {node.get('GPU', 0):g} GPU / "
                         f"{node.get('memory', 0) / GIB:.1f} GiB" for node in nodes) or "no nodes"
        msg = (f"cell {c.run_id} needs {need['num_cpus']} CPU, {need['num_gpus']} GPU and "
               f"{need['memory'] / GIB:.1f} GiB of memory, which no node of the Ray "
               f"{'instance' if local else 'cluster'} offers ({have})")
        if local:
            raise XLTError(msg + "; run it on a GPU machine or join a cluster with --ray-address")
        out(f"[grid] warning: {msg}; it waits until the cluster has such a node")
        return


# ---------------------------------------------------------------------------------------------- tasks


class _Attempts:
    """A Ray actor counting each cell's attempts and where they ran (the driver prints ``start`` and ``retry``
    lines from it)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.events: list[tuple[str, int, str]] = []

    def begin(self, run_id: str, node: str = "") -> int:
        self.counts[run_id] = self.counts.get(run_id, 0) + 1
        self.events.append((run_id, self.counts[run_id], node))
        return self.counts[run_id]

    def since(self, i: int) -> list[tuple[str, int, str]]:
        return self.events[i:]

    def count(self, run_id: str) -> int:
        return self.counts.get(run_id, 0)


def _cell_task(cell: Cell, upstream: CellResult | None, outputs: str, attempts: Any,
               runner: Callable[[Cell], CellResult] | None) -> CellResult:
    """Body of a cell's Ray task (runs in a Ray worker process)."""
    import ray

    if str(paths.OUTPUTS.resolve()) != outputs:  # XLT_OUTPUTS reaches workers through the runtime environment
        raise XLTError(f"this Ray worker writes to {paths.OUTPUTS.resolve()}, the driver to {outputs}: start the workers "
                       f"with XLT_OUTPUTS={outputs} (a path shared by every node)")
    if upstream is not None and upstream.status in ("failed", "blocked"):
        return CellResult(cell, "blocked", error=f"upstream run {upstream.cell.run_id} {upstream.status}")
    node = f"{ray.get_runtime_context().get_node_id()[:8]} ({ray.util.get_node_ip_address()})"
    attempt = attempts.begin.remote(cell.run_id, node)  # not waited for: a task blocked in ray.get lends its CPUs
    result = (runner or run_cell)(cell)
    result.attempts = ray.get(attempt)
    if result.status == "failed" and result.retryable:
        raise CellCrashed(result.error)
    return result


# ---------------------------------------------------------------------------------------------- driver


def _worker_env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
    for var in THREADS_ENV:  # as the local executor: the user's setting, else the cores shared out
        env[var] = os.environ.get(var, str(threads))
    env["XLT_OUTPUTS"] = str(paths.OUTPUTS.resolve())  # absolute: workers do not share the driver's cwd
    env["XLT_CACHE"] = str(paths.CACHE.resolve())
    return env


def _init(ray: Any, address: str | None, jobs: int, threads: int, env: dict[str, str]) -> str:
    """Start a local instance or join a cluster; returns a description for the progress header."""
    common = {"runtime_env": {"env_vars": env}, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address in (None, "", "local"):
            ray.init(num_cpus=jobs * threads, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
                     **common)
            return f"local Ray instance, {jobs * threads} CPUs"
        ray.init(address=address, **common)
        res = ray.cluster_resources()
        return f"Ray cluster at {address}, {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs"
    except Exception as e:  # noqa: BLE001 - Ray raises several types (ConnectionError, RuntimeError, ValueError)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        where = "start a local Ray instance" if address in (None, "", "local") else f"join the Ray cluster at {address}"
        raise XLTError(f"could not {where}: {first}") from None


def _failure(ray: Any, err: Exception, attempts: int) -> str:
    cause = getattr(err, "cause", None)
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(cause, CellCrashed) or isinstance(err, CellCrashed):
        return f"{cause or err} (kernel died; gave up after {tries})"
    if isinstance(err, ray.exceptions.WorkerCrashedError):
        return f"its Ray worker died (gave up after {tries})"
    if isinstance(err, ray.exceptions.RayTaskError):
        inner = cause if cause is not None else err
        first = str(inner).strip().splitlines()[-1] if str(inner).strip() else type(inner).__name__
        return f"{type(inner).__name__}: {first}"
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first} ({tries})"


def execute_ray(grid: Grid, jobs: int = 1, address: str | None = None, retries: int = DEFAULT_RETRIES,
                out: Callable[[str], None] = print,
                runner: Callable[[Cell], CellResult] | None = None) -> GridReport:
    """Run every unfinished cell of a grid as Ray tasks; the same report as :func:`xlt_utils.execute.execute`.

    Args:
        grid: the expanded grid.
        jobs: cells at once on a local instance (it gets ``jobs`` x threads-per-cell CPUs); on a cluster the
            cluster's resources decide, and ``jobs`` only sets the threads per cell (cores / jobs).
        address: ``None`` starts a local instance; ``auto`` or ``host:port`` joins a cluster.
        retries: attempts after the first for a cell whose worker or kernel died.
        out: where progress lines go.
        runner: replaces :func:`xlt_utils.execute.run_cell` (tests).
    """
    ray = import_ray()
    if jobs < 1:
        raise XLTError(f"--jobs must be >= 1, got {jobs}")
    if retries < 0:
        raise XLTError(f"--retries must be >= 0, got {retries}")
    threads = threads_per_cell(jobs)
    env = _worker_env(threads)
    write_manifest(grid)
    results: dict[str, CellResult] = {c.run_id: CellResult(c, "skipped") for c in grid.cells if c.done()}
    todo = [c for c in grid.cells if c.run_id not in results]
    header = (f"[grid] {grid.study} / {grid.profile}: {len(grid.cells)} cells, {len(results)} already done, "
              f"{len(todo)} to run")
    progress = Progress(grid, results, jobs, out)
    if not todo:
        out(header + " (executor ray)")
        return GridReport(grid, [results[c.run_id] for c in grid.cells], progress.elapsed(), jobs)

    own = not ray.is_initialized()
    where = _init(ray, address, jobs, threads, env) if own else "the Ray instance this process joined"
    local = own and address in (None, "", "local")
    try:
        out(header + f" (executor ray: {where}; {env['OMP_NUM_THREADS']} torch threads per cell, "
                     f"up to {retries} retries)")
        whole = node_cpus(ray)
        _check_feasible(ray, todo, threads, local, out, whole)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        attempts = ray.remote(num_cpus=0, scheduling_strategy=here)(_Attempts).remote()  # lives as long as we do
        task = ray.remote(_cell_task)
        refs: dict[str, Any] = {}
        for c in todo:  # topological order: an upstream's ref exists before its dependants are submitted
            up = refs.get(c.upstream.run_id) if c.upstream is not None else None
            refs[c.run_id] = task.options(
                name=c.run_id.replace("/", ":"), max_retries=retries, retry_exceptions=[CellCrashed],
                **cell_resources(c, threads, whole),
            ).remote(c, up, env["XLT_OUTPUTS"], attempts, runner)
        by_ref = {ref: rid for rid, ref in refs.items()}
        cells = {c.run_id: c for c in todo}
        seen = 0
        per_node: dict[str, int] = {}

        def announce() -> None:
            nonlocal seen
            events = ray.get(attempts.since.remote(seen))
            seen += len(events)
            for rid, n, node in events:
                per_node[node] = per_node.get(node, 0) + 1
                where = "" if local else f" on node {node}"
                if n == 1:
                    progress("start", cells[rid], where)
                else:
                    progress("retry", cells[rid], f" (attempt {n} of {retries + 1}: the previous worker or "
                                                  f"kernel died){where}")

        def collect(rid: str) -> None:
            if rid in results:
                return
            c = cells[rid]
            try:
                r = ray.get(refs[rid])
            except ray.exceptions.RayError as e:
                up = c.upstream
                if up is not None and up.run_id in refs:
                    collect(up.run_id)  # finished already: a dependant fails only after its upstream did
                if up is not None and results.get(up.run_id) and results[up.run_id].status in ("failed", "blocked"):
                    r = CellResult(c, "blocked", error=f"upstream run {up.run_id} {results[up.run_id].status}")
                else:
                    n = ray.get(attempts.count.remote(rid))
                    r = CellResult(c, "failed", error=_failure(ray, e, n), attempts=max(n, 1))
            results[rid] = r
            progress.finished(r)

        pending = list(by_ref)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            announce()
            for ref in ready:
                collect(by_ref[ref])
        announce()
        if not local:
            out("[grid] attempts per Ray node: " + ", ".join(f"{k}: {v}" for k, v in sorted(per_node.items())))
    except KeyboardInterrupt:
        interrupted = True
    else:
        interrupted = False
    finally:
        if own:
            ray.shutdown()  # stops the local instance (its workers and their kernels) or leaves the cluster
    if interrupted:
        # As the local executor: running cells stay unfinished (no DONE) and resume from their checkpoints.
        out("[grid] interrupted: finished runs are kept; run the same command again to resume")
        sys.stdout.flush()
        os._exit(130)
    return GridReport(grid, [results[c.run_id] for c in grid.cells], progress.elapsed(), jobs)
