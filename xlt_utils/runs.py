"""Run directories: ids derived from parameters, the ``DONE`` marker, locking, ``params.json`` and ``env.json``.

A run lives in ``outputs/runs/<phase>/<readable-id>-<hash>/``::

    params.json   the validated config, its lineage (model, intermediate task, upstream run ids...)
    env.json      timings, versions, hardware, git revision (never in metrics.csv: metrics stay deterministic)
    metrics.csv   tidy rows: task, split, lang, metric, value, n_examples
    predictions/  XTREME submission layout
    encoder/ or model/   safetensors + tokenizer
    <phase>.ipynb the executed notebook (papermill writes it)
    DONE          written last, atomically

The hash is over the phase and the validated parameters (JSON, sorted keys); the parameters include the upstream
run id, which includes the upstream hash, so a run's id pins its whole history and a run shared by several
studies is computed once. A code change that alters a phase's results bumps that phase's ``PROTOCOL`` version,
which enters the hash, so stale runs are recomputed rather than reused. The readable part
(``<model>__<intermediate>__<target>__s<seed>``) is for people.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xlt_utils import paths
from xlt_utils.errors import XLTError

DONE = "DONE"
PARAMS = "params.json"
ENV = "env.json"
METRICS = "metrics.csv"
LOCK = ".lock"  # held by the kernel running the run's notebook (phases.start → phases.finish)
GRID_LOCK = ".grid.lock"  # held by the grid executor while it runs the cell
HASH_LEN = 10


def runs_dir() -> Path:
    """``outputs/runs`` (``XLT_OUTPUTS`` moves ``outputs/``)."""
    return paths.RUNS


def canonical_json(obj: Any) -> str:
    """The JSON that run ids hash: sorted keys, no whitespace."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# The protocol version of each phase: bump a phase's number in the same commit as a code change that alters what
# the phase computes for the same parameters (its scores, predictions or weights), e.g. a change to how int8
# variants are batched at evaluation. Runs made under the older protocol then no longer match any cell: the next
# grid recomputes them (and, through the upstream ids, everything downstream of them) instead of reusing stale
# results, and leaves the old directories on disk. Version 1 is not hashed, so the ids of runs made before
# versions existed stand. Record each bump in PROTOCOL_CHANGES.
PROTOCOL: dict[str, int] = {"pretrain": 1, "intermediate": 1, "target": 1, "eval": 1, "baselines": 1}

# phase -> {version: what changed}; read by people, and checked by the tests to cover every version above 1.
PROTOCOL_CHANGES: dict[str, dict[int, str]] = {}


# Parameters added after results were committed, with the value that reproduces the runs made before them. While a
# run holds that value the parameter stays out of its id (those runs keep their ids and bundles stay valid); any
# other value enters the hash like every parameter. Results tables show the value for the older runs too.
ID_NEUTRAL_DEFAULTS: dict[str, Any] = {"classifier_pooling": "cls", "packing": False, "max_tokens_per_batch": None,
                                       "multitask_sampling": "proportional", "multitask_cap": None}
# the auxiliary objective of intermediate training, off (xlt_utils.auxiliary.DEFAULTS; a test keeps them equal)
ID_NEUTRAL_DEFAULTS.update({"aux_objective": "none", "aux_weight": 1.0, "aux_every": 1, "aux_batch_size": 16,
                            "aux_languages": None, "aux_per_language": 1000, "aux_temperature": 0.05})
# The same for a parameter whose name another phase already hashes at that value: neutral in these phases only
# (eval's ``num_layers: None`` has always entered eval ids; the training phases' ``num_layers`` came later).
ID_NEUTRAL_BY_PHASE: dict[str, dict[str, Any]] = {"target": {"num_layers": None}, "baselines": {"num_layers": None},
                                                  "eval": {"time_alone": False, "time_reference": False}}


def neutral_defaults(phase: str) -> dict[str, Any]:
    """The id-neutral parameters and values of ``phase`` (:data:`ID_NEUTRAL_DEFAULTS` and the phase's own)."""
    return {**ID_NEUTRAL_DEFAULTS, **ID_NEUTRAL_BY_PHASE.get(phase, {})}


def protocol_version(phase: str) -> int:
    """The current protocol version of ``phase`` (one-line error naming the phases if unknown)."""
    if phase not in PROTOCOL:
        raise XLTError(f"unknown phase {phase!r}; choose from {', '.join(PROTOCOL)}")
    return PROTOCOL[phase]


def params_hash(phase: str, params: Mapping[str, Any], protocol: int | None = None) -> str:
    """Stable hash of a phase's validated parameters (upstream run ids included) and, from version 2 on, of the
    phase's protocol version (``PROTOCOL``; ``protocol`` overrides it, for tests)."""
    version = protocol_version(phase) if protocol is None else protocol
    neutral = neutral_defaults(phase)
    hashed = {k: v for k, v in params.items() if k not in neutral or v != neutral[k]}
    payload: dict[str, Any] = {"phase": phase, "params": hashed}
    if version != 1:
        payload["protocol"] = version
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:HASH_LEN]


def lineage_of(phase: str, params: Mapping[str, Any], upstream_lineage: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a run descends from: model, intermediate task, training seed and the ids of its ancestor runs.

    The same function serves the grid (before anything ran) and the notebook (reading its upstream's
    ``params.json``), so both derive the same run id.
    """
    up = dict(upstream_lineage or {})
    runs = dict(up.get("runs", {}))
    upstream = params.get("upstream")
    if upstream:
        runs[upstream.split("/")[0]] = upstream
    lin: dict[str, Any] = {
        "world": params["world"],
        "model": params["model"],
        "intermediate_task": up.get("intermediate_task", "none"),
        "target_task": up.get("target_task"),
        "seed": up.get("seed"),
        "intermediate_batch_size": up.get("intermediate_batch_size"),
        "target_batch_size": up.get("target_batch_size"),
        "runs": runs,
    }
    if phase == "pretrain":
        lin["pretrain_seed"] = params["seed"]
    else:
        lin["pretrain_seed"] = up.get("pretrain_seed")
    if phase == "intermediate":
        lin["intermediate_task"] = params["intermediate_task"]
        lin["seed"] = params["seed"]
        lin["intermediate_batch_size"] = (params["per_device_train_batch_size"] * params["gradient_accumulation_steps"]
                                        * params.get("num_processes", 1))
    elif phase in ("target", "baselines"):
        lin["target_task"] = params["target_task"]
        lin["seed"] = params["seed"]
        lin["target_batch_size"] = (params["per_device_train_batch_size"] * params["gradient_accumulation_steps"]
                                  * params.get("num_processes", 1))
    elif phase == "eval":
        lin["target_task"] = params["target_task"]
    return lin


def readable_id(phase: str, params: Mapping[str, Any], lineage: Mapping[str, Any]) -> str:
    """``<model>__<intermediate>__<target>__s<seed>`` with the parts that apply to the phase."""
    parts = [params["model"]]
    if phase == "pretrain":
        parts.append(f"s{params['seed']}")
    elif phase == "intermediate":
        parts += [params["intermediate_task"], f"s{params['seed']}"]
    elif phase == "baselines":
        parts += [params["kind"], params["target_task"], f"s{params['seed']}"]
    else:
        parts += [lineage["intermediate_task"] if lineage["runs"] else "base", params["target_task"]]
        seed = params.get("seed", lineage.get("seed"))
        if seed is not None:
            parts.append(f"s{seed}")
    return "__".join(str(p) for p in parts).replace("/", "-")


def run_id(phase: str, params: Mapping[str, Any], lineage: Mapping[str, Any]) -> str:
    """``<phase>/<readable>-<hash>``."""
    return f"{phase}/{readable_id(phase, params, lineage)}-{params_hash(phase, params)}"


def run_path(rid: str) -> Path:
    """The directory of a run id."""
    return runs_dir() / rid


def is_done(rid_or_path: str | Path) -> bool:
    """Whether a run finished (its ``DONE`` marker exists)."""
    p = rid_or_path if isinstance(rid_or_path, Path) else run_path(rid_or_path)
    return (p / DONE).exists()


def read_params(rid: str) -> dict[str, Any]:
    """A finished run's ``params.json`` (raises when the run is missing or unfinished)."""
    p = run_path(rid)
    if not is_done(p):
        state = "is not finished (no DONE marker)" if p.exists() else "does not exist"
        raise XLTError(f"upstream run {rid} {state}; run its cell first (python -m xlt_utils grid ...)")
    return json.loads((p / PARAMS).read_text())


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON through a temporary file and ``os.replace`` (never a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def mark_done(run_dir: Path) -> None:
    """Write ``DONE`` atomically (fsync'd temporary file, then rename): the last thing a run does."""
    tmp = run_dir / (DONE + ".tmp")
    with open(tmp, "w") as f:
        f.write(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, run_dir / DONE)
    try:  # make the rename durable too
        fd = os.open(run_dir, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass


@contextmanager
def locked(run_dir: Path, timeout: float | None = 120.0, name: str = LOCK) -> Iterator[None]:
    """Hold an exclusive lock on a run directory (waits for the previous owner, up to ``timeout``; None = forever).

    Locks die with their process, so a killed owner never leaves a stale lock behind.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    f = open(run_dir / name, "w")  # noqa: SIM115 - held open for as long as the lock is
    t0 = time.monotonic()
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if timeout is not None and time.monotonic() - t0 > timeout:
                f.close()
                raise XLTError(f"run {run_dir} is locked by another process for over {timeout:.0f}s") from None
            time.sleep(0.5)
    try:
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def acquire_lock(run_dir: Path, timeout: float = 120.0) -> Any:
    """Take the run lock for the rest of this process's life (the kernel running the notebook holds it).

    Returns:
        The open lock file (keep a reference; closing it releases the lock).
    """
    cm = locked(run_dir, timeout)
    cm.__enter__()
    return cm


def git_revision() -> str:
    """The checkout's commit (with ``+dirty`` when it has changes); empty when git is unavailable."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=paths.PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        return rev + ("+dirty" if dirty and rev else "")
    except (OSError, subprocess.SubprocessError):  # provenance is best effort; never fail a run on it
        return ""


def cpu_description(cpuinfo: str | None = None) -> str:
    """The CPU model and the vector extensions that change float and int8 kernels (AVX2, AVX-512, AMX, VNNI), e.g.
    ``Intel(R) Xeon(R) Processor [avx2 avx512f amx_tile]``; results of the same run can differ between CPUs with
    different extensions. ``platform.processor()`` is often empty on Linux; ``/proc/cpuinfo`` is read instead."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return platform.processor() or platform.machine()
    model, flags = "", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
              if f in flags]
    model = model or platform.processor() or platform.machine()
    return f"{model} [{' '.join(wanted)}]" if wanted else model


def environment() -> dict[str, Any]:
    """Versions, hardware and revision for ``env.json``.

    Package versions come from their installed metadata, so a cell that never uses torch does not import it for
    this; torch's threads and GPU are filled in by :func:`torch_environment` once the run has used torch."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    env = {
        "python": sys.version.split()[0],
        "torch": installed("torch"),
        "transformers": installed("transformers"),
        "platform": platform.platform(),
        "processor": cpu_description(),
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
        "git_revision": git_revision(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return {**env, **torch_environment()}


def torch_environment() -> dict[str, Any]:
    """torch's version, threads and GPU as this process runs them; empty while torch is not imported."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def peak_memory() -> dict[str, float]:
    """Peak memory of this process so far, in MB: resident set (``peak_rss_mb``, the whole kernel: Python,
    libraries, data) and, on CUDA, the most GPU memory torch allocated (``peak_gpu_mb``)."""
    import resource

    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    out = {"peak_rss_mb": round(rss_kb / 1024, 1)}
    torch = sys.modules.get("torch")  # a process that never imported torch allocated nothing on a GPU
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def list_runs(done_only: bool = True) -> list[str]:
    """Run ids under ``outputs/runs`` (finished ones only by default), sorted."""
    root = runs_dir()
    out = []
    if not root.exists():
        return out
    for phase_dir in sorted(root.iterdir()):
        if not phase_dir.is_dir():
            continue
        for d in sorted(phase_dir.iterdir()):
            if d.is_dir() and (not done_only or is_done(d)):
                out.append(f"{phase_dir.name}/{d.name}")
    return out
