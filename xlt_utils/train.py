"""The one training loop, for every format and every phase (intermediate and target training).

AdamW with linear warmup and decay, gradient accumulation, gradient clipping, bf16 autocast on CUDA (optional
on CPU), length-grouped batching with dynamic padding, evaluation every N steps with early stopping and
best-model restore, atomic checkpoints and exact resume (model, optimizer, scheduler, RNG, data position).

The model computes its own loss (``transformers`` heads do, given ``labels`` or start/end positions), so the
loop is format-agnostic: a :class:`~xlt_utils.formats.pipelines.Pipeline` supplies features and ``collate``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from xlt_utils.errors import XLTError

CHECKPOINT = "checkpoint"
BEST = "best"


@dataclass
class TrainConfig:
    """Hyperparameters of a training run (Hugging Face names where one exists).

    Attributes:
        learning_rate: peak learning rate.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        adam_epsilon: AdamW epsilon.
        max_grad_norm: gradient clipping norm (0 = off).
        warmup_ratio: fraction of the optimizer steps spent warming up linearly.
        num_train_epochs: epochs (ignored when ``max_steps`` is set).
        max_steps: optimizer steps (overrides epochs).
        per_device_train_batch_size: examples per micro-batch.
        gradient_accumulation_steps: micro-batches per optimizer step.
        eval_every: evaluate every this many optimizer steps (and at the end); ``None`` = only at the end.
        early_stopping_patience: stop after this many evaluations without improvement; ``None`` = never.
        seed: seeds the head initialisation (set before the model is built by the caller), the data order
            and dropout.
        bf16: ``"auto"`` (autocast on CUDA when supported), ``True`` (also on CPU) or ``False``.
        group_by_length: batch examples of similar length together (less padding).
        length_group_size: how many batches form one length-sorted group ("mega-batch").
        checkpoint_every: save a resumable checkpoint every this many optimizer steps (needs ``output_dir``).
        log_every: record the running loss every this many optimizer steps.
        progress: show a tqdm progress bar.
    """

    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    warmup_ratio: float = 0.1
    num_train_epochs: float = 3.0
    max_steps: int | None = None
    per_device_train_batch_size: int = 32
    gradient_accumulation_steps: int = 1
    eval_every: int | None = None
    early_stopping_patience: int | None = None
    seed: int = 13
    bf16: bool | str = "auto"
    group_by_length: bool = True
    length_group_size: int = 50
    checkpoint_every: int | None = None
    log_every: int = 50
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "length_group_size",
                     "log_every"):
            if int(getattr(self, name)) < 1:
                raise XLTError(f"TrainConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise XLTError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise XLTError(f"TrainConfig.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.bf16 not in ("auto", True, False):
            raise XLTError(f"TrainConfig.bf16 must be 'auto', True or False, got {self.bf16!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise XLTError(f"TrainConfig.max_steps must be ≥ 1 or None, got {self.max_steps}")


@dataclass
class TrainResult:
    """What a training run did."""

    global_step: int
    epochs_completed: float
    best_score: float | None
    best_step: int | None
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    train_examples: int = 0
    train_tokens: int = 0
    padded_tokens: int = 0
    resumed_from_step: int = 0

    @property
    def padding_fraction(self) -> float:
        total = self.train_tokens + self.padded_tokens
        return self.padded_tokens / total if total else 0.0


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int,
                           group_by_length: bool = True, group_size: int = 50) -> list[list[int]]:
    """The batches of one epoch, as lists of feature indices; a pure function of (seed, epoch).

    Indices are shuffled, cut into groups of ``group_size`` batches, sorted by length within each group,
    batched, and the batches shuffled, so batches hold examples of similar length (little padding) while the
    order stays random. Deterministic, which makes resuming at a batch position exact.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    if group_by_length:
        chunk = batch_size * group_size
        grouped = []
        for s in range(0, len(order), chunk):
            grouped.extend(sorted(order[s : s + chunk], key=lambda i: -lengths[i]))
        order = grouped
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if group_by_length:
        perm = torch.randperm(len(batches), generator=g).tolist()
        batches = [batches[i] for i in perm]
    return batches


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``cuda`` when available unless a device is given."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast_context(device: torch.device, bf16: bool | str):
    """bf16 autocast on CUDA ("auto"/True) or CPU (True only); a null context otherwise."""
    use = (bf16 is True) or (bf16 == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    if use:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _linear_schedule(warmup: int, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return f


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": list(_flatten_py_state(random.getstate()))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _flatten_py_state(st: tuple) -> list:
    version, internal, gauss = st
    return [version, list(internal), gauss]


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_dir_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write a directory next to ``target`` and swap it in, so a crash never leaves a half checkpoint."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses shared storage (tied weights); clone to plain contiguous CPU tensors.
    return {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}


def _load_state(model: torch.nn.Module, path: Path) -> None:
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied weights may be absent from the file; anything else is a real mismatch.
    real_missing = [k for k in missing if not k.endswith("decoder.weight")]
    if unexpected or real_missing:
        raise XLTError(f"checkpoint {path} does not fit the model: missing {real_missing[:3]}, "
                       f"unexpected {unexpected[:3]}")


def train(
    model: torch.nn.Module,
    features: Sequence[dict[str, Any]],
    collate: Callable[[Sequence[dict[str, Any]]], dict[str, torch.Tensor]],
    config: TrainConfig,
    *,
    output_dir: str | Path | None = None,
    eval_fn: Callable[[torch.nn.Module], float] | None = None,
    device: str | torch.device | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``features``; resume from ``output_dir/checkpoint`` when one exists.

    Args:
        model: a model whose forward returns ``.loss`` for a collated batch.
        features: training features (each with a ``length``).
        collate: batches features into tensors (the pipeline's ``collate``).
        config: hyperparameters.
        output_dir: where checkpoints and the best model go; ``None`` keeps everything in memory.
        eval_fn: returns a score (higher is better) on English dev; drives early stopping and the
            restored best model.
        device: ``cpu``/``cuda``; default: CUDA when available.
        on_step: called after every optimizer step with (step, loss) (tests use it to simulate a crash).

    Returns:
        A :class:`TrainResult`. The model ends with the best evaluated weights (or the last ones).
    """
    if not features:
        raise XLTError("no training features: the training split is empty")
    cfg = config
    dev = resolve_device(device)
    model.to(dev)
    out = Path(output_dir) if output_dir is not None else None
    if cfg.checkpoint_every and out is None:
        raise XLTError("TrainConfig.checkpoint_every needs an output_dir")

    lengths = [int(f["length"]) for f in features]
    bs, accum = cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps
    micro_per_epoch = math.ceil(len(features) / bs)
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / accum))
    total_steps = cfg.max_steps or max(1, math.ceil(steps_per_epoch * cfg.num_train_epochs))
    warmup = int(cfg.warmup_ratio * total_steps)

    # Fused AdamW (one kernel for all parameters) exists for CUDA and CPU tensors in torch ≥ 2.4.
    fused = dev.type in ("cuda", "cpu")
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.learning_rate,
                                  eps=cfg.adam_epsilon, fused=fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(warmup, total_steps))

    state = {"global_step": 0, "epoch": 0, "micro_in_epoch": 0, "best_score": None, "best_step": None,
             "bad_evals": 0, "history": [], "stopped_early": False, "examples": 0, "tokens": 0, "padded": 0,
             "seconds": 0.0}
    ckpt = out / CHECKPOINT if out else None
    best_in_memory: dict[str, torch.Tensor] | None = None
    resumed_from = 0
    if ckpt is not None and (ckpt / "trainer_state.json").exists():
        _load_state(model, ckpt / "model.safetensors")
        opt_state = torch.load(ckpt / "optimizer.pt", map_location=dev, weights_only=True)
        optimizer.load_state_dict(opt_state["optimizer"])
        scheduler.load_state_dict(opt_state["scheduler"])
        _set_rng_state(torch.load(ckpt / "rng.pt", weights_only=True))
        state.update(json.loads((ckpt / "trainer_state.json").read_text()))
        resumed_from = state["global_step"]
    else:
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)

    def save_checkpoint() -> None:
        def write(d: Path) -> None:
            save_file(_state_dict_cpu(model), str(d / "model.safetensors"))
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, d / "optimizer.pt")
            torch.save(_rng_state(), d / "rng.pt")
            (d / "trainer_state.json").write_text(json.dumps(state, indent=1))
            (d / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))

        _atomic_dir_write(ckpt, write)

    def evaluate_now() -> bool:
        """Evaluate, track the best model; returns True when training should stop early."""
        nonlocal best_in_memory
        if eval_fn is None:
            return False
        was_training = model.training
        model.eval()
        rng = _rng_state()  # evaluation must not perturb the training RNG stream
        score = float(eval_fn(model))
        _set_rng_state(rng)
        model.train(was_training)
        state["history"].append({"step": state["global_step"], "eval_score": score})
        if state["best_score"] is None or score > state["best_score"]:
            state["best_score"], state["best_step"], state["bad_evals"] = score, state["global_step"], 0
            if out is not None:
                _atomic_dir_write(out / BEST, lambda d: save_file(_state_dict_cpu(model), str(d / "model.safetensors")))
            else:
                best_in_memory = _state_dict_cpu(model)
        else:
            state["bad_evals"] += 1
        patience = cfg.early_stopping_patience
        return patience is not None and state["bad_evals"] >= patience

    model.train()
    bar = tqdm(total=total_steps, initial=state["global_step"], disable=not cfg.progress, desc="train",
               mininterval=2.0, leave=False)
    t0 = time.perf_counter()
    running, n_running = 0.0, 0
    done = state["global_step"] >= total_steps or state["stopped_early"]
    while not done:
        batches = length_grouped_batches(lengths, bs, cfg.seed, state["epoch"], cfg.group_by_length,
                                         cfg.length_group_size)
        while state["micro_in_epoch"] < len(batches) and not done:
            # One optimizer step = up to `accum` micro-batches (fewer at the end of an epoch).
            group = batches[state["micro_in_epoch"] : state["micro_in_epoch"] + accum]
            n_ex = sum(len(b) for b in group)
            step_loss = 0.0
            for idx in group:
                batch = collate([features[i] for i in idx])
                mask = batch["attention_mask"]
                real = int(mask.sum())
                state["tokens"] += real
                state["padded"] += mask.numel() - real
                batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
                with autocast_context(dev, cfg.bf16):
                    loss = model(**batch).loss
                # Weight by examples so that a short last micro-batch counts for what it holds.
                (loss * (len(idx) / n_ex)).backward()
                step_loss += float(loss.detach()) * len(idx) / n_ex
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["micro_in_epoch"] += len(group)
            state["global_step"] += 1
            state["examples"] += n_ex
            running += step_loss
            n_running += 1
            bar.update(1)
            step = state["global_step"]
            if step % cfg.log_every == 0 or step == total_steps:
                state["history"].append({"step": step, "loss": running / n_running,
                                         "lr": scheduler.get_last_lr()[0]})
                bar.set_postfix(loss=f"{running / n_running:.4f}")
                running, n_running = 0.0, 0
            if state["micro_in_epoch"] >= len(batches):
                state["epoch"] += 1
                state["micro_in_epoch"] = 0
            if step >= total_steps:
                done = True
            if cfg.eval_every and step % cfg.eval_every == 0 and not done and evaluate_now():
                state["stopped_early"] = done = True
            state["seconds"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and not done:
                save_checkpoint()
            if on_step is not None:
                on_step(step, step_loss)
    bar.close()
    # The loop never evaluates at the last step (``not done``), so a run that did not stop early always ends
    # with one final evaluation; one that stopped early has just evaluated.
    if not state["stopped_early"]:
        evaluate_now()
    state["seconds"] += time.perf_counter() - t0
    # Restore the best evaluated weights.
    if state["best_step"] is not None and state["best_step"] != state["global_step"]:
        if out is not None and (out / BEST / "model.safetensors").exists():
            _load_state(model, out / BEST / "model.safetensors")
        elif best_in_memory is not None:
            model.load_state_dict(best_in_memory, strict=False)
    if ckpt is not None:
        shutil.rmtree(ckpt, ignore_errors=True)  # the run is complete; only the final model matters now
    model.eval()
    return TrainResult(
        global_step=state["global_step"],
        epochs_completed=state["epoch"] + state["micro_in_epoch"] / max(1, micro_per_epoch),
        best_score=state["best_score"], best_step=state["best_step"], stopped_early=state["stopped_early"],
        history=state["history"], train_seconds=state["seconds"], train_examples=state["examples"],
        train_tokens=state["tokens"], padded_tokens=state["padded"], resumed_from_step=resumed_from,
    )


@torch.inference_mode()
def dataset_loss(model: torch.nn.Module, features: Sequence[dict[str, Any]],
                 collate: Callable[[Sequence[dict[str, Any]]], dict[str, torch.Tensor]], batch_size: int = 32,
                 device: str | torch.device | None = None) -> float:
    """Mean loss of ``model`` over labelled ``features`` (eval mode, length-sorted batches)."""
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    order = sorted(range(len(features)), key=lambda i: -int(features[i]["length"]))
    total, n = 0.0, 0
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        batch = {k: v.to(dev) for k, v in collate([features[i] for i in idx]).items()}
        total += float(model(**batch).loss) * len(idx)
        n += len(idx)
    model.train(was_training)
    return total / max(n, 1)
