"""The ``xtreme`` world: XTREME / XTREME-R targets, the paper's intermediate tasks and FLORES-200, loaded with
``datasets`` from their Hugging Face Hub ids (or from local copies in the Hub layout).

Importing this module registers every task of :func:`xlt_utils.xtreme.catalog.task_entries`. ``load(task,
split, lang)`` picks the task's source route for (split, lang), reads each part through
:func:`xlt_utils.xtreme.source.read_table` and maps the Hub schema to records with the part's mapper
(:mod:`xlt_utils.xtreme.mappers`). ``load_records`` (:mod:`xlt_utils.worlds`) validates them.

Data sources, offline behaviour, local copies (``XLT_XTREME_LOCAL_DIR``) and protocol decisions:
``docs/xtreme.md``. ``python -m xlt_utils.worlds.xtreme lock`` resolves every source revision to a commit.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError
from xlt_utils.tasks import Task, list_tasks, register
from xlt_utils.xtreme import catalog, mappers, source

WORLD = "xtreme"


def _register_all() -> None:
    for entry in catalog.task_entries():
        if entry["name"] in catalog.TRAIN_EXAMPLES:
            entry = {**entry, "options": {**entry.get("options", {}),
                                          "train_examples": catalog.TRAIN_EXAMPLES[entry["name"]]}}
        register(Task(world=WORLD, **entry))


_register_all()


def _route(task: Task, split: str, lang: str) -> dict[str, Any]:
    for route in task.source.get("routes", []):
        if route["langs"] is not None and lang not in route["langs"]:
            continue
        if any(split in part["splits"] for part in route["parts"]):
            return route
    raise XLTError(
        f"{task.name}/{split}/{lang}: the xtreme catalog has no source for this split and language"
    )


def load(task: Task, split: str, lang: str) -> list[dict[str, Any]]:
    """Records of one split and language of an ``xtreme`` task (unvalidated; see ``load_records``)."""
    if task.source.get("local_env"):
        return load_local_tagging(task, split, lang)
    parts = [p for p in _route(task, split, lang)["parts"] if split in p["splits"]]
    records: list[dict[str, Any]] = []
    for part in parts:
        recs = mappers.MAPPERS[part["mapper"]](mappers.Context(task, split, lang, part))
        if len(parts) > 1:  # a composite (ANLI+): keep ids unique across the concatenated datasets
            for r in recs:
                r["id"] = f"{part['hub_id']}:{r['id']}"
        records.extend(recs)
    return records


# ---------------------------------------------------------------------------------------------------------
# CCG: licensed data, local files only


def ccg_dir(task: Task) -> Path | None:
    """``$XLT_CCG_DIR``, else ``<XLT_XTREME_LOCAL_DIR>/ccg`` if it exists, else ``None``."""
    env = os.environ.get(task.source["local_env"])
    if env:
        return Path(env).expanduser()
    root = source.local_root()
    if root is not None and (root / "ccg").is_dir():
        return root / "ccg"
    return None


def load_local_tagging(task: Task, split: str, lang: str) -> list[dict[str, Any]]:
    """CCG supertagging from jiant-format files: ``tokens<TAB>supertags`` lines (both space-separated) and
    ``tags_to_id.json``; each supertag becomes its id (the task's labels are ``"0"``..``"1362"``)."""
    folder = ccg_dir(task)
    files = task.source["files"]
    if folder is None:
        raise XLTError(
            f"{task.name}: CCGbank (LDC2005T13) is licensed and not on the Hugging Face Hub; set "
            f"{task.source['local_env']} to a folder with {', '.join(files.values())} and {task.source['tags']} "
            "(jiant format: one 'tokens<TAB>supertags' line per sentence)"
        )
    path, tags_path = folder / files[split], folder / task.source["tags"]
    for p in (path, tags_path):
        if not p.exists():
            raise XLTError(f"{task.name}/{split}: missing {p} ({task.source['local_env']}={folder})")
    with tags_path.open(encoding="utf-8") as f:
        tags_to_id = {k: str(int(v)) for k, v in json.load(f).items()}
    records = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if "\t" not in line:
                raise XLTError(f"{path}:{i + 1}: expected 'tokens<TAB>supertags'")
            text, tags = line.split("\t", 1)
            tokens, supertags = text.split(" "), tags.split()
            unknown = [t for t in supertags if t not in tags_to_id]
            if unknown:
                raise XLTError(f"{path}:{i + 1}: supertag {unknown[0]!r} is not in {tags_path.name}")
            records.append(
                {"id": f"{split}-{i}", "tokens": tokens, "tags": [tags_to_id[t] for t in supertags]}
            )
    return records


# ---------------------------------------------------------------------------------------------------------
# helpers used by the engine and the study


def retrieval_layer(task: Task, num_layers: int) -> int:
    """The hidden-state index to pool for ``task`` on an encoder with ``num_layers`` layers.

    ``options.layer`` is defined for a ``layer_of``-layer model (14 of 24 for XLM-R large); other depths get the
    same relative depth (see :func:`xlt_utils.retrieval.resolve_layer`, which evaluation uses).
    """
    from xlt_utils.retrieval import resolve_layer

    return resolve_layer(task.options, num_layers)


# The toolkits whose per-task hyperparameters the catalog records (``options["hparams"]``, benchmark-facts §5):
# jiant's X-STILTs scripts (the paper's toolkit) and google-research/xtreme's scripts.
HPARAM_SOURCES = ("jiant", "xtreme")
# catalog key -> run parameter of the training phases. Keys without a run parameter stay documentation only:
# adam_eps and max_grad_norm (the trainer's own 1e-8 and 1.0), warmup_steps (warmup is a ratio here), seed (the
# profile's seeds), doc_stride (a task option, ``options["doc_stride"]``, that the span_qa pipeline reads).
HPARAM_PARAMS = {
    "lr": "learning_rate",
    "epochs": "num_train_epochs",
    "batch_size": "per_device_train_batch_size",
    "grad_accum": "gradient_accumulation_steps",
    "max_seq_length": "max_seq_length",
    "warmup": "warmup_ratio",
    "weight_decay": "weight_decay",
}
# phase -> the run parameters the catalog feeds (evaluation encodes at the task's training length)
HPARAM_PHASES = {
    "intermediate": tuple(HPARAM_PARAMS.values()),
    "target": tuple(HPARAM_PARAMS.values()),
    "baselines": tuple(HPARAM_PARAMS.values()),
    "eval": ("max_seq_length",),
}


def catalog_params(task: Task, phase: str, order: tuple[str, ...] | list[str] = HPARAM_SOURCES) -> dict[str, tuple[Any, str]]:
    """The run parameters of ``phase`` that the catalog sets for ``task``: ``{parameter: (value, origin)}``.

    The first toolkit of ``order`` with values for the task supplies them all (toolkits are not mixed within a
    task: jiant's warmup ratio never meets xtreme's warmup steps); ``origin`` names it. A sequence length the
    toolkit leaves out (or gives as text, LAReQA's "96 + 256") comes from the task's own
    ``options["max_seq_length"]`` (origin ``options``). ``order=()`` gives nothing: the study sets everything.
    """
    wanted = HPARAM_PHASES.get(phase, ())
    if not wanted or not order:
        return {}
    hp = task.options.get("hparams") or {}
    src = next((s for s in order if hp.get(s)), None)
    out: dict[str, tuple[Any, str]] = {}
    for key, value in (hp.get(src) or {}).items():
        name = HPARAM_PARAMS.get(key)
        if name in wanted and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = (value, src)
    own = task.options.get("max_seq_length")
    if "max_seq_length" in wanted and "max_seq_length" not in out and isinstance(own, int):
        out["max_seq_length"] = (own, "options")
    return out


def load_mlm_text(lang: str, max_docs: int | None = None) -> list[str]:
    """Raw Wikipedia text of ``lang`` (``wikimedia/wikipedia`` dump of :data:`catalog.MLM_CORPUS`), for the
    continued multilingual MLM alternative; same reader (Hub or local copy) as the tasks."""
    part = catalog.MLM_CORPUS
    ds = source.read_table(
        part["hub_id"], part["config"].format(lang=lang), "train", revision=part["revision"]
    )
    missing = [c for c in part["features"] if c not in ds.column_names]
    if missing:
        raise XLTError(f"mlm/{lang}: {part['hub_id']} lacks columns {missing}")
    texts = []
    for row in ds:
        if row["text"] and row["text"].strip():
            texts.append(row["text"])
            if max_docs is not None and len(texts) >= max_docs:
                break
    return texts


def hub_sources() -> Iterator[tuple[str, str, str]]:
    """Every ``(hub_id, revision, layout)`` the catalog reads (for locking and documentation)."""
    seen = set()
    parts = [catalog.MLM_CORPUS]
    for task in list_tasks(world=WORLD):
        for route in task.source.get("routes", []):
            parts.extend(route["parts"])
    for p in parts:
        key = (p["hub_id"], p["revision"], p.get("layout", "hub"))
        extra = p.get("args", {}).get("exclude_articles_of")
        if key not in seen:
            seen.add(key)
            yield key
        if extra and (extra["hub_id"], "main", "hub") not in seen:
            seen.add((extra["hub_id"], "main", "hub"))
            yield extra["hub_id"], "main", "hub"


def lock(path: Path | None = None) -> dict[str, str]:
    """Resolve every source revision to its current commit on the Hub and write the lock file.

    Needs network (and a token for gated datasets). Loads then use the locked commits.
    """
    from huggingface_hub import HfApi

    api = HfApi()
    locked: dict[str, str] = {}
    for hub_id, revision, layout in sorted(set(hub_sources())):
        rev = source.PARQUET_EXPORT if layout == "parquet-export" and revision == "main" else revision
        try:
            locked[f"{hub_id}@{rev}"] = api.dataset_info(hub_id, revision=rev).sha
        except Exception as e:  # noqa: BLE001
            raise XLTError(f"lock: cannot resolve {hub_id}@{rev}: {type(e).__name__}: {e}") from None
    target = path or source.LOCK_FILE
    target.write_text(json.dumps(locked, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return locked


def main(argv: list[str] | None = None) -> int:
    """``python -m xlt_utils.worlds.xtreme lock|sources``."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["lock"]:
        for k, v in lock().items():
            print(f"{k} -> {v}")
        return 0
    if args[:1] == ["sources"]:
        for hub_id, revision, layout in sorted(set(hub_sources())):
            print(f"{hub_id}\t{revision}\t{layout}")
        return 0
    print("usage: python -m xlt_utils.worlds.xtreme lock | sources", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except XLTError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
