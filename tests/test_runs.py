"""Run directories and phase configs: stable ids, lineage, validation of parameters, DONE and locking."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xlt_utils import config as C
from xlt_utils import runs
from xlt_utils.errors import XLTError


def _params(phase: str, **over):
    p = dict(C.notebook_defaults(C.PHASE_NOTEBOOKS[phase]))
    p.update(over)
    return C.from_params(phase, p).to_params()


def test_notebook_defaults_validate_for_every_phase():
    for phase in C.PHASES:
        cfg = C.from_params(phase, C.notebook_defaults(C.PHASE_NOTEBOOKS[phase]))
        assert cfg.to_params().keys() == set(C.field_names(phase))


def test_run_id_is_stable_and_pins_parameters_and_upstream():
    p = _params("target")
    lin = runs.lineage_of("target", p, None)
    rid = runs.run_id("target", p, lin)
    assert rid == runs.run_id("target", dict(reversed(list(p.items()))), lin), "key order must not matter"
    assert rid.startswith("target/synth-tiny__base__synth_xnli__s13-")
    # the same parameters in another process give the same id (no hash randomisation, no object ids)
    code = ("from xlt_utils import runs, config as C; import json, sys; p = json.loads(sys.argv[1]); "
            "print(runs.run_id('target', p, runs.lineage_of('target', p, None)))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(p)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == rid
    assert runs.run_id("target", {**p, "seed": 14}, lin) != rid
    up = "intermediate/synth-tiny__synth_mnli__s13-0123456789"
    p_up = _params("target", upstream=up)
    lin_up = runs.lineage_of("target", p_up, {"intermediate_task": "synth_mnli", "seed": 13, "runs": {}})
    rid_up = runs.run_id("target", p_up, lin_up)
    assert rid_up.startswith("target/synth-tiny__synth_mnli__synth_xnli__s13-") and rid_up != rid
    assert lin_up["runs"] == {"intermediate": up}
    up2 = up.replace("0123456789", "9876543210")
    assert runs.run_id("target", _params("target", upstream=up2), lin_up) != rid_up, "upstream id is hashed"


def test_int_given_for_float_hashes_like_the_float():
    a = _params("target", learning_rate=1)
    b = _params("target", learning_rate=1.0)
    assert a == b and runs.params_hash("target", a) == runs.params_hash("target", b)


@pytest.mark.parametrize("over, match", [
    ({"lr": 0.1}, r"unknown parameter 'lr' for phase target; valid: .*learning_rate"),
    ({"max_steps": "8"}, r"parameter 'max_steps' must be int \| None, got '8' \(str\)"),
    ({"seed": 1.5}, r"parameter 'seed' must be int, got 1.5"),
    ({"seed": True}, r"parameter 'seed' must be int"),
    ({"target_task": "xnlii"}, r"unknown target task in world 'synth': 'xnlii'; valid: .*synth_xnli"),
    ({"target_task": "synth_tatoeba"}, r"valid: .*synth_xnli"),  # not trainable: not a valid 02 target
    ({"model": "bert"}, r"unknown model for world 'synth': 'bert'; valid: synth-deep, .*synth-tiny"),
    ({"world": "mars"}, r"unknown world 'mars'; valid:"),
    ({"upstream": "somewhere"}, r"upstream must be None or a run id"),
    ({"learning_rate": -1.0}, r"learning_rate must be > 0"),
])
def test_bad_parameters_are_one_line_errors(over, match):
    p = dict(C.notebook_defaults("02_target"))
    p.update(over)
    with pytest.raises(XLTError, match=match) as e:
        C.from_params("target", p)
    assert "\n" not in str(e.value)


def test_missing_parameter_is_an_error():
    p = dict(C.notebook_defaults("02_target"))
    del p["seed"]
    with pytest.raises(XLTError, match=r"missing parameter\(s\) for phase target: seed"):
        C.from_params("target", p)


def test_eval_of_a_classification_task_needs_a_target_run():
    p = dict(C.notebook_defaults("03_zero_shot_eval"), target_task="synth_xnli")
    with pytest.raises(XLTError, match="needs a fine-tuned model"):
        C.from_params("eval", p)


def test_namespace_filter_keeps_parameters_and_injected_names_only():
    import types

    ns = {"In": [], "Out": {}, "get_ipython": None, "_": 1, "_i1": "x", "phases": types, "seed": 13, "typo": 1}
    assert C.parameters_from_namespace(ns) == {"seed": 13, "typo": 1}


def test_parameters_cell_must_be_literals():
    assert C.parse_parameters('a: int = 1  # c\nb: "Optional[str]" = None\nc = [1, 2]') == {"a": 1, "b": None,
                                                                                           "c": [1, 2]}
    with pytest.raises(XLTError, match="not a literal"):
        C.parse_parameters("a = 1 + len('x')")
    with pytest.raises(XLTError, match="is not 'name: type = literal'"):
        C.parse_parameters("import os")


def test_done_marker_is_atomic_and_lock_excludes(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    assert not runs.is_done(d)
    runs.mark_done(d)
    assert runs.is_done(d) and not (d / "DONE.tmp").exists()
    holder = runs.acquire_lock(d)
    code = ("import sys; from xlt_utils import runs; from pathlib import Path\n"
            "try:\n    runs.acquire_lock(Path(sys.argv[1]), timeout=1)\nexcept Exception as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True, text=True, timeout=60, check=False)
    assert "is locked by another process" in out.stdout
    holder.__exit__(None, None, None)
    out = subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.strip() == ""


@pytest.mark.slow
def test_interrupted_training_cell_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A target cell interrupted mid-training (after a checkpoint) and started again resumes from the checkpoint and
    ends with the same metrics and weights as an uninterrupted run (the grid-level kill test rarely lands there)."""
    from safetensors.torch import load_file

    import xlt_utils.train as T
    from xlt_utils import paths, phases

    params = dict(C.notebook_defaults("02_target"), max_steps=12, checkpoint_every=3, eval_every=4)
    cfg = C.from_params("target", params)
    real_train = T.train

    def crashing(*args, **kw):
        def on_step(step, loss):
            if step == 7:
                raise KeyboardInterrupt("simulated kill")

        return real_train(*args, **kw, on_step=on_step)

    def cell(root, crash=False):
        monkeypatch.setattr(paths, "RUNS", root)
        run = phases.start(cfg)
        try:
            data = phases.load_training_data(run)
            model = phases.build_model(run, data)
            monkeypatch.setattr(T, "train", crashing if crash else real_train)
            phases.train_model(run, model, data)
            phases.evaluate_dev(run, model, data)
            phases.save_model(run, model, data)
            phases.finish(run)
        finally:
            if run.lock is not None:  # what the death of the kernel would do
                run.lock.__exit__(None, None, None)
        return run

    a = cell(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        cell(tmp_path / "b", crash=True)
    b_dir = tmp_path / "b" / a.id
    assert not runs.is_done(b_dir) and (b_dir / "train" / "checkpoint" / "trainer_state.json").exists()
    b = cell(tmp_path / "b")
    assert b.id == a.id and b.resolved["resumed_from_step"] == 6 and a.resolved["resumed_from_step"] == 0
    assert json.loads((a.dir / runs.PARAMS).read_text())["protocol"] == runs.PROTOCOL["target"]
    assert (a.dir / "metrics.csv").read_bytes() == (b.dir / "metrics.csv").read_bytes()
    wa, wb = load_file(str(a.dir / "model" / "model.safetensors")), load_file(str(b.dir / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


def test_interrupted_in_language_baseline_resumes_per_language_and_records_which(tmp_path, monkeypatch):
    """An in-language baseline trains one model per language and keeps each finished language as a part; a kill
    in a later language resumes with the parts, gives the same metrics, and says which languages an earlier
    attempt trained (so that its timings are not taken for the cell's cost by the grid's estimate)."""
    from xlt_utils import estimate, paths, phases

    params = dict(C.notebook_defaults("04_baselines"), kind="in_language", languages=["en", "sw3"], max_steps=4,
                  max_train_samples=32, max_eval_samples=16)
    cfg = C.from_params("baselines", params)
    real_train = phases._train

    def crash_in_sw3(run, model, data, out, dev_lang=None):
        if dev_lang == "sw3":
            raise KeyboardInterrupt("simulated kill")
        return real_train(run, model, data, out, dev_lang=dev_lang)

    def cell(root, crash=False):
        monkeypatch.setattr(paths, "RUNS", root)
        monkeypatch.setattr(phases, "_train", crash_in_sw3 if crash else real_train)
        run = phases.start(cfg)
        try:
            phases.run_baseline(run)
            phases.finish(run)
        finally:
            if run.lock is not None:
                run.lock.__exit__(None, None, None)
        return run

    a = cell(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        cell(tmp_path / "b", crash=True)
    assert sorted(p.name for p in (tmp_path / "b" / a.id / "parts").iterdir()) == ["en.csv", "en.json"]
    b = cell(tmp_path / "b")
    assert (a.dir / "metrics.csv").read_bytes() == (b.dir / "metrics.csv").read_bytes()
    assert a.resolved["resumed_languages"] == [] and b.resolved["resumed_languages"] == ["en"]
    assert not estimate.resumed(a.resolved) and estimate.resumed(b.resolved)
    pa, pb = a.resolved["per_language"], b.resolved["per_language"]
    assert [pa[lang]["resumed"] for lang in ("en", "sw3")] == [False, False]
    assert [pb[lang]["resumed"] for lang in ("en", "sw3")] == [True, False]
    for lang in ("en", "sw3"):  # the part's record survives the kill: same data and steps as the uninterrupted run
        for key in ("n_train_records", "n_train_features", "global_step", "best_step"):
            assert pa[lang][key] == pb[lang][key], (lang, key)
    assert pa["en"]["n_train_records"] == 32 and pa["en"]["global_step"] == 4
    assert "n_train_records" not in a.resolved and "train_languages" not in a.resolved  # not the last language's
    saved = json.loads((b.dir / runs.PARAMS).read_text())["resolved"]
    assert saved["resumed_languages"] == ["en"] and saved["per_language"]["sw3"]["resumed"] is False


def test_final_checkpoint_tasks_do_no_model_selection():
    """TyDiQA reports English dev, so it must not select a checkpoint on it (options.model_selection)."""
    from types import SimpleNamespace

    from xlt_utils.phases import selection_fn
    from xlt_utils.tasks import get_task

    run = SimpleNamespace(config=SimpleNamespace(max_dev_samples=8, max_seq_length=32))
    assert selection_fn(run, SimpleNamespace(task=get_task("tydiqa"), tokenizer=None, dev_language="en")) is None
    assert callable(selection_fn(run, SimpleNamespace(task=get_task("xquad"), tokenizer=None, dev_language="en")))


def test_train_model_reports_a_run_without_dev_selection(monkeypatch, capsys):
    """A final-checkpoint task (TyDiQA) has no best dev score: the phase says so instead of failing to format it."""
    from pathlib import Path
    from types import SimpleNamespace

    from xlt_utils import phases

    result = SimpleNamespace(global_step=5, best_step=None, best_score=None, resumed_from_step=0,
                             stopped_early=False, train_seconds=1.0, train_examples=80,
                             train_tokens=960, padding_fraction=0.25)
    monkeypatch.setattr(phases, "_train", lambda run, model, data, out: result)
    run = SimpleNamespace(resolved={}, timings={}, dir=Path("/nonexistent"))
    assert phases.train_model(run, None, None) is result
    assert "final checkpoint kept: no dev selection" in capsys.readouterr().out


def test_protocol_version_1_keeps_the_ids_of_runs_made_before_versions_existed():
    # Pinned: the id this config had before PROTOCOL existed (computed with the code of fa2795c).
    p = _params("target")
    rid = runs.run_id("target", p, runs.lineage_of("target", p, None))
    assert rid == "target/synth-tiny__base__synth_xnli__s13-f9ef5fe20c"
    assert runs.params_hash("target", p, protocol=1) == "f9ef5fe20c"
    assert runs.params_hash("target", p, protocol=2) != "f9ef5fe20c"
    assert runs.params_hash("target", p, protocol=2) != runs.params_hash("target", p, protocol=3)


def test_every_phase_has_a_protocol_version_and_every_bump_says_what_changed():
    assert set(runs.PROTOCOL) == set(C.PHASES)
    for phase, version in runs.PROTOCOL.items():
        assert isinstance(version, int) and version >= 1
        assert set(runs.PROTOCOL_CHANGES.get(phase, {})) == set(range(2, version + 1)), phase
    with pytest.raises(XLTError, match=r"unknown phase 'tune'; choose from pretrain, "):
        runs.protocol_version("tune")


def test_bumping_a_phase_protocol_renews_its_runs_and_everything_downstream(monkeypatch):
    from xlt_utils import grid

    before = {c.run_id for c in grid.expand("paper", "smoke").cells}
    monkeypatch.setitem(runs.PROTOCOL, "intermediate", 2)
    after = {c.run_id for c in grid.expand("paper", "smoke").cells}
    kept, renewed = before & after, before - after
    phase = lambda rid: rid.split("/")[0]
    assert {phase(r) for r in kept} >= {"pretrain"} and "intermediate" not in {phase(r) for r in kept}
    # targets and evaluations below an intermediate run are renewed; those of the no-intermediate arm are kept
    assert {phase(r) for r in renewed} == {"intermediate", "target", "eval"}
    assert all("__none__" not in r and "__base__" not in r for r in renewed)
    assert any(phase(r) == "target" for r in kept), "the no-intermediate arm does not depend on the bump"


def test_cpu_description_names_the_model_and_the_kernel_relevant_extensions():
    """env.json's processor: platform.processor() is empty on Linux; the CPU model and the vector extensions that
    change float and int8 kernels (two CPUs gave different synth-small and int8 results) come from /proc/cpuinfo."""
    from xlt_utils.runs import cpu_description

    info = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse2 avx avx2 avx512f amx_tile\n"
            "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse2 avx avx2 avx512f amx_tile\n")
    assert cpu_description(info) == "Intel(R) Xeon(R) Processor [avx2 avx512f amx_tile]"
    assert cpu_description("model name\t: Old CPU\nflags\t: fpu sse2\n") == "Old CPU"


def test_a_parameter_added_later_keeps_old_ids_at_its_neutral_default():
    p = _params("target")
    assert p["classifier_pooling"] == "cls" == runs.ID_NEUTRAL_DEFAULTS["classifier_pooling"]
    without = {k: v for k, v in p.items() if k != "classifier_pooling"}
    assert runs.params_hash("target", p) == runs.params_hash("target", without) == "f9ef5fe20c"
    assert runs.params_hash("target", {**p, "classifier_pooling": "mean"}) != "f9ef5fe20c"
    with pytest.raises(XLTError, match="unknown classifier_pooling 'max'; valid: cls, mean"):
        C.from_params("target", {**p, "classifier_pooling": "max"})


def test_packing_and_the_token_budget_are_run_parameters_that_keep_old_ids():
    """Off by default and out of the id at their defaults (the runs before them keep their ids); on, they enter
    it (a packed run draws other dropout masks); packing refuses, before any work, a format it cannot pack."""
    p = _params("target")
    old = {k: v for k, v in p.items() if k not in ("packing", "max_tokens_per_batch")}
    assert (p["packing"], p["max_tokens_per_batch"]) == (False, None)
    assert runs.params_hash("target", p) == runs.params_hash("target", old) == "f9ef5fe20c"
    assert runs.params_hash("target", {**p, "packing": True}) != "f9ef5fe20c"
    assert runs.params_hash("target", {**p, "max_tokens_per_batch": 4096}) != "f9ef5fe20c"
    assert C.from_params("target", {**p, "packing": True, "max_tokens_per_batch": 4096}).packing
    with pytest.raises(XLTError, match="packing .* supports the formats classification, pair_classification, "
                                       "tagging; synth_xquad is span_qa: set packing to False"):
        C.from_params("target", {**p, "packing": True, "target_task": "synth_xquad"})
    with pytest.raises(XLTError, match="max_tokens_per_batch"):
        C.from_params("target", {**p, "max_tokens_per_batch": 0})


def test_the_layer_budget_and_time_alone_keep_old_ids_in_their_own_phases():
    """target/baselines num_layers (fine-tune at n layers) and eval time_alone are id-neutral at their defaults in
    their phases (pinned: f9ef5fe20c and 573b5a1e98, the ids of the notebooks' defaults before them); eval's own
    num_layers, None included, has always entered eval ids and still does. Bad values are one line."""
    p = _params("target")
    assert p["num_layers"] is None
    old = {k: v for k, v in p.items() if k != "num_layers"}
    assert runs.params_hash("target", p) == runs.params_hash("target", old) == "f9ef5fe20c"
    assert runs.params_hash("target", {**p, "num_layers": 6}) != "f9ef5fe20c"
    b = _params("baselines")
    assert runs.params_hash("baselines", b) == runs.params_hash("baselines", {k: v for k, v in b.items()
                                                                              if k != "num_layers"})
    e = _params("eval")
    assert e["time_alone"] is False
    assert runs.params_hash("eval", e) == runs.params_hash("eval", {k: v for k, v in e.items()
                                                                    if k != "time_alone"}) == "573b5a1e98"
    assert runs.params_hash("eval", {k: v for k, v in e.items() if k != "num_layers"}) != "573b5a1e98"
    with pytest.raises(XLTError, match=r"parameter num_layers must be > 0 or None, got 0"):
        C.from_params("target", {**p, "num_layers": 0})
    with pytest.raises(XLTError, match=r"baseline kind 'majority' uses no encoder; set num_layers to None"):
        C.from_params("baselines", {**b, "num_layers": 2})
    with pytest.raises(XLTError, match=r"time_alone .* set efficiency_batch_sizes, or time_alone False"):
        C.from_params("eval", {**e, "time_alone": True})
    assert C.from_params("eval", {**e, "time_alone": True, "efficiency_batch_sizes": [1]}).time_alone
    # time_reference came later still: neutral at False, and it needs timings and a target upstream
    assert e["time_reference"] is False
    assert runs.params_hash("eval", e) == runs.params_hash("eval", {k: v for k, v in e.items()
                                                                    if k != "time_reference"})
    timed = {**e, "efficiency_batch_sizes": [1], "upstream": "target/x-0123456789"}
    assert runs.params_hash("eval", {**timed, "time_reference": True}) != runs.params_hash("eval", timed)
    with pytest.raises(XLTError, match=r"^eval: time_reference .* set efficiency_batch_sizes, or time_reference False$"):
        C.from_params("eval", {**e, "time_reference": True})
    with pytest.raises(XLTError, match=r"^eval: time_reference needs a target upstream .* got upstream None; set "
                                       r"time_reference False$"):
        C.from_params("eval", {**e, "time_reference": True, "efficiency_batch_sizes": [1], "upstream": None})
