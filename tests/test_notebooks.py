"""Notebooks: the contract (one parameters cell of literals matching the config, thin cells, no outputs), nbval on
every notebook at its smoke defaults, and the smoke grid killed at a random moment and resumed."""

from __future__ import annotations

import ast
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from smoke import GRID, collect, run_grid
from smoke import env as _env

from xlt_utils import config as C
from xlt_utils import runs

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PHASE_OF = {**{nb: phase for phase, nb in C.PHASE_NOTEBOOKS.items()},
            **{nb: "analysis" for nb in C.ANALYSIS_NOTEBOOKS.values()}}


def _nb(path: Path) -> dict:
    return json.loads(path.read_text())


def _src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_every_phase_and_analysis_notebook_exists():
    assert {p.stem for p in NOTEBOOKS} == set(PHASE_OF)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_contract(path):
    nb = _nb(path)
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown" and _src(cells[0]).startswith("# "), "title cell first"
    assert "Inputs" in _src(cells[0]) and "Outputs" in _src(cells[0])
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged parameters"
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code[0] is params[0], "the parameters cell is the first code cell"
    names = C.parse_parameters(_src(params[0]))  # literals only
    assert list(names) == list(dict.fromkeys(names)), "no parameter twice"
    assert set(names) == set(C.field_names(PHASE_OF[path.stem])), "parameters == the config's fields"
    import papermill

    # papermill must read every line too (`papermill --help-notebook`): it cannot parse `int | None` annotations
    # (write "Optional[int]") nor a second "=" on a line (keep "=" out of comments)
    assert set(papermill.inspect_notebook(str(path))) == set(names)
    assert nb["metadata"]["kernelspec"]["name"] == "xlt"
    assert "papermill" not in nb["metadata"]
    for c in code:
        assert c.get("outputs") == [] and c.get("execution_count") is None, "committed without outputs"
        assert "papermill" not in c.get("metadata", {})
        src = _src(c)
        for bad in ("%autoreload", "sys.path", "!pip", "%pip", "%run"):
            assert bad not in src, bad
        for node in ast.walk(ast.parse(src)):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), \
                f"logic belongs in xlt_utils: {src[:60]!r}"
    if PHASE_OF[path.stem] != "analysis":
        bodies = [_src(c) for c in code]
        assert any("phases.configure(" in b for b in bodies) and "phases.finish(run)" in bodies[-1], \
            "validate into a config first, mark done last"


# ---------------------------------------------------------------------------------------------- slow tier


@pytest.mark.slow
def test_smoke_grid_killed_at_a_random_moment_resumes_to_the_same_results(smoke_reference, tmp_path):
    _ref_dir, ref_csv, seconds = smoke_reference
    assert b"\npaper,smoke," in ref_csv
    out = tmp_path / "b"
    seed = int(os.environ.get("XLT_KILL_SEED", time.time()))  # set it to replay a failure
    delay = random.Random(seed).uniform(3.0, max(4.0, 0.8 * seconds))
    proc = subprocess.Popen(GRID, cwd=ROOT, env=_env(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the executor; its kernels exit when their parent dies
        proc.wait()
    runs_dir = out / "runs"
    for lock in runs_dir.rglob(runs.LOCK) if runs_dir.exists() else []:
        with runs.locked(lock.parent, timeout=120):  # kernels of the killed grid have exited (they die with it)
            pass
    finished = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in runs_dir.rglob("DONE")} if runs_dir.exists() else {}
    r = run_grid(out, timeout=900)
    assert r.returncode == 0, f"(kill after {delay:.1f}s, seed {seed})\n" + r.stdout[-3000:] + r.stderr[-3000:]
    assert f"{len(finished)} already done" in r.stdout.splitlines()[0], (delay, r.stdout.splitlines()[0])
    for p, stamp in finished.items():  # no finished cell was recomputed
        assert (p.stat().st_mtime_ns, p.stat().st_ino) == stamp, p
    assert collect(out) == ref_csv, f"results differ after a kill at {delay:.1f}s (seed {seed})"
    # a second run of a finished grid trains nothing
    r = run_grid(out, timeout=300)
    assert r.returncode == 0 and "0 to run" in r.stdout.splitlines()[0]


@pytest.mark.slow
def test_nbval_every_notebook_at_its_smoke_defaults(smoke_reference, tmp_path):
    """nbval (lax, current env) on every notebook; the analysis notebooks read the smoke grids' results (the
    paper study's, and the five research questions' run on top of it)."""
    ref_dir, _, _ = smoke_reference
    out = tmp_path / "nbval"
    shutil.copytree(ref_dir, out)  # the paper study's smoke runs; the other studies reuse the cells they share
    # the five research questions' smoke grids as one merged grid (make reproduce's path: two cells at a time across
    # the studies, the paper's cells already done), then results and the HTML report
    r = subprocess.run([sys.executable, "-m", "xlt_utils", "reproduce", "--study", "all", "--profile", "smoke",
                        "--jobs", "2"], cwd=ROOT, env=_env(out), capture_output=True, text=True, timeout=900,
                       check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "0 failed, 0 blocked" in r.stdout and "already done" in r.stdout
    collect(out)
    training = (out / "results" / "training.csv").read_text()
    assert "rq1_batch_size,smoke," in training and ",intermediate," in training  # training cost was collected
    # nbval in two processes at once (half of the notebooks each: a notebook's kernel uses one core)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
           "--nbval-cell-timeout=600"]
    halves = [NOTEBOOKS[0::2], NOTEBOOKS[1::2]]
    procs = [subprocess.Popen([*cmd, *[str(p.relative_to(ROOT)) for p in half]], cwd=ROOT, env=_env(out),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for half in halves]
    for proc, half in zip(procs, halves):
        stdout, stderr = proc.communicate(timeout=1200)
        assert proc.returncode == 0, f"{[p.name for p in half]}\n" + stdout[-5000:] + stderr[-2000:]
    assert (out / "figures" / "paper" / "smoke" / "transfer.png").exists()
    for study in set(C.ANALYSIS_NOTEBOOKS) - {"paper"}:
        assert list((out / "figures" / study / "smoke").glob("*.png")), f"{study}: no figure"
    # the HTML report: every analysis notebook rendered, two kernels at a time; a second call renders nothing
    report = [sys.executable, "-m", "xlt_utils", "report", "--profile", "smoke", "--jobs", "2"]
    r = subprocess.run(report, cwd=ROOT, env=_env(out), capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    htmls = sorted((out / "report").glob("*__smoke.html"))
    assert [h.name.split("__")[0] for h in htmls] == sorted(C.ANALYSIS_NOTEBOOKS.values())
    assert all("verdict" in h.read_text(encoding="utf-8") for h in htmls)  # each shows its claims table
    r = subprocess.run(report, cwd=ROOT, env=_env(out), capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and r.stdout.count("is up to date") == len(htmls), r.stdout
