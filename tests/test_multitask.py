"""Multi-task intermediate training (#40 item 1): the sampling rule and cap by hand, the schedule's proportions,
determinism and exact resume, names and their one-line errors, run ids, and a tiny two-format run through the phase
functions (selection on the mean English dev score, an encoder saved without heads)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from xlt_utils import config as C
from xlt_utils import multitask as MT
from xlt_utils import runs
from xlt_utils.errors import XLTError

# ---------------------------------------------------------------------------------------------- sampling by hand


def test_sampling_weights_by_hand():
    # proportional with a cap: min(n, 500) = 500, 100, 10 over 610 (jiant's examples cap)
    assert MT.sampling_weights([1000, 100, 10], cap=500) == pytest.approx([500 / 610, 100 / 610, 10 / 610])
    # no cap, or a cap above every size: proportional to the sizes
    assert MT.sampling_weights([1000, 100, 10]) == pytest.approx([1000 / 1110, 100 / 1110, 10 / 1110])
    assert MT.sampling_weights([1000, 100, 10], cap=5000) == MT.sampling_weights([1000, 100, 10])
    assert MT.sampling_weights([1000, 100, 10], "uniform", cap=500) == pytest.approx([1 / 3] * 3)
    with pytest.raises(XLTError, match="unknown multitask_sampling 'temperature'; valid: proportional, uniform"):
        MT.sampling_weights([1, 2], "temperature")


def test_steps_per_epoch_by_hand():
    # jiant's steps for an epoch: the sum over tasks of ceil(min(n, cap) / examples per step)
    assert MT.steps_per_epoch([1000, 100, 10], 32) == 32 + 4 + 1
    assert MT.steps_per_epoch([1000, 100, 10], 32, cap=500) == 16 + 4 + 1
    assert MT.steps_per_epoch([1000, 100, 10], 64, cap=500) == 8 + 2 + 1
    # micro-batches cut by a token budget: ceil(m * min(n, cap) / n / accumulation): 40 * 500/1000 / 2, 7 / 2
    assert MT.steps_per_epoch([1000, 100], 0, cap=500, micro_batches=[40, 7], accumulation=2) == 10 + 4


def _schedule(sizes, rule="proportional", cap=None, seed=0, batch_size=1, accumulation=1):
    lengths = [[5 + (7 * i + t) % 20 for i in range(n)] for t, n in enumerate(sizes)]
    return MT.TaskSchedule(lengths, MT.sampling_weights(sizes, rule, cap), batch_size=batch_size,
                           accumulation=accumulation, seed=seed, cap=cap)


def test_steps_are_drawn_in_proportion_to_the_capped_sizes():
    """Sizes 1000/100/10 with cap 500: 610 steps an epoch at one example a step, drawn 500/610, 100/610, 10/610
    (within 4 standard errors over 10 epochs); uniform: a third each."""
    s = _schedule([1000, 100, 10], cap=500)
    assert s.steps == 610
    n = 10 * s.steps
    counts = Counter(t for e in range(10) for t in s.tasks(e))
    for t, p in enumerate([500 / 610, 100 / 610, 10 / 610]):
        assert abs(counts[t] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (t, counts[t] / n, p)
    u = _schedule([1000, 100, 10], rule="uniform")
    n = 3 * u.steps
    counts = Counter(t for e in range(3) for t in u.tasks(e))
    for t in range(3):
        assert abs(counts[t] / n - 1 / 3) < 4 * math.sqrt(2 / 9 / n)


def test_the_schedule_is_a_pure_function_of_seed_and_epoch():
    """Each optimizer step's micro-batches hold one task; each task's stream passes over all of its features before
    it repeats one; a fresh schedule asked for a later epoch first (a resumed run) gives what the first computed in
    order; another seed gives another plan."""
    sizes = [50, 20, 7]
    a = _schedule(sizes, seed=3, batch_size=4, accumulation=2)
    assert a.steps == 7 + 3 + 1  # ceil(n / 8) each
    plans = [a(e) for e in range(4)]
    b = _schedule(sizes, seed=3, batch_size=4, accumulation=2)
    assert b(3) == plans[3] and b(1) == plans[1]
    assert _schedule(sizes, seed=4, batch_size=4, accumulation=2)(0) != plans[0]
    task_of = [t for t, n in enumerate(sizes) for _ in range(n)]
    for plan in plans:
        assert len(plan) == 2 * a.steps
        for s in range(0, len(plan), 2):
            assert len({task_of[i] for batch in plan[s:s + 2] for i in batch}) == 1
    stream = [i for plan in plans for batch in plan for i in batch if task_of[i] == 2]
    assert len(stream) >= 14 and sorted(stream[:7]) == sorted(stream[7:14]) == list(range(70, 77))


# ---------------------------------------------------------------------------------------------- names and ids

DEFAULTS = dict(C.notebook_defaults("01_intermediate"))


@pytest.mark.parametrize("name, match", [
    ("synth_mnli+nope", (r"unknown task of multi-task intermediate task 'synth_mnli\+nope' in world 'synth': "
                         r"'nope'; valid: synth_hellaswag, synth_mnli, .*synth_sst2$")),
    ("synth_mnli+synth_tatoeba", r"'synth_tatoeba'; valid: synth_hellaswag"),  # retrieval: nothing to train
    ("synth_mnli++synth_squad", r"'synth_mnli\+\+synth_squad' has an empty part; join two or more task names"),
    ("synth_mnli+synth_mnli", r"names synth_mnli twice"),
    ("synth_mnli + synth_squad", r"no spaces around '\+'"),
])
def test_bad_multitask_names_are_one_line_errors(name, match):
    with pytest.raises(XLTError, match=match) as e:
        C.from_params("intermediate", {**DEFAULTS, "intermediate_task": name})
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("over, match", [
    ({"multitask_cap": 500}, (r"apply to a multi-task intermediate_task .* synth_mnli is one task: leave them "
                              r"'proportional' and None")),
    ({"intermediate_task": "synth_mnli+synth_squad", "multitask_sampling": "temperature"},
     r"unknown multitask_sampling 'temperature'; valid: proportional, uniform"),
    ({"intermediate_task": "synth_mnli+synth_squad", "multitask_cap": 0}, r"multitask_cap must be ≥ 1 or None"),
    ({"intermediate_task": "synth_mnli+synth_squad", "packing": True}, r"packing is for one-task runs"),
    ({"intermediate_task": "synth_mnli+synth_squad", "train_language": "sw1"}, r"train_language is for one-task"),
])
def test_bad_multitask_parameters_are_one_line_errors(over, match):
    with pytest.raises(XLTError, match=match) as e:
        C.from_params("intermediate", {**DEFAULTS, **over})
    assert "\n" not in str(e.value)


def test_single_task_ids_stay_and_multitask_ids_are_readable():
    """The multi-task parameters are id-neutral at their defaults: 01_intermediate's defaults from before they
    existed keep their run id; a multi-task name reads in the id, and its rule and cap enter the hash."""
    before = {"world": "synth", "model": "synth-tiny", "seed": 13, "upstream": None, "intermediate_task": "synth_mnli",
              "train_language": None, "learning_rate": 0.001, "per_device_train_batch_size": 16,
              "gradient_accumulation_steps": 1, "num_train_epochs": 1.0, "max_steps": 8, "warmup_ratio": 0.1,
              "weight_decay": 0.01, "max_train_samples": 64, "max_dev_samples": 32, "max_seq_length": 64,
              "eval_every": None, "early_stopping_patience": None, "checkpoint_every": 4,
              "freeze_word_embeddings": False, "classifier_pooling": "cls", "gradient_checkpointing": False,
              "num_processes": 1, "packing": False, "max_tokens_per_batch": None}

    def rid(p):
        return runs.run_id("intermediate", p, runs.lineage_of("intermediate", p, None))

    now = {**before, "multitask_sampling": "proportional", "multitask_cap": None}
    assert rid(before) == rid(now) == "intermediate/synth-tiny__synth_mnli__s13-6da5f023b0"
    multi = {**now, "intermediate_task": "synth_mnli+synth_squad"}
    assert rid(multi) == "intermediate/synth-tiny__synth_mnli+synth_squad__s13-ce16b58cf3"
    assert C.RUN_ID.match(rid(multi))
    assert len({rid(multi), rid({**multi, "multitask_cap": 500}), rid({**multi, "multitask_sampling": "uniform"})}) == 3
    assert runs.lineage_of("intermediate", multi, None)["intermediate_task"] == "synth_mnli+synth_squad"


def test_a_study_names_a_multitask_arm(tmp_path):
    from xlt_utils.expand import expand

    def study(arm):
        path = tmp_path / "s.yaml"
        path.write_text(f"study: s\nprofiles:\n  smoke:\n    world: synth\n    models: [synth-tiny]\n    seeds: [13]\n"
                        f"    pretrain: false\n    intermediate_tasks: [none, {arm}]\n    target_tasks: [synth_xnli]\n"
                        f"    per_task:\n      {arm}: {{intermediate: {{multitask_sampling: uniform}}}}\n")
        return path

    cells = expand(study("synth_mnli+synth_squad"), "smoke").cells
    inter = next(c for c in cells if c.phase == "intermediate")
    assert inter.params["multitask_sampling"] == "uniform"
    assert inter.run_id.startswith("intermediate/synth-tiny__synth_mnli+synth_squad__s13-")
    assert any(c.phase == "target" and c.upstream is inter for c in cells)
    with pytest.raises(XLTError, match=r"unknown task of multi-task intermediate task 'synth_mnli\+nope' in "
                                       r".*s.yaml, profile smoke: 'nope'; valid: synth_hellaswag"):
        expand(study("synth_mnli+nope"), "smoke")


def test_display_names_are_short_and_never_merge_two_arms():
    assert MT.display_name("synth_mnli") == "synth_mnli"
    assert MT.display_name("synth_mnli+synth_squad") == "mnli+squad"
    assert MT.display_name("anli_plus+mnli+qqp+sst2+squad_v1+hellaswag+commonsenseqa+cosmosqa") == \
        "8 tasks (anli_plus+...)"
    names = MT.display_names(["none", "a_x+a_y+a_z1234567890123456789012", "a_x+a_y+a_w1234567890123456789012"])
    assert names["none"] == "none" and len(set(names.values())) == 3


# ---------------------------------------------------------------------------------------------- a tiny run


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tiny encoder gains nothing from a second thread, and where other work holds the cores (a shared machine)
    two threads' waits made these runs ~30x slower (9.6 s against 0.26 s for the 4-step run under load 4-6)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The 01_intermediate steps on synth_sst2 (classification) + synth_hellaswag (multiple choice, whose head
    reads the pooler the other's encoder lacks): 4 steps of 4 examples, dev every 2."""
    from xlt_utils import paths, phases

    mp = pytest.MonkeyPatch()
    mp.setattr(paths, "RUNS", tmp_path_factory.mktemp("runs"))
    cfg = C.from_params("intermediate", {**DEFAULTS, "intermediate_task": "synth_sst2+synth_hellaswag", "max_steps": 4,
                                         "eval_every": 2, "checkpoint_every": None, "max_train_samples": 16,
                                         "max_dev_samples": 8, "per_device_train_batch_size": 4,
                                         "max_seq_length": 32})
    run = phases.start(cfg)
    try:
        data = phases.load_training_data(run)
        model = phases.build_model(run, data)
        result = phases.train_model(run, model, data)
        metrics = phases.evaluate_dev(run, model, data)
        phases.save_encoder(run, model, data)
        phases.finish(run)
    finally:
        if run.lock is not None:
            run.lock.__exit__(None, None, None)
        mp.undo()
    return run, data, model, result, metrics


def test_a_two_format_run_selects_on_the_mean_dev_score_and_saves_an_encoder_without_heads(tiny_run):
    from xlt_utils.models import build_model
    from xlt_utils.tasks import get_task

    run, _, model, result, metrics = tiny_run
    mt = run.resolved["multitask"]
    assert mt["tasks"] == ["synth_sst2", "synth_hellaswag"] and mt["n_train_features"] == {"synth_sst2": 16,
                                                                                          "synth_hellaswag": 16}
    assert mt["weights"] == {"synth_sst2": 0.5, "synth_hellaswag": 0.5}
    assert mt["steps_per_epoch"] == 4 + 4  # ceil(16 / 4) each
    assert {(r.task, r.metric) for r in metrics.itertuples()} == {("synth_sst2", "accuracy"),
                                                                  ("synth_hellaswag", "accuracy")}
    assert set(metrics["split"]) == {"dev"} and set(metrics["lang"]) == {"en"}
    # the loop selected on the mean of the two dev scores, recorded per task at each evaluation
    evals = [h for h in result.history if "eval_score" in h]
    assert [h["step"] for h in evals] == [2, 4] and mt["dev_curve"] == evals
    for h in evals:
        assert set(h["task_scores"]) == {"synth_sst2", "synth_hellaswag"}
        assert h["eval_score"] == pytest.approx(sum(h["task_scores"].values()) / 2)
    assert mt["dev_mean"] == pytest.approx(sum(mt["dev_scores"].values()) / 2, abs=1e-3)
    assert mt["dev_mean"] == pytest.approx(result.best_score, abs=1e-3)  # the restored checkpoint is the best one
    # one encoder: the multiple-choice head's (with its pooler), shared by both heads; saved without either head
    assert model.head("synth_sst2").roberta is model.head("synth_hellaswag").roberta is model.encoder
    saved = load_file(str(run.dir / "encoder" / "model.safetensors"))
    assert "pooler.dense.weight" in saved and not any("classifier" in k or "heads" in k for k in saved)
    assert torch.equal(saved["embeddings.word_embeddings.weight"], model.encoder.embeddings.word_embeddings.weight)
    assert not (run.dir / "train").exists() and runs.is_done(run.dir)
    fresh = build_model(get_task("synth_xnli"), run.dir / "encoder")  # the target phase's fresh head on it
    assert fresh.classifier is not None


def test_a_multitask_run_resumes_exactly_and_checkpoints_its_encoder_once(tiny_run, tmp_path):
    from xlt_utils.train import TrainConfig, train

    data = tiny_run[1]
    cfg = TrainConfig(learning_rate=1e-3, max_steps=4, per_device_train_batch_size=2, warmup_ratio=0.0, seed=5,
                      checkpoint_every=2, log_every=1, progress=False)

    def fit(out, crash_at=None):
        model = MT.build_model(data, seed=5)

        def stop(step, loss):
            if step == crash_at:
                raise KeyboardInterrupt

        return model, train(model, data.features, data.pipeline.collate, cfg, output_dir=out,
                            batch_plan=data.schedule(cfg), on_step=stop)

    straight, r1 = fit(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "b", crash_at=3)
    ckpt = load_file(str(tmp_path / "b" / "checkpoint" / "model.safetensors"))
    assert any(k.startswith("encoder.") for k in ckpt) and not any(".roberta." in k for k in ckpt)
    resumed, r2 = fit(tmp_path / "b")
    assert (r2.resumed_from_step, r2.global_step, r1.global_step) == (2, 4, 4)
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
