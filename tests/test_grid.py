"""The study grid: expansion, dependencies, shared cells, bad input (one line, valid choices, exit non-zero),
and a grid whose upstream cell fails (descendants blocked, the rest runs, finished runs untouched)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xlt_utils import estimate as E
from xlt_utils import grid as G
from xlt_utils import paths
from xlt_utils.__main__ import main
from xlt_utils.cells import Cell, CellResult
from xlt_utils.errors import XLTError
from xlt_utils.execute import execute, idle_fraction, raise_on_failure
from xlt_utils.expand import _defaults, model_depth

ROOT = Path(__file__).resolve().parent.parent


def test_smoke_grid_covers_every_phase_in_dependency_order():
    g = G.expand("paper", "smoke")
    phases = {c.phase for c in g.cells}
    assert phases == {"pretrain", "intermediate", "target", "eval", "baselines"}
    seen = set()
    for c in g.cells:  # topological: every upstream comes first
        assert c.upstream is None or c.upstream.run_id in seen, c.run_id
        seen.add(c.run_id)
        assert c.params.get("upstream", None) == (c.upstream.run_id if c.upstream else None)
    assert len({c.run_id for c in g.cells}) == len(g.cells)
    # the no-intermediate branch fine-tunes the pretrained encoder; retrieval evaluates encoders directly
    tgt = [c for c in g.cells if c.phase == "target"]
    assert {c.upstream.phase for c in tgt} == {"pretrain", "intermediate"}
    ret = [c for c in g.cells if c.phase == "eval" and c.params["target_task"] == "synth_tatoeba"]
    assert {c.upstream.phase for c in ret} == {"pretrain", "intermediate"}


def test_expansion_is_deterministic_and_profiles_extend():
    a = [c.run_id for c in G.expand("paper", "embedded").cells]
    assert a == [c.run_id for c in G.expand("paper", "embedded").cells]
    full = G.expand("paper", "embedded-full")
    assert {c.params["model"] for c in full.cells} == {"synth-small", "multilingual-e5-small"}
    seeds = {(c.params["world"], c.params["seed"]) for c in full.cells if c.phase == "intermediate"}
    assert {s for w, s in seeds if w == "synth"} == {13, 14, 15}  # five seeds on the real-data arms (issue #36)
    assert {s for w, s in seeds if w == "offline-real"} == {13, 14, 15, 16, 17}


def test_embedded_spans_both_worlds_as_a_union_of_profiles():
    """`embedded` is `include: [embedded-synth, embedded-synth-aux, embedded-real]`: exactly the union of its parts'
    cells, a cell the parts share (the aux arm's `none`) once."""
    emb = G.expand("paper", "embedded")
    parts = [G.expand("paper", p) for p in ("embedded-synth", "embedded-synth-aux", "embedded-real")]
    assert [c.run_id for c in emb.cells] == list(dict.fromkeys(c.run_id for g in parts for c in g.cells))
    assert emb.profile == "embedded" and {c.params["world"] for c in emb.cells} == {"synth", "offline-real"}
    # the real world's intermediate tasks are real English data, trained into e5
    inter = [c for c in parts[2].cells if c.phase == "intermediate"]
    assert {(c.params["world"], c.params["intermediate_task"]) for c in inter} == {
        ("offline-real", "rt_sentiment"), ("offline-real", "brown_pos")}
    assert all(c.params["freeze_word_embeddings"] for c in inter)


def test_linked_sweep_parameters_move_together(tmp_path):
    """``<phase>.<a>+<b>: [[a1, b1], [a2, b2]]`` is one axis of two points (not four); a child's axis replaces an
    inherited one that sets any of its parameters; a parameter in two axes, or a point of the wrong length, is a
    one-line error."""
    study = tmp_path / "linked.yaml"
    base = """
profiles:
  p: {world: synth, models: [synth-tiny], seeds: [1], intermediate_tasks: [synth_mnli], target_tasks: [synth_xnli],
      params: {pretrain: {steps: 2}},
      sweep: {intermediate.per_device_train_batch_size+eval_every: [[8, 20], [32, 5]], target.learning_rate: [0.1, 0.2]}}
  q: {extends: p, sweep: {intermediate.per_device_train_batch_size: [16]}}
"""
    study.write_text(base)

    def inter(profile):
        cells = [c for c in G.expand(study, profile).cells if c.phase == "intermediate"]
        return sorted((c.params["per_device_train_batch_size"], c.params["eval_every"]) for c in cells)

    assert inter("p") == [(8, 20), (32, 5)]
    targets = [c for c in G.expand(study, "p").cells if c.phase == "target"]
    assert len(targets) == 2 * 2  # the linked axis (2 points) times the target's plain axis (2)
    default_eval_every = dict(_defaults("intermediate"))["eval_every"]
    assert inter("q") == [(16, default_eval_every)]  # the inherited linked axis is replaced, not multiplied
    for extra, msg in (
            ("  r: {extends: p, sweep: {intermediate.per_device_train_batch_size+eval_every: [[8, 20, 1]]}}\n",
             ("links 2 parameters, so each value must be a list of 2 (per_device_train_batch_size, eval_every); "
              "got [8, 20, 1]")),
            (("  r: {world: synth, models: [synth-tiny], seeds: [1], target_tasks: [synth_xnli], sweep: "
              "{intermediate.eval_every: [1], intermediate.eval_every+max_steps: [[1, 2]]}}\n"),
             "sweep sets intermediate.eval_every in two axes"),
            ("  r: {extends: p, sweep: {intermediate.per_device_train_batch_size+: [[8, 1]]}}\n",
             "must be '<phase>.<parameter>' (or '<phase>.<a>+<b>' for linked parameters)")):
        study.write_text(base + extra)
        with pytest.raises(XLTError, match=re.escape(msg)):
            G.expand(study, "r")


def test_include_profiles_are_validated(tmp_path):
    study = tmp_path / "inc.yaml"
    base = """
profiles:
  a: {world: synth, models: [synth-tiny], seeds: [1], target_tasks: [synth_tatoeba],
      params: {pretrain: {steps: 2}}}
  b: {world: synth, models: [synth-tiny], seeds: [1, 2], target_tasks: [synth_tatoeba],
      params: {pretrain: {steps: 2}}}
"""
    study.write_text(base + "  u: {include: [a, b]}\n")
    u = G.expand(study, "u")
    a, b = G.expand(study, "a"), G.expand(study, "b")
    assert len(u.cells) == len({c.run_id for c in a.cells + b.cells}) < len(a.cells) + len(b.cells)
    for extra, msg in (("  u: {include: [a, nope]}\n", "'nope' is not a profile; valid: a, b"),
                       ("  u: {include: [a, u]}\n", "'u' is circular"),
                       ("  u: {include: [a], seeds: [3]}\n", "takes only 'description'"),
                       ("  u: {include: []}\n", "non-empty list"),
                       ("  u: {include: [a]}\n  v: {extends: u}\n", "extend one of its parts: a")):
        study.write_text(base + extra)
        with pytest.raises(XLTError, match=re.escape(msg)):
            G.expand(study, "v" if "v:" in extra else "u")


def test_portable_intermediate_tasks():
    """English synth intermediate tasks train encoders of other worlds; multilingual or non-English ones do not."""
    from xlt_utils.tasks import intermediate_tasks_for

    real = {t.name for t in intermediate_tasks_for("offline-real")}
    assert {"synth_mnli", "synth_squad", "synth_mnli_shuffled"} <= real
    assert "synth_mnli_multi" not in real
    with pytest.raises(XLTError, match="synth_mnli"):
        from xlt_utils import config as C

        params = dict(C.notebook_defaults(C.PHASE_NOTEBOOKS["intermediate"]))
        params.update(world="offline-real", model="multilingual-e5-small", intermediate_task="synth_mnli_multi")
        C.from_params("intermediate", params)


def test_the_real_study_expands_offline():
    """The GPU profile is validated (tasks, models, parameters) without touching the network."""
    g = G.expand("paper", "xtreme-r")
    assert {c.phase for c in g.cells} == {"intermediate", "target", "eval", "baselines"}
    assert {c.params["model"] for c in g.cells} == {"xlmr-large"}
    bucc = [c for c in g.cells if c.phase == "eval" and c.params["target_task"] == "bucc2018"]
    assert {c.upstream.phase if c.upstream else None for c in bucc} == {None, "intermediate"}


def _by_task(g, phase):
    return {c.params["intermediate_task" if phase == "intermediate" else "target_task"]: c
            for c in g.cells if c.phase == phase}


def test_the_real_study_takes_each_tasks_hyperparameters_from_the_catalog():
    """paper / xtreme-r: jiant's per-task values (the paper's toolkit), xtreme's where jiant has none; a target is
    evaluated at its training length; QA at 384 tokens, retrieval at 512."""
    g = G.expand("paper", "xtreme-r")
    tgt, ev, inter = _by_task(g, "target"), _by_task(g, "eval"), _by_task(g, "intermediate")
    hp = ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
          "max_seq_length")
    assert [tgt["xnli"].params[k] for k in hp] == [1e-5, 2.0, 4, 8, 256]
    assert [tgt["pawsx"].params[k] for k in hp] == [1e-5, 5.0, 4, 8, 256]
    assert [tgt["udpos"].params[k] for k in hp] == [1e-5, 10.0, 4, 8, 256]
    for qa in ("xquad", "mlqa", "tydiqa"):
        assert [tgt[qa].params[k] for k in hp] == [1e-5, 2.0, 4, 4, 384], qa
        assert ev[qa].params["max_seq_length"] == 384 and ev[qa].origin == {"max_seq_length": "jiant"}
    assert ev["tatoeba"].params["max_seq_length"] == ev["bucc2018"].params["max_seq_length"] == 512
    assert [inter["mnli"].params[k] for k in hp] == [1e-5, 3.0, 4, 1, 256]
    assert inter["squad_v1"].params["max_seq_length"] == 384  # the task's 384-token windows, not a run-wide 256
    assert set(tgt["xnli"].origin.values()) == {"jiant"} and tgt["xnli"].params["warmup_ratio"] == 0.1
    assert {c.params["max_seq_length"] for c in g.cells if c.phase == "baselines" and
            c.params["target_task"] == "xquad"} == {384}


XTREME_STUDY = """
profiles:
  p:
    world: xtreme
    models: [xlmr-base]
    seeds: [1]
    intermediate_tasks: [none]
    target_tasks: [xnli, xcopa, lareqa]
    params:
      target: {max_steps: null}
  xtreme-first:
    extends: p
    hparams: [xtreme, jiant]
  yaml-wins:
    extends: p
    params:
      target: {max_seq_length: 200}
      eval: {max_seq_length: 100}
    per_task:
      xnli: {target: {num_train_epochs: 1.0}}
  none:
    extends: p
    hparams: []
  bad:
    extends: p
    hparams: [jiant, huggingface]
"""


def test_catalog_hyperparameters_follow_the_profiles_toolkits_and_yield_to_the_study_file(tmp_path):
    study = tmp_path / "real.yaml"
    study.write_text(XTREME_STUDY)
    g = _by_task(G.expand(study, "p"), "target")
    assert g["xcopa"].params["learning_rate"] == 3e-5 and g["xcopa"].origin["learning_rate"] == "xtreme"
    assert (g["xcopa"].params["per_device_train_batch_size"], g["xcopa"].params["gradient_accumulation_steps"]) \
        == (2, 16)  # jiant has no XCOPA: xtreme's values
    lareqa = _by_task(G.expand(study, "p"), "eval")["lareqa"]
    assert lareqa.params["max_seq_length"] == 352 and lareqa.origin == {"max_seq_length": "options"}
    first = _by_task(G.expand(study, "xtreme-first"), "target")["xnli"]
    assert [first.params[k] for k in ("learning_rate", "num_train_epochs", "max_seq_length")] == [3e-5, 5.0, 128]
    y = G.expand(study, "yaml-wins")
    yt, ye = _by_task(y, "target"), _by_task(y, "eval")
    assert yt["xnli"].params["num_train_epochs"] == 1.0 and yt["xnli"].origin["num_train_epochs"] == "yaml"
    assert yt["xcopa"].params["num_train_epochs"] == 5.0  # per_task touches xnli only
    assert {t.params["max_seq_length"] for t in yt.values()} == {200} and ye["xnli"].params["max_seq_length"] == 100
    assert yt["xnli"].params["learning_rate"] == 1e-5 and yt["xnli"].origin["learning_rate"] == "jiant"
    off = _by_task(G.expand(study, "none"), "target")["xnli"]
    assert off.origin == {} and off.params["max_seq_length"] == 64  # the notebook's default
    with pytest.raises(XLTError, match=r"unknown hparams toolkit .*'huggingface'; valid: jiant, xtreme") as e:
        G.expand(study, "bad")
    assert "\n" not in str(e.value)


def test_the_catalog_leaves_the_embedded_worlds_alone(tmp_path):
    """Synth and offline-real cells take nothing from the catalog (their run ids stand), and naming toolkits
    there is an error."""
    for profile in ("smoke", "embedded"):
        assert all(not c.origin for c in G.expand("paper", profile).cells)
    study = tmp_path / "s.yaml"
    study.write_text("profiles:\n  p: {world: synth, models: [synth-tiny], seeds: [1], target_tasks: [synth_xnli],"
                     " hparams: [jiant]}\n")
    with pytest.raises(XLTError, match="hparams .* exists in world xtreme only"):
        G.expand(study, "p")


def test_shared_cells_run_once(tmp_path):
    """Two paths to the same cell (here: a retrieval eval of the pretrained encoder for every seed) collapse."""
    study = tmp_path / "two.yaml"
    study.write_text("""
profiles:
  p:
    world: synth
    models: [synth-tiny]
    seeds: [1, 2]
    intermediate_tasks: [none]
    target_tasks: [synth_tatoeba]
""")
    g = G.expand(study, "p")
    assert [c.phase for c in g.cells] == ["pretrain", "eval"]


def _layers_study(tmp_path, axis, more=""):
    """A study of synth-tiny (2 layers) and synth-small (4) with a layer axis [null, 2, 1], and more profiles."""
    study = tmp_path / "layers.yaml"
    study.write_text(f"""
profiles:
  p:
    world: synth
    models: [synth-tiny, synth-small]
    seeds: [1]
    intermediate_tasks: [none]
    target_tasks: [synth_xnli]
    sweep:
      {axis}: [null, 2, 1]
{more}""")
    return study


def test_a_layer_budget_of_the_whole_encoder_is_the_full_model(tmp_path):
    """num_layers equal to the encoder's depth is the full-budget cell (computed once, not twice); more layers than
    the encoder has fail at expansion, naming the valid range."""
    study = _layers_study(tmp_path, "eval.num_layers", """
  too-deep:
    extends: p
    sweep:
      eval.num_layers: [null, 3]
""")
    g = G.expand(study, "p")
    layers = {m: sorted((c.params["num_layers"] or 0) for c in g.cells
                        if c.phase == "eval" and c.params["model"] == m) for m in ("synth-tiny", "synth-small")}
    assert layers == {"synth-tiny": [0, 1], "synth-small": [0, 1, 2]}  # tiny has 2 layers, small 4
    with pytest.raises(XLTError, match=r"eval num_layers 3 exceeds the 2 layers of synth-tiny; valid: 1\.\.2, or null"):
        G.expand(study, "too-deep")
    assert (model_depth("xtreme", "xlmr-base"), model_depth("xtreme", "xlmr-large")) == (12, 24)
    # the real study's layer axis, fine-tuned at [null, 12, 6] layers: 12 is the whole of XLM-R base, so base has two
    real = G.expand("rq3_efficiency", "xtreme-r")
    base = {c.params["num_layers"] for c in real.cells if c.phase == "target" and c.params["model"] == "xlmr-base"}
    large = {c.params["num_layers"] for c in real.cells if c.phase == "target" and c.params["model"] == "xlmr-large"}
    assert base == {None, 6} and large == {None, 12, 6}
    assert {c.params["num_layers"] for c in real.cells if c.phase == "eval"} == {None}


def test_a_layer_budget_fine_tuned_at_its_depth(tmp_path):
    """target.num_layers: the model is fine-tuned at that depth (its whole depth is the full model, computed once;
    deeper fails at expansion); its evaluation may keep at most those layers (all of them is the same cell)."""
    study = _layers_study(tmp_path, "target.num_layers", """
  cut-all:
    extends: p
    sweep:
      target.num_layers: [null, 1]
      eval.num_layers: [null, 1]
  cut-deeper:
    extends: p
    sweep:
      target.num_layers: [1]
      eval.num_layers: [2]
""")
    g = G.expand(study, "p")
    tuned = {m: sorted((c.params["num_layers"] or 0) for c in g.cells if c.phase == "target" and c.params["model"] == m)
             for m in ("synth-tiny", "synth-small")}
    assert tuned == {"synth-tiny": [0, 1], "synth-small": [0, 1, 2]}  # tiny has 2 layers, small 4
    assert all(c.params["num_layers"] is None for c in g.cells if c.phase == "eval")
    # a 1-layer model evaluated at 1 layer is its full-depth evaluation; the full model cut to 1 layer is another cell
    cut = G.expand(study, "cut-all")
    tiny = [(c.upstream.params["num_layers"], c.params["num_layers"]) for c in cut.cells
            if c.phase == "eval" and c.params["model"] == "synth-tiny"]
    assert sorted(tiny, key=str) == sorted([(None, None), (None, 1), (1, None)], key=str)
    with pytest.raises(XLTError, match=r"eval num_layers 2 exceeds the 1 layers of synth-tiny fine-tuned at that "
                                       r"depth \(target num_layers\); valid: 1\.\.1, or null"):
        G.expand(study, "cut-deeper")
    with pytest.raises(XLTError, match=r"target num_layers 3 exceeds the 2 layers of synth-tiny; valid: 1\.\.2"):
        study.write_text(study.read_text().replace("[null, 2, 1]", "[3]"))
        G.expand(study, "p")


def _cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("argv, match", [
    (["grid", "nostudy", "--profile", "smoke"], r"unknown study 'nostudy'; valid: .*paper"),
    (["grid", "studies/paper.yaml", "--profile", "huge"], (r"unknown profile of study 'paper': 'huge'; valid: "
                                                          r"embedded, embedded-full, .*smoke")),
    (["reproduce", "--study", "all", "--profile", "huge"], r"unknown profile 'huge'; valid: .*smoke"),
    (["grid", "studies/paper.yaml", "--profile", "smoke", "--executor", "slurm"], r"unknown executor 'slurm'"),
])
def test_bad_cli_input_is_one_line(capsys, argv, match):
    import re

    code, err = _cli(capsys, *argv)
    assert code == 2 and len(err) == 1 and re.search(match, err[0]), err


@pytest.mark.parametrize("body, match", [
    ("profiles:\n  p: {world: synth, models: [synth-tiny], seeds: [1], target_tasks: [synth_xnlj]}",
     r"unknown target task in .*: 'synth_xnlj'; valid: .*synth_xnli"),
    (("profiles:\n  p: {world: synth, models: [synth-tiny], seeds: [1], intermediate_tasks: [mnli],"
     " target_tasks: [synth_xnli]}"), r"unknown intermediate task .*'mnli'; valid: none, .*synth_mnli"),
    ("profiles:\n  p: {world: synth, models: [xlmr-large], seeds: [1], target_tasks: [synth_xnli]}",
     r"unknown model in .*'xlmr-large'; valid: .*synth-tiny"),
    (("profiles:\n  p: {world: synth, models: [synth-tiny], seeds: [1], target_tasks: [synth_xnli],"
     " params: {target: {lr: 0.1}}}"), r"unknown parameter 'lr' for phase target; valid: .*learning_rate"),
    (("profiles:\n  p: {world: synth, models: [synth-tiny], seeds: [1], target_tasks: [synth_xnli],"
     " params: {target: {max_steps: ten}}}"), r"parameter 'max_steps' must be int \| None, got 'ten' \(str\)"),
    (("profiles:\n  p: {world: synth, models: [synth-tiny], seeds: [1], target_tasks: [synth_xnli],"
     " params: {target: {seed: 3}}}"), r"parameter 'seed' of phase target is set by the grid"),
    ("profiles:\n  p: {world: synth, models: [synth-tiny], seeds: [one], target_tasks: [synth_xnli]}",
     r"seeds must be a non-empty list of integers"),
    ("profiles:\n  p: {world: synth, models: [synth-tiny], seeds: [1], target_tasks: [synth_xnli], epochs: 3}",
     r"unknown key 'epochs'; valid: extends, .*"),
    ("profiles:\n  p: {world: synth, models: [synth-tiny]\n  q: [", r"malformed YAML in bad.yaml:\d+"),
])
def test_bad_study_files_are_one_line_errors(tmp_path, capsys, body, match):
    import re

    (tmp_path / "bad.yaml").write_text(body)
    code, err = _cli(capsys, "grid", str(tmp_path / "bad.yaml"), "--profile", "p", "--dry-run")
    assert code == 2 and len(err) == 1 and re.search(match, err[0]), err


def test_blocked_descendants_with_a_fake_runner(tmp_path, monkeypatch):
    monkeypatch.setattr("xlt_utils.paths.RESULTS", tmp_path / "results")
    monkeypatch.setattr("xlt_utils.paths.RUNS", tmp_path / "runs")
    g = G.expand("paper", "smoke")
    failing = next(c for c in g.cells if c.phase == "intermediate").run_id

    def fake(cell):
        if cell.run_id == failing:
            return CellResult(cell, "failed", error="boom")
        cell.dir.mkdir(parents=True, exist_ok=True)
        (cell.dir / "DONE").write_text("")
        (cell.dir / "env.json").write_text("{}")
        return CellResult(cell, "done", 0.0)

    rep = execute(g, jobs=2, out=lambda s: None, runner=fake)
    status = {r.cell.run_id: r.status for r in rep.results}
    below = {c.run_id for c in g.cells if c.upstream and (c.upstream.run_id == failing or
             (c.upstream.upstream and c.upstream.upstream.run_id == failing))}
    assert below and all(status[r] == "blocked" for r in below)
    assert all(s == "done" for r, s in status.items() if r != failing and r not in below)
    with pytest.raises(XLTError, match=r"1 cell\(s\) failed and \d+ were not run"):
        raise_on_failure(rep)


def _timed_alone_grid(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    study = tmp_path / "alone.yaml"
    study.write_text("""
profiles:
  p:
    world: synth
    models: [synth-tiny]
    seeds: [1, 2]
    intermediate_tasks: [none, synth_mnli]
    target_tasks: [synth_xnli]
    baselines: [majority]
    params:
      eval: {efficiency_batch_sizes: [1]}
    sweep:
      eval.time_alone: [false, true]
""")
    return G.expand(study, "p")


def _recording_runner(log):
    """A fake cell: records (start, end, cell, the OMP threads its kernel would get, cells running beside it)."""
    import threading
    import time

    lock, running = threading.Lock(), set()

    def fake(cell):
        with lock:
            beside = set(running)
            running.add(cell.run_id)
        t0 = time.monotonic()
        time.sleep(0.03)
        with lock:
            running.discard(cell.run_id)
            log.append((t0, time.monotonic(), cell, os.environ.get("OMP_NUM_THREADS"), beside))
        return CellResult(cell, "done", 0.03)

    return fake


def test_a_timed_evaluation_asking_to_run_alone_has_the_machine_to_itself(tmp_path, monkeypatch):
    """time_alone: the local executor starts such an evaluation only when no other cell runs, starts nothing beside
    it, and gives its kernel every core's threads; the other cells still run two at a time, with their share."""
    from xlt_utils.execute import threads_per_cell

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    g = _timed_alone_grid(tmp_path, monkeypatch)
    lone = {c.run_id for c in g.cells if c.alone}
    assert len(lone) == 4 and all(c.phase == "eval" and c.params["time_alone"] for c in g.cells if c.alone)
    log = []
    rep = execute(g, jobs=2, out=lambda s: None, runner=_recording_runner(log))
    assert rep.count("done") == len(g.cells) == len(log)
    spans = {c.run_id: (a, b) for a, b, c, _, _ in log}
    for a, b, c, threads, beside in log:
        if c.run_id in lone:
            assert not beside, (c.run_id, beside)
            overlapping = [r for r, (x, y) in spans.items() if r != c.run_id and x < b and y > a]
            assert not overlapping, (c.run_id, overlapping)
            assert threads == str(threads_per_cell(1))
        else:
            assert threads == str(threads_per_cell(2))
    assert any(beside for _, _, c, _, beside in log if c.run_id not in lone), "the other cells ran two at a time"
    assert os.environ["OMP_NUM_THREADS"] == str(threads_per_cell(2))  # what later kernels inherit, as before


def test_a_user_thread_setting_holds_for_a_cell_that_runs_alone(tmp_path, monkeypatch):
    import xlt_utils.execute as X

    monkeypatch.setattr(X, "_GRID_THREADS", {})  # a fresh process: no earlier grid here set the threads
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    g = _timed_alone_grid(tmp_path, monkeypatch)
    log = []
    execute(g, jobs=2, out=lambda s: None, runner=_recording_runner(log))
    assert {threads for *_, threads, _ in log} == {"1"}
    lone = [(c, beside) for _, _, c, _, beside in log if c.alone]
    assert lone and not any(beside for _, beside in lone)


@pytest.mark.slow
def test_failing_cell_blocks_its_descendants_and_keeps_finished_runs(tmp_path):
    """Real kernels: an intermediate cell fails at run time (its interrupted attempt left a corrupt checkpoint); its
    target and eval are not run; the baseline cell finishes; a rerun touches nothing finished and fails again."""
    study = tmp_path / "fail.yaml"
    study.write_text("""
profiles:
  p:
    world: synth
    models: [synth-tiny]
    seeds: [13]
    pretrain: false
    intermediate_tasks: [synth_mnli]
    target_tasks: [synth_xnli]
    baselines: [majority]
""")
    out = tmp_path / "out"
    g = G.expand(study, "p")
    inter = next(c for c in g.cells if c.phase == "intermediate")
    ckpt = out / "runs" / inter.run_id / "train" / "checkpoint"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{ corrupt")  # resuming from it fails inside the notebook
    env = {**os.environ, "XLT_OUTPUTS": str(out), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "xlt_utils", "grid", str(study), "--profile", "p", "--jobs", "2"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("error: 1 cell(s) failed and 2 were not run"), err
    assert any(line.startswith(f"error: {inter.run_id} failed: ") for line in err), err
    runs_dir = out / "runs"
    done = sorted(str(p.parent.relative_to(runs_dir)) for p in runs_dir.rglob("DONE"))
    assert len(done) == 1 and done[0].startswith("baselines/"), done
    assert not (runs_dir / "target").exists() and not (runs_dir / "eval").exists()
    stamp = (runs_dir / done[0] / "DONE").stat().st_mtime_ns
    r2 = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert r2.returncode == 2 and "1 already done" in r2.stdout
    assert (runs_dir / done[0] / "DONE").stat().st_mtime_ns == stamp


def test_idle_fraction_counts_time_with_no_training_anywhere():
    g = G.expand("paper", "smoke")
    r1 = CellResult(g.cells[0], "done", intervals=[(10.0, 20.0), (30.0, 40.0)])
    r2 = CellResult(g.cells[1], "done", intervals=[(15.0, 35.0)])  # overlaps both spans of r1
    assert idle_fraction([r1, r2], 0.0, 50.0) == pytest.approx(1 - 30.0 / 50.0)
    assert idle_fraction([], 0.0, 50.0) == 1.0


def test_xtreme_r_dry_run_prints_the_real_grid_and_gpu_hours(capsys):
    """The real study's grid expands offline and prints a GPU-hour floor from 6 × params × tokens."""
    from xlt_utils.__main__ import main

    assert main(["grid", "studies/paper.yaml", "--profile", "xtreme-r", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "intermediate/xlmr-large__anli_plus__s13-" in out and "target/xlmr-large__" in out
    # ANLI+ (1,104,934 examples × 3 epochs × 256 tokens) on XLM-R large: 6 × 302.3M × 0.849e9 / (989e12 × 0.35)
    # / 3600 ≈ 1.24 GPU-hours, the figure in docs/xtreme.md.
    assert "intermediate/xlmr-large__anli_plus__s13-" in out and "[~1.24 GPU-h]" in out
    assert "GPU-hour floor" in out and "total" in out
    # the per-task hyperparameters, with their origin
    xquad = next(line for line in out.splitlines() if line.split()[:2] == ["target", "xquad"])
    assert "[jiant] lr 1e-05, epochs 2, batch 4, accum 4, len 384" in xquad and "doc stride 128" in xquad
    assert "eval len 384" in xquad
    tatoeba = next(line for line in out.splitlines() if line.split()[:2] == ["target", "tatoeba"])
    assert "[jiant] eval len 512" in tatoeba


def test_real_grid_without_network_fails_at_once_naming_the_model(monkeypatch, capsys, tmp_path):
    from xlt_utils.__main__ import main
    from xlt_utils.xtreme import source

    # a runs directory of its own: a grid running in this checkout meanwhile must not look like a started cell
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")

    def listing():
        return sorted(str(p) for p in paths.RUNS.rglob("*")) if paths.RUNS.exists() else []

    before = listing()
    monkeypatch.setattr(source, "hub_reachable", lambda: False)
    assert main(["grid", "studies/paper.yaml", "--profile", "xtreme-r"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot reach the Hugging Face Hub for model FacebookAI/xlm-roberta-large" in err and "\n" not in err
    assert listing() == before, "no cell started"


def test_scheduler_starts_the_longest_chain_first(tmp_path, monkeypatch):
    """In the embedded profile the real encoder's chain (e5 intermediate -> target -> eval) dominates, so it starts
    first instead of waiting behind the synth cells; every cell still starts after its upstream."""
    monkeypatch.setenv("XLT_OUTPUTS", str(tmp_path))
    monkeypatch.setattr(paths, "OUTPUTS", tmp_path, raising=False)
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")  # none done, whatever the checkout's outputs/ holds
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    g = G.expand("paper", "embedded")
    prio = E.critical_path(g.cells)
    for c in g.cells:
        if c.upstream is not None:
            assert prio[c.upstream.run_id] > prio[c.run_id]
    order = []

    def fake(cell):
        order.append(cell)
        return CellResult(cell, "done", 0.0)

    execute(g, jobs=1, out=lambda s: None, runner=fake)
    assert order[0].phase == "intermediate" and order[0].params["world"] == "offline-real"
    seen = set()
    for c in order:
        assert c.upstream is None or c.upstream.run_id in seen
        seen.add(c.run_id)
    assert len(order) == len(g.cells)


def test_estimate_extrapolates_measured_rates_by_world_and_phase():
    """One finished target cell: 10 s of work + 2 s fixed. Two more like it take 24 s; an eval cell (no eval rate
    measured) takes the overall rate times its own cost, plus the same fixed 2 s."""
    g = G.expand("paper", "smoke")
    t = next(c for c in g.cells if c.phase == "target")
    e = next(c for c in g.cells if c.phase == "eval")
    ran = [CellResult(t, "done", 12.0, timings={"work": 10.0})]
    assert E.estimate_seconds(ran, [t, t]) == pytest.approx(24.0)
    assert E.estimate_seconds(ran, [e]) == pytest.approx(2.0 + 10.0 * E.cell_cost(e) / E.cell_cost(t))
    assert E.estimate_seconds([], [t]) is None
    assert E.estimate_seconds([CellResult(t, "failed", 5.0)], [t]) is None


def test_dry_run_estimate_reads_the_finished_runs_on_disk(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    g = G.expand("paper", "smoke")
    assert "no CPU estimate" in E.cpu_estimate(g, jobs=2)
    t = next(c for c in g.cells if c.phase == "target")
    d = tmp_path / "runs" / "target" / "x"
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps({"phase": "target", "params": t.params, "lineage": t.lineage,
                                               "run_id": "target/x"}))
    (d / "env.json").write_text(json.dumps({"started": "2026-01-01T10:00:00", "finished": "2026-01-01T10:01:30",
                                            "timings": {"work": 80.0}}))
    (d / "DONE").write_text("")
    # a run finished by a resumed attempt: its timings are the last attempt's only, so it is left out
    for name, resolved in (("resumed", {"resumed_from_step": 6}), ("parts", {"resumed_languages": ["en"]})):
        r_dir = tmp_path / "runs" / "target" / name
        r_dir.mkdir()
        (r_dir / "params.json").write_text(json.dumps({"phase": "target", "params": t.params, "lineage": t.lineage,
                                                       "run_id": f"target/{name}", "resolved": resolved}))
        (r_dir / "env.json").write_text((d / "env.json").read_text())
        (r_dir / "DONE").write_text("")
    (r,) = E.finished_results()
    assert r.seconds == 90.0 and r.timings["work"] == 80.0 and r.cell.phase == "target"
    assert E.resumed({"resumed_from_step": 0, "resumed_languages": []}) is False
    line = E.cpu_estimate(g, jobs=2)
    assert line.startswith(f"[grid] CPU estimate for {len(g.cells)} cells") and "from 1 finished runs here, synth" in line


@pytest.mark.parametrize("profile", ["embedded", "embedded-full", "xtreme-r"])
def test_rq1_evaluates_dev_after_the_same_examples_at_every_batch_size(profile):
    """Model selection in the batch-size study: examples between English-dev evaluations (batch x eval_every) are
    the same at every batch size of a model, so a small batch gets no more chances to pick a lucky checkpoint; or
    there is no selection at all (``eval_every: null``: every batch size passes on its final step, after the same
    examples: e5 in embedded-full)."""
    per_model: dict[str, set] = {}
    for c in G.expand("rq1_batch_size", profile).cells:
        if c.phase == "intermediate":
            p = c.params
            every = p["eval_every"] and p["per_device_train_batch_size"] * p["eval_every"]
            per_model.setdefault(p["model"], set()).add(every)
    assert per_model and all(len(v) == 1 for v in per_model.values()), per_model


def test_work_units_count_the_task_size_and_one_model_per_language_in_language():
    """Training cells that take a task's whole training set are costed by its size (synth generator defaults,
    offline-real recorded counts), and only an in-language baseline trains one model per language."""
    g = G.expand("paper", "embedded-full")
    base = {(c.params["target_task"], c.params["kind"]): c for c in g.cells
            if c.phase == "baselines" and c.params["seed"] == 13 and c.params["world"] == "synth"}
    xnli_in, xnli_ri = base[("synth_xnli", "in_language")], base[("synth_xnli", "random_init")]
    assert E.train_size(xnli_in) == 20000 and E.train_size(base[("synth_xcopa", "random_init")]) == 2000
    # 3 epochs x 20,000 examples x 128 tokens; in-language: that again for each of its 6 languages
    assert E.work_units(xnli_ri) == pytest.approx(3 * 20000 * 128)
    assert E.work_units(xnli_in) == pytest.approx(6 * 3 * 20000 * 128) and len(xnli_in.params["languages"]) == 6
    # a synth English task trained into the real encoder keeps the synth task's size; a real task, its recorded one
    real = [c for c in g.cells if c.phase == "intermediate" and c.params["world"] == "offline-real"]
    mnli = next(c for c in real if c.params["intermediate_task"] == "synth_mnli")
    assert mnli.params["max_train_samples"] == 6400 and E.train_size(mnli) == 20000
    brown = next(c for c in real if c.params["intermediate_task"] == "brown_pos")
    assert E.train_size(brown) == 54418


def test_estimate_uses_the_rate_of_the_same_task_where_one_finished():
    """Seconds per token differ by task (a QA example fills its sequence, a tagging sentence does not): two synth
    target cells of equal cost, 10 s and 30 s of work, each predict their own task's cells; a task with no finished
    cell in that (world, phase) takes their pooled rate, 40 s over the two costs."""
    g = G.expand("paper", "embedded")
    targets = [c for c in g.cells if c.phase == "target" and c.params["world"] == "synth"]
    a = next(c for c in targets if c.params["target_task"] == "synth_xnli")
    b = next(c for c in targets if c.params["target_task"] == "synth_udpos")
    assert E.cell_cost(a) == pytest.approx(E.cell_cost(b))
    ran = [CellResult(a, "done", 10.0, timings={"work": 10.0}), CellResult(b, "done", 30.0, timings={"work": 30.0})]
    assert E.estimate_seconds(ran, [a]) == pytest.approx(10.0)
    assert E.estimate_seconds(ran, [b]) == pytest.approx(30.0)
    other = Cell("target", {**a.params, "target_task": "synth_panx"}, None, {}, "target/x")
    assert E.estimate_seconds(ran, [other]) == pytest.approx(40.0 / (2 * E.cell_cost(a)) * E.cell_cost(other))


def test_the_estimate_splits_by_world_and_says_which_rates_are_borrowed():
    """The dry run's CPU-hours per world: each world's cells costed alone (the parts add up to the whole, the
    estimate being a sum over cells); a world with no finished run here is named as costed at borrowed rates."""
    g = G.expand("paper", "embedded")
    synth = next(c for c in g.cells if c.phase == "target" and c.params["world"] == "synth")
    real = [c for c in g.cells if c.params["world"] == "offline-real" and c.phase != "baselines"][:3]
    ran = [CellResult(synth, "done", 12.0, timings={"work": 10.0})]
    whole = E.estimate_seconds(ran, [synth, *real])
    parts = [E.estimate_seconds(ran, [synth]), E.estimate_seconds(ran, real)]
    assert whole == pytest.approx(sum(parts))
    line = E.per_world(ran, [synth, *real])
    assert line == (f": offline-real {parts[1] / 3600:.1f}, synth {parts[0] / 3600:.1f}; "
                    "no finished run of offline-real here: borrowed rates")
    assert E.per_world(ran, [synth]) == ""
