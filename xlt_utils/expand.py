"""Study expansion: ``studies/<study>.yaml`` and a profile → validated :class:`~xlt_utils.cells.Cell` objects with
their run ids. Nothing runs here; every error in a study file is raised here, before any work starts.

A study file has one section per *profile* (``smoke``, ``embedded``, ``embedded-full``, ``xtreme-r``)::

    study: paper
    description: ...
    profiles:
      embedded:
        world: synth
        models: [synth-small]
        seeds: [13, 14, 15]
        pretrain: true                 # synth: phase 00 pretrains each model (false: random initialisation)
        intermediate_tasks: [none, synth_mnli, synth_squad]   # "none" = the no-intermediate baseline
        target_tasks: [synth_xnli, synth_udpos, synth_tatoeba] # retrieval tasks evaluate the encoder directly
        baselines: [majority]          # 04_baselines kinds, per target task
        params:                        # per-phase parameters (override the notebooks' smoke defaults)
          intermediate: {max_steps: 300}
        per_task:                      # per-task overrides, by phase
          synth_xquad: {target: {max_seq_length: 128}}
        hparams: [jiant, xtreme]       # world xtreme: the catalog's per-task hyperparameters, first toolkit first
        sweep:                         # axes that multiply the cells of a phase
          intermediate.per_device_train_batch_size: [8, 32]
          # linked parameters move together (one axis): the batch size with the steps between dev evaluations
          # intermediate.per_device_train_batch_size+eval_every: [[8, 200], [32, 50]]
      embedded-full:
        extends: embedded              # inherit, then override
        seeds: [13, 14, 15, 16, 17]

Expansion: pretrain (per model) → intermediate (per model, task, seed, sweep point) → target (per encoder, target
task, seed) → eval (per target run; per encoder for retrieval tasks), plus baselines. Each cell's parameters are
the notebook's defaults, overridden by the catalog's per-task hyperparameters (world ``xtreme`` only: epochs,
learning rate, batch, sequence length of the toolkits ``hparams`` names, :func:`xlt_utils.worlds.xtreme.
catalog_params`), then by ``params``, ``per_task`` and ``sweep``, and then the structural ones (world, model, seed,
task, upstream); they are validated by the phase's config before anything runs. A cell's run id
hashes its parameters including the upstream run id, so cells shared by several paths or studies run once.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from xlt_utils import config as C
from xlt_utils import paths, runs
from xlt_utils.cells import Cell, Grid
from xlt_utils.errors import XLTError, unknown
from xlt_utils.floors import FORMATS as FLOOR_FORMATS

PROFILES = ("smoke", "embedded", "embedded-full", "xtreme-r")
STUDY_KEYS = ("study", "description", "profiles")
PROFILE_KEYS = ("extends", "include", "description", "world", "models", "seeds", "pretrain", "intermediate_tasks",
                "target_tasks", "baselines", "params", "per_task", "sweep", "hparams")
STRUCTURAL = {
    "pretrain": ("world", "model"),
    "intermediate": ("world", "model", "seed", "upstream", "intermediate_task"),
    "target": ("world", "model", "seed", "upstream", "target_task"),
    "eval": ("world", "model", "upstream", "target_task"),
    "baselines": ("world", "model", "seed", "upstream", "target_task", "kind"),
}


# ---------------------------------------------------------------------------------------------- study files


def study_files() -> dict[str, Path]:
    """Study name → YAML file under ``studies/``."""
    return {p.stem: p for p in sorted(paths.STUDIES.glob("*.yaml"))}


def resolve_study(study: str | Path) -> Path:
    """A study name or path → its YAML file (one-line error naming the valid studies)."""
    p = Path(study)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            alt = paths.PROJECT_ROOT / p
            if not alt.exists():
                raise unknown("study file", str(study), [f"studies/{n}.yaml" for n in study_files()])
            p = alt
        return p
    files = study_files()
    if str(study) not in files:
        raise unknown("study", str(study), files)
    return files[str(study)]


def load_study(path: Path) -> dict[str, Any]:
    """Parse and shape-check a study file (one-line errors with the file and line)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path.name}:{mark.line + 1}" if mark is not None else path.name
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise XLTError(f"malformed YAML in {where}: {problem}") from None
    if not isinstance(doc, dict):
        raise XLTError(f"{path.name}: a study file must be a mapping with keys {', '.join(STUDY_KEYS)}")
    bad = sorted(set(doc) - set(STUDY_KEYS))
    if bad:
        raise XLTError(f"{path.name}: unknown key {bad[0]!r}; valid: {', '.join(STUDY_KEYS)}")
    if not isinstance(doc.get("profiles"), dict) or not doc["profiles"]:
        raise XLTError(f"{path.name}: 'profiles' must map profile names to grids")
    doc.setdefault("study", path.stem)
    return doc


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _sweep_params(key: Any) -> set[str]:
    """The parameters a sweep key sets: ``{"intermediate.a", "intermediate.b"}`` for ``intermediate.a+b``."""
    ph, _, pname = str(key).partition(".")
    return {f"{ph}.{n}" for n in pname.split("+")}


def _inherit(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """``child`` over ``parent`` (deep merge), where a child's sweep axis replaces every inherited axis that sets
    one of its parameters (a linked axis ``a+b`` over an inherited ``a``)."""
    parent = dict(parent)
    if isinstance(parent.get("sweep"), Mapping) and isinstance(child.get("sweep"), Mapping):
        mine = set().union(*(_sweep_params(k) for k in child["sweep"]))
        parent["sweep"] = {k: v for k, v in parent["sweep"].items() if not _sweep_params(k) & mine}
    return _deep_merge(parent, child)


def profile_spec(doc: Mapping[str, Any], profile: str, name: str) -> dict[str, Any]:
    """A profile's grid with ``extends`` resolved (one-line error naming the study's profiles)."""
    profiles = doc["profiles"]
    if profile not in profiles:
        raise unknown(f"profile of study {doc['study']!r}:", profile, profiles)
    seen = [profile]
    spec = profiles[profile]
    if not isinstance(spec, dict):
        raise XLTError(f"{name}: profile {profile!r} must be a mapping")
    while "extends" in spec:
        parent = spec["extends"]
        if parent not in profiles or parent in seen:
            raise XLTError(f"{name}: profile {seen[-1]!r} extends {parent!r}, which is "
                           f"{'circular' if parent in seen else 'not a profile'}; valid: {', '.join(profiles)}")
        seen.append(parent)
        if isinstance(profiles[parent], dict) and "include" in profiles[parent]:
            raise XLTError(f"{name}: profile {seen[-2]!r} extends {parent!r}, a union of profiles (include); "
                           f"extend one of its parts: {', '.join(map(str, profiles[parent]['include']))}")
        spec = _inherit(profiles[parent], {k: v for k, v in spec.items() if k != "extends"})
    bad = sorted(set(spec) - set(PROFILE_KEYS))
    if bad:
        raise XLTError(f"{name}, profile {profile}: unknown key {bad[0]!r}; valid: {', '.join(PROFILE_KEYS)}")
    for key in ("world", "models", "seeds", "target_tasks"):
        if key not in spec:
            raise XLTError(f"{name}, profile {profile}: missing key {key!r}")
    return spec


# ---------------------------------------------------------------------------------------------- cells


@cache
def _defaults(phase: str) -> tuple[tuple[str, Any], ...]:
    return tuple(C.notebook_defaults(C.PHASE_NOTEBOOKS[phase]).items())


def _as_list(spec: Mapping[str, Any], key: str, where: str, default: Any = None) -> list[Any]:
    v = spec.get(key, default)
    if v is None:
        return []
    if not isinstance(v, list):
        raise XLTError(f"{where}: {key} must be a list, got {v!r}")
    return v


def _length_limit(world: str, upstream: Cell | None) -> int | None:
    """Longest input a synth encoder takes: its pretraining ``max_len`` (the random init takes 128)."""
    if world != "synth":
        return None
    while upstream is not None and upstream.phase != "pretrain":
        upstream = upstream.upstream
    return int(upstream.params["max_len"]) if upstream is not None else 128


E5_SMALL_LAYERS = 12  # multilingual-e5-small (checked against the converted encoder in tests/test_offline_encoder.py)


def model_depth(world: str, model: str) -> int | None:
    """Transformer layers of a world's model (None when the grid cannot know it: the local test world)."""
    if world == "synth":
        from xlt_utils.choices import SIZES

        return SIZES[model.removeprefix("synth-")][0]
    if world == "offline-real":
        return E5_SMALL_LAYERS
    if world == "xtreme":
        from xlt_utils.zoo import get_model

        return get_model(model).num_layers
    return None


def _check_layers(phase: str, p: dict[str, Any], world: str, upstream: Cell | None, where: str) -> bool:
    """A cell's ``num_layers`` (target and baselines: the depth fine-tuned at; eval: the layers kept at
    evaluation) against its encoder's depth, which for the evaluation of a model fine-tuned at n layers is n: more
    layers than that is an error; all of them is the full model, so the cell becomes the full-depth cell
    (``num_layers: null``) and is not computed twice. Returns whether ``p`` was changed."""
    n = p.get("num_layers")
    if n is None:
        return False
    depth, tuned = model_depth(world, p["model"]), ""
    tuned_at = upstream.params.get("num_layers") if upstream is not None and upstream.phase == "target" else None
    if phase == "eval" and tuned_at is not None:
        depth, tuned = tuned_at, " fine-tuned at that depth (target num_layers)"
    if depth is None:
        return False
    if n > depth:
        raise XLTError(f"{where}: {phase} num_layers {n} exceeds the {depth} layers of {p['model']}{tuned}; "
                       f"valid: 1..{depth}, or null for all of them")
    if n == depth:
        p["num_layers"] = None
        return True
    return False


def _components(name: str, where: str) -> list[str]:
    """The tasks of a (multi-task) intermediate-task name (:func:`xlt_utils.multitask.components`), its errors
    naming the study file."""
    from xlt_utils.multitask import components

    try:
        return components(name)
    except XLTError as e:
        raise XLTError(f"{where}: {e}") from None


def _unavailable(name: str, where: str) -> str | None:
    """Why a task (any task of a multi-task name) cannot be built here, or None
    (:func:`xlt_utils.tasks.unavailable_reason`)."""
    from xlt_utils.tasks import unavailable_reason

    return next((why for part in _components(name, where) if (why := unavailable_reason(part))), None)


def _catalog(task: str, phase: str, toolkits: tuple[str, ...]) -> dict[str, tuple[Any, str]]:
    """The catalog's hyperparameters of a cell's task (:func:`xlt_utils.worlds.xtreme.catalog_params`). For a
    multi-task name (one run, one set of hyperparameters): those all its tasks agree on, and the longest of their
    ``max_seq_length`` (dynamic padding costs the shorter tasks nothing); a parameter they disagree on otherwise is
    left to the study file and the notebook default (the dry run shows where each value came from)."""
    from xlt_utils.multitask import tasks_of
    from xlt_utils.worlds.xtreme import catalog_params

    per = [catalog_params(t, phase, toolkits) for t in tasks_of(task)]
    out = {}
    for key, first in per[0].items():
        got = [p[key] for p in per if key in p]
        if len(got) < len(per):
            continue
        if len({v for v, _ in got}) == 1:
            out[key] = first
        elif key == "max_seq_length":
            out[key] = max(got, key=lambda vo: vo[0])
    return out


def _hparam_toolkits(spec: Mapping[str, Any], world: str, where: str) -> tuple[str, ...]:
    """The toolkits whose catalog hyperparameters feed a profile's cells, first one first: ``hparams`` (default
    ``[jiant, xtreme]`` in world xtreme; ``[]`` for none). Other worlds have no such catalog."""
    if world != "xtreme":
        if "hparams" in spec:
            raise XLTError(f"{where}: hparams (the catalog's per-task hyperparameters) exists in world xtreme only; "
                           f"remove it from this {world} profile")
        return ()
    from xlt_utils.worlds.xtreme import HPARAM_SOURCES

    order = spec.get("hparams", list(HPARAM_SOURCES))
    if not isinstance(order, list):
        raise XLTError(f"{where}: hparams must be a list of toolkits ({', '.join(HPARAM_SOURCES)}), first one "
                       f"first, or [] for none; got {order!r}")
    for name in order:
        if name not in HPARAM_SOURCES:
            raise unknown(f"hparams toolkit in {where}:", name, HPARAM_SOURCES)
    return tuple(order)


def expand(study: str | Path, profile: str) -> Grid:
    """Expand a study's profile into validated cells (nothing runs; every error is raised here).

    Args:
        study: a study name (``paper``) or a path to its YAML.
        profile: one of the study's profiles.

    Returns:
        The :class:`Grid`.
    """
    path = resolve_study(study)
    doc = load_study(path)
    try:
        name = str(path.resolve().relative_to(paths.PROJECT_ROOT))
    except ValueError:
        name = str(path)
    return _expand_profile(path, doc, name, profile, ())


def _expand_profile(path: Path, doc: Mapping[str, Any], name: str, profile: str, seen: tuple[str, ...]) -> Grid:
    """One profile: a grid of one world, or (``include: [p, ...]``) the union of other profiles' grids, so that
    one profile (``embedded``) can span several worlds. Cells shared by included profiles are computed once."""
    profiles = doc["profiles"]
    raw = profiles.get(profile)
    if isinstance(raw, dict) and "include" in raw:
        where = f"{name}, profile {profile}"
        extra = sorted(set(raw) - {"include", "description"})
        if extra:
            raise XLTError(f"{where}: a profile with 'include' takes only 'description' besides it, not {extra[0]!r}")
        parts = raw["include"]
        if not isinstance(parts, list) or not parts:
            raise XLTError(f"{where}: include must be a non-empty list of profile names")
        grid = Grid(study=doc["study"], profile=profile, path=path)
        ids: set[str] = set()
        for part in parts:
            if part not in profiles or part in seen + (profile,):
                raise XLTError(f"{where}: include {part!r} is {'circular' if part in profiles else 'not a profile'}; "
                               f"valid: {', '.join(p for p in profiles if p != profile)}")
            for cell in _expand_profile(path, doc, name, part, seen + (profile,)).cells:
                if cell.run_id not in ids:
                    ids.add(cell.run_id)
                    grid.cells.append(cell)
        return grid
    return _expand_one(path, doc, name, profile)


def _expand_one(path: Path, doc: Mapping[str, Any], name: str, profile: str) -> Grid:
    from xlt_utils.tasks import get_task, intermediate_tasks_for, list_tasks

    spec = profile_spec(doc, profile, name)
    where = f"{name}, profile {profile}"
    world = spec["world"]
    if world not in C.WORLDS:
        raise unknown(f"world in {where}:", world, C.WORLDS)
    models = _as_list(spec, "models", where)
    for m in models:
        if m not in C.models_for(world):
            raise unknown(f"model in {where} (world {world}):", m, C.models_for(world))
    seeds = _as_list(spec, "seeds", where)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise XLTError(f"{where}: seeds must be a non-empty list of integers, got {spec.get('seeds')!r}")
    inter_tasks = _as_list(spec, "intermediate_tasks", where, ["none"])
    # a task this machine could not build (a translation where Apertium is missing): its arms are left out, with
    # the reason, one line per reason
    missing: dict[str, list[str]] = {}
    for t in inter_tasks:
        why = _unavailable(t, where) if t != "none" else None
        if why:
            missing.setdefault(why, []).append(t)
    for why, names in missing.items():
        print(f"[grid] {where}: leaving out intermediate task(s) {', '.join(names)}: {why}", file=sys.stderr)
    inter_tasks = [t for t in inter_tasks if t not in {n for names in missing.values() for n in names}]
    target_tasks = _as_list(spec, "target_tasks", where)
    kinds = _as_list(spec, "baselines", where, [])
    for t in inter_tasks:
        if t != "none":
            valid = ["none"] + [x.name for x in intermediate_tasks_for(world) if x.trainable]
            for part in _components(t, where):  # a multi-task name ("a+b"): each of its tasks
                if part not in valid[1:]:
                    raise (unknown(f"intermediate task in {where}:", t, valid) if part == t else
                           unknown(f"task of multi-task intermediate task {t!r} in {where}:", part, valid[1:]))
    for t in target_tasks:
        valid = [x.name for x in list_tasks(world=world, role="target")]
        if t not in valid:
            raise unknown(f"target task in {where}:", t, valid)
    for k in kinds:
        if k not in C.BASELINE_KINDS:
            raise unknown(f"baseline kind in {where}:", k, C.BASELINE_KINDS)
    do_pretrain = bool(spec.get("pretrain", world == "synth"))
    if do_pretrain and world != "synth":
        raise XLTError(f"{where}: pretrain: true needs world synth (phase 00 pretrains synth encoders only)")

    params = spec.get("params") or {}
    per_task = spec.get("per_task") or {}
    sweep = spec.get("sweep") or {}
    toolkits = _hparam_toolkits(spec, world, where)
    if toolkits:
        from xlt_utils.worlds.xtreme import HPARAM_PARAMS
    for section, mapping in (("params", params), ("per_task", per_task), ("sweep", sweep)):
        if not isinstance(mapping, dict):
            raise XLTError(f"{where}: {section} must be a mapping")
    for ph in params:
        if ph not in C.PHASES:
            raise unknown(f"phase under params in {where}:", ph, C.PHASES)
    for task_name, by_phase in per_task.items():
        if _unavailable(task_name, where):  # its arms are left out above
            continue
        for part in _components(task_name, where):
            get_task(part)
        for ph in by_phase or {}:
            if ph not in C.PHASES:
                raise unknown(f"phase under per_task.{task_name} in {where}:", ph, C.PHASES)
    # phase -> axes; an axis is (parameter names, one tuple of values per point): one name for a plain axis, several
    # for linked parameters ("<phase>.<a>+<b>": [[a1, b1], [a2, b2]]), which move together instead of multiplying
    axes: dict[str, list[tuple[tuple[str, ...], list[tuple[Any, ...]]]]] = {}
    for key, values in sweep.items():
        ph, _, pname = str(key).partition(".")
        names = tuple(pname.split("+"))
        if ph not in C.PHASES or not all(names):
            raise XLTError(f"{where}: sweep key {key!r} must be '<phase>.<parameter>' (or '<phase>.<a>+<b>' for "
                           f"linked parameters) with phase in {', '.join(C.PHASES)}")
        if not isinstance(values, list) or not values:
            raise XLTError(f"{where}: sweep {key} must be a non-empty list")
        twice = sorted(set(names) & {n for axis, _ in axes.get(ph, []) for n in axis})
        if twice:
            raise XLTError(f"{where}: sweep sets {ph}.{twice[0]} in two axes; link them in one "
                           f"('{ph}.<a>+<b>': [[a1, b1], ...]) or keep one")
        if len(names) > 1:
            bad = next((v for v in values if not isinstance(v, list) or len(v) != len(names)), None)
            if bad is not None:
                raise XLTError(f"{where}: sweep {key} links {len(names)} parameters, so each value must be a list of "
                               f"{len(names)} ({', '.join(names)}); got {bad!r}")
            axes.setdefault(ph, []).append((names, [tuple(v) for v in values]))
        else:
            axes.setdefault(ph, []).append((names, [(v,) for v in values]))

    grid = Grid(study=doc["study"], profile=profile, path=path)
    by_id: dict[str, Cell] = {}

    def make(phase: str, structural: dict[str, Any], upstream: Cell | None, task: str | None,
             point: Mapping[str, Any]) -> Cell:
        p = dict(_defaults(phase))
        catalog = _catalog(task, phase, toolkits) if toolkits and task else {}
        p.update({k: v for k, (v, _) in catalog.items()})
        origin = {k: o for k, (_, o) in catalog.items()}
        sources = [params.get(phase) or {}, (per_task.get(task) or {}).get(phase) or {} if task else {}, point]
        for src in sources:
            if not isinstance(src, dict):
                raise XLTError(f"{where}: parameters of phase {phase} must be a mapping, got {src!r}")
            fixed = sorted(set(src) & set(STRUCTURAL[phase]))
            if fixed:
                raise XLTError(f"{where}: parameter {fixed[0]!r} of phase {phase} is set by the grid "
                               f"(from world, models, seeds and the task lists); remove it")
            p.update(src)
            if toolkits:
                origin.update({k: "yaml" for k in src if k in HPARAM_PARAMS.values()})
        p.update(structural)
        p["upstream"] = upstream.run_id if upstream else None
        if phase == "pretrain":
            p.pop("upstream")
        cfg = C.from_params(phase, p, where=where)
        full = cfg.to_params()
        if phase in ("target", "eval", "baselines") and _check_layers(phase, full, world, upstream, where):
            full = C.from_params(phase, full, where=where).to_params()
        limit = _length_limit(world, upstream)
        if limit is not None and full.get("max_seq_length", 0) > limit:
            raise XLTError(f"{where}: {phase} max_seq_length {full['max_seq_length']} exceeds the "
                           f"{limit} positions of its encoder (pretrain max_len); lower it or raise max_len")
        lineage = runs.lineage_of(phase, full, upstream.lineage if upstream else None)
        rid = runs.run_id(phase, full, lineage)
        if rid not in by_id:
            cell = Cell(phase, full, upstream, lineage, rid, origin)
            by_id[rid] = cell
            grid.cells.append(cell)
        return by_id[rid]

    def points(phase: str) -> list[dict[str, Any]]:
        ax = axes.get(phase, [])
        return [{n: v for (names, _), vals in zip(ax, combo) for n, v in zip(names, vals)}
                for combo in itertools.product(*[v for _, v in ax])]

    for model in models:
        base = {"world": world, "model": model}
        pres = [make("pretrain", base, None, None, pt) for pt in points("pretrain")] if do_pretrain else [None]
        for pre in pres:
            for seed in seeds:
                encoders: list[Cell | None] = []
                for it in inter_tasks:
                    if it == "none":
                        encoders.append(pre)
                        continue
                    for pt in points("intermediate"):
                        encoders.append(make("intermediate", {**base, "seed": seed, "intermediate_task": it}, pre,
                                             it, pt))
                for enc in encoders:
                    for tt in target_tasks:
                        if get_task(tt).format == "retrieval":
                            for pe in points("eval"):
                                make("eval", {**base, "target_task": tt}, enc, tt, pe)
                            continue
                        for pt in points("target"):
                            tgt = make("target", {**base, "seed": seed, "target_task": tt}, enc, tt, pt)
                            for pe in points("eval"):
                                make("eval", {**base, "target_task": tt}, tgt, tt, pe)
            if "in_language" in kinds:
                for tt in target_tasks:
                    if get_task(tt).format == "retrieval" or not get_task(tt).trainable:
                        continue
                    for seed in seeds:
                        for pb in points("baselines"):
                            make("baselines", {**base, "seed": seed, "target_task": tt, "kind": "in_language"},
                                 pre, tt, pb)
            if "probe" in kinds:  # deterministic: one cell per encoder and target task
                for tt in target_tasks:
                    if get_task(tt).format in FLOOR_FORMATS:
                        for pb in points("baselines"):
                            make("baselines", {**base, "seed": seeds[0], "target_task": tt, "kind": "probe"},
                                 pre, tt, pb)
        if "majority" in kinds:  # needs no encoder and no seed: one cell per target task
            for tt in target_tasks:
                make("baselines", {**base, "seed": seeds[0], "target_task": tt, "kind": "majority"}, None, tt, {})
        if "lexical" in kinds:  # no encoder, deterministic: one cell per target task
            for tt in target_tasks:
                if get_task(tt).format in FLOOR_FORMATS:
                    for pb in points("baselines"):
                        make("baselines", {**base, "seed": seeds[0], "target_task": tt, "kind": "lexical"}, None,
                             tt, pb)
        if "random_init" in kinds:  # no pretraining: runs beside phase 00
            for tt in target_tasks:
                for seed in seeds:
                    for pb in points("baselines"):
                        make("baselines", {**base, "seed": seed, "target_task": tt, "kind": "random_init"}, None,
                             tt, pb)
    if not grid.cells:
        raise XLTError(f"{where}: the grid has no cells")
    return grid


# ---------------------------------------------------------------------------------------------- several studies


def studies_with_profile(profile: str) -> list[str]:
    """Studies that define a profile (``STUDY=all``); one-line error naming the valid profiles when none does."""
    found, all_profiles = [], set()
    for name, path in study_files().items():
        doc = load_study(path)
        all_profiles |= set(doc["profiles"])
        if profile in doc["profiles"]:
            found.append(name)
    if not found:
        raise unknown("profile", profile, all_profiles or PROFILES)
    return found


def expand_all(studies: Sequence[str], profile: str) -> list[Grid]:
    """Expand several studies (validates all of them before anything runs)."""
    return [expand(s, profile) for s in studies]
