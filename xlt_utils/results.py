"""Results: collect every finished run into one tidy table, and the tables the analysis notebooks show.

``outputs/results/metrics.csv`` has one row per (study, profile, run, task, split, language, metric). A run shared by
several studies appears once per study (``df[df.study == "paper"]`` is a study's complete table); a run no grid
asked for has empty study and profile. The columns are the run's lineage (model, intermediate task, target task,
seed, batch sizes, ancestor run ids), its parameters, and the metric. Nothing time-dependent is in it: timings
stay in each run's ``env.json``, so the table is the same whenever and however often the study ran.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xlt_utils import paths, runs
from xlt_utils.errors import XLTError

CORE_COLUMNS = ("study", "profile", "run_id", "phase", "world", "model", "intermediate_task", "target_task", "seed",
                "batch_size", "intermediate_batch_size", "kind", "task", "split", "lang", "metric", "value",
                "n_examples", "pretrain_run", "intermediate_run", "target_run")


def results_csv() -> Path:
    """``outputs/results/metrics.csv``."""
    return paths.RESULTS / "metrics.csv"


def memberships() -> dict[str, list[tuple[str, str]]]:
    """run id → the (study, profile) grids that contain it, from ``outputs/results/studies/*.json``."""
    out: dict[str, list[tuple[str, str]]] = {}
    d = paths.RESULTS / "studies"
    for f in sorted(d.glob("*.json")) if d.exists() else []:
        m = json.loads(f.read_text())
        for c in m["cells"]:
            out.setdefault(c["run_id"], []).append((m["study"], m["profile"]))
    return out


def _own_batch_size(phase: str, params: Mapping[str, Any], lineage: Mapping[str, Any]) -> Any:
    if phase == "pretrain":
        return params["batch_size"]
    if phase == "eval":
        return lineage.get("target_batch_size")
    return params["per_device_train_batch_size"] * params["gradient_accumulation_steps"] * params.get("num_processes", 1)


# Parameters of a run's ancestors that the studies vary, as columns ``<phase>_<parameter>`` of every descendant's
# rows: the intermediate run's source language and data size (rq4, rq5), its schedule; the target run's language.
UPSTREAM_COLUMNS = {
    "intermediate": ("train_language", "max_train_samples", "max_steps", "num_train_epochs", "learning_rate",
                     "aux_objective", "aux_weight"),  # and the auxiliary objective that trained beside the task
    # the head an evaluation scored, and the depth its model was fine-tuned at (None: all layers)
    "target": ("train_language", "classifier_pooling", "num_layers"),
}


def upstream_columns(lineage: Mapping[str, Any]) -> dict[str, Any]:
    """``intermediate_train_language``... read from the ancestor runs' ``params.json`` (empty without them)."""
    out: dict[str, Any] = {}
    for phase, keys in UPSTREAM_COLUMNS.items():
        rid = lineage.get("runs", {}).get(phase)
        params = runs.read_params(rid)["params"] if rid and runs.is_done(rid) else {}
        if params:  # runs made before a parameter existed had its default
            params = {**runs.neutral_defaults(phase), **params}
        for k in keys:
            out[f"{phase}_{k}"] = params.get(k)
    return out


def run_rows(rid: str, with_metrics: bool = True) -> list[dict[str, Any]]:
    """The metric rows of one finished run with its lineage and parameters as columns (no study columns);
    ``with_metrics=False``: one row of just the lineage and parameter columns."""
    import pandas as pd

    d = runs.run_path(rid)
    meta = json.loads((d / runs.PARAMS).read_text())
    phase, params, lin = meta["phase"], meta["params"], meta["lineage"]
    metrics = (pd.read_csv(d / runs.METRICS, keep_default_na=False, dtype={"lang": str}) if with_metrics
               else None)
    up_runs = lin.get("runs", {})
    base = {
        "run_id": rid, "phase": phase, "world": params["world"], "model": params["model"],
        "intermediate_task": lin.get("intermediate_task") or "none", "target_task": lin.get("target_task") or "",
        # the training seed; a pretrain run's own seed; none for an encoder evaluated straight after pretraining
        "seed": lin.get("seed") if lin.get("seed") is not None else (params["seed"] if phase == "pretrain" else None),
        "batch_size": _own_batch_size(phase, params, lin),
        "intermediate_batch_size": lin.get("intermediate_batch_size"), "kind": params.get("kind", ""),
        "pretrain_run": up_runs.get("pretrain", ""), "intermediate_run": up_runs.get("intermediate", ""),
        "target_run": up_runs.get("target", ""),
    }
    # runs made before a parameter existed had its default
    if phase in ("intermediate", "target", "baselines"):
        params = {**runs.ID_NEUTRAL_DEFAULTS, **params}
    params = {**runs.ID_NEUTRAL_BY_PHASE.get(phase, {}), **params}
    extra = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in params.items()
             if k not in base and k not in CORE_COLUMNS}
    extra.update(upstream_columns(lin))
    if metrics is None:
        return [{**base, **extra}]
    rows = []
    for r in metrics.to_dict("records"):
        rows.append({**base, **{k: r[k] for k in ("task", "split", "lang", "metric", "value", "n_examples")},
                     **extra})
    return _mark_not_zero_shot(rows, phase, params, lin)


def _mark_not_zero_shot(rows: list[dict[str, Any]], phase: str, params: Mapping[str, Any],
                        lineage: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A ``zero_shot`` column on the retrieval rows of a run whose encoder trained on parallel pairs (an intermediate
    run's contrastive auxiliary objective): False in the pairs' languages. Runs without such pairs get no column
    (:func:`_finish_metrics` fills it True)."""
    if phase != "eval":
        return rows
    from xlt_utils.auxiliary import not_zero_shot

    langs = not_zero_shot(lineage)
    if not langs:
        return rows
    from xlt_utils.tasks import get_task

    retrieval = get_task(params["target_task"]).format == "retrieval"
    return [{**r, "zero_shot": not (retrieval and r["lang"] in langs)} for r in rows]


def _metrics_frame(member: Mapping[str, list[tuple[str, str]]]) -> Any:
    """The metric rows of every finished run here (one copy per grid the run belongs to), unsorted."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for rid in runs.list_runs(done_only=True):
        try:
            base_rows = run_rows(rid)
        except (OSError, KeyError, ValueError) as e:
            raise XLTError(f"run {rid} is marked DONE but its files are unreadable: {e}") from None
        for study, profile in member.get(rid, [("", "")]):
            rows += [{"study": study, "profile": profile, **r} for r in base_rows]
    return pd.DataFrame(rows)


def _finish_metrics(df: Any) -> Any:
    """Core columns first, deterministic order, integer parameters as integers."""
    import pandas as pd

    if df.empty:
        df = pd.DataFrame(columns=list(CORE_COLUMNS))
    extra = sorted(c for c in df.columns if c not in CORE_COLUMNS)
    df = df[list(CORE_COLUMNS) + extra]
    if "zero_shot" in df.columns:  # only rows of languages whose parallel pairs trained the encoder are False
        df["zero_shot"] = df["zero_shot"].where(df["zero_shot"].notna(), True).astype(bool)
    df = df.sort_values(["study", "profile", "run_id", "task", "split", "lang", "metric"], kind="stable")
    for col in df.columns:  # integer parameters stay integers next to missing values
        if col != "value" and df[col].dtype == float and df[col].dropna().map(float.is_integer).all():
            df[col] = df[col].astype("Int64")
    return df


def _write_csv(df: Any, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(out)


def collect(out: Path | None = None) -> Path:
    """Collect every finished run (``DONE``) into ``outputs/results/metrics.csv`` (deterministic order), with the
    rows of imported result bundles (:func:`import_bundle`) for the runs that are not here.

    Returns:
        The CSV path.
    """
    member = memberships()
    out = out or results_csv()
    df = _with_imported(_metrics_frame(member), METRICS_CSV, member)
    _write_csv(_finish_metrics(df), out)
    for name, frame in ((EFFICIENCY_CSV, _efficiency_frame(member)), (TRAINING_CSV, _training_frame(member))):
        frame = _with_imported(frame, name, member)
        path = out.with_name(name)
        if frame.empty:
            path.unlink(missing_ok=True)  # no stale file when no run has timings
            continue
        keys = ["study", "profile", "run_id"] + (["batch_size"] if name == EFFICIENCY_CSV else [])
        _write_csv(frame.sort_values(keys, kind="stable"), path)
    return out


METRICS_CSV = "metrics.csv"
EFFICIENCY_CSV = "efficiency.csv"
TRAINING_CSV = "training.csv"


def _efficiency_frame(member: Mapping[str, list[tuple[str, str]]]) -> Any:
    """The timing tables (``efficiency.csv``) of finished eval runs, with each run's study, lineage and parameter
    columns."""
    import pandas as pd

    frames = []
    for rid in runs.list_runs(done_only=True):
        f = runs.run_path(rid) / EFFICIENCY_CSV
        if not f.exists():
            continue
        timings = pd.read_csv(f, keep_default_na=False, na_values=[""])
        (base,) = run_rows(rid, with_metrics=False)
        base = {k: v for k, v in base.items() if k not in timings.columns}
        if "processor" not in timings.columns:  # timings are facts about a CPU: say which
            base["processor"] = _processor(runs.run_path(rid))
        for study, profile in member.get(rid, [("", "")]):
            frames.append(timings.assign(study=study, profile=profile, **base))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def training_rows(rid: str) -> dict[str, Any] | None:
    """The cost of one finished training run (pretrain, intermediate, target, trained baselines): optimizer steps,
    the checkpoint passed on (:func:`passed`), examples and tokens seen, training-loop seconds, throughput and peak
    memory, from ``params.json`` (``resolved``) and ``env.json``; ``None`` for a run that did not train."""
    d = runs.run_path(rid)
    meta = json.loads((d / runs.PARAMS).read_text())
    env = json.loads((d / runs.ENV).read_text()) if (d / runs.ENV).exists() else {}
    res, t = meta.get("resolved", {}), env.get("timings", {})
    seconds = t.get("train_loop") or t.get("pretrain")
    if not seconds or "global_step" not in res or res.get("restored_from"):
        return None  # a restored run (copied, not trained): its cost is the bundle's row
    (base,) = run_rows(rid, with_metrics=False)
    tokens, examples = res.get("train_tokens"), res.get("train_examples")
    steps = res["global_step"]
    step, seen = passed(res, examples)
    return {**base, "steps": steps, "passed_step": step, "passed_examples": seen,
            "n_train_records": res.get("n_train_records"), "train_examples": examples,
            "train_tokens": tokens, "padding_fraction": res.get("padding_fraction"),
            "train_seconds": round(seconds, 3),
            "examples_per_s": round(examples / seconds, 2) if examples else None,
            "tokens_per_s": round(tokens / seconds, 1) if tokens else None,
            "n_parameters": res.get("n_parameters"), "peak_rss_mb": env.get("peak_rss_mb"), "peak_gpu_mb": env.get("peak_gpu_mb"),
            "device": env.get("cuda") or "cpu", "processor": env.get("processor"), "threads": env.get("torch_threads")}


def _training_frame(member: Mapping[str, list[tuple[str, str]]]) -> Any:
    """The training cost of every finished training run, one row per (study, profile, run). Timings, so never
    part of ``metrics.csv``."""
    import pandas as pd

    rows = []
    for rid in runs.list_runs(done_only=True):
        if rid.split("/")[0] not in ("pretrain", "intermediate", "target", "baselines"):
            continue
        r = training_rows(rid)
        if r is None:
            continue
        rows += [{"study": study, "profile": profile, **r} for study, profile in member.get(rid, [("", "")])]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- result bundles
#
# A bundle is the tidy rows of one study and profile that ran here (metrics.csv, efficiency.csv, training.csv), each
# run's params.json and env.json (runs/<run id>/), and bundle.json (which runs, git revision, CPU, the pretrained
# encoders they descend from, the content hash and origin of each task's data they read: xlt_utils.provenance). It carries no weights, so it is small enough to commit or copy: a grid split over
# machines or sittings (``grid --where``) is put back together by importing each part's bundle, and the reports
# render from the whole.

BUNDLE_JSON = "bundle.json"
BUNDLE_RUNS = "runs"  # runs/<run id>/params.json and env.json of every run in the bundle
BUNDLE_FILES = (METRICS_CSV, EFFICIENCY_CSV, TRAINING_CSV)


def imported_dir() -> Path:
    """``outputs/results/imported/``: one folder per imported bundle."""
    return paths.RESULTS / "imported"


def imported_bundles() -> list[Path]:
    d = imported_dir()
    return sorted(p for p in d.iterdir() if (p / BUNDLE_JSON).exists()) if d.exists() else []


def imported_run_ids() -> set[str]:
    """Every run whose results an imported bundle holds."""
    out: set[str] = set()
    for b in imported_bundles():
        out.update(json.loads((b / BUNDLE_JSON).read_text())["runs"])
    return out


def imported_encoders() -> dict[str, list[tuple[str, str]]]:
    """Per pretraining run the imported bundles recorded, every (SHA-256 of its encoder weights, bundle folder
    name) they recorded, in bundle order."""
    known: dict[str, list[tuple[str, str]]] = {}
    for b in imported_bundles():
        for r, sha in json.loads((b / BUNDLE_JSON).read_text()).get("pretrain_encoders_sha256", {}).items():
            if sha:
                known.setdefault(r, []).append((sha, b.name))
    return known


def imported_rows(bundle: str, run_id: str, name: str = METRICS_CSV) -> Any:
    """The rows of file ``name`` that imported bundle ``bundle`` (its folder name) holds for run ``run_id``."""
    import pandas as pd

    f = imported_dir() / bundle / name
    df = pd.read_csv(f, low_memory=False) if f.exists() else pd.DataFrame(columns=["run_id", "metric", "lang",
                                                                                    "value"])
    return df[df["run_id"] == run_id]


def _with_imported(df: Any, name: str, member: Mapping[str, list[tuple[str, str]]] | None = None) -> Any:
    """``df`` plus the rows of file ``name`` of each imported bundle whose (study, profile, run) has no rows in
    ``df`` (a run finished here wins; the first bundle wins over later ones). A bundle's row also counts for every
    other grid here (``member``: :func:`memberships`) that has its run as a cell: a run id names one computation,
    so the paper bundle's no-intermediate runs are rq4's too once rq4's grid ran here. Such a copy comes last: a
    bundle that holds the run under the grid's own label wins over every copy, whatever the bundles' order."""
    import pandas as pd

    frames = [df] if not df.empty else []
    have = set(zip(df["study"], df["profile"], df["run_id"])) if not df.empty else set()
    loaded = []
    for b in imported_bundles():
        f = b / name
        if not f.exists():
            continue
        extra = pd.read_csv(f, keep_default_na=False, na_values=[""], dtype={"lang": str, "study": str, "profile": str},
                            low_memory=False)
        if name == TRAINING_CSV and "passed_step" not in extra.columns:
            extra = _passed_from_params(extra, b)
        if name in (EFFICIENCY_CSV, TRAINING_CSV) and "processor" not in extra.columns:  # exported before it existed
            extra = extra.assign(processor=[_processor(b / "runs" / rid) for rid in extra["run_id"]])
        loaded.append(extra)
    for extra in loaded + [_copies_for_other_grids(e, member or {}) for e in loaded]:
        if extra.empty:
            continue
        keys = list(zip(extra["study"], extra["profile"], extra["run_id"]))
        extra = extra[[k not in have for k in keys]]
        have.update(zip(extra["study"], extra["profile"], extra["run_id"]))
        if not extra.empty:
            frames.append(extra)
    if len(frames) <= 1:
        return frames[0] if frames else df
    return pd.concat(frames, ignore_index=True)


def _copies_for_other_grids(rows: Any, member: Mapping[str, list[tuple[str, str]]]) -> Any:
    """Copies of ``rows`` relabelled to each other (study, profile) grid whose cells include their run."""
    import pandas as pd

    if rows.empty or not member:
        return rows.iloc[0:0]
    grids = {g for r in set(rows["run_id"]) for g in member.get(r, [])}
    copies = []
    for study, profile in sorted(grids):
        own = rows[(rows["study"] == study) & (rows["profile"] == profile)]
        cell = rows["run_id"].map(lambda r, g=(study, profile): g in member.get(r, []))
        theirs = rows[cell.astype(bool) & ~rows["run_id"].isin(set(own["run_id"]))]
        theirs = theirs.drop_duplicates([c for c in theirs.columns if c not in ("study", "profile")])
        if not theirs.empty:
            copies.append(theirs.assign(study=study, profile=profile))
    return pd.concat(copies, ignore_index=True) if copies else rows.iloc[0:0]


def passed(resolved: Mapping[str, Any], examples: float | None) -> tuple[int | None, int | None]:
    """(step, examples seen up to it) of the checkpoint a training run passed on, from its ``params.json``
    ``resolved``: the best English dev one where it evaluated, else the last (``best_step`` None: no dev
    selection); examples at the run's mean examples per step. What a matched control must equal. A run recorded
    without ``best_step`` (older runs) passed an unknown checkpoint: ``(None, None)``."""
    steps = resolved.get("global_step")
    if "best_step" not in resolved or not steps:
        return None, None
    step = resolved["best_step"] or steps
    return step, (round(examples * step / steps) if examples and not math.isnan(examples) else None)


def _processor(run_dir: Path) -> str | None:
    """The CPU (model and vector extensions, :func:`xlt_utils.runs.cpu_description`) a run's ``env.json``
    recorded, or None."""
    f = run_dir / runs.ENV
    return json.loads(f.read_text()).get("processor") if f.exists() else None


def _passed_from_params(training: Any, bundle: Path) -> Any:
    """Training rows of a bundle exported before ``passed_step`` existed, with it (and ``passed_examples``) read
    from the bundle's own ``runs/<run id>/params.json`` (:func:`passed`)."""
    rows = []
    for rid, seen in zip(training["run_id"], training["train_examples"]):
        f = bundle / "runs" / rid / runs.PARAMS
        rows.append(passed(json.loads(f.read_text()).get("resolved", {}) if f.exists() else {}, seen))
    step, seen = zip(*rows) if rows else ((), ())
    return training.assign(passed_step=list(step), passed_examples=list(seen))


def weights_sha256(run_dir: Path) -> str | None:
    """SHA-256 of a run's ``encoder/model.safetensors``, or None when it has none."""
    import hashlib

    f = run_dir / "encoder" / "model.safetensors"
    return hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else None


def _tasks_read(metrics: Any) -> dict[str, dict[str, Any]]:
    """Per task the runs of ``metrics`` read (their intermediate and target tasks), the provenance record of its
    data here (:func:`xlt_utils.provenance.task_data`)."""
    from xlt_utils import provenance

    return {n: provenance.task_data(n) for n in _task_names(metrics)}


def _task_names(metrics: Any) -> list[str]:
    """The tasks the runs of ``metrics`` read (intermediate and target; a multi-task arm's components)."""
    from xlt_utils.multitask import components

    return sorted({part for col in ("intermediate_task", "target_task") if col in metrics.columns
                   for n in metrics[col].dropna() if str(n) not in ("", "none") for part in components(str(n))})


def _same_run_warnings(src: Path, meta: Mapping[str, Any], out: Any, dest: Path) -> None:
    """Say, one line per bundle imported before, where it and ``src`` hold the same run (run id) with other
    metric values: a run id names one computation, and it is bit-exact on one CPU but not across CPUs (the
    e5 Brown POS run of seed 14 differed in its second decimal on a CPU without AVX-512, and a model fine-tuned
    from it by points zero-shot). Nothing is refused: each bundle's rows still count for its own study."""
    import pandas as pd

    mine = set(meta.get("runs", []))
    keys = ["run_id", "split", "lang", "metric"]
    rows = None
    for b in imported_bundles():
        theirs = mine & set(json.loads((b / BUNDLE_JSON).read_text()).get("runs", []))
        if not theirs or b == dest:  # ``dest``: this very bundle, imported before
            continue
        if rows is None:
            rows = pd.read_csv(src / METRICS_CSV, keep_default_na=False, na_values=[""], dtype={"lang": str},
                               low_memory=False)
            rows = rows[[c for c in [*keys, "value"] if c in rows.columns]].drop_duplicates(keys)
        other = pd.read_csv(b / METRICS_CSV, keep_default_na=False, na_values=[""], dtype={"lang": str},
                            low_memory=False)
        other = other[other["run_id"].isin(theirs)][[c for c in [*keys, "value"] if c in other.columns]]
        both = rows[rows["run_id"].isin(theirs)].merge(other.drop_duplicates(keys), on=keys, suffixes=("", "_b"))
        diff = (both["value"] - both["value_b"]).abs()
        differ = both[diff > 1e-9]
        if differ.empty:
            continue
        worst = diff.idxmax()
        where = " ".join(str(both.loc[worst, k]) for k in keys)
        out(f"[results] warning: {src} and the imported {b.name} hold {len(theirs)} run(s) in common, "
            f"{differ['run_id'].nunique()} of them with other metric values ({len(differ)} rows; largest "
            f"difference {diff.max():.4g} in {where}): the same run computed again, e.g. on another CPU (its "
            "env.json says which); each study's page uses its own bundle's rows")


def _task_data_warnings(src: Path, meta: Mapping[str, Any], out: Any) -> None:
    """Say, one line each, where a bundle's task data differ from the data here or from a bundle imported
    before (nothing is refused or overwritten)."""
    from xlt_utils import provenance

    known: dict[str, tuple[dict[str, Any], str]] = {}
    for b in imported_bundles():
        for task, rec in (json.loads((b / BUNDLE_JSON).read_text()).get("task_data") or {}).items():
            if rec.get("sha256"):
                known.setdefault(task, (rec, b.name))
    for task, rec in sorted((meta.get("task_data") or {}).items()):
        if not rec.get("sha256"):
            continue
        others = [(provenance.task_data(task), "here")]
        if task in known:
            others.append((known[task][0], f"imported bundle {known[task][1]}"))
        for other, where in others:
            line = provenance.mismatch(task, rec, other, where)
            if line:
                out(f"[results] warning: {src}: {line}")


def _manifest_file(study: str, profile: str) -> Path:
    return paths.RESULTS / "studies" / f"{study}__{profile}.json"


def grid_size(study: str, profile: str) -> int | None:
    """How many cells the grid of (study, profile) has, from its manifest here or an imported bundle (``None``
    when neither is here)."""
    f = _manifest_file(study, profile)
    if f.exists():
        return len(json.loads(f.read_text())["cells"])
    sizes = [m.get("grid_cells") for m in (json.loads((b / BUNDLE_JSON).read_text()) for b in imported_bundles())
             if m.get("study") == study and m.get("profile") == profile]
    return max((n for n in sizes if n), default=None)


def grid_manifest(study: str, profile: str) -> dict[str, Any]:
    """The manifest the grid of (study, profile) wrote here (``outputs/results/studies/``).

    Raises:
        XLTError: that grid never ran here (names the grids that did).
    """
    f = _manifest_file(study, profile)
    if not f.exists():
        have = sorted(p.stem.replace("__", " / ") for p in f.parent.glob("*.json")) if f.parent.exists() else []
        raise XLTError(f"no grid {study} / {profile} has run here; have: {', '.join(have) or '(none)'}")
    return json.loads(f.read_text())


def _source_bundle(run_id: str, study: str, profile: str) -> Path:
    """The imported bundle whose rows :func:`_with_imported` used for a run: one holding it under (study, profile)
    first, else the first holding it."""
    holding = [(b, json.loads((b / BUNDLE_JSON).read_text())) for b in imported_bundles()]
    holding = [(b, m) for b, m in holding if run_id in m.get("runs", [])]
    own = [b for b, m in holding if (m["study"], m["profile"]) == (study, profile)]
    return (own or [b for b, _ in holding])[0]


def _bundle_label(bundle: Path) -> str:
    """``paper / embedded-full, where world=offline-real seed=13 ..., exported 2026-12-07T13:14:57+00:00``: which
    bundle a reused run came from, in the words its ``bundle.json`` gives."""
    m = json.loads((bundle / BUNDLE_JSON).read_text())
    where = f", where {' '.join(m['where'])}" if m.get("where") else ""
    return f"{m['study']} / {m['profile']}{where}, exported {m.get('created', '?')}"


def _reused_provenance(rows: Any, reused: Mapping[str, Path]) -> tuple[dict[str, Any], dict[str, Any]]:
    """For the reused runs' ``rows``: the encoder each pretraining run they descend from was recorded with, and the
    task-data record of each task they read, both as their source bundle recorded them (``None`` / a record saying
    so where it recorded none): what they were computed from, not what is here."""
    encoders: dict[str, Any] = {}
    tasks: dict[str, Any] = {}
    for rid, part in rows.groupby("run_id"):
        meta = json.loads((reused[rid] / BUNDLE_JSON).read_text())
        pre = {r for r in (part["pretrain_run"].dropna() if "pretrain_run" in part else []) if r}
        pre |= {rid} if rid.startswith("pretrain/") else set()
        for r in sorted(pre):
            encoders.setdefault(r, (meta.get("pretrain_encoders_sha256") or {}).get(r))
        for t in _task_names(part):
            tasks.setdefault(t, (meta.get("task_data") or {}).get(t) or {
                "sha256": None, "summary": "not recorded by the bundle this run was reused from", "facts": {}})
    return encoders, tasks


def export_bundle(study: str, profile: str, dest: Path | str, only: set[str] | None = None,
                  where: Sequence[str] | None = None) -> dict[str, Any]:
    """Write the rows of (study, profile) from the runs finished *here* to ``dest``; ``only``: just these runs (a
    part of the grid, ``where`` its description).

    A run of the part that did not finish here but that an imported bundle holds, under any study (a run id names
    one computation, whichever grids it is a cell of: ``rq4``'s no-intermediate arm is the ``paper`` study's cell),
    is carried over with its rows relabelled to (study, profile) and its ``runs/<run id>/`` files, and
    ``bundle.json`` names the bundle it came from under ``reused``: so a study's bundles render its page alone.

    Returns:
        The bundle's ``bundle.json`` content.

    Raises:
        XLTError: ``dest`` exists and is not empty (nothing is overwritten), or no run of (study, profile) is here.
    """
    import datetime

    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise XLTError(f"{dest} exists and is not empty; give a new folder (nothing is overwritten)")
    cells = grid_manifest(study, profile)["cells"]
    member = memberships()
    # the rows collect() would give: runs finished here, and imported ones this grid has as cells (relabelled)
    frames = {METRICS_CSV: _finish_metrics(_with_imported(_metrics_frame(member), METRICS_CSV, member)),
              EFFICIENCY_CSV: _with_imported(_efficiency_frame(member), EFFICIENCY_CSV, member),
              TRAINING_CSV: _with_imported(_training_frame(member), TRAINING_CSV, member)}
    frames = {k: f[(f["study"] == study) & (f["profile"] == profile)
                   & (f["run_id"].isin(only) if only is not None else True)] for k, f in frames.items() if not f.empty}
    rids = sorted(set(frames[METRICS_CSV]["run_id"])) if METRICS_CSV in frames else []
    if not rids:
        raise XLTError(f"no finished run of {study} / {profile} here or in an imported bundle; run "
                       f"`python -m xlt_utils grid {study} --profile {profile}` first")
    here = {r for r in rids if runs.is_done(r)}
    reused = {r: _source_bundle(r, study, profile) for r in rids if r not in here}
    mine = frames[METRICS_CSV][~frames[METRICS_CSV]["run_id"].isin(set(reused))]
    pretrain = sorted({r for r in mine["pretrain_run"].dropna() if r} | {r for r in here if r.startswith("pretrain/")})
    encoders = {r: weights_sha256(runs.run_path(r)) for r in pretrain}
    reused_encoders, reused_tasks = _reused_provenance(
        frames[METRICS_CSV][frames[METRICS_CSV]["run_id"].isin(set(reused))], reused)
    meta = {"study": study, "profile": profile, "where": list(where or []), "runs": rids, "grid_cells": len(cells),
            "part_cells": len(cells) if only is None else len(only),
            "rows": {k: len(f) for k, f in frames.items()},
            "pretrain_encoders_sha256": {**reused_encoders,
                                         **{r: s for r, s in encoders.items() if s or r not in reused_encoders}},
            "task_data": {**reused_tasks, **(mine_tasks := _tasks_read(mine))},
            "git_revision": runs.git_revision(), "cpu": runs.cpu_description(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if reused:
        meta["reused"] = {rid: _bundle_label(reused[rid]) for rid in sorted(reused)}
        # what the reused runs were computed from, where it differs from the runs made here
        differ = {r: {"reused": sha, "here": encoders[r]} for r, sha in reused_encoders.items()
                  if sha and encoders.get(r) and sha != encoders[r]}
        differ.update({t: {"reused": rec["sha256"], "here": mine_tasks[t]["sha256"]} for t, rec in reused_tasks.items()
                       if rec.get("sha256") and (mine_tasks.get(t) or {}).get("sha256") not in (None, rec["sha256"])})
        if differ:
            meta["reused_differs"] = differ
    dest.mkdir(parents=True, exist_ok=True)
    for name, f in frames.items():
        if not f.empty:
            f.to_csv(dest / name, index=False)
    for rid in rids:  # each number stays traceable to its run's parameters, versions, hardware and timings
        (dest / BUNDLE_RUNS / rid).mkdir(parents=True, exist_ok=True)
        src = reused[rid] / BUNDLE_RUNS / rid if rid in reused else runs.run_path(rid)
        for n in (runs.PARAMS, runs.ENV):
            if (src / n).exists():
                shutil.copy2(src / n, dest / BUNDLE_RUNS / rid / n)
    runs.write_json_atomic(dest / BUNDLE_JSON, meta)
    return meta


def import_bundle(src: Path | str, out: Any = print) -> Path:
    """Copy a bundle into ``outputs/results/imported/`` (once: the same bundle again changes nothing) and say
    when it names another encoder for a pretraining run than a bundle or run already here, or other data for a
    task than the data here or a bundle already imported (one warning line each; nothing is refused).

    Raises:
        XLTError: ``src`` is not a bundle (no ``bundle.json`` or no ``metrics.csv``).
    """
    import hashlib

    src = Path(src)
    if not (src / BUNDLE_JSON).is_file() or not (src / METRICS_CSV).is_file():
        raise XLTError(f"{src} is not a result bundle (it needs {BUNDLE_JSON} and {METRICS_CSV}; "
                       f"`python -m xlt_utils results --export DIR --study S --profile P` writes one)")
    meta = json.loads((src / BUNDLE_JSON).read_text())
    digest = hashlib.sha256(b"".join((src / n).read_bytes() for n in (BUNDLE_JSON, *BUNDLE_FILES)
                                     if (src / n).exists())).hexdigest()[:10]
    dest = imported_dir() / f"{meta['study']}__{meta['profile']}__{digest}"
    known = imported_encoders()
    for r, sha in meta.get("pretrain_encoders_sha256", {}).items():
        here = weights_sha256(runs.run_path(r)) if runs.is_done(r) else None
        for other, where in ((here, "the run here"), *known.get(r, [])):
            if sha and other and other != sha:
                out(f"[results] warning: {src} was trained from another encoder than {where} for {r} "
                    f"(sha256 {sha[:12]} vs {other[:12]}): results of its arms and the others' are not from one "
                    f"pretrained model")
    _task_data_warnings(src, meta, out)
    _same_run_warnings(src, meta, out, dest)
    if dest.exists():
        out(f"[results] {src}: already imported ({dest})")
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for n in (BUNDLE_JSON, *BUNDLE_FILES):
        if (src / n).exists():
            shutil.copy2(src / n, tmp / n)
    if (src / BUNDLE_RUNS).is_dir():
        shutil.copytree(src / BUNDLE_RUNS, tmp / BUNDLE_RUNS)
    tmp.replace(dest)
    note = "" if "task_data" in meta else " (exported before bundles recorded their task data: none to compare)"
    out(f"[results] imported {src}: {len(meta['runs'])} runs of {meta['study']} / {meta['profile']} -> {dest}{note}")
    return dest


def load_training(config: Any) -> Any:
    """The training-cost rows (``outputs/results/training.csv``) of one study and profile (empty when none)."""
    import pandas as pd

    path = results_csv().with_name(TRAINING_CSV)
    if not path.exists():
        return pd.DataFrame()
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"study": str, "profile": str})
    return arm_names(df[(df["study"] == config.study) & (df["profile"] == config.profile)].reset_index(drop=True))


def arm_names(df: Any) -> Any:
    """An intermediate task trained with an auxiliary objective (``aux_objective`` of the intermediate run) is an
    arm of its own: its ``intermediate_task`` becomes ``<task> [aux <objective>]`` (e.g. ``rt_sentiment [aux
    contrastive]``), so every analysis keeps it apart from the plain task (same task name, other training)."""
    if df.empty or "intermediate_task" not in df.columns:
        return df
    obj = None
    for col in ("intermediate_aux_objective", "aux_objective"):  # a descendant's column, the intermediate run's own
        if col in df.columns:
            obj = df[col] if obj is None else obj.where(obj.notna(), df[col])
    if obj is None:
        return df
    task = df["intermediate_task"]
    mask = obj.notna() & ~obj.astype(str).isin(["none", ""]) & task.notna() & (task != "none")
    if mask.any():
        df = df.copy()
        df.loc[mask, "intermediate_task"] = task[mask] + " [aux " + obj[mask].astype(str) + "]"
    return df


# ---------------------------------------------------------------------------------------------- analysis


def load_efficiency(config: Any) -> Any:
    """The timing rows (``outputs/results/efficiency.csv``) of one study and profile; an empty frame when no
    run of it measured inference cost."""
    import pandas as pd

    path = results_csv().with_name(EFFICIENCY_CSV)
    if not path.exists():
        return pd.DataFrame()
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"lang": str, "study": str,
                                                                          "profile": str})
    return df[(df["study"] == config.study) & (df["profile"] == config.profile)].reset_index(drop=True)


def efficiency_table(eff: Any) -> Any:
    """Inference cost per evaluated model and batch size: latency p50/p95 (ms), throughput, GFLOPs per example."""
    if eff.empty:
        return eff
    cols = ["world", "model", "intermediate_task", "intermediate_batch_size", "target_task", "inference_dtype",
            "target_num_layers", "num_layers", "max_seq_length", "device", "processor", "threads", "batch_size"]
    cols = [c for c in cols if c in eff.columns]
    out = eff[cols].copy()
    out["latency_p50_ms"] = eff["latency_p50_ms"].round(1)
    out["latency_p95_ms"] = eff["latency_p95_ms"].round(1)
    out["examples_per_s"] = eff["throughput_ex_s"].round(1)
    out["gflops_per_example"] = (eff["flops_per_example"] / 1e9).round(3)
    return out.reset_index(drop=True)


# pandas' display defaults cut a table of more than 60 rows to its first and last five and a text cell at 50
# characters ("English intermediate training improves zero-sh..."): a report would hide most of a paper table
# and which target and model each claim is about. Analysis tables are at most a few hundred rows.
REPORT_DISPLAY = {"display.max_rows": 1000, "display.min_rows": 1000, "display.max_columns": 50,
                  "display.max_colwidth": None, "display.width": 250}


def configure(namespace: Mapping[str, Any]) -> Any:
    """Validate an analysis notebook's parameters (study, profile), and set pandas' display options so that its
    tables are shown whole (every row, full claim texts; ``REPORT_DISPLAY``)."""
    import pandas as pd

    from xlt_utils import config as C

    cfg = C.from_params("analysis", C.parameters_from_namespace(namespace))
    for option, value in REPORT_DISPLAY.items():
        pd.set_option(option, value)
    return cfg


def read_metrics(path: Path | str | None = None) -> Any:
    """The whole tidy ``metrics.csv`` (default ``outputs/results/metrics.csv``) as a DataFrame; empty cells are
    NaN, languages, studies and profiles are strings.

    Raises:
        XLTError: the file does not exist (says which command makes it).
    """
    import pandas as pd

    path = Path(path) if path is not None else results_csv()
    if not path.exists():
        raise XLTError(f"{path} does not exist; run `make reproduce` (or `python -m xlt_utils results`) first")
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"lang": str, "study": str, "profile": str},
                       low_memory=False)


def load(config: Any) -> Any:
    """The rows of one study and profile from ``outputs/results/metrics.csv``.

    Raises:
        XLTError: no results file, or no rows for the study and profile (says which command makes them).
    """
    path = results_csv()
    df = read_metrics(path)
    df["study"] = df["study"].fillna("")
    df["profile"] = df["profile"].fillna("")
    sel = df[(df["study"] == config.study) & (df["profile"] == config.profile)].copy()
    if sel.empty:
        have = sorted({f"{s}/{p}" for s, p in zip(df["study"], df["profile"]) if s})
        raise XLTError(f"no results for study {config.study!r} profile {config.profile!r} in {path}; "
                       f"have: {', '.join(have) or '(none)'}; run `make reproduce STUDY={config.study} "
                       f"PROFILE={config.profile}`")
    return arm_names(sel)


def primary_metric(task_name: str) -> str:
    """The metric key a task's results are compared on (accuracy, f1...)."""
    from xlt_utils.metrics import PRIMARY
    from xlt_utils.tasks import get_task

    task = get_task(task_name)
    if task.metric == "map_at_k":
        return f"map@{int(task.options.get('k', 20))}"
    return PRIMARY[task.metric]


NOT_ZERO_SHOT = "not zero-shot (parallel pairs)"  # the transfer of a language an auxiliary objective trained on


def zero_shot(df: Any) -> Any:
    """Zero-shot scores: evaluation rows on the primary metric, one row per (run lineage, language)."""
    ev = df[(df["phase"] == "eval")].copy()
    if ev.empty:
        raise XLTError("no evaluation (phase eval) rows in these results")
    keep = ev.apply(lambda r: r["metric"] == primary_metric(r["target_task"]), axis=1)
    ev = ev[keep]
    ev["transfer"] = ev["lang"].map(lambda lang: "English (supervised)" if lang == "en" else "zero-shot")
    if "zero_shot" in ev.columns:  # a retrieval language whose parallel pairs trained the encoder is not zero-shot
        ev.loc[ev["zero_shot"].eq(False), "transfer"] = NOT_ZERO_SHOT
    return ev


def transfer_table(df: Any) -> Any:
    """The paper's table: per (target task, intermediate task) the English score, the mean zero-shot score over
    the non-English languages, and its change vs. no intermediate task (paired by seed), mean ± sd over seeds."""
    import pandas as pd

    ev = zero_shot(df)
    per_seed = (ev.groupby(["model", "target_task", "intermediate_task", "seed", "transfer"], dropna=False)["value"]
                .mean().unstack("transfer").reset_index())
    if "zero-shot" not in per_seed:
        raise XLTError("no non-English evaluation rows: zero-shot transfer cannot be measured")
    none = per_seed[per_seed["intermediate_task"] == "none"]
    paired = {(m, t, s): z for m, t, s, z in zip(none["model"], none["target_task"], none["seed"], none["zero-shot"])
              if pd.notna(s)}
    # a seed-free baseline (a retrieval task evaluating the pretrained encoder itself) pairs with every seed
    shared = {(m, t): z for m, t, s, z in zip(none["model"], none["target_task"], none["seed"], none["zero-shot"])
              if pd.isna(s)}
    per_seed["delta"] = [z - paired.get((m, t, s), shared.get((m, t), float("nan")))
                         for m, t, s, z in zip(per_seed["model"], per_seed["target_task"], per_seed["seed"],
                                               per_seed["zero-shot"])]
    agg = per_seed.groupby(["model", "target_task", "intermediate_task"], dropna=False).agg(
        english=("English (supervised)", "mean"), zero_shot=("zero-shot", "mean"),
        zero_shot_sd=("zero-shot", "std"), delta=("delta", "mean"), delta_sd=("delta", "std"),
        n_runs=("zero-shot", "size")).reset_index()
    return pd.DataFrame(agg).round(2)


def check_transfer_table(table: Any) -> None:
    """Raise AssertionError unless the paper table is complete: the no-intermediate baseline is there, every
    row has a zero-shot score and a run, and every trainable task has its English score (retrieval tasks have
    no English side in the offline-real world: English is the candidate language)."""
    from xlt_utils.tasks import get_task

    assert "none" in set(table["intermediate_task"]), "the no-intermediate baseline is missing"
    assert table["zero_shot"].notna().all(), "a row has no zero-shot score"
    assert (table["n_runs"] >= 1).all()
    trainable = table["target_task"].map(lambda t: get_task(t).format != "retrieval")
    missing = table[trainable & table["english"].isna()]
    assert missing.empty, f"no English score for {sorted(set(missing['target_task']))}"


def baseline_table(df: Any) -> Any:
    """Baselines (04) on the primary metric: mean over non-English languages and English, per task and kind."""
    b = df[df["phase"] == "baselines"]
    if b.empty:
        return b
    b = b[b.apply(lambda r: r["metric"] == primary_metric(r["target_task"]), axis=1)].copy()
    b["transfer"] = b["lang"].map(lambda lang: "english" if lang == "en" else "other_languages")
    return (b.groupby(["target_task", "kind", "transfer"])["value"].mean().unstack("transfer").reset_index()
            .round(2))


# ---------------------------------------------------------------------------------------------- report


ANALYSIS_CODE = ("results.py", "studies.py", "analysis.py", "plots.py", "efficiency.py")


def render_reports(profile: str, studies: list[str] | None = None, out: Any = print, jobs: int = 1) -> list[Path]:
    """Execute each study's analysis notebook on the collected results and render it to HTML.

    ``outputs/report/<notebook>__<profile>.{ipynb,html}``; a report whose inputs (results table, notebook) did not
    change is not re-rendered. ``jobs`` notebooks are executed at a time (each in its own kernel).

    Returns:
        The HTML files (rendered now or already up to date), in the studies' order.
    """
    import hashlib

    from xlt_utils import config as C

    csv = results_csv()
    if not csv.exists():
        raise XLTError(f"{csv} does not exist; run `python -m xlt_utils results` first")
    import pandas as pd

    df = pd.read_csv(csv, usecols=["study", "profile", "run_id"], keep_default_na=False, dtype=str)
    have = set(zip(df["study"], df["profile"]))
    n_runs = df.groupby(["study", "profile"])["run_id"].nunique().to_dict()
    paths.REPORT.mkdir(parents=True, exist_ok=True)
    # a report's inputs: the results tables, the analysis code its notebook calls, and the notebook itself
    inputs = csv.read_bytes() + b"".join(p.read_bytes() for p in (csv.with_name(EFFICIENCY_CSV),
                                                                     csv.with_name(TRAINING_CSV)) if p.exists())
    inputs += b"".join((paths.PROJECT_ROOT / "xlt_utils" / f).read_bytes() for f in ANALYSIS_CODE)
    done, todo = [], []
    for study, nb_name in C.ANALYSIS_NOTEBOOKS.items():
        if studies is not None and study not in studies:
            continue
        if (study, profile) not in have:
            out(f"[report] {study}/{profile}: no results yet, skipped")
            continue
        nb_path = C.notebook_path(nb_name)
        stamp = hashlib.sha256(inputs + nb_path.read_bytes() + profile.encode()).hexdigest()
        base = paths.REPORT / f"{nb_name}__{profile}"
        html, stamp_file = base.with_suffix(".html"), base.with_suffix(".stamp")
        done.append(html)
        if html.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
            out(f"[report] {html} is up to date")
            continue
        cells = grid_size(study, profile)
        unfinished = ""
        if cells is not None and n_runs[(study, profile)] < cells:
            unfinished = f"its grid is not finished: {n_runs[(study, profile)]} of {cells} cells have results"
            out(f"[report] {study}/{profile}: {unfinished}; the report reads what is there")
        todo.append((nb_path, base, html, stamp_file, stamp, {"study": study, "profile": profile}, unfinished))

    def render(item: tuple) -> None:
        nb_path, base, html, stamp_file, stamp, parameters, unfinished = item
        try:
            _execute_to_html(nb_path, base.with_suffix(".ipynb"), html, parameters)
        except XLTError as e:
            if not unfinished:
                raise
            raise XLTError(f"{e}; {unfinished}, and the analysis may need the rest") from None
        stamp_file.write_text(stamp)  # only after the HTML: a failed render is redone next time
        out(f"[report] {html}")

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for _ in pool.map(render, todo):  # re-raises the first failure (the others still finish)
            pass
    return done


def _execute_to_html(nb_path: Path, executed: Path, html: Path, parameters: dict[str, Any]) -> None:
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    from xlt_utils.execute import PAPERMILL_OPTIONS

    try:
        pm.execute_notebook(str(nb_path), str(executed), parameters=parameters, **PAPERMILL_OPTIONS)
    except pm.PapermillExecutionError as e:
        raise XLTError(f"analysis notebook {nb_path.name} failed: {e.ename}: "
                       f"{str(e.evalue).splitlines()[0] if e.evalue else ''} (see {executed})") from None
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(executed), as_version=4))
    tmp = html.with_name(html.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(html)


def overview(df: Any) -> Any:
    """Runs and metric rows per phase, and how many of the runs came from imported result bundles (display)."""
    out = df.groupby("phase").agg(runs=("run_id", "nunique"), rows=("value", "size"))
    imported = imported_run_ids()
    if imported:
        ids = set(df["run_id"])
        from_bundles = {r for r in ids & imported if not runs.is_done(r)}
        out["imported"] = (df[df["run_id"].isin(from_bundles)].groupby("phase")["run_id"].nunique()
                           .reindex(out.index, fill_value=0))
    else:
        out["imported"] = 0
    return out
