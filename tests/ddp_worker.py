"""One data-parallel training run of the loop on CPU, for tests/test_distributed.py.

``python tests/ddp_worker.py OUT BATCH [STOP_AT]`` under ``accelerate launch`` / ``torchrun`` (several processes,
gloo) or alone (one process): a tiny XLM-R classifier with dropout off, 37 examples of varied length (so the last
micro-batch of an epoch is short), gradient accumulation 2, checkpoints every 2 steps. Rank 0 writes
``OUT/final.safetensors`` and ``OUT/result.json``; with STOP_AT the run stops (as if killed) after that step's
checkpoint, and the next launch resumes it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

from safetensors.torch import save_file
from transformers import XLMRobertaForSequenceClassification

from xlt_utils.models import tiny_xlmr_config
from xlt_utils.train import TrainConfig, _state_dict_cpu, train


class Stop(Exception):
    pass


def features(n: int = 37, seed: int = 1) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    feats = []
    for i in range(n):
        length = int(torch.randint(4, 24, (1,), generator=g))
        ids = [0] + torch.randint(5, 90, (length - 2,), generator=g).tolist() + [2]
        feats.append({"input_ids": ids, "attention_mask": [1] * length, "labels": i % 3, "length": length})
    return feats


def collate(batch: list[dict]) -> dict[str, torch.Tensor]:
    width = max(f["length"] for f in batch)
    ids = torch.full((len(batch), width), 1, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, f in enumerate(batch):
        ids[r, : f["length"]] = torch.tensor(f["input_ids"])
        mask[r, : f["length"]] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([f["labels"] for f in batch])}


def run(out: Path, batch_size: int, stop_at: int | None = None) -> dict | None:
    cfg = tiny_xlmr_config(100, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3)
    torch.manual_seed(0)
    model = XLMRobertaForSequenceClassification(cfg)
    losses: list[float] = []

    def on_step(step: int, loss: float) -> None:
        losses.append(loss)
        if stop_at is not None and step == stop_at:
            raise Stop

    tc = TrainConfig(learning_rate=3e-3, num_train_epochs=3, per_device_train_batch_size=batch_size,
                     gradient_accumulation_steps=2, warmup_ratio=0.1, seed=5, progress=False, log_every=1,
                     checkpoint_every=2, bf16=False)
    try:
        res = train(model, features(), collate, tc, output_dir=out / "train", device="cpu", on_step=on_step)
    except Stop:
        return None
    rank = int(os.environ.get("RANK", "0"))
    summary = {"global_step": res.global_step, "examples": res.train_examples, "tokens": res.train_tokens,
               "padded": res.padded_tokens, "resumed_from": res.resumed_from_step, "step_losses": losses,
               "history": res.history, "world": int(os.environ.get("WORLD_SIZE", "1"))}
    if rank == 0:
        save_file(_state_dict_cpu(model), str(out / "final.safetensors"))
        (out / "result.json").write_text(json.dumps(summary))
    return summary


if __name__ == "__main__":
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    run(out_dir, int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
    if torch.distributed.is_initialized():  # leave together: a process exiting alone makes gloo abort its peers
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
