"""The training loop's scale-out options: two-process data-parallel training (gloo on CPU, launched with torchrun)
computes what one process computes on the same global batch, resumes exactly from a checkpoint that rank 0
wrote; gradient checkpointing and torch.compile leave the results unchanged; execution options from the
environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from xlt_utils.errors import XLTError
from xlt_utils.train import TrainConfig, train, with_env_options

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "ddp_worker.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(out: Path, per_process_batch: int, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(WORKER), str(out), str(per_process_batch), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_on_the_same_global_batch_and_resumes(tmp_path):
    """2 processes x 2 examples x accumulation 2 against 1 process x 4 examples x accumulation 2: same global batches
    (37 examples: the last micro-batch of each epoch holds one example, so one process gets none). The 2-process run
    is stopped after step 5 (checkpoint at step 4, written by rank 0 with both ranks' RNG states) and relaunched:
    it resumes at step 4 and ends with the single process's weights and losses, within float tolerance."""
    sys.path.insert(0, str(WORKER.parent))
    from ddp_worker import run

    torch.set_num_threads(1)
    single = run(tmp_path / "single", batch_size=4)
    ref = load_file(str(tmp_path / "single" / "final.safetensors"))

    par = tmp_path / "ddp"
    r = _torchrun(par, 2, "5")  # stops after step 5, as if killed
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ckpt = par / "train" / "checkpoint"
    assert json.loads((ckpt / "trainer_state.json").read_text())["global_step"] == 4
    assert json.loads((ckpt / "trainer_state.json").read_text())["processes"] == 2
    rng = torch.load(ckpt / "rng.pt", weights_only=True)
    assert len(rng["per_rank"]) == 2, "rank 0 writes every rank's RNG state"
    assert not (par / "result.json").exists()

    r = _torchrun(par, 2)  # resumes
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    got = json.loads((par / "result.json").read_text())
    assert got["world"] == 2 and got["resumed_from"] == 4
    assert (got["global_step"], got["examples"], got["tokens"]) == (single["global_step"], single["examples"],
                                                                    single["tokens"])
    assert got["step_losses"] == pytest.approx(single["step_losses"][4:], abs=1e-5)
    weights = load_file(str(par / "final.safetensors"))
    assert weights.keys() == ref.keys()
    worst = max(float((weights[k] - ref[k]).abs().max()) for k in ref)
    assert worst < 1e-4, f"largest weight difference {worst:.2e}"
    assert not ckpt.exists(), "the finished run removes its checkpoint"


def test_resume_with_another_number_of_processes_is_refused(tmp_path):
    sys.path.insert(0, str(WORKER.parent))
    from ddp_worker import run

    torch.set_num_threads(1)
    assert run(tmp_path, batch_size=4, stop_at=3) is None  # checkpoint at step 2
    state = tmp_path / "train" / "checkpoint" / "trainer_state.json"
    doc = json.loads(state.read_text())
    assert "processes" not in doc  # a single-process checkpoint keeps its format
    doc["processes"] = 2
    state.write_text(json.dumps(doc))
    with pytest.raises(XLTError, match=r"written by 2 process\(es\); resume it with as many \(this run has 1\)"):
        run(tmp_path, batch_size=4)


def _tiny(seed: int = 0):
    from transformers import XLMRobertaForSequenceClassification

    from xlt_utils.models import tiny_xlmr_config

    torch.manual_seed(seed)
    return XLMRobertaForSequenceClassification(
        tiny_xlmr_config(100, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3))


def _short_run(**options) -> dict[str, torch.Tensor]:
    sys.path.insert(0, str(WORKER.parent))
    from ddp_worker import collate, features

    model = _tiny()
    cfg = TrainConfig(learning_rate=3e-3, max_steps=4, per_device_train_batch_size=8, seed=5, progress=False,
                      bf16=False, **options)
    train(model, features(), collate, cfg, device="cpu")
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_gradient_checkpointing_and_compile_leave_the_results_unchanged():
    torch.set_num_threads(1)
    base = _short_run()
    for options in ({"gradient_checkpointing": True}, {"torch_compile": "eager"}):
        other = _short_run(**options)
        worst = max(float((other[k] - base[k]).abs().max()) for k in base)
        assert worst < 1e-5, (options, worst)


def test_execution_options_from_the_environment(monkeypatch):
    cfg = TrainConfig()
    assert with_env_options(cfg) is cfg
    monkeypatch.setenv("XLT_GRADIENT_CHECKPOINTING", "1")
    monkeypatch.setenv("XLT_TORCH_COMPILE", "aot_eager")
    got = with_env_options(cfg)
    assert got.gradient_checkpointing is True and got.torch_compile == "aot_eager"
    monkeypatch.setenv("XLT_TORCH_COMPILE", "1")
    assert with_env_options(cfg).torch_compile is True
    monkeypatch.setenv("XLT_TORCH_COMPILE", "0")
    monkeypatch.setenv("XLT_GRADIENT_CHECKPOINTING", "0")
    assert with_env_options(cfg) is cfg
    with pytest.raises(XLTError, match="torch_compile must be True, False or a backend name"):
        TrainConfig(torch_compile="")


@pytest.mark.parametrize("name, kind, processes", [("ddp", "MULTI_GPU", 8), ("fsdp_xl", "FSDP", 2),
                                                    ("fsdp_xxl", "FSDP", 4)])
def test_accelerate_configs_parse(name, kind, processes):
    """The launch configs of docs/scale-out.md are valid accelerate config files (FSDP wraps the XL layer class)."""
    from accelerate.commands.config.config_args import ClusterConfig

    cfg = ClusterConfig.from_yaml_file(str(ROOT / "configs" / "accelerate" / f"{name}.yaml"))
    assert cfg.distributed_type.name == kind and cfg.num_processes == processes
    if kind == "FSDP":
        from transformers.models.xlm_roberta_xl import modeling_xlm_roberta_xl

        layer = cfg.fsdp_config["fsdp_transformer_layer_cls_to_wrap"]
        assert hasattr(modeling_xlm_roberta_xl, layer) and cfg.fsdp_config["fsdp_version"] == 2


def _dropout_free(model):
    """The same model (same weights) rebuilt with dropout off, so that 1 and 2 processes compute the same thing."""
    conf = model.config
    conf.hidden_dropout_prob = conf.attention_probs_dropout_prob = 0.0
    other = type(model)(conf)
    other.load_state_dict(model.state_dict())
    return other


@pytest.mark.slow
def test_a_training_phase_in_two_processes_matches_one_process(tmp_path, monkeypatch):
    """A target phase with num_processes=2 (torchrun, gloo on CPU) and 4 examples per process ends with the weights,
    steps and English dev metrics of num_processes=1 with 8 examples (the same global batch)."""
    from xlt_utils import config as C
    from xlt_utils import paths, phases

    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(paths, "RUNS", tmp_path)
    base = dict(C.notebook_defaults("02_target"), max_steps=6, max_train_samples=40, max_dev_samples=24,
                checkpoint_every=None, eval_every=3)
    out = {}
    for n, bs in ((1, 8), (2, 4)):
        cfg = C.from_params("target", {**base, "num_processes": n, "per_device_train_batch_size": bs})
        assert cfg.batch_size == 8
        run = phases.start(cfg)
        data = phases.load_training_data(run)
        model = _dropout_free(phases.build_model(run, data))
        result = phases.train_model(run, model, data)
        metrics = phases.evaluate_dev(run, model, data)
        out[n] = (result, metrics, {k: v.detach().clone() for k, v in model.state_dict().items()}, run)
        run.lock.__exit__(None, None, None)
    (r1, m1, w1, _), (r2, m2, w2, run2) = out[1], out[2]
    assert (r2.global_step, r2.best_step, r2.train_examples, r2.train_tokens) == (
        r1.global_step, r1.best_step, r1.train_examples, r1.train_tokens)
    assert r2.best_score == pytest.approx(r1.best_score, abs=1e-6)
    assert w1.keys() == w2.keys()
    worst = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert worst < 1e-4, f"largest weight difference {worst:.2e}"
    assert m1["value"].tolist() == pytest.approx(m2["value"].tolist(), abs=1e-6)
    log = (run2.dir / "train" / "launch" / "launch.log").read_text()
    assert (run2.dir / "train" / "launch" / "trained.safetensors").exists(), log[-2000:]


@pytest.mark.parametrize("n, match", [(0, r"num_processes must be ≥ 1"), (-2, r"num_processes must be ≥ 1")])
def test_bad_num_processes_is_a_one_line_error(n, match):
    from xlt_utils import config as C

    with pytest.raises(XLTError, match=match) as e:
        C.from_params("target", {**C.notebook_defaults("02_target"), "num_processes": n})
    assert "\n" not in str(e.value)


def test_num_processes_above_the_gpu_count_and_a_missing_accelerate_config_are_refused(monkeypatch):
    from xlt_utils import config as C

    params = {**C.notebook_defaults("02_target"), "num_processes": 4}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(XLTError, match=r"num_processes is 4 but this machine has 2 CUDA GPU\(s\); valid: 1 to 2"):
        C.from_params("target", params)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("XLT_ACCELERATE_CONFIG", "configs/accelerate/nope.yaml")
    with pytest.raises(XLTError, match=r"XLT_ACCELERATE_CONFIG=.*valid: configs/accelerate/ddp.yaml"):
        C.from_params("target", params)
    monkeypatch.setenv("XLT_ACCELERATE_CONFIG", "configs/accelerate/fsdp_xl.yaml")
    assert C.from_params("target", params).num_processes == 4
    from xlt_utils.dist_train import command

    cmd = command(ROOT / "x", 4)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"] and cmd[cmd.index("--num_processes") + 1] == "4"
    assert cmd[cmd.index("--config_file") + 1] == str(ROOT / "configs" / "accelerate" / "fsdp_xl.yaml")
    monkeypatch.delenv("XLT_ACCELERATE_CONFIG")
    assert command(ROOT / "x", 2)[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
