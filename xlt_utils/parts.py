"""Parts and unions of grids, by run id: one pass over several studies, one slice of a study, what is left to run
after imported results.

* :func:`merge`: several studies' grids as one (``reproduce``), each shared cell once; every study keeps its
  manifest.
* :func:`select` (``--where KEY=VALUE``, :func:`parse_where`): the cells of one arm, seed, target or world and
  every cell they descend from, e.g. to split a grid over machines without a shared disk.
* :func:`leave_out_imported`: the cells whose results came in a bundle (``results --import``) are not run again,
  unless a cell still to run needs one as its upstream.

A part keeps the whole grid for its manifest (:attr:`xlt_utils.cells.Grid.whole`): its runs belong to the study
whichever part ran them. Bundles themselves are written and read by :mod:`xlt_utils.results`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from xlt_utils.cells import Cell, Grid
from xlt_utils.errors import XLTError, unknown


def merge(grids: Sequence[Grid]) -> Grid:
    """Several studies' grids as one (each run once, the first occurrence's cell), so that one executor pass
    schedules all of them by critical path instead of one study after another; each study keeps its manifest."""
    if len(grids) == 1:
        return grids[0]
    merged = Grid(study="+".join(g.study for g in grids), profile=grids[0].profile, path=grids[0].path,
                  parts=list(grids))
    seen: set[str] = set()
    for g in grids:
        for c in g.cells:
            if c.run_id not in seen:
                seen.add(c.run_id)
                merged.cells.append(c)
    return merged


# ``--where`` keys: what a cell is (phase, model...) and what it descends from (intermediate task, seed...)
WHERE_KEYS = ("phase", "world", "model", "intermediate_task", "target_task", "seed", "kind")


def cell_attribute(c: Cell, key: str) -> str | None:
    """A cell's value for a ``--where`` key, as text; ``None`` where the cell has none (a pretraining cell has
    no seed and no target task; an encoder evaluated straight after pretraining has no seed)."""
    if key == "phase":
        return c.phase
    if key in ("world", "model"):
        return str(c.params[key])
    if key == "kind":
        return str(c.params["kind"]) if c.phase == "baselines" else None
    if key == "intermediate_task":
        return str(c.lineage.get("intermediate_task") or "none")
    value = c.lineage.get(key)
    return None if value is None else str(value)


def parse_where(items: Sequence[str] | None) -> dict[str, set[str]]:
    """``["intermediate_task=none,synth_mnli", "seed=13"]`` → ``{key: {values}}``; one-line errors name the keys."""
    where: dict[str, set[str]] = {}
    for item in items or []:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise XLTError(f"--where takes KEY=VALUE[,VALUE...], got {item!r}; keys: {', '.join(WHERE_KEYS)}")
        if key not in WHERE_KEYS:
            raise unknown("--where key", key, WHERE_KEYS)
        where.setdefault(key, set()).update(v.strip() for v in values.split(",") if v.strip())
    return where


def _part(grid: Grid, keep: set[str]) -> Grid:
    """The cells of ``grid`` in ``keep``, in the grid's order; the manifest still lists the whole grid (its runs
    belong to the study whichever part ran them)."""
    return Grid(study=grid.study, profile=grid.profile, path=grid.path, parts=grid.parts,
                whole=grid.whole if grid.whole is not None else grid.cells,
                cells=[c for c in grid.cells if c.run_id in keep])


def _with_ancestors(grid: Grid, keep: set[str]) -> Grid:
    """A part of ``grid``: the cells in ``keep`` and every cell they descend from."""
    need = set(keep)
    for c in reversed(grid.cells):
        if c.run_id in need and c.upstream is not None:
            need.add(c.upstream.run_id)
    return _part(grid, need)


def select(grid: Grid, where: Mapping[str, set[str]]) -> Grid:
    """The cells matching every ``--where`` condition (a cell without the attribute is not excluded by it), with
    their upstream cells: one arm, one seed or one target of a study, e.g. to split a grid over machines.

    Raises:
        XLTError: a value that no cell of the grid has (names the values it has), or no cell matches.
    """
    if not where:
        return grid
    for key, values in where.items():
        have = {v for c in grid.cells if (v := cell_attribute(c, key)) is not None}
        if values - have:
            raise XLTError(f"--where {key}: {', '.join(sorted(values - have))} not in {grid.study} / {grid.profile}; "
                           f"it has: {', '.join(sorted(have)) or '(none)'}")
    keep = {c.run_id for c in grid.cells
            if all((v := cell_attribute(c, k)) is None or v in vals for k, vals in where.items())}
    return _with_ancestors(grid, keep)


def leave_out_imported(grid: Grid, imported: set[str], out: Callable[[str], None] = print) -> Grid:
    """Leave out the cells whose results were imported (``results --import``) and that no cell still to run
    needs as its upstream (an imported run has no weights here: a cell that needs one runs it again)."""
    if not imported:
        return grid
    run: set[str] = set()
    needed: set[str] = set()
    for c in reversed(grid.cells):  # downstream first: a cell runs if it is not done and not imported, or needed
        if not c.done() and (c.run_id not in imported or c.run_id in needed):
            run.add(c.run_id)
            if c.upstream is not None:
                needed.add(c.upstream.run_id)
    left_out = [c for c in grid.cells if c.run_id in imported and c.run_id not in run and not c.done()]
    if not left_out:
        return grid
    again = sorted(run & imported)
    out(f"[grid] {grid.study} / {grid.profile}: {len(left_out)} cells left out, their results imported"
        + (f"; {len(again)} imported cell(s) run again, upstream of cells to run: {', '.join(again)}" if again else ""))
    return _part(grid, {c.run_id for c in grid.cells} - {c.run_id for c in left_out})
