"""Data-parallel training of a grid cell: the phase (one notebook kernel) launches N training processes.

A phase whose ``num_processes`` is N > 1 calls :func:`launch` instead of :func:`xlt_utils.train.train`. It writes
what the workers need into ``<output_dir>/launch/``:

- ``model/``: the model to train (``save_pretrained``, safetensors) and its tokenizer;
- ``features.json``: the featurized training data;
- ``job.json``: the :class:`~xlt_utils.train.TrainConfig`, the task, the model class, the frozen parameters and
  the model-selection settings (English dev language, sample cap, sequence length);

then runs ``python -m torch.distributed.run --standalone --nproc_per_node N -m xlt_utils.dist_train <launch dir>``
(or ``python -m accelerate.commands.launch --config_file $XLT_ACCELERATE_CONFIG --num_processes N ...`` when that
environment variable names an accelerate config, e.g. FSDP for XL/XXL). Every worker (:func:`main`) rebuilds the
model from ``model/``, the pipeline's ``collate`` and the dev score, and calls the same
:func:`~xlt_utils.train.train`, which trains data-parallel by itself (``WORLD_SIZE`` > 1) and checkpoints from
rank 0 into ``<output_dir>/checkpoint``, so a rerun with the same N resumes. Rank 0 writes the trained weights
(``trained.safetensors``, the full state dict under FSDP) and the :class:`~xlt_utils.train.TrainResult`
(``result.json``); the parent loads both back. Nothing is pickled: JSON and safetensors only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError

LAUNCH = "launch"
TRAINED = "trained.safetensors"
RESULT = "result.json"
LOG = "launch.log"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    raise TypeError(f"training feature value of type {type(obj).__name__} is not JSON-serialisable")


def command(job_dir: Path, processes: int) -> list[str]:
    """The launch command: torchrun (DDP; gloo on CPU, NCCL on GPUs), or accelerate launch with the config that
    ``XLT_ACCELERATE_CONFIG`` names."""
    from xlt_utils.config import accelerate_config_path

    acc = accelerate_config_path()
    if acc is not None:
        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(acc), "--num_processes",
                str(processes), "-m", "xlt_utils.dist_train", str(job_dir)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "xlt_utils.dist_train", str(job_dir)]


def launch(model: Any, data: Any, config: Any, output_dir: Path, *, processes: int, dev_lang: str | None,
           max_dev_samples: int | None, max_seq_length: int) -> Any:
    """Train ``model`` in ``processes`` data-parallel processes and load the trained weights back into it.

    Args:
        model: a ``transformers`` model (its current weights are the starting point).
        data: the phase's :class:`~xlt_utils.phases.TrainingData` (task, tokenizer, features).
        config: the :class:`~xlt_utils.train.TrainConfig`.
        output_dir: the training directory (checkpoints, best model; ``launch/`` is written inside it).
        processes: how many processes (one per GPU on a GPU machine).
        dev_lang: the dev language for model selection, or ``None`` for no selection (final weights).
        max_dev_samples, max_seq_length: the dev selection's settings.

    Returns:
        The :class:`~xlt_utils.train.TrainResult` of rank 0.

    Raises:
        XLTError: the launch failed (the last lines of ``launch/launch.log`` are printed).
    """
    import torch

    from xlt_utils.config import check_num_processes
    from xlt_utils.train import TrainResult, _load_state

    check_num_processes(processes)
    job_dir = Path(output_dir) / LAUNCH
    job_dir.mkdir(parents=True, exist_ok=True)
    for name in (TRAINED, RESULT):
        (job_dir / name).unlink(missing_ok=True)
    model.save_pretrained(str(job_dir / "model"), safe_serialization=True)
    data.tokenizer.save_pretrained(str(job_dir / "model"))
    with open(job_dir / "features.json", "w", encoding="utf-8") as f:
        json.dump(data.features, f, default=_json_default)
    job = {"task": data.task.name, "model_class": type(model).__name__, "output_dir": str(Path(output_dir).resolve()),
           "train_config": dataclasses.asdict(config), "frozen": [n for n, p in model.named_parameters()
                                                                  if not p.requires_grad],
           "dev_lang": dev_lang, "max_dev_samples": max_dev_samples, "max_seq_length": max_seq_length}
    (job_dir / "job.json").write_text(json.dumps(job, indent=1))

    cmd = command(job_dir, processes)
    env = dict(os.environ)
    if not torch.cuda.is_available():  # CPU processes share the cores this kernel was given
        env["OMP_NUM_THREADS"] = str(max(1, torch.get_num_threads() // processes))
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    print(f"training in {processes} processes: {' '.join(cmd[1:4])} ... (log: {job_dir / LOG})", flush=True)
    with open(job_dir / LOG, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait()
        except BaseException:  # interrupted kernel: stop the launcher, which stops its workers
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    if rc != 0 or not (job_dir / RESULT).exists():
        tail = (job_dir / LOG).read_text(errors="replace").splitlines()[-25:]
        print("\n".join(tail))
        last = next((line for line in reversed(tail) if "Error" in line), tail[-1] if tail else "")
        raise XLTError(f"data-parallel training in {processes} processes failed (exit {rc}): {last.strip()} "
                       f"(full log: {job_dir / LOG})")
    _load_state(model, job_dir / TRAINED)
    model.eval()
    return TrainResult(**json.loads((job_dir / RESULT).read_text()))


def _frozen(model: Any, names: Sequence[str]) -> None:
    params = dict(model.named_parameters())
    for n in names:
        params[n].requires_grad_(False)


def model_class(name: str, model_dir: Path) -> type:
    """The class a worker rebuilds the launched model with: a ``transformers`` class by name, or the mean-pooling
    classifier (:func:`xlt_utils.models.mean_pool_classifier_class`) that the saved config records.

    Raises:
        XLTError: ``name`` is neither.
    """
    import transformers

    from xlt_utils.models import POOLING_CONFIG_KEY, mean_pool_classifier_class

    config = transformers.AutoConfig.from_pretrained(str(model_dir))
    if getattr(config, POOLING_CONFIG_KEY, None) == "mean" and name.startswith("MeanPool"):
        return mean_pool_classifier_class(config)
    cls = getattr(transformers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise XLTError(f"{name!r} is not a transformers model class")
    return cls


def main(job_dir: Path) -> None:
    """One training process (run by the launcher of :func:`launch`)."""
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # evaluation's "cuda" = this GPU
    from safetensors.torch import save_file

    from xlt_utils.formats.pipelines import get_pipeline
    from xlt_utils.models import load_tokenizer
    from xlt_utils.phase_data import dev_score_fn
    from xlt_utils.tasks import get_task
    from xlt_utils.train import TrainConfig, _state_dict_cpu, train

    job = json.loads((job_dir / "job.json").read_text())
    task = get_task(job["task"])
    tok = load_tokenizer(job_dir / "model")
    model = model_class(job["model_class"], job_dir / "model").from_pretrained(str(job_dir / "model"),
                                                                             dtype=torch.float32)
    _frozen(model, job["frozen"])
    pipe = get_pipeline(task, tok, max_seq_length=job["max_seq_length"])
    features = json.loads((job_dir / "features.json").read_text(encoding="utf-8"))
    eval_fn = (dev_score_fn(task, tok, job["dev_lang"], job["max_dev_samples"], job["max_seq_length"])
               if job["dev_lang"] else None)
    result = train(model, features, pipe.collate, TrainConfig(**job["train_config"]), output_dir=job["output_dir"],
                   eval_fn=eval_fn)
    rank = int(os.environ.get("RANK", "0"))
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":  # gather the shards (every rank)
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        weights = {k: v.detach().clone().contiguous() for k, v in sd.items()}
    else:
        weights = _state_dict_cpu(model) if rank == 0 else {}
    if rank == 0:
        tmp = job_dir / (TRAINED + ".tmp")
        save_file(weights, str(tmp))
        os.replace(tmp, job_dir / TRAINED)
        tmp = job_dir / (RESULT + ".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(result)))
        os.replace(tmp, job_dir / RESULT)
    if torch.distributed.is_initialized():  # leave together: a process exiting alone makes gloo abort its peers
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m xlt_utils.dist_train <launch dir> (under torchrun or accelerate launch)")
    main(Path(sys.argv[1]))
