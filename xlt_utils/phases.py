"""The logic of the phase notebooks 00–04: each notebook cell is one call to a function here.

A phase notebook runs::

    config = phases.configure("<phase>", globals())   # validate the parameters (unknown/missing/type: error)
    run = phases.start(config)                          # run directory, lock, params.json, seeds
    ...one call per step (load data, build, train, evaluate, save)...
    phases.finish(run)                                  # env.json (timings), DONE (last, atomic)

Work is timed per step (``run.timings``) and written to ``env.json``; ``train``, ``eval``, ``efficiency`` (the timed
inference passes that rq3 evaluates) and ``pretrain`` count as *work*, everything else (imports, data, model
loading, saving) as overhead that the grid reports. Task records come from
:mod:`xlt_utils.phase_data`, which caches generated (synth) datasets on disk keyed by a hash of the task definition
and the generator's source, so the many cells of a grid do not regenerate them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlt_utils import config as C
from xlt_utils import paths, runs
from xlt_utils.errors import XLTError
from xlt_utils.phase_data import DATA_SEED, dev_score_fn, records, source_hash

WORK_STEPS = ("pretrain", "train", "eval", "efficiency")  # efficiency: timed inference, the rq3 evaluation
METRIC_COLUMNS = ("task", "split", "lang", "metric", "value", "n_examples")


# ---------------------------------------------------------------------------------------------- run state


@dataclass
class Run:
    """A run in progress: its config, id, directory, lineage and step timings."""

    phase: str
    config: Any
    id: str
    dir: Path
    lineage: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    lock: Any = None

    intervals: list[tuple[float, float]] = field(default_factory=list)

    @contextmanager
    def timer(self, step: str) -> Iterator[None]:
        """Add the wall time of a block to ``timings[step]`` (work steps also keep their clock interval)."""
        t0, w0 = time.perf_counter(), time.time()
        try:
            yield
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - t0
            if step in WORK_STEPS:
                self.intervals.append((w0, time.time()))

    @property
    def params(self) -> dict[str, Any]:
        return self.config.to_params()

    def __repr__(self) -> str:
        return f"Run({self.id})"


def _phase_of(config: Any) -> str:
    for phase, cls in C.CONFIGS.items():
        if type(config) is cls:
            return phase
    raise XLTError(f"not a phase config: {type(config).__name__}")


def configure(phase: str, namespace: Mapping[str, Any]) -> Any:
    """Validate a notebook's parameters into the phase's config (the notebook's third cell).

    Args:
        phase: ``pretrain``, ``intermediate``, ``target``, ``eval``, ``baselines`` or ``analysis``.
        namespace: the notebook's ``globals()`` (parameters cell + papermill's injected parameters).

    Raises:
        XLTError: unknown or missing parameters, wrong types, invalid values.
    """
    params = C.parameters_from_namespace(namespace)
    _quiet()
    return C.from_params(phase, params)


def _quiet() -> None:
    """Keep executed notebooks readable: no ipywidgets warning from tqdm, no per-file progress bars."""
    import warnings

    warnings.filterwarnings("ignore", message="IProgress not found")
    # transformers reads this when it is first imported (through huggingface_hub); setting it costs no import of
    # transformers here, which a cell that never loads a model would pay for nothing
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers.utils.logging" in sys.modules:  # imported already (an interactive session)
        sys.modules["transformers.utils.logging"].disable_progress_bar()


def plan(config: Any) -> tuple[str, dict[str, Any]]:
    """The run id and lineage a config gets (reads the upstream run's ``params.json``)."""
    phase = _phase_of(config)
    params = config.to_params()
    upstream = params.get("upstream")
    up_lineage = runs.read_params(upstream)["lineage"] if upstream else None
    lineage = runs.lineage_of(phase, params, up_lineage)
    return runs.run_id(phase, params, lineage), lineage


def start(config: Any) -> Run:
    """Open the run directory of a config: lock it, write ``params.json``, seed everything.

    A finished run (``DONE``) is never overwritten: starting it again is an error. An unfinished one is taken
    over; its training resumes from the last checkpoint.

    Raises:
        XLTError: the run is finished, or its upstream run is missing or unfinished.
    """
    phase = _phase_of(config)
    rid, lineage = plan(config)
    d = runs.run_path(rid)
    if runs.is_done(d):
        raise XLTError(f"run {rid} is already finished (DONE); a finished run is never overwritten: "
                       f"delete {d} to recompute it, or change a parameter")
    d.mkdir(parents=True, exist_ok=True)
    lock = runs.acquire_lock(d)
    if runs.is_done(d):  # finished by a previous owner while we waited for the lock
        raise XLTError(f"run {rid} was finished by another process")
    run = Run(phase=phase, config=config, id=rid, dir=d, lineage=lineage, lock=lock)
    _write_params(run)
    run.env = runs.environment()
    runs.write_json_atomic(d / runs.ENV, {**run.env, "status": "running"})
    seed = getattr(config, "seed", None)
    if seed is not None and _uses_torch(config):
        from transformers import set_seed

        set_seed(seed)  # random, numpy and torch
    elif seed is not None:
        import random

        import numpy as np

        random.seed(seed)
        np.random.seed(seed)
    print(f"run {rid}\n  dir {d}")
    return run


def _uses_torch(config: Any) -> bool:
    """Whether a cell builds or runs a model: all but a majority baseline (which counts labels) and a pretrain
    cell that copies a committed checkpoint, which are seeded and run without importing torch and transformers
    (seconds per kernel)."""
    phase = _phase_of(config)
    if phase == "baselines":
        return getattr(config, "kind", None) != "majority"
    return not (phase == "pretrain" and getattr(config, "checkpoint", None) is not None)


def _write_params(run: Run) -> None:
    runs.write_json_atomic(run.dir / runs.PARAMS, {"run_id": run.id, "phase": run.phase,
                                                   "protocol": runs.protocol_version(run.phase),
                                                   "params": run.params, "lineage": run.lineage,
                                                   "resolved": run.resolved})


def finish(run: Run) -> dict[str, Any]:
    """Write ``env.json`` (timings) and then ``DONE`` (atomically): the run's last step.

    Returns:
        The timings.
    """
    run.timings["total_in_kernel"] = time.perf_counter() - run.started
    run.timings["work"] = sum(run.timings.get(k, 0.0) for k in WORK_STEPS)
    _write_params(run)
    run.env.update({**runs.torch_environment(), **runs.peak_memory()})
    runs.write_json_atomic(run.dir / runs.ENV, {**run.env, "status": "done", "finished":
                                                time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                "timings": {k: round(v, 3) for k, v in run.timings.items()},
                                                "work_intervals": [[round(a, 3), round(b, 3)] for a, b in run.intervals]})
    if not (run.dir / runs.METRICS).exists():
        raise XLTError(f"run {run.id} wrote no {runs.METRICS}")
    runs.mark_done(run.dir)
    if run.lock is not None:
        run.lock.__exit__(None, None, None)
        run.lock = None
    print(f"done: {run.id}")
    return dict(run.timings)


def save_metrics(run: Run, rows: Sequence[Mapping[str, Any]]) -> Any:
    """Write the tidy ``metrics.csv`` of a run (deterministic columns and order) and return it as a DataFrame."""
    import pandas as pd

    df = pd.DataFrame([{k: r[k] for k in METRIC_COLUMNS} for r in rows], columns=list(METRIC_COLUMNS))
    df = df.sort_values(["task", "split", "lang", "metric"], kind="stable").reset_index(drop=True)
    tmp = run.dir / (runs.METRICS + ".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, run.dir / runs.METRICS)
    return df


# ---------------------------------------------------------------------------------------------- data


def train_languages(task: Any) -> tuple[str, ...]:
    """Languages trained on: English, or every training language for a multilingual intermediate set."""
    if task.options.get("per_language_items"):
        return tuple(task.languages_for("train"))
    return (task.train_language,)


# ---------------------------------------------------------------------------------------------- encoders


def _base_encoder_synth(model: str) -> Path:
    """A randomly initialised synth encoder with a tokenizer trained on the synth corpus (cached)."""
    from xlt_utils.models import init_encoder, train_tokenizer
    from xlt_utils.synth.corpus import mlm_corpus
    from xlt_utils.synth.languages import LANGUAGE_IDS
    from xlt_utils.synth.pretrain import encoder_config

    size = model.removeprefix("synth-")
    spec = {"model": model, "vocab_size": 4000, "n_per_language": 300, "max_len": 128, "init_seed": 0,
            "languages": list(LANGUAGE_IDS), "code": source_hash("synth")}
    h = hashlib.sha256(runs.canonical_json(spec).encode()).hexdigest()[:12]
    out = paths.CACHE / "xlt" / "encoders" / f"{model}-{h}"
    if (out / "config.json").exists():
        return out
    docs = mlm_corpus(LANGUAGE_IDS, spec["n_per_language"], seed=0)
    tok = train_tokenizer([d[1] for d in docs], vocab_size=spec["vocab_size"], model_max_length=spec["max_len"])
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    init_encoder(encoder_config(size, len(tok), spec["max_len"]), tok, tmp, seed=spec["init_seed"])
    (tmp / "provenance.json").write_text(json.dumps({**spec, "note": "random initialisation"}, indent=1))
    try:
        os.replace(tmp, out)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def base_encoder(world: str, model: str) -> str:
    """The starting encoder of a model when no upstream run gives one.

    synth: a random initialisation (the no-pretraining control; phase 00 pretrains); offline-real: the
    converted multilingual-e5-small; xtreme: the zoo's Hub id.
    """
    if world == "synth":
        return str(_base_encoder_synth(model))
    if world == "offline-real":
        from xlt_utils.offline.encoder import encoder_dir

        return str(encoder_dir())
    if world == "xtreme":
        from xlt_utils.zoo import get_model

        spec = get_model(model)
        if spec.hub_id is None:
            raise XLTError(f"model {model!r} has no Hub id; it needs an upstream run")
        return spec.hub_id
    raise XLTError(f"world {world!r} has no base encoder for model {model!r}; give an upstream run")


def encoder_source(run: Run) -> str:
    """Where this run's starting weights come from: the upstream run's ``encoder/`` (or ``model/``), or the
    model's base encoder."""
    up = run.config.upstream
    src = start_encoder(run.config.world, run.config.model, up)
    run.resolved["encoder"] = src if up is None else f"{up}/{'model' if up.startswith('target/') else 'encoder'}"
    return src


def start_encoder(world: str, model: str, upstream: str | None) -> str:
    """The weights a run with this upstream starts from: the upstream's ``model/`` (a target run) or ``encoder/``,
    or the model's base encoder when there is none."""
    if upstream is None:
        return base_encoder(world, model)
    return str(runs.run_path(upstream) / ("model" if upstream.startswith("target/") else "encoder"))


def _check_length(run: Run, tokenizer: Any, model_config: Any, max_seq_length: int) -> None:
    limit = getattr(model_config, "max_position_embeddings", None)
    if limit is not None and getattr(model_config, "model_type", "").startswith("xlm-roberta"):
        limit -= 2  # XLM-R positions start after the padding index
    if limit is not None and max_seq_length > limit:
        raise XLTError(f"max_seq_length {max_seq_length} exceeds what model {run.config.model!r} supports ({limit})")


# ---------------------------------------------------------------------------------------------- training phases


@dataclass
class TrainingData:
    """Featurized English training data and the English dev records used for model selection."""

    task: Any
    tokenizer: Any
    pipeline: Any
    encoder: str
    features: list[dict]
    n_records: int
    dev: list[dict]
    languages: tuple[str, ...]
    dev_language: str = "en"

    def __repr__(self) -> str:
        return (f"TrainingData({self.task.name}: {self.n_records} training examples in "
                f"{', '.join(self.languages)} -> {len(self.features)} features; {len(self.dev)} {self.dev_language} dev)")


def _task_of(config: Any) -> Any:
    from xlt_utils.tasks import get_task

    return get_task(getattr(config, "intermediate_task", None) or config.target_task)


def load_training_data(run: Run, languages: Sequence[str] | None = None) -> TrainingData:
    """Load (cached), subsample and featurize the training split, and load English dev for model selection.

    Args:
        run: an ``intermediate``, ``target`` or ``baselines`` run.
        languages: training languages (default: the config's ``train_language`` if set, else
            :func:`train_languages`); the dev language is the first one.

    Returns:
        The :class:`TrainingData`; for a multi-task intermediate run, every task's
        (:class:`xlt_utils.multitask.MultiTaskData`).
    """
    from transformers import AutoConfig

    from xlt_utils.formats.pipelines import get_pipeline
    from xlt_utils.models import load_tokenizer
    from xlt_utils.multitask import is_multitask

    cfg = run.config
    task = None if is_multitask(getattr(cfg, "intermediate_task", None)) else _task_of(cfg)
    with run.timer("data"):
        enc = encoder_source(run)
        tok = load_tokenizer(enc)
        _check_length(run, tok, AutoConfig.from_pretrained(enc), cfg.max_seq_length)
        if task is None:
            return _multitask_data(run, tok, enc)
        if languages is None and getattr(cfg, "train_language", None):
            languages = [cfg.train_language]  # a non-English source language (selection on its own dev)
        langs = tuple(languages) if languages is not None else train_languages(task)
        recs = [r for lang in langs for r in records(task, "train", lang, cfg.max_train_samples, DATA_SEED)]
        pipe = get_pipeline(task, tok, max_seq_length=cfg.max_seq_length)
        feats = pipe.featurize(recs, train=True)
        dev_lang = langs[0] if languages is not None else task.train_language
        if dev_lang not in task.languages_for("dev"):
            raise XLTError(f"task {task.name} has no {dev_lang} dev split for model selection")
        dev = records(task, "dev", dev_lang, cfg.max_dev_samples, DATA_SEED)
    run.resolved.update(train_languages=list(langs), n_train_records=len(recs), n_train_features=len(feats),
                        dev_language=dev_lang, n_dev_records=len(dev))
    return TrainingData(task, tok, pipe, enc, feats, len(recs), dev, langs, dev_lang)


def _multitask_data(run: Run, tokenizer: Any, encoder: str) -> Any:
    """A multi-task run's data: each task's training set in its :func:`train_languages`, featurized, and its
    English dev records (:func:`xlt_utils.multitask.load_data`); the tasks, sizes and sampling go to params.json."""
    from xlt_utils import multitask

    cfg = run.config
    langs = {t.name: train_languages(t) for t in multitask.tasks_of(cfg.intermediate_task)}
    data = multitask.load_data(cfg.intermediate_task, tokenizer, encoder, langs, max_train_samples=cfg.max_train_samples,
                               max_dev_samples=cfg.max_dev_samples, max_seq_length=cfg.max_seq_length,
                               sampling=cfg.multitask_sampling, cap=cfg.multitask_cap)
    run.resolved.update(train_languages=sorted({lang for ls in langs.values() for lang in ls}),
                        n_train_records=sum(data.n_records), n_train_features=len(data.features),
                        dev_language=data.dev_language, n_dev_records=sum(len(d) for d in data.dev),
                        multitask=data.summary())
    return data


def _is_multitask(data: Any) -> bool:
    """Whether ``data`` is a multi-task run's (:class:`xlt_utils.multitask.MultiTaskData`)."""
    from xlt_utils.multitask import MultiTaskData

    return isinstance(data, MultiTaskData)


def build_model(run: Run, data: TrainingData) -> Any:
    """The encoder with a fresh head of the task's format, initialised from the run's seed; with ``num_layers``
    (target, baselines) only the encoder's first n layers, before any training."""
    if _is_multitask(data):
        return _build_multitask(run, data)
    import torch

    from xlt_utils.models import build_model as _build

    with run.timer("build"):
        torch.manual_seed(run.config.seed)
        model = _build(data.task, data.encoder, freeze_embeddings=run.config.freeze_word_embeddings,
                       classifier_pooling=run.config.classifier_pooling,
                       num_layers=getattr(run.config, "num_layers", None))
    run.resolved["n_parameters"] = sum(p.numel() for p in model.parameters())
    if run.config.freeze_word_embeddings:
        run.resolved["trainable_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model


def _build_multitask(run: Run, data: Any) -> Any:
    """A multi-task run's model: a fresh head per task, in task order from the run's seed, on one shared encoder."""
    from xlt_utils import multitask

    cfg = run.config
    with run.timer("build"):
        model = multitask.build_model(data, seed=cfg.seed, freeze_embeddings=cfg.freeze_word_embeddings,
                                      classifier_pooling=cfg.classifier_pooling)
    run.resolved["n_parameters"] = sum(p.numel() for p in model.parameters())
    if cfg.freeze_word_embeddings:
        run.resolved["trainable_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model


def _train_config(cfg: Any) -> Any:
    from xlt_utils.train import TrainConfig

    return TrainConfig(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio,
                       num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps,
                       per_device_train_batch_size=cfg.per_device_train_batch_size,
                       gradient_accumulation_steps=cfg.gradient_accumulation_steps, eval_every=cfg.eval_every,
                       early_stopping_patience=cfg.early_stopping_patience, seed=cfg.seed,
                       checkpoint_every=cfg.checkpoint_every, log_every=10, progress=False,
                       gradient_checkpointing=cfg.gradient_checkpointing, packing=cfg.packing,
                       max_tokens_per_batch=cfg.max_tokens_per_batch)


def _train(run: Run, model: Any, data: TrainingData, out: Path, dev_lang: str | None = None) -> Any:
    """Train ``model`` in place, in this process or (``num_processes`` > 1) in that many launched processes."""
    from xlt_utils.train import CHECKPOINT, train

    if not (out / CHECKPOINT / "trainer_state.json").exists():
        shutil.rmtree(out, ignore_errors=True)  # no checkpoint: leftovers of a killed attempt are stale
    n = getattr(run.config, "num_processes", 1)
    with run.timer("train"):
        if n > 1:
            from xlt_utils import dist_train

            result = dist_train.launch(model, data, _train_config(run.config), out, processes=n,
                                       dev_lang=selection_language(data, dev_lang),
                                       max_dev_samples=run.config.max_dev_samples,
                                       max_seq_length=run.config.max_seq_length)
        else:
            config = _train_config(run.config)
            plan = None
            if _is_multitask(data):  # each step one task, drawn by the run's sampling rule (xlt_utils.multitask)
                plan = data.schedule(config)
                run.resolved["multitask"]["steps_per_epoch"] = plan.steps
            result = train(model, data.features, data.pipeline.collate, config, output_dir=out,
                           eval_fn=selection_fn(run, data, dev_lang), batch_plan=plan)
    return result


def selection_language(data: TrainingData, dev_lang: str | None = None) -> str | None:
    """The dev language that selects the checkpoint (default: the task's training language), or ``None`` where
    the task keeps its final checkpoint.

    A task whose only English dev data is part of what it reports (TyDiQA-GoldP: XTREME reports dev) sets
    ``options["model_selection"] = "final"``: selecting on it would tune on the reported numbers.
    """
    if data.task.options.get("model_selection") == "final":
        return None
    return dev_lang or data.dev_language


def selection_fn(run: Run, data: TrainingData, dev_lang: str | None = None) -> Any:
    """The model-selection score (:func:`selection_language`'s dev set), or ``None`` (final checkpoint); for a
    multi-task run, the mean over its tasks of each one's English dev score."""
    if _is_multitask(data):
        return data.selection_fn(run.config.max_dev_samples, run.config.max_seq_length)
    lang = selection_language(data, dev_lang)
    if lang is None:
        return None
    return dev_score_fn(data.task, data.tokenizer, lang, run.config.max_dev_samples, run.config.max_seq_length)


def train_model(run: Run, model: Any, data: TrainingData) -> Any:
    """Train with the one training loop; English dev selects the best checkpoint. Resumes from
    ``<run>/train/checkpoint`` when a previous attempt was interrupted. With ``num_processes`` > 1 the training
    runs data-parallel in that many processes (:mod:`xlt_utils.dist_train`) and the trained weights are loaded
    back into ``model``; a resumed run must use the same ``num_processes``.

    Returns:
        The :class:`xlt_utils.train.TrainResult`.
    """
    result = _train(run, model, data, run.dir / "train")
    run.resolved.update(global_step=result.global_step, best_step=result.best_step,
                        resumed_from_step=result.resumed_from_step, stopped_early=result.stopped_early,
                        train_examples=result.train_examples, train_tokens=result.train_tokens,
                        padding_fraction=round(result.padding_fraction, 4))
    run.timings["train_loop"] = result.train_seconds
    if _is_multitask(data):  # every task's English dev score at each evaluation
        run.resolved["multitask"]["dev_curve"] = [h for h in result.history if "task_scores" in h]
    selected = (f"best at {result.best_step}, English dev {result.best_score:.2f}" if result.best_score is not None
                else "final checkpoint kept: no dev selection")
    print(f"trained {result.global_step} steps ({selected}; resumed from step {result.resumed_from_step})")
    return result


def evaluate_dev(run: Run, model: Any, data: TrainingData) -> Any:
    """Score the selected model on the model-selection dev split (English, or the training language) and save
    ``metrics.csv``. A multi-task run scores every task on its English dev (its per-task primary scores and their
    mean go to params.json)."""
    from xlt_utils.evaluate import evaluate

    cfg = run.config
    if _is_multitask(data):
        with run.timer("eval"):
            rows, scores = data.evaluate_dev(model, cfg.max_dev_samples, cfg.max_seq_length)
        run.resolved["multitask"].update(scores)
        return save_metrics(run, rows)
    with run.timer("eval"):
        rows = evaluate(model, data.tokenizer, data.task, split="dev", languages=[data.dev_language],
                        max_examples=cfg.max_dev_samples, max_seq_length=cfg.max_seq_length, seed=DATA_SEED,
                        load_fn=records)
    return save_metrics(run, rows)


def save_encoder(run: Run, model: Any, data: TrainingData) -> Path:
    """Save the trained encoder without its head (``<run>/encoder``) and drop the training scratch."""
    from xlt_utils.models import save_encoder as _save

    with run.timer("save"):
        out = _save(model, data.tokenizer, run.dir / "encoder", provenance={"run_id": run.id, "lineage": run.lineage})
        shutil.rmtree(run.dir / "train", ignore_errors=True)
    return out


def save_model(run: Run, model: Any, data: TrainingData) -> Path:
    """Save the fine-tuned model with its head (``<run>/model``) and drop the training scratch."""
    with run.timer("save"):
        out = run.dir / "model"
        model.save_pretrained(str(out), safe_serialization=True)
        data.tokenizer.save_pretrained(str(out))
        shutil.rmtree(run.dir / "train", ignore_errors=True)
    return out


# ---------------------------------------------------------------------------------------------- pretraining


def pretrain_encoder(run: Run) -> dict[str, Any]:
    """MLM-pretrain a synth encoder into ``<run>/encoder`` (see :func:`xlt_utils.synth.pretrain.pretrain`), or
    copy the committed checkpoint that ``checkpoint`` names (verified against its SHA-256).

    A run an imported result bundle holds (its weights are not in the bundle, only their SHA-256) is restored
    instead of trained when the committed checkpoint of its model has exactly those bytes: the bundle recorded
    what this run made, and the checkpoint is it (:func:`restore_from_checkpoint`). ``resolved`` says so.

    An interrupted pretraining restarts from scratch (it is deterministic, so the result is the same).
    """
    from xlt_utils.synth.languages import LANGUAGE_IDS

    cfg = run.config
    out = run.dir / "encoder"
    shutil.rmtree(out, ignore_errors=True)
    langs = list(cfg.languages) if cfg.languages is not None else list(LANGUAGE_IDS)
    if cfg.checkpoint is not None:  # a committed encoder (verified against SHA256SUMS), nothing to train
        from xlt_utils.synth import checkpoints

        with run.timer("pretrain"):
            summary = checkpoints.copy_to(cfg.checkpoint, out)
        run.resolved.update(languages=summary["languages"], n_parameters=summary["n_parameters"],
                            global_step=cfg.steps, train_examples=cfg.steps * cfg.batch_size,
                            checkpoint=f"checkpoints/synth/{cfg.checkpoint}",
                            pretrain_seconds_when_made=summary["seconds"],
                            checkpoint_git_revision=summary["provenance"].get("git_revision"))
        return summary
    restored = restore_from_checkpoint(run)
    if restored is not None:
        return restored
    from xlt_utils.synth.pretrain import pretrain

    with run.timer("pretrain"):
        summary = pretrain(out, size=cfg.model.removeprefix("synth-"), languages=langs, steps=cfg.steps,
                           batch_size=cfg.batch_size, max_len=cfg.max_len, lr=cfg.learning_rate,
                           warmup_frac=cfg.warmup_ratio, n_per_language=cfg.n_per_language,
                           parallel_frac=cfg.parallel_frac, vocab_size=cfg.vocab_size, seed=cfg.seed,
                           probe_every=cfg.probe_every, log_every=max(1, cfg.steps // 10),
                           tokenizer=cfg.tokenizer)
    run.resolved.update(languages=langs, n_parameters=summary["n_parameters"], global_step=cfg.steps,
                        train_examples=cfg.steps * cfg.batch_size)
    return summary


def restore_source(run_id: str, model: str) -> tuple[str, str, Any] | str | None:
    """Where a pretraining run can be restored from instead of trained (:func:`restore_from_checkpoint`): the
    SHA-256 the imported bundles recorded for its encoder, the bundle that holds its scores, and those rows; None
    when no imported bundle recorded its encoder; or, as a string, why it cannot (no committed checkpoint of the
    model, bundles that disagree on the bytes, or no bundle with its loss and probe rows).

    The bytes must be the committed checkpoint's too, which this does not check (:func:`restorable` compares the
    pinned SHA-256, the run the copy's)."""
    from xlt_utils import results
    from xlt_utils.synth import checkpoints

    recorded = results.imported_encoders().get(run_id, [])
    if not recorded:
        return None
    if model not in checkpoints.names():
        return f"no committed checkpoint of {model}"
    shas = sorted({sha for sha, _ in recorded})
    if len(shas) > 1:
        return (f"the imported bundles recorded {len(shas)} different encoders for it "
                f"({', '.join(sha[:12] for sha in shas)})")
    for sha, bundle in recorded:
        rows = results.imported_rows(bundle, run_id)
        if (rows["metric"] == "mlm_loss").any() and (rows["metric"] == "p@1").any():
            return sha, bundle, rows
    return "no imported bundle that recorded its encoder holds its loss and probe rows"


def restorable(run_id: str, model: str) -> str | None:
    """The committed checkpoint a pretraining run will be restored from (:func:`restore_from_checkpoint`); None
    when it will train. For the dry run, from the pinned SHA-256: the run itself checks the bytes it copies."""
    from xlt_utils.synth import checkpoints

    source = restore_source(run_id, model)
    if not isinstance(source, tuple):
        return None
    return model if checkpoints.weights_sha256(model) == source[0] else None


def restore_from_checkpoint(run: Run) -> dict[str, Any] | None:
    """Copy the committed checkpoint of the run's model into ``<run>/encoder`` when the imported bundles recorded
    this run's encoder weights with the very SHA-256 of that copy (and agree on it), and one of them holds the run's
    loss and probe rows; returns the pretraining summary with those scores (the checkpoint's provenance averages
    its last loss over another logging window), or None: the run trains (nothing recorded, bundles that disagree,
    no rows, other bytes, or a checkpoint that fails its own verification; the copy is removed and the reason
    printed).

    The run id pins the recipe; the SHA-256 pins the bytes. A pretraining of synth-small takes 34 minutes on this
    project's 2-core machine; a copy takes a second, and what the downstream cells read is the same file. The
    run's training cost stays the bundle's (:func:`xlt_utils.results.training_rows` skips a restored run)."""
    from xlt_utils import results
    from xlt_utils.synth import checkpoints
    from xlt_utils.synth.languages import LANGUAGE_IDS

    cfg = run.config
    source = restore_source(run.id, cfg.model)
    if not isinstance(source, tuple):
        if source is not None:
            print(f"  not restored: {source}; pretraining")
        return None
    sha, bundle, rows = source
    out = run.dir / "encoder"
    try:
        summary = checkpoints.copy_to(cfg.model, out)
    except XLTError as e:
        shutil.rmtree(out, ignore_errors=True)
        print(f"  not restored: {e}; pretraining")
        return None
    got = results.weights_sha256(run.dir)
    if got != sha:
        shutil.rmtree(out, ignore_errors=True)
        print(f"  not restored: the committed {cfg.model} checkpoint is not the encoder imported bundle {bundle} "
              f"recorded for this run (sha256 {str(got)[:12]} vs {sha[:12]}); pretraining")
        return None
    loss = rows[rows["metric"] == "mlm_loss"]["value"]
    probe = rows[rows["metric"] == "p@1"]
    summary = {**summary, "final_loss": float(loss.iloc[0]),
               "probe": {str(lang): v / 100.0 for lang, v in zip(probe["lang"], probe["value"])}}
    langs = list(cfg.languages) if cfg.languages is not None else list(LANGUAGE_IDS)
    run.resolved.update(languages=langs, n_parameters=summary["n_parameters"], global_step=cfg.steps,
                        train_examples=cfg.steps * cfg.batch_size,
                        restored_from=f"checkpoints/synth/{cfg.model}",
                        restored_because=f"imported bundle {bundle} recorded this run's encoder as sha256 {sha}, "
                                         f"the bytes of the committed checkpoint",
                        restored_scores=f"the rows imported bundle {bundle} holds for this run",
                        pretrain_seconds_when_made=summary["seconds"],
                        checkpoint_git_revision=summary["provenance"].get("git_revision"))
    print(f"  restored from checkpoints/synth/{cfg.model}: imported bundle {bundle} recorded these bytes "
          f"(sha256 {sha[:12]}) for this run")
    return summary


def pretrain_metrics(run: Run, summary: Mapping[str, Any]) -> Any:
    """Tidy rows of a pretraining run: final MLM loss and the retrieval probe (P@1 ×100, L → en)."""
    cfg = run.config
    rows = [{"task": "mlm", "split": "train", "lang": "all", "metric": "mlm_loss", "value": float(summary["final_loss"]),
             "n_examples": cfg.steps * cfg.batch_size}]
    for lang, p1 in sorted(summary["probe"].items()):
        rows.append({"task": "probe_retrieval", "split": "probe", "lang": lang, "metric": "p@1",
                     "value": 100.0 * float(p1), "n_examples": 200})
    return save_metrics(run, rows)


# ---------------------------------------------------------------------------------------------- evaluation


def load_eval_model(run: Run) -> tuple[Any, Any]:
    """The model to evaluate: the upstream target run's fine-tuned model, or (retrieval) an encoder."""
    import torch
    from transformers import AutoConfig

    from xlt_utils.models import build_model as _build
    from xlt_utils.models import load_tokenizer
    from xlt_utils.tasks import get_task

    cfg = run.config
    task = get_task(cfg.target_task)
    if cfg.upstream and cfg.upstream.startswith("target/"):
        up = runs.read_params(cfg.upstream)
        if up["params"]["target_task"] != cfg.target_task:
            raise XLTError(f"upstream {cfg.upstream} was fine-tuned on {up['params']['target_task']}, "
                           f"not {cfg.target_task}")
    with run.timer("build"):
        src = encoder_source(run)
        tok = load_tokenizer(src)
        model_config = AutoConfig.from_pretrained(src)
        _check_length(run, tok, model_config, cfg.max_seq_length)
        _check_eval_depth(cfg, int(model_config.num_hidden_layers))
        torch.manual_seed(0)
        model = _build(task, src)
        if cfg.num_layers is not None or cfg.inference_dtype != "float32":  # an inference-budget variant
            from xlt_utils import efficiency
            from xlt_utils.train import resolve_device

            model = efficiency.truncate_layers(model, cfg.num_layers)
            model = efficiency.cast(model, cfg.inference_dtype, resolve_device(None))
    return model, tok


def _check_eval_depth(cfg: Any, depth: int) -> None:
    """An evaluation's ``num_layers`` against the depth of the model it evaluates (a model fine-tuned at n layers,
    ``02_target``'s ``num_layers``, has n): at most that many, else one line naming the valid ones."""
    if cfg.num_layers is None or cfg.num_layers <= depth:
        return
    tuned = ""
    if cfg.upstream and cfg.upstream.startswith("target/"):
        n = runs.read_params(cfg.upstream)["params"].get("num_layers")
        tuned = f" (fine-tuned at that depth: target num_layers {n})" if n is not None else ""
    raise XLTError(f"eval num_layers {cfg.num_layers} exceeds the {depth} layers of {cfg.upstream or 'the encoder'}"
                   f"{tuned}; valid: 1..{depth}, or None for all of them")


def measure_efficiency(run: Run, model_and_tokenizer: tuple[Any, Any]) -> Any:
    """Latency, throughput and FLOPs of the evaluated model at ``efficiency_batch_sizes`` on the task's eval
    inputs (the first evaluated language), written to the run's ``efficiency.csv``; None when not asked for.
    With ``time_reference``, the full-budget model (:func:`reference_model`) is timed beside it in the same rounds
    and the rows add its latency, throughput, depth and length and the ``speedup``."""
    import pandas as pd
    import torch

    from xlt_utils import efficiency
    from xlt_utils.formats.pipelines import get_pipeline
    from xlt_utils.models import encoder_of
    from xlt_utils.tasks import get_task
    from xlt_utils.train import resolve_device

    cfg = run.config
    if cfg.efficiency_batch_sizes is None:
        return None
    model, tok = model_and_tokenizer
    task = get_task(cfg.target_task)
    split = run.resolved.get("split") or cfg.split or task.eval_split
    lang = (run.resolved.get("languages") or cfg.languages or list(task.languages_for(split)))[0]
    recs = records(task, split, lang, max_examples=cfg.max_eval_samples, seed=cfg.sample_seed)
    pipe = get_pipeline(task, tok, max_seq_length=cfg.max_seq_length)
    feats = pipe.featurize(recs)
    dev = resolve_device(None)
    reference, described = None, {}
    if cfg.time_reference:
        ref_model, ref_length = reference_model(run, task)
        ref_feats = get_pipeline(task, tok, max_seq_length=ref_length).featurize(recs)
        if len(feats) == len(ref_feats) == len(recs):
            reference = (ref_model, ref_feats)
            described = {"reference_num_layers": int(encoder_of(ref_model).config.num_hidden_layers),
                         "reference_max_seq_length": ref_length}
        else:  # windows (span QA): the first n features of each would be different examples
            run.resolved["time_reference"] = (
                f"not timed: {task.name} cuts examples into windows ({len(feats)} features at {cfg.max_seq_length} "
                f"tokens and {len(ref_feats)} at {ref_length} for {len(recs)} examples), so the two models would "
                f"time different examples")
            print(f"  {run.resolved['time_reference']}")
    with run.timer("efficiency"):
        rows = efficiency.inference_profile(model, pipe, feats, batch_sizes=cfg.efficiency_batch_sizes, device=dev,
                                            num_labels=len(task.labels or ()) if task.format in
                                            ("classification", "pair_classification") else 0, reference=reference)
    df = pd.DataFrame([{"task": task.name, "split": split, "lang": lang, "device": str(dev),
                        "threads": torch.get_num_threads(), "num_layers": cfg.num_layers,
                        "inference_dtype": cfg.inference_dtype, "max_seq_length": cfg.max_seq_length, **described,
                        **r} for r in rows])
    tmp = run.dir / "efficiency.csv.tmp"
    df.to_csv(tmp, index=False)
    tmp.replace(run.dir / "efficiency.csv")
    return df


def reference_model(run: Run, task: Any) -> tuple[Any, int]:
    """The full-budget model an evaluation's timing is set beside (``time_reference``), and its input length: the
    task's model at the full depth of the encoder the upstream target run was fine-tuned from (before any target
    ``num_layers``), with that run's classifier pooling, float32, at that run's ``max_seq_length``. Its weights are
    random: a float32 forward pass takes the same time whatever they are, and the model it stands for (the target
    run fine-tuned without a budget) is another cell of the grid, not this one's upstream. Its architecture is read
    from the encoder the target run started from (its upstream's ``encoder/``, or the base encoder)."""
    target = runs.read_params(run.config.upstream)["params"]
    start = start_encoder(run.config.world, run.config.model, target.get("upstream"))
    model = _random_model(task, start, seed=0, pooling=target.get("classifier_pooling") or "cls")
    return model, int(target["max_seq_length"])


def evaluate_languages(run: Run, model_and_tokenizer: tuple[Any, Any]) -> Any:
    """Evaluate every language of the task, write predictions (XTREME layout) and ``metrics.csv``.

    An ``int8`` variant is evaluated one example at a time (:func:`xlt_utils.efficiency.eval_batch_size`), so its
    accuracy does not depend on ``batch_size``; the batch size used is recorded in ``params.json`` (resolved).
    """
    from xlt_utils import efficiency
    from xlt_utils.evaluate import evaluate
    from xlt_utils.tasks import get_task

    cfg = run.config
    model, tok = model_and_tokenizer
    task = get_task(cfg.target_task)
    split = cfg.split or task.eval_split
    langs = list(cfg.languages) if cfg.languages is not None else list(task.languages_for(split))
    bad = [lang for lang in langs if lang not in task.languages_for(split)]
    if bad:
        raise XLTError(f"task {task.name} has no {split} split in {', '.join(bad)}; "
                       f"valid: {', '.join(task.languages_for(split))}")
    batch_size = efficiency.eval_batch_size(cfg.inference_dtype, cfg.batch_size)
    with run.timer("eval"):
        rows = evaluate(model, tok, task, split=split, languages=langs, max_examples=cfg.max_eval_samples,
                        batch_size=batch_size, max_seq_length=cfg.max_seq_length,
                        predictions_dir=run.dir / "predictions", layer=cfg.layer, pooling=cfg.pooling,
                        seed=cfg.sample_seed, load_fn=records)
    run.resolved.update(split=split, languages=langs, eval_batch_size=batch_size)
    if task.format == "retrieval" and rows:
        run.resolved.update(layer=rows[0].get("layer"), pooling=rows[0].get("pooling"))
    return save_metrics(run, rows)


def summary_table(metrics: Any) -> Any:
    """Metrics pivoted for display: one row per (task, metric), one column per language."""
    return metrics.pivot_table(index=["task", "metric"], columns="lang", values="value").round(2)


# ---------------------------------------------------------------------------------------------- baselines


class _NoTokenizer:
    """Stands in for a tokenizer where a pipeline is only asked for references and metric options."""

    pad_token_id = 0


def _majority_rows(run: Run) -> list[dict[str, Any]]:
    from xlt_utils import metrics
    from xlt_utils.formats.pipelines import PIPELINES
    from xlt_utils.tasks import get_task

    cfg = run.config
    task = get_task(cfg.target_task)
    split = task.eval_split
    langs = list(cfg.languages) if cfg.languages is not None else list(task.languages_for(split))
    rows = []
    if task.format == "retrieval":
        for lang in langs:
            recs = records(task, split, lang)
            n_q = sum(r["side"] == "query" for r in recs)
            n_c = sum(r["side"] == "candidate" for r in recs)
            rows.append({"task": task.name, "split": split, "lang": lang, "metric": "accuracy",
                         "value": 100.0 / max(n_c, 1), "n_examples": n_q})
        run.resolved.update(split=split, languages=langs, prediction="chance (uniform random candidate)")
        return rows
    train = [r for lang in train_languages(task) for r in records(task, "train", lang)]
    fmt = task.format
    if fmt == "tagging":
        value: Any = Counter(t for r in train for t in r["tags"]).most_common(1)[0][0]
    elif fmt == "span_qa":
        value = Counter(r["answers"]["text"][0] for r in train if r["answers"]["text"]).most_common(1)[0][0]
    else:
        value = Counter(r["label"] for r in train).most_common(1)[0][0]
    pipe = PIPELINES[fmt](task, _NoTokenizer(), pad_to_multiple_of=1)  # never collates: no torch needed
    for lang in langs:
        recs = records(task, split, lang, cfg.max_eval_samples, DATA_SEED)
        preds = [[value] * len(r["tokens"]) for r in recs] if fmt == "tagging" else [value] * len(recs)
        result = metrics.compute(task.metric, preds, pipe.references(recs), **pipe.metric_options(lang))
        for key, v in result.items():
            rows.append({"task": task.name, "split": split, "lang": lang, "metric": key, "value": float(v),
                         "n_examples": len(recs)})
    run.resolved.update(split=split, languages=langs, prediction=value)
    return rows


def _in_language_rows(run: Run) -> list[dict[str, Any]]:
    import pandas as pd

    from xlt_utils.evaluate import evaluate
    from xlt_utils.tasks import get_task

    cfg = run.config
    task = get_task(cfg.target_task)
    split = task.eval_split
    have = set(task.languages_for("train")) & set(task.languages_for("dev"))
    langs = list(cfg.languages) if cfg.languages is not None else [
        lang for lang in task.languages_for(split) if lang in have]
    bad = [lang for lang in langs if lang not in have or lang not in task.languages_for(split)]
    if bad:
        raise XLTError(f"in_language baseline needs train, dev and {split} data; {task.name} lacks them in "
                       f"{', '.join(bad)}; valid: {', '.join(sorted(have & set(task.languages_for(split))))}")
    parts = run.dir / "parts"
    parts.mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    per_language: dict[str, dict[str, Any]] = {}
    for lang in langs:
        done = parts / f"{lang}.csv"
        if done.exists():  # finished before an interruption: its model was trained by an earlier attempt
            rows += pd.read_csv(done, keep_default_na=False).to_dict("records")
            info = done.with_suffix(".json")
            per_language[lang] = {**(json.loads(info.read_text()) if info.exists() else {}), "resumed": True}
            continue
        data = load_training_data(run, languages=[lang])
        model = build_model(run, data)
        result = _train(run, model, data, run.dir / "train" / lang, dev_lang=lang)
        with run.timer("eval"):
            lang_rows = evaluate(model, data.tokenizer, task, split=split, languages=[lang],
                                 max_examples=cfg.max_eval_samples, max_seq_length=cfg.max_seq_length,
                                 seed=DATA_SEED, load_fn=records)
        lang_rows = [{k: r[k] for k in METRIC_COLUMNS} for r in lang_rows]
        info = {"n_train_records": data.n_records, "n_train_features": len(data.features),
                "n_dev_records": len(data.dev), "global_step": result.global_step, "best_step": result.best_step,
                "resumed_from_step": result.resumed_from_step, "train_seconds": round(result.train_seconds, 3),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "git_revision": run.env.get("git_revision")}
        runs.write_json_atomic(done.with_suffix(".json"), info)  # before the csv, which marks the part done
        tmp = done.with_suffix(".tmp")
        pd.DataFrame(lang_rows, columns=list(METRIC_COLUMNS)).to_csv(tmp, index=False)
        os.replace(tmp, done)
        shutil.rmtree(run.dir / "train" / lang, ignore_errors=True)
        rows += lang_rows
        per_language[lang] = {**info, "resumed": False}
    # one model per language: the single-language fields that load_training_data left (the last language's) would
    # misdescribe the run; per_language has each model's, and resumed_languages those an earlier attempt trained or
    # began (a part read back, or training resumed from its checkpoint)
    for key in ("train_languages", "n_train_records", "n_train_features", "dev_language", "n_dev_records"):
        run.resolved.pop(key, None)
    run.resolved.update(split=split, languages=langs, per_language=per_language,
                        resumed_languages=[lang for lang, i in per_language.items()
                                           if i["resumed"] or i.get("resumed_from_step")])
    return rows


def _random_model(task: Any, encoder: str, seed: int, pooling: str = "cls", num_layers: int | None = None) -> Any:
    """The encoder's architecture with a head of the task's format (``pooling``: as ``classifier_pooling``;
    ``num_layers``: its first n layers), every weight randomly initialised."""
    import torch
    from transformers import AutoConfig

    from xlt_utils.models import HEADS, check_depth

    conf = AutoConfig.from_pretrained(encoder)
    if num_layers is not None:
        conf.num_hidden_layers = check_depth(num_layers, encoder)
    kwargs: dict[str, Any] = {}
    if task.format in ("classification", "pair_classification", "tagging"):
        labels = list(task.labels or ())
        conf.num_labels = len(labels)
        conf.id2label, conf.label2id = dict(enumerate(labels)), {lab: i for i, lab in enumerate(labels)}
    if task.format == "retrieval":
        kwargs["add_pooling_layer"] = False
    torch.manual_seed(seed)
    if task.format in ("classification", "pair_classification") and pooling == "mean":
        from xlt_utils.models import POOLING_CONFIG_KEY, mean_pool_classifier_class

        setattr(conf, POOLING_CONFIG_KEY, "mean")
        return mean_pool_classifier_class(conf)(conf)
    return HEADS[task.format].from_config(conf, **kwargs)


def _random_init_rows(run: Run) -> list[dict[str, Any]]:
    from xlt_utils.evaluate import evaluate
    from xlt_utils.models import load_tokenizer
    from xlt_utils.tasks import get_task

    cfg = run.config
    task = get_task(cfg.target_task)
    split = task.eval_split
    langs = list(cfg.languages) if cfg.languages is not None else list(task.languages_for(split))
    if task.format == "retrieval":
        with run.timer("build"):
            enc = encoder_source(run)
            tok = load_tokenizer(enc)
            model = _random_model(task, enc, cfg.seed, num_layers=cfg.num_layers)
    else:
        data = load_training_data(run)
        tok = data.tokenizer
        with run.timer("build"):
            model = _random_model(task, data.encoder, cfg.seed, cfg.classifier_pooling, cfg.num_layers)
        result = _train(run, model, data, run.dir / "train")
        run.resolved.update(global_step=result.global_step, best_step=result.best_step)
    with run.timer("eval"):
        rows = evaluate(model, tok, task, split=split, languages=langs, max_examples=cfg.max_eval_samples,
                        max_seq_length=cfg.max_seq_length, seed=DATA_SEED, load_fn=records)
    shutil.rmtree(run.dir / "train", ignore_errors=True)
    run.resolved.update(split=split, languages=langs)
    return rows


def _floor_rows(run: Run) -> list[dict[str, Any]]:
    """``probe`` (a linear probe on the frozen encoder) and ``lexical`` (hashed surface features): both fitted on
    English train with their options chosen on English dev (:mod:`xlt_utils.floors`)."""
    from xlt_utils import floors
    from xlt_utils.tasks import get_task

    cfg = run.config
    task = get_task(cfg.target_task)
    split = task.eval_split
    langs = list(cfg.languages) if cfg.languages is not None else list(task.languages_for(split))
    with run.timer("load"):
        train = [r for lang in train_languages(task) for r in records(task, "train", lang, cfg.max_train_samples,
                                                                       DATA_SEED)]
        dev = records(task, "dev", task.train_language, cfg.max_dev_samples, DATA_SEED)
        tests = {lang: records(task, split, lang, cfg.max_eval_samples, DATA_SEED) for lang in langs}
    if cfg.kind == "lexical":
        with run.timer("train"):
            rows, chosen = floors.lexical(task, train, dev, tests)
    else:
        from transformers import AutoModel

        from xlt_utils.models import check_depth, load_tokenizer

        with run.timer("build"):
            src = encoder_source(run)
            tok = load_tokenizer(src)
            depth = {} if cfg.num_layers is None else {"num_hidden_layers": check_depth(cfg.num_layers, src)}
            encoder = AutoModel.from_pretrained(src, add_pooling_layer=False, **depth)
        with run.timer("train"):
            rows, chosen = floors.probe(encoder, tok, task, train, dev, tests, cfg.max_seq_length)
    for r in rows:
        r["task"] = task.name
        if r["split"] == "test":
            r["split"] = split
    run.resolved.update(split=split, languages=langs, chosen=chosen, n_train_records=len(train),
                        n_dev_records=len(dev))
    return [{k: r[k] for k in METRIC_COLUMNS} for r in rows]


def run_baseline(run: Run) -> Any:
    """Compute the baseline of the run's ``kind`` on every language and save ``metrics.csv``."""
    cfg = run.config
    if cfg.kind == "majority":
        with run.timer("eval"):
            rows = _majority_rows(run)
    elif cfg.kind == "random_init":
        rows = _random_init_rows(run)
    elif cfg.kind in ("probe", "lexical"):
        rows = _floor_rows(run)
    else:
        rows = _in_language_rows(run)
    return save_metrics(run, rows)
