"""The Ray executor (``--executor ray``): one-line errors, resources per cell, retries and blocked descendants with
a fake runner, and the smoke grid on a local Ray instance, with a Ray worker killed mid-cell, giving the same
``metrics.csv`` as the local executor."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from smoke import GRID, ROOT, collect, env

from xlt_utils import grid as G
from xlt_utils import ray_executor as R
from xlt_utils.__main__ import main
from xlt_utils.cells import CellResult
from xlt_utils.execute import raise_on_failure


def _cli(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


def test_unknown_executor_names_the_valid_ones(capsys):
    code, err = _cli(capsys, "grid", "studies/paper.yaml", "--profile", "smoke", "--executor", "dask")
    assert code == 2 and err == ["error: unknown executor 'dask'; valid: local, ray"], err


def test_ray_missing_is_one_line_saying_how_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, err = _cli(capsys, "grid", "studies/paper.yaml", "--profile", "smoke", "--executor", "ray")
    assert code == 2 and len(err) == 1, err
    assert "needs Ray" in err[0] and "pip install -e '.[distributed]'" in err[0], err


def test_ray_address_needs_the_ray_executor(capsys):
    code, err = _cli(capsys, "grid", "studies/paper.yaml", "--profile", "smoke", "--ray-address", "auto")
    assert code == 2 and err == ["error: --ray-address needs --executor ray"], err


def test_cell_resources():
    """GPU for real XLM-R cells of the xtreme world, none in the embedded worlds; memory from the model size."""
    smoke = G.expand("paper", "smoke")
    for c in smoke.cells:
        res = R.cell_resources(c, threads=1)
        assert res["num_gpus"] == 0 and res["num_cpus"] == 1 and 0 < res["memory"] <= 2**30, (c.run_id, res)
    real = G.expand("paper", "xtreme-r")
    by_kind = {}
    for c in real.cells:
        res = R.cell_resources(c, threads=4)
        key = "majority" if c.phase == "baselines" and c.params.get("kind") == "majority" else c.phase
        by_kind.setdefault(key, set()).add((res["num_gpus"], res["memory"]))
    assert by_kind.pop("majority") == {(0, 2**29)}
    large = 2 * 2**30 + 8 * 558_840_832  # xlmr-large: 2 GiB + 8 bytes per parameter
    for phase, needs in by_kind.items():
        assert needs == {(1, large)}, (phase, needs)


def test_a_timed_evaluation_that_runs_alone_reserves_a_whole_node():
    """time_alone under Ray: the cell reserves every CPU of a node (so no other cell is placed beside it); the other
    cells their threads, as before."""
    g = G.expand("rq3_efficiency", "embedded-full-synth")
    lone = [c for c in g.cells if c.alone]
    assert lone and all(c.phase == "eval" for c in lone)
    assert {R.cell_resources(c, threads=1, node_cpus=8)["num_cpus"] for c in lone} == {8}
    assert {R.cell_resources(c, threads=1, node_cpus=8)["num_cpus"] for c in g.cells if not c.alone} == {1}
    assert {R.cell_resources(c, threads=1)["num_cpus"] for c in lone} == {1}  # no node known: its threads


# ---------------------------------------------------------------------------------------------- with Ray



def _ray():
    return pytest.importorskip("ray", reason="the Ray executor needs the extra: pip install -e '.[distributed]'")


def _fake_runner(state_dir: Path, crash_once: str, crash_always: str, broken: str):
    """A runner that writes DONE like a real cell, except: ``crash_once`` dies (kernel-like) on its first attempt,
    ``crash_always`` on every attempt, ``broken`` fails as a notebook that raised (not retried)."""

    def run(cell):
        marker = state_dir / (cell.run_id.replace("/", "_") + ".attempts")
        n = int(marker.read_text()) + 1 if marker.exists() else 1
        marker.write_text(str(n))
        if cell.run_id == crash_always or (cell.run_id == crash_once and n == 1):
            return CellResult(cell, "failed", error="DeadKernelError: Kernel died", retryable=True)
        if cell.run_id == broken:
            return CellResult(cell, "failed", error="ValueError: boom")
        cell.dir.mkdir(parents=True, exist_ok=True)
        (cell.dir / "env.json").write_text("{}")
        (cell.dir / "DONE").write_text("")
        return CellResult(cell, "done", 0.1)

    return run


@pytest.mark.slow
def test_retries_and_blocked_descendants_with_a_fake_runner(tmp_path, monkeypatch):
    """On a local Ray instance: a cell whose kernel dies once is retried and finishes; one that always dies gives
    up after 1 + retries attempts; a notebook that raises is not retried; only their descendants are blocked."""
    ray = _ray()
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the runner is defined here, not in xlt_utils
    out = tmp_path / "outputs"
    for name, value in (("OUTPUTS", out), ("RUNS", out / "runs"), ("RESULTS", out / "results")):
        monkeypatch.setattr(f"xlt_utils.paths.{name}", value)
    (tmp_path / "state").mkdir()
    g = G.expand("paper", "smoke")
    by_phase = {}
    for c in g.cells:
        by_phase.setdefault(c.phase, []).append(c)
    crash_once = by_phase["pretrain"][0].run_id
    crash_always = by_phase["intermediate"][0].run_id
    broken = next(c.run_id for c in by_phase["target"] if c.upstream.phase == "pretrain")
    lines: list[str] = []
    rep = R.execute_ray(g, jobs=2, retries=1, out=lines.append,
                        runner=_fake_runner(tmp_path / "state", crash_once, crash_always, broken))
    status = {r.cell.run_id: r for r in rep.results}

    def below(rid):  # every descendant (cells come upstream first)
        found = {rid}
        for c in g.cells:
            if c.upstream is not None and c.upstream.run_id in found:
                found.add(c.run_id)
        return found - {rid}

    assert status[crash_once].status == "done" and status[crash_once].attempts == 2
    assert status[crash_always].status == "failed" and "gave up after 2 attempts" in status[crash_always].error
    assert status[broken].status == "failed" and status[broken].error == "ValueError: boom"
    assert (tmp_path / "state" / (broken.replace("/", "_") + ".attempts")).read_text() == "1"  # not retried
    blocked = below(crash_always) | below(broken)
    assert blocked and all(status[r].status == "blocked" for r in blocked)
    others = set(status) - blocked - {crash_always, broken}
    assert all(status[r].status == "done" for r in others)
    assert any(line.startswith("[") and " retry " in line and crash_once in line for line in lines), lines
    with pytest.raises(Exception, match=r"2 cell\(s\) failed and \d+ were not run"):
        raise_on_failure(rep)
    assert not ray.is_initialized(), "the local instance is shut down"


def _children(pid: int) -> set[int]:
    """``pid`` and all its descendants (from /proc)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        for child, ppid in parent.items():
            if ppid == p and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _with_outputs(out: Path) -> set[int]:
    """Processes whose environment sets XLT_OUTPUTS to ``out`` (the grid, Ray's processes, the kernels)."""
    return with_env("XLT_OUTPUTS", str(out))


def with_env(var: str, value: str) -> set[int]:
    """Processes whose environment sets ``var`` to ``value`` (also used by test_ray_cluster)."""
    needle = f"{var}={value}".encode()
    found = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if needle in (d / "environ").read_bytes().split(b"\0"):
                    found.add(int(d.name))
            except OSError:
                pass
    return found


def _holder(pids: set[int], path: Path) -> int | None:
    """The process among ``pids`` that has ``path`` open."""
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                    return pid
        except OSError:
            continue
    return None


@pytest.mark.slow
def test_smoke_grid_on_ray_with_a_worker_killed_mid_cell_matches_the_local_executor(smoke_reference, tmp_path):
    """The smoke grid with --executor ray on a local instance; while the intermediate cell's notebook runs, its
    Ray worker is killed (SIGKILL). The cell is retried, the grid completes, and metrics.csv equals the local
    executor's byte for byte."""
    _ray()
    _ref_dir, ref_csv, _ = smoke_reference
    out = tmp_path / "ray"
    inter = next(c for c in G.expand("paper", "smoke").cells if c.phase == "intermediate").run_id
    run_dir = out / "runs" / inter
    t0 = time.monotonic()
    proc = subprocess.Popen([*GRID, "--executor", "ray"], cwd=ROOT, env=env(out), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    killed = None
    try:
        deadline = time.monotonic() + 300
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            family = _children(proc.pid)
            kernel = _holder(family, run_dir / ".lock")  # the cell's notebook is running (phases.start ran)
            worker = _holder(family, run_dir / ".grid.lock") if kernel else None  # the Ray worker executing it
            if worker and kernel != worker and not (run_dir / "DONE").exists():
                os.kill(worker, signal.SIGKILL)
                killed = worker
            time.sleep(0.1)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - t0
    assert killed is not None, "the intermediate cell finished before its worker could be killed"
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert re.search(rf"\] retry +{re.escape(inter)} \(attempt 2 of 3", stdout), stdout
    assert f"{inter} (2 attempts, done)" in stdout, stdout
    assert "13 ran, 0 already done, 0 failed, 0 blocked" in stdout, stdout
    assert len(list((out / "runs").rglob("DONE"))) == 13
    assert collect(out) == ref_csv, "the Ray executor's metrics.csv differs from the local executor's"
    for _ in range(100):  # Ray's processes and the kernels stop with the command (ray.shutdown)
        if not _with_outputs(out):
            break
        time.sleep(0.2)
    assert not _with_outputs(out), "processes of the Ray instance outlived the command"
    print(f"ray smoke grid with one killed worker: {seconds:.0f}s")
