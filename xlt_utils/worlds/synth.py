"""The ``synth`` world: synthetic languages with controlled typology, every XTREME format, generated offline.

Importing this module registers the synth tasks (world ``synth``). :func:`load` generates a split
deterministically from the task's options (``n_train``, ``n_dev``, ``n_test``, ``seed``, ``topic``) with
:mod:`xlt_utils.synth.builders`, and keeps it in memory. :func:`export` writes JSON-lines files with a language
card beside every dataset.

Every task has dev/test in every language and a training split in every language too (English is the
zero-shot source; the others serve the source-language study, translate-train and in-language upper bounds).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError
from xlt_utils.synth.builders import KINDS, build_records
from xlt_utils.synth.languages import GRAMMAR_VERSION, LANGUAGE_IDS, language_card
from xlt_utils.tasks import Task, get_task, register

# languages of the small multilingual intermediate set (data-scaling study): near and far, Latin and not
MULTI_LANGUAGES = ("en", "sw1", "sw3", "fr_like", "hi_like")
_METRIC = {"pair_classification": "accuracy", "classification": "accuracy", "span_qa": "squad",
           "multiple_choice": "accuracy", "retrieval": "tatoeba_accuracy"}


def _task(name: str, kind: str, role: str, train_source: str, description: str, *, metric: str | None = None,
          train_langs: tuple[str, ...] = LANGUAGE_IDS, notes: str = "", **options: Any) -> Task:
    k = KINDS[kind]
    splits = {"dev": LANGUAGE_IDS, "test": LANGUAGE_IDS}
    if k.format != "retrieval":
        splits["train"] = train_langs
    if k.format == "multiple_choice":
        options.setdefault("num_choices", 4 if kind == "hellaswag" else 2)
    sizes = dict(zip(("n_train", "n_dev", "n_test"), k.sizes))
    return register(Task(
        name=name, format=k.format, world="synth", languages=LANGUAGE_IDS,
        metric=metric or _METRIC.get(k.format, "accuracy"), labels=k.labels, role=role, train_language="en",
        train_source=train_source, splits=splits,
        source={"kind": kind, "grammar_version": GRAMMAR_VERSION,
                "summary": f"generated: xlt_utils.synth {kind} (grammar {GRAMMAR_VERSION})"},
        retrieval_mode="tatoeba" if k.format == "retrieval" else None,
        options={**sizes, "seed": 0, "topic": "general", **options}, description=description, notes=notes,
    ), replace=True)


def register_all() -> list[Task]:
    """Register every synth task (idempotent). Returns them."""
    other = {"topic": "other", "seed": 1}  # intermediate tasks: same world, other topics, other items
    return [
        _task("synth_xnli", "nli", "target", "synth NLI (natural-logic edits)", "XNLI-like 3-way NLI"),
        _task("synth_pawsx", "paraphrase", "target", "synth PAWS", "PAWS-X-like paraphrase (same bag of words)"),
        _task("synth_udpos", "pos", "target", "synth treebank", "UD-POS-like tagging (UPOS)", metric="pos_accuracy"),
        _task("synth_panx", "ner", "target", "synth NER", "PAN-X-like NER (IOB2 PER/LOC/ORG)", metric="span_f1"),
        _task("synth_xquad", "qa", "target", "synth stories", "XQuAD-like span QA over 3-5 sentence stories"),
        _task("synth_tatoeba", "retrieval", "target", "", "Tatoeba-like retrieval: queries in L, candidates en"),
        _task("synth_xcopa", "copa", "target", "synth scripts", "XCOPA-like 2-choice cause/effect"),
        _task("synth_mnli", "nli", "intermediate", "synth MNLI (other topics)", "MNLI-like intermediate task",
              **other),
        _task("synth_mnli_shuffled", "nli", "intermediate", "synth MNLI, labels shuffled",
              "control: MNLI-like with shuffled labels", shuffle_labels=True, **other),
        _task("synth_mnli_multi", "nli", "intermediate", "synth MNLI, small multilingual",
              "small multilingual MNLI-like set (data-scaling study)", train_langs=MULTI_LANGUAGES,
              notes="train split exists in several languages: concatenate them", per_language_items=True,
              n_train=2000, **other),
        _task("synth_squad", "qa", "intermediate", "synth SQuAD (other topics)", "SQuAD-like intermediate task",
              **other),
        _task("synth_hellaswag", "hellaswag", "intermediate", "synth scripts", "HellaSwag-like 4-way next event",
              **other),
        _task("synth_qqp", "qq", "intermediate", "synth question pairs", "QQP-like question paraphrase", **other),
        _task("synth_sst2", "sentiment", "intermediate", "synth sentiment", "SST-2-like sentiment", **other),
    ]


def scaled(name: str, n_train: int) -> Task:
    """Register (and return) ``{name}_n{n_train}``: the same task with another training-set size."""
    from dataclasses import replace

    base = get_task(name)
    if base.world != "synth":
        raise XLTError(f"scaled() needs a synth task; {name!r} is in world {base.world!r}")
    return register(replace(base, name=f"{name}_n{n_train}", options={**base.options, "n_train": int(n_train)}),
                    replace=True)


def config_hash(task: Task) -> str:
    """Hash of everything that determines a task's data (kind, options, grammar version)."""
    blob = json.dumps({"source": dict(task.source), "options": dict(task.options)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def generator_options(options: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """The item-generator options of a synth task in one language (for ``builders.items`` and
    ``builders.build_records``): its sizes, seed and topic; with ``per_language_items`` the seed names the
    language (a different sample per language, not translations)."""
    gen = {k: options[k] for k in ("n_train", "n_dev", "n_test", "seed", "topic") if k in options}
    if options.get("per_language_items"):
        gen["seed"] = f"{gen.get('seed', 0)}:{lang}"
    return gen


@lru_cache(maxsize=256)
def _records(name: str, kind: str, split: str, lang: str, opts: str) -> tuple[dict, ...]:
    o = json.loads(opts)
    return tuple(build_records(kind, split, lang, prefix=name, shuffle_labels=bool(o.get("shuffle_labels")),
                               **generator_options(o, lang)))


def load(task: Task, split: str, lang: str) -> list[dict[str, Any]]:
    """Records of one split and language of a synth task (generated from its options; cached in memory)."""
    opts = json.dumps(dict(task.options), sort_keys=True, default=str)
    recs = _records(task.name, task.source["kind"], split, lang, opts)
    return [dict(r) for r in recs]  # copies: callers may add fields


def export(task: Task | str, out_dir: str | Path) -> Path:
    """Write every split and language of a task as ``{split}-{lang}.jsonl`` with ``cards/{lang}.json`` and a
    ``config.json`` (options and hash) beside them.

    Returns:
        The folder written.
    """
    from xlt_utils.worlds.local import write_jsonl

    task = get_task(task) if isinstance(task, str) else task
    out = Path(out_dir)
    for split in ("train", "dev", "test"):
        for lang in task.languages_for(split):
            write_jsonl(out / f"{split}-{lang}.jsonl", load(task, split, lang))
    (out / "cards").mkdir(parents=True, exist_ok=True)
    for lang in task.languages:
        (out / "cards" / f"{lang}.json").write_text(json.dumps(language_card(lang), indent=1, sort_keys=True))
    (out / "config.json").write_text(json.dumps({"task": task.name, "hash": config_hash(task),
                                                 "options": dict(task.options), "source": dict(task.source)},
                                                indent=1, sort_keys=True, default=str))
    return out


TASKS = register_all()
