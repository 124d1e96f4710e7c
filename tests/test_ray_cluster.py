"""The Ray executor on a cluster of two nodes: a head and a worker started as separate ``ray start`` processes on
this machine (loopback addresses, one CPU and an 80 MiB object store each), the smoke grid submitted with
``--ray-address``. Cells run on both nodes; the worker node is killed (every one of its processes, SIGKILL: the
node is lost) while it runs a cell, that cell is retried on the head, and ``metrics.csv`` equals the local
executor's byte for byte."""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from smoke import GRID, ROOT, collect, env
from test_ray_executor import with_env

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="the Ray executor needs the extra: pip install -e '.[distributed]'")]  # before the smoke fixture runs

# Loopback, but not 127.0.0.1: Ray 2.60 rewrites 127.0.0.1 and localhost to the machine's reachable address.
HOST = "127.0.0.2"
MARKER = "XLT_RAY_TEST_NODE"  # set in each node's environment; every process of the node inherits it
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _pids(value: str) -> set[int]:
    """Processes whose environment has ``MARKER=value``: one node's ``ray start``, raylet, workers, kernels."""
    return with_env(MARKER, value)


def _locked_runs(pids: set[int], runs: Path) -> set[Path]:
    """Run directories whose ``.lock`` one of ``pids`` holds (a kernel running that run's notebook)."""
    held = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = Path(os.readlink(f"/proc/{pid}/fd/{fd}"))
                if target.name == ".lock" and target.parent.parent.parent == runs:
                    held.add(target.parent)
        except OSError:
            continue
    return held


class _Node:
    """One ``ray start --block`` process (the node lives as long as it does) with its own temp dir and log."""

    def __init__(self, name: str, root: Path, base_env: dict[str, str], *args: str):
        self.name, self.temp, self.log = name, root / name, root / f"{name}.log"
        self.marker = f"{root}:{name}"
        self.temp.mkdir()
        cmd = [RAY, "start", "--block", "--node-ip-address", HOST, "--num-cpus", "1",
               "--object-store-memory", str(80 * 2**20), "--temp-dir", str(self.temp),
               "--dashboard-agent-listen-port", str(_free_port()), "--disable-usage-stats", *args]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**base_env, MARKER: self.marker}, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_started(self, timeout: float = 180) -> str:
        """Wait for the node to be up; returns its Ray node id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ray start ({self.name}) exited: {self.log.read_text()[-3000:]}")
            if "Ray runtime started." in self.log.read_text():
                ids = {p.name.rsplit("_", 1)[1] for p in (self.temp / "session_latest").glob("metrics_agent_port_*")}
                assert len(ids) == 1, ids
                return ids.pop()
            time.sleep(0.5)
        raise AssertionError(f"ray start ({self.name}) not up after {timeout}s: {self.log.read_text()[-3000:]}")

    def kill(self) -> set[int]:
        """Lose the node: SIGKILL every process of it (ray start, raylet, agents, workers, their kernels)."""
        pids = _pids(self.marker)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def stop(self) -> None:
        """``ray start --block`` stops its node on SIGTERM; what is left after 30 s is killed."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self.kill()
        self.proc.wait()


def test_smoke_grid_on_a_two_node_cluster_with_the_worker_node_lost_matches_the_local_executor(smoke_reference,
                                                                                                 tmp_path):
    _ref_dir, ref_csv, _ = smoke_reference
    out = tmp_path / "outputs"
    runs = out / "runs"
    root = Path(tempfile.mkdtemp(prefix="xltray", dir="/tmp"))  # short: Ray's socket paths live under it
    # Ray 2.60 asks every client of a cluster for its token: one for this cluster, in the environment (not ~/.ray)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    node_env = {k: v for k, v in os.environ.items() if not k.startswith("XLT_")}  # workers get XLT_* from the driver
    port = _free_port()
    t0 = time.monotonic()
    nodes: list[_Node] = []
    grid = None
    try:
        head = _Node("head", root, {**node_env, **auth}, "--head", "--port", str(port), "--include-dashboard",
                     "false")
        nodes.append(head)
        head_id = head.wait_started()
        worker = _Node("worker", root, {**node_env, **auth}, "--address", f"{HOST}:{port}")
        nodes.append(worker)
        worker_id = worker.wait_started()
        started = time.monotonic() - t0

        with open(root / "grid.out", "w") as so, open(root / "grid.err", "w") as se:
            grid = subprocess.Popen([*GRID, "--executor", "ray", "--ray-address", f"{HOST}:{port}"], cwd=ROOT,
                                    env={**env(out), **auth}, stdout=so, stderr=se, start_new_session=True)
        # Kill the worker node while it runs a cell, once it has finished two (its output is part of the results).
        seen_on_worker: set[Path] = set()
        victim = None
        deadline = time.monotonic() + 600
        while victim is None and grid.poll() is None and time.monotonic() < deadline:
            running = {d for d in _locked_runs(_pids(worker.marker), runs) if not (d / "DONE").exists()}
            seen_on_worker |= running
            if running and sum((d / "DONE").exists() for d in seen_on_worker - running) >= 2:
                victim = min(running)
                worker.kill()
            time.sleep(0.2)
        grid.wait(timeout=900)
    finally:
        if grid is not None and grid.poll() is None:
            os.killpg(grid.pid, signal.SIGKILL)
            grid.wait()
        for node in reversed(nodes):
            node.stop()
        left = set().union(*(_pids(node.marker) for node in nodes))
        logs = {f: (root / f).read_text() if (root / f).exists() else "" for f in ("grid.out", "grid.err")}
        shutil.rmtree(root, ignore_errors=True)
    seconds = time.monotonic() - t0
    stdout = logs["grid.out"]
    diag = stdout[-4000:] + logs["grid.err"][-3000:]
    assert victim is not None, "the worker node never ran a third cell before the grid ended:\n" + diag
    assert grid.returncode == 0, diag
    assert not left, f"processes of the cluster outlived it: {sorted(left)}"

    # Cells landed on both nodes: each start line names its node.
    starts = dict(re.findall(r"\] start +(\S+) on node ([0-9a-f]{8}) \(127\.0\.0\.2\)", stdout))
    assert len(starts) == 13, stdout
    assert set(starts.values()) == {head_id[:8], worker_id[:8]}, (head_id, worker_id, stdout)
    rid = f"{victim.parent.name}/{victim.name}"
    assert starts[rid] == worker_id[:8], (rid, stdout)
    assert re.search(rf"\] retry +{re.escape(rid)} \(attempt 2 of 3: [^)]*\) on node {head_id[:8]} ", stdout), stdout
    assert f"{rid} (2 attempts, done)" in stdout, stdout
    per_node = [line for line in stdout.splitlines() if "attempts per Ray node:" in line]
    assert len(per_node) == 1 and head_id[:8] in per_node[0] and worker_id[:8] in per_node[0], stdout
    assert "13 ran, 0 already done, 0 failed, 0 blocked" in stdout, stdout
    assert len(list(runs.rglob("DONE"))) == 13
    assert collect(out) == ref_csv, "the two-node cluster's metrics.csv differs from the local executor's"
    on_worker = sum(v == worker_id[:8] for v in starts.values())
    print(f"two-node Ray cluster: nodes up in {started:.0f}s, {on_worker} of 13 cells started on the worker, "
          f"{rid} lost with it and rerun on the head; {seconds:.0f}s in all")
