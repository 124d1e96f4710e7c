"""Running the paper study's smoke grid from tests: the environment, the command, and results collection.

Shared by the notebook tier (kill/resume, nbval) and the Ray executor tests; the uninterrupted local run is the
session fixture ``smoke_reference`` in conftest.py, computed once for all of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRID = [sys.executable, "-m", "xlt_utils", "grid", "studies/paper.yaml", "--profile", "smoke", "--jobs", "2"]


def env(outputs: Path) -> dict[str, str]:
    # one torch thread per kernel: the same in every run of a comparison, and robust on a shared CPU
    return {**os.environ, "XLT_OUTPUTS": str(outputs), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1"}


def run_grid(outputs: Path, *extra: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*GRID, *extra], cwd=ROOT, env=env(outputs), capture_output=True, text=True, check=False,
                          **kw)


def collect(outputs: Path) -> bytes:
    subprocess.run([sys.executable, "-m", "xlt_utils", "results"], cwd=ROOT, env=env(outputs), check=True,
                   capture_output=True, timeout=300)
    return (outputs / "results" / "metrics.csv").read_bytes()
