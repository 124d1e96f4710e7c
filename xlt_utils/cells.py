"""The records a grid is made of, shared by every room of it: :class:`Cell` (one notebook execution),
:class:`Grid` (a study's cells in topological order) and :class:`CellResult` (what executing a cell did).

Data only. :mod:`xlt_utils.expand` builds cells from a study file, :mod:`xlt_utils.parts` takes parts of grids,
:mod:`xlt_utils.estimate` prices them, :mod:`xlt_utils.execute` (and :mod:`xlt_utils.ray_executor`) runs them,
and :mod:`xlt_utils.grid` is the command line over all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlt_utils import config as C
from xlt_utils import runs


@dataclass
class Cell:
    """One notebook execution: a phase, its full validated parameters, its upstream cell and its run id."""

    phase: str
    params: dict[str, Any]
    upstream: Cell | None
    lineage: dict[str, Any]
    run_id: str
    # where a hyperparameter came from when the catalog set or could have set it (world xtreme): parameter ->
    # the toolkit (``jiant``, ``xtreme``), ``options`` (the task's own), or ``yaml`` (params, per_task, sweep)
    origin: dict[str, str] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return runs.run_path(self.run_id)

    @property
    def notebook(self) -> str:
        return C.PHASE_NOTEBOOKS[self.phase]

    @property
    def output_notebook(self) -> Path:
        return self.dir / f"{self.notebook}.ipynb"

    def done(self) -> bool:
        return runs.is_done(self.dir)

    @property
    def alone(self) -> bool:
        """An evaluation that times inference with no other cell running beside it (its ``time_alone``): the
        executors honour it (:func:`xlt_utils.execute.execute`, :func:`xlt_utils.ray_executor.cell_resources`)."""
        return self.phase == "eval" and bool(self.params.get("time_alone"))


@dataclass
class Grid:
    """The expanded cells of one study and profile, in a topological order (upstream first)."""

    study: str
    profile: str
    path: Path
    cells: list[Cell] = field(default_factory=list)
    parts: list[Grid] = field(default_factory=list)  # a merged grid: the studies' own grids (their manifests)
    # a part of a grid (``--where``, imported results left out): every cell of the whole grid, for its manifest
    whole: list[Cell] | None = None

    def manifest(self) -> dict[str, Any]:
        return {"study": self.study, "profile": self.profile, "study_file": str(self.path.name),
                "cells": [{"run_id": c.run_id, "phase": c.phase, "upstream": c.upstream.run_id if c.upstream else None}
                          for c in (self.whole if self.whole is not None else self.cells)]}


@dataclass
class CellResult:
    """What executing one cell did."""

    cell: Cell
    status: str  # done | skipped | failed | blocked
    seconds: float = 0.0
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    cells_seconds: float = 0.0  # sum of papermill cell durations (the rest is kernel start-up and papermill I/O)
    intervals: list[tuple[float, float]] = field(default_factory=list)  # clock intervals of training/evaluation
    retryable: bool = False  # failed for a reason outside the notebook's code (kernel died): worth another attempt
    attempts: int = 1  # executions of the cell in this grid run (the Ray executor retries crashed ones)
