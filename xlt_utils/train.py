"""The one training loop, for every format and every phase (intermediate and target training).

AdamW with linear warmup and decay (fused kernel), gradient accumulation, gradient clipping, bf16 autocast on
CUDA (optional on CPU), length-grouped batching with dynamic padding, evaluation every N steps with early
stopping and best-model restore, atomic checkpoints and exact resume (model, optimizer, scheduler, RNG, data
position); optionally gradient checkpointing, ``torch.compile``, padding-free (packed) batches and micro-batches
cut by a token budget instead of an example count.

The model computes its own loss (``transformers`` heads do, given ``labels`` or start/end positions), so the
loop is format-agnostic: a :class:`~xlt_utils.formats.pipelines.Pipeline` supplies features and ``collate``.

**Data parallel.** Launched as several processes (``accelerate launch``, ``torchrun``: ``WORLD_SIZE`` > 1), the
same loop trains with ``accelerate`` (DDP, or FSDP when the launch config asks for it; see docs/scale-out.md).
Every process builds the same global micro-batches of ``per_device_train_batch_size x processes`` examples
(the single-process batches of that size, same order) and takes every ``processes``-th example of each, so
one optimizer step sees ``per_device_train_batch_size x processes x gradient_accumulation_steps`` examples and
the run computes what one process with that batch computes (up to float rounding). Only rank 0 writes
checkpoints and the best model; every process resumes from them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from xlt_utils.auxiliary import attached
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
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30% more compute:
            for XL/XXL or long sequences). ``XLT_GRADIENT_CHECKPOINTING=1`` turns it on from the environment.
        torch_compile: ``False``, ``True`` (``torch.compile`` with inductor) or a backend name (``"eager"``,
            ``"aot_eager"``...); ``XLT_TORCH_COMPILE=1`` or ``=<backend>`` from the environment. Dynamic padding
            makes shapes vary, so the model is compiled with dynamic shapes from the first step (one compile, not
            one per length).
        packing: padding-free training: each micro-batch runs as one row of its sequences back to back, position
            ids restarting per sequence and attention kept within each (:class:`xlt_utils.models.Packer`), so no
            layer but the attention computes on padding. The same loss and gradients as the padded batch up to
            float rounding (tested), dropout draws aside: with dropout on, the masks fall on other elements, so a
            packed run's numbers differ as another seed's would (hence a parameter, not an environment option).
            Sequence classifiers (classification, pair_classification), token classification (tagging) and
            masked LM; other heads (span QA, multiple choice) are refused before training starts.
        max_tokens_per_batch: cut micro-batches by tokens instead of examples: each holds as many examples as fit
            in this many token positions (padded positions count, examples x longest; with ``packing`` only real
            tokens count), so steps hold a steady amount of work whatever the lengths. ``None`` (default): micro-
            batches of ``per_device_train_batch_size`` examples. With it, ``per_device_train_batch_size`` only sets
            the length-sorting window (``length_group_size`` x it examples), an example longer than the budget
            trains alone, and the number of steps per epoch is counted on the first epoch's batches.

    With several processes, ``per_device_train_batch_size`` is per process: the global batch is
    ``per_device_train_batch_size x processes x gradient_accumulation_steps``.
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
    gradient_checkpointing: bool = False
    torch_compile: bool | str = False
    packing: bool = False
    max_tokens_per_batch: int | None = None

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
        for name in ("max_steps", "max_tokens_per_batch"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise XLTError(f"TrainConfig.{name} must be ≥ 1 or None, got {getattr(self, name)}")
        if not isinstance(self.torch_compile, (bool, str)) or self.torch_compile == "":
            raise XLTError(f"TrainConfig.torch_compile must be True, False or a backend name, got "
                           f"{self.torch_compile!r}")


def with_env_options(config: TrainConfig) -> TrainConfig:
    """``config`` with the execution options the environment sets (they change speed and memory, not results):
    ``XLT_GRADIENT_CHECKPOINTING=1`` and ``XLT_TORCH_COMPILE=1|<backend>`` (``0`` or unset: the config's own).
    Not ``packing``: it draws other dropout masks (the layout differs), so it changes a run's numbers."""
    over: dict[str, Any] = {}
    gc = os.environ.get("XLT_GRADIENT_CHECKPOINTING", "").strip().lower()
    if gc and gc not in ("0", "false", "no"):
        over["gradient_checkpointing"] = True
    tc = os.environ.get("XLT_TORCH_COMPILE", "").strip()
    if tc and tc.lower() not in ("0", "false", "no"):
        over["torch_compile"] = True if tc.lower() in ("1", "true", "yes", "inductor") else tc
    return replace(config, **over) if over else config


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
                           group_by_length: bool = True, group_size: int = 50, max_tokens: int | None = None,
                           packed: bool = False) -> list[list[int]]:
    """The batches of one epoch, as lists of feature indices; a pure function of (seed, epoch).

    Indices are shuffled, cut into groups of ``group_size`` batches, sorted by length within each group,
    batched, and the batches shuffled, so batches hold examples of similar length (little padding) while the
    order stays random. Deterministic, which makes resuming at a batch position exact.

    With ``max_tokens``, batches are cut by tokens rather than by ``batch_size`` examples (which then only sizes
    the sorting groups): each batch takes the next examples while they fit in ``max_tokens`` positions, counted
    padded (examples x longest) or, when ``packed``, as the sum of the lengths; an example longer than the budget
    is a batch of its own. Without ``max_tokens`` the batches are exactly those of before the option existed.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    if group_by_length:
        chunk = batch_size * group_size
        grouped = []
        for s in range(0, len(order), chunk):
            grouped.extend(sorted(order[s : s + chunk], key=lambda i: -lengths[i]))
        order = grouped
    if max_tokens is None:
        batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    else:
        batches = _token_budget_cut(order, lengths, max_tokens, packed)
    if group_by_length:
        perm = torch.randperm(len(batches), generator=g).tolist()
        batches = [batches[i] for i in perm]
    return batches


def _token_budget_cut(order: Sequence[int], lengths: Sequence[int], max_tokens: int, packed: bool) -> list[list[int]]:
    batches: list[list[int]] = []
    current: list[int] = []
    longest = total = 0
    for i in order:
        n = int(lengths[i])
        cost = total + n if packed else max(longest, n) * (len(current) + 1)
        if current and cost > max_tokens:
            batches.append(current)
            current, longest, total = [], 0, 0
        current.append(i)
        longest, total = max(longest, n), total + n
    if current:
        batches.append(current)
    return batches


def _to_device(obj: Any, dev: torch.device, pin: bool) -> Any:
    """Tensors (also inside dicts: a packed batch's attention index) to ``dev``; anything else as it is."""
    if isinstance(obj, torch.Tensor):
        return (obj.pin_memory() if pin else obj).to(dev, non_blocking=True)
    if isinstance(obj, dict):
        return {k: _to_device(v, dev, pin) for k, v in obj.items()}
    return obj


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


class _Parallel:
    """This process's place in a data-parallel run: a thin layer over ``accelerate`` (one process: identity)."""

    def __init__(self, accelerator: Any | None):
        self.acc = accelerator
        self.world = accelerator.num_processes if accelerator is not None else 1
        self.rank = accelerator.process_index if accelerator is not None else 0
        self.fsdp = False
        if accelerator is not None:
            from accelerate.utils import DistributedType

            self.fsdp = accelerator.distributed_type == DistributedType.FSDP

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return self.acc.prepare_model(model) if self.world > 1 else model

    def no_sync(self, wrapped: torch.nn.Module, sync: bool):
        """No gradient all-reduce for this micro-batch (all but the last of an accumulation group)."""
        if sync or self.world == 1:
            return contextlib.nullcontext()
        return self.acc.no_sync(wrapped)

    def clip(self, wrapped: torch.nn.Module, max_norm: float) -> None:
        if self.world > 1:
            self.acc.clip_grad_norm_(wrapped.parameters(), max_norm)
        else:
            torch.nn.utils.clip_grad_norm_(wrapped.parameters(), max_norm)

    def sum(self, values: Sequence[float | torch.Tensor], device: torch.device) -> list[float]:
        """Sum numbers over the processes (one all-reduce)."""
        t = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])
        if self.world > 1:
            torch.distributed.all_reduce(t)
        return t.tolist()

    def from_main(self, obj: Any) -> Any:
        """Rank 0's value of ``obj`` on every process."""
        if self.world == 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            self.acc.wait_for_everyone()

    def model_state(self, model: torch.nn.Module, wrapped: torch.nn.Module) -> dict[str, torch.Tensor] | None:
        """Full CPU state dict on rank 0 (``None`` elsewhere). FSDP gathers the shards: every rank must call it."""
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            sd = get_model_state_dict(wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
            return {k: v.detach().clone().contiguous() for k, v in sd.items()} if self.main else None
        return _state_dict_cpu(model) if self.main else None

    def load_model_state(self, model: torch.nn.Module, wrapped: torch.nn.Module, path: Path) -> None:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

            set_model_state_dict(wrapped, load_file(str(path)), options=StateDictOptions(full_state_dict=True))
        else:
            _load_state(model, path)

    def optimizer_state(self, wrapped: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

            sd = get_optimizer_state_dict(wrapped, optimizer,
                                          options=StateDictOptions(full_state_dict=True, cpu_offload=True))
            return sd if self.main else None
        return optimizer.state_dict() if self.main else None  # DDP: the same on every rank

    def load_optimizer_state(self, wrapped: torch.nn.Module, optimizer: torch.optim.Optimizer,
                             state: dict[str, Any]) -> None:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(wrapped, optimizer, state, options=StateDictOptions(full_state_dict=True))
        else:
            optimizer.load_state_dict(state)


def distributed_launch() -> bool:
    """Whether this process is one of several launched together (``accelerate launch``, ``torchrun``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _accelerator() -> Any:
    """The ``Accelerator`` of a multi-process launch (gloo on CPU-only machines, NCCL on GPUs; DDP, or FSDP when
    the ``accelerate launch`` config asks for it)."""
    from accelerate import Accelerator

    acc = Accelerator(cpu=not torch.cuda.is_available())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if acc.num_processes != world:  # would train `world` independent copies that overwrite each other's files
        raise XLTError(f"launched as {world} processes, but accelerate set up {acc.num_processes} "
                       f"({acc.distributed_type}); launch with accelerate launch or torchrun")
    return acc


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
    accelerator: Any | None = None,
    batch_plan: Callable[[int], list[list[int]]] | None = None,
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
        device: ``cpu``/``cuda``; default: CUDA when available (with several processes: the one accelerate
            assigns to this process).
        on_step: called after every optimizer step with (step, loss) (tests use it to simulate a crash). With
            several processes, pass it on every process or none (the loss is summed over them).
        accelerator: an ``accelerate.Accelerator`` to train data-parallel with; by default one is created when
            the process was launched as one of several (``WORLD_SIZE`` > 1), else training is single-process.
        batch_plan: the micro-batches of each epoch (feature indices; each ``gradient_accumulation_steps``
            consecutive ones make an optimizer step), a pure function of the epoch, instead of the length-grouped
            batches of all features: multi-task training (:class:`xlt_utils.multitask.TaskSchedule`). One process.

    Returns:
        A :class:`TrainResult`. The model ends with the best evaluated weights (or the last ones). Under FSDP its
        parameters stay sharded: save them with the wrapped model's full state dict (docs/scale-out.md).
    """
    if not features:
        raise XLTError("no training features: the training split is empty")
    cfg = with_env_options(config)
    if accelerator is None and distributed_launch():
        accelerator = _accelerator()
    par = _Parallel(accelerator)
    dev = accelerator.device if accelerator is not None else resolve_device(device)
    if dev.type == "cpu":
        dev = torch.device("cpu")  # accelerate's CPU device may carry an index, which torch.load refuses
    model.to(dev)
    out = Path(output_dir) if output_dir is not None else None
    if cfg.checkpoint_every and out is None:
        raise XLTError("TrainConfig.checkpoint_every needs an output_dir")
    if par.fsdp and eval_fn is not None and out is None:
        raise XLTError("FSDP training with model selection (eval_fn) needs an output_dir for the best model")
    if cfg.gradient_checkpointing:
        if not hasattr(model, "gradient_checkpointing_enable"):
            raise XLTError(f"TrainConfig.gradient_checkpointing needs a transformers model, got "
                           f"{type(model).__name__}")
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    packer = None
    if cfg.packing:
        from xlt_utils.models import Packer

        packer = Packer(model)  # refuses heads that cannot train packed, before any work
    aux = attached(model)  # an auxiliary objective (xlt_utils.auxiliary) joins the steps it names
    if aux is not None and par.world > 1:
        raise XLTError("an auxiliary objective trains in one process; launch this run as one process")

    lengths = [int(f["length"]) for f in features]
    bs, accum = cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps
    global_bs = bs * par.world  # one global micro-batch: every process's share of it
    budget = cfg.max_tokens_per_batch * par.world if cfg.max_tokens_per_batch else None

    if batch_plan is not None and par.world > 1:
        raise XLTError("a batch plan (multi-task training) runs in one process; launch it without WORLD_SIZE > 1")

    def epoch_batches(epoch: int) -> list[list[int]]:
        if batch_plan is not None:
            return batch_plan(epoch)
        return length_grouped_batches(lengths, global_bs, cfg.seed, epoch, cfg.group_by_length,
                                      cfg.length_group_size, max_tokens=budget, packed=cfg.packing)

    micro_per_epoch = (len(epoch_batches(0)) if budget or batch_plan is not None
                       else math.ceil(len(features) / global_bs))
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / accum))
    total_steps = cfg.max_steps or max(1, math.ceil(steps_per_epoch * cfg.num_train_epochs))
    warmup = int(cfg.warmup_ratio * total_steps)

    state = {"global_step": 0, "epoch": 0, "micro_in_epoch": 0, "best_score": None, "best_step": None,
             "bad_evals": 0, "history": [], "stopped_early": False, "examples": 0, "tokens": 0, "padded": 0,
             "seconds": 0.0}
    ckpt = out / CHECKPOINT if out else None
    resuming = ckpt is not None and (ckpt / "trainer_state.json").exists()
    if resuming and not par.fsdp:
        _load_state(model, ckpt / "model.safetensors")  # before wrapping: DDP starts from rank 0's weights
    wrapped = par.wrap(model)
    forward = wrapped
    if cfg.torch_compile:
        # dynamic: batch lengths vary every step (and with packing the row length), so compile for symbolic
        # shapes at once rather than once per length first
        forward = torch.compile(wrapped, backend="inductor" if cfg.torch_compile is True else cfg.torch_compile,
                                dynamic=True)

    # Fused AdamW (one kernel for all parameters) exists for CUDA and CPU tensors in torch ≥ 2.4.
    fused = dev.type in ("cuda", "cpu")
    optimizer = torch.optim.AdamW(_param_groups(wrapped, cfg.weight_decay), lr=cfg.learning_rate,
                                  eps=cfg.adam_epsilon, fused=fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(warmup, total_steps))

    best_in_memory: dict[str, torch.Tensor] | None = None
    resumed_from = 0
    if resuming:
        if par.fsdp:
            par.load_model_state(model, wrapped, ckpt / "model.safetensors")
        opt_state = torch.load(ckpt / "optimizer.pt", map_location=dev, weights_only=True)
        par.load_optimizer_state(wrapped, optimizer, opt_state["optimizer"])
        scheduler.load_state_dict(opt_state["scheduler"])
        saved = json.loads((ckpt / "trainer_state.json").read_text())
        if saved.get("processes", 1) != par.world:
            raise XLTError(f"checkpoint {ckpt} was written by {saved.get('processes', 1)} process(es); resume it "
                           f"with as many (this run has {par.world}) or delete it to start over")
        rng = torch.load(ckpt / "rng.pt", weights_only=True)
        _set_rng_state(rng["per_rank"][par.rank] if "per_rank" in rng else rng)
        state.update(saved)
        resumed_from = state["global_step"]
    else:
        torch.manual_seed(cfg.seed + par.rank)  # dropout differs between processes; rank 0 = one process
        random.seed(cfg.seed + par.rank)
    if par.world > 1:
        state["processes"] = par.world

    def save_checkpoint() -> None:
        weights = par.model_state(model, wrapped)  # collective under FSDP
        opt = par.optimizer_state(wrapped, optimizer)
        rngs = par.gather(_rng_state())
        if par.main:
            def write(d: Path) -> None:
                save_file(weights, str(d / "model.safetensors"))
                torch.save({"optimizer": opt, "scheduler": scheduler.state_dict()}, d / "optimizer.pt")
                torch.save(rngs[0] if par.world == 1 else {"per_rank": rngs}, d / "rng.pt")
                (d / "trainer_state.json").write_text(json.dumps(state, indent=1))
                (d / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))

            _atomic_dir_write(ckpt, write)
        par.barrier()

    def evaluate_now() -> bool:
        """Evaluate, track the best model; returns True when training should stop early."""
        nonlocal best_in_memory
        if eval_fn is None:
            return False
        was_training = model.training
        model.eval()
        rng = _rng_state()  # evaluation must not perturb the training RNG stream
        # Every process evaluates (under FSDP the forward pass needs them all); rank 0's score decides.
        score = par.from_main(float(eval_fn(wrapped if par.fsdp else model)))
        _set_rng_state(rng)
        model.train(was_training)
        state["history"].append({"step": state["global_step"], "eval_score": score})
        if getattr(eval_fn, "details", None):  # a multi-task score's per-task parts (xlt_utils.multitask)
            state["history"][-1]["task_scores"] = dict(eval_fn.details)
        if state["best_score"] is None or score > state["best_score"]:
            state["best_score"], state["best_step"], state["bad_evals"] = score, state["global_step"], 0
            if out is not None:
                weights = par.model_state(model, wrapped)
                if par.main:
                    _atomic_dir_write(out / BEST, lambda d: save_file(weights, str(d / "model.safetensors")))
                par.barrier()
            else:
                best_in_memory = _state_dict_cpu(model)
        else:
            state["bad_evals"] += 1
        patience = cfg.early_stopping_patience
        return patience is not None and state["bad_evals"] >= patience

    wrapped.train()
    bar = tqdm(total=total_steps, initial=state["global_step"], disable=not cfg.progress or not par.main,
               desc="train", mininterval=2.0, leave=False)
    t0 = time.perf_counter()
    # The loss stays on the device between logging points (no host sync per micro-batch); token counts are
    # this process's until they are summed over the processes at logging points, checkpoints and the end.
    running = torch.zeros((), dtype=torch.float64, device=dev)  # float64: the figures of the float loop
    n_running, tokens, padded = 0, 0, 0

    def flush() -> float:
        """Sum the running loss and the token counts over the processes; returns the mean loss per step."""
        nonlocal running, n_running, tokens, padded
        loss_sum, tok, pad = par.sum([running, tokens, padded], dev)
        state["tokens"] += int(tok)
        state["padded"] += int(pad)
        mean = loss_sum / n_running if n_running else 0.0
        running.zero_()
        n_running = tokens = padded = 0
        return mean

    pin = dev.type == "cuda"
    done = state["global_step"] >= total_steps or state["stopped_early"]
    while not done:
        batches = epoch_batches(state["epoch"])
        while state["micro_in_epoch"] < len(batches) and not done:
            # One optimizer step = up to `accum` global micro-batches (fewer at the end of an epoch).
            group = batches[state["micro_in_epoch"] : state["micro_in_epoch"] + accum]
            n_ex = sum(len(b) for b in group)
            step_loss = torch.zeros((), dtype=torch.float64, device=dev)
            for j, global_idx in enumerate(group):
                idx = global_idx[par.rank :: par.world]
                # Weight by examples so that a short last micro-batch counts for what it holds; DDP averages the
                # gradients over the processes, hence x world. A process whose share of a short last micro-batch
                # is empty runs one example with weight 0, so that every process joins the gradient all-reduce.
                weight = len(idx) / n_ex * par.world
                if not idx:
                    idx = global_idx[:1]
                with par.no_sync(wrapped, sync=j == len(group) - 1):
                    batch = collate([features[i] for i in idx])
                    if weight:
                        mask = batch["attention_mask"]
                        real = int(mask.sum())
                        tokens += real
                        padded += 0 if packer else mask.numel() - real
                    if packer:
                        batch = packer.pack(batch)
                    # pinned host memory: the copy overlaps the GPU's work on the previous micro-batch
                    batch = _to_device(batch, dev, pin)
                    # packed: the packed attention stays on through backward (gradient checkpointing recomputes)
                    with packer.active() if packer else contextlib.nullcontext():
                        with autocast_context(dev, cfg.bf16):
                            loss = forward(**batch).loss
                        (loss * weight).backward()
                step_loss += loss.detach().double() * (weight / par.world)
            if aux is not None and aux.due(state["global_step"] + 1):
                # one aux batch: this step's gradient is grad(task) + aux.weight x grad(aux) (the logged loss: task)
                with autocast_context(dev, cfg.bf16):
                    aux_loss = aux.loss(model, state["global_step"] + 1)
                (aux_loss * aux.weight).backward()
            if cfg.max_grad_norm:
                par.clip(wrapped, cfg.max_grad_norm)
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
                mean = flush()
                state["history"].append({"step": step, "loss": mean, "lr": scheduler.get_last_lr()[0]})
                bar.set_postfix(loss=f"{mean:.4f}")
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
                # counts up to here go into the checkpoint; the running loss is kept for the next log line
                tok, pad = par.sum([tokens, padded], dev)
                state["tokens"] += int(tok)
                state["padded"] += int(pad)
                tokens = padded = 0
                save_checkpoint()
            if on_step is not None:
                on_step(step, par.sum([step_loss], dev)[0])
    bar.close()
    if packer is not None:
        packer.close()
    if n_running or tokens or padded:
        flush()
    # The loop never evaluates at the last step (``not done``), so a run that did not stop early always ends
    # with one final evaluation; one that stopped early has just evaluated.
    if not state["stopped_early"]:
        evaluate_now()
    state["seconds"] += time.perf_counter() - t0
    # Restore the best evaluated weights.
    if state["best_step"] is not None and state["best_step"] != state["global_step"]:
        if out is not None and (out / BEST / "model.safetensors").exists():
            par.load_model_state(model, wrapped, out / BEST / "model.safetensors")
        elif best_in_memory is not None:
            model.load_state_dict(best_in_memory, strict=False)
    par.barrier()
    if ckpt is not None and par.main:
        shutil.rmtree(ckpt, ignore_errors=True)  # the run is complete; only the final model matters now
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_disable()
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
