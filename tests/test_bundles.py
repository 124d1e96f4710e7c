"""A grid split into parts (``grid --where``) run in separate outputs folders and put back together with result
bundles (``results --export`` / ``--import``): the merged tables equal those of the whole grid run in one place;
imported cells are not run again unless a cell still to run needs one as its upstream."""

from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd
import pytest
from fake_results import write_fake_runs

from xlt_utils import grid as G
from xlt_utils import paths
from xlt_utils import results as R
from xlt_utils.__main__ import main
from xlt_utils.errors import XLTError
from xlt_utils.parts import cell_attribute, leave_out_imported, parse_where, select

STUDY, PROFILE = "paper", "smoke"


def use_outputs(monkeypatch, root):
    monkeypatch.setattr(paths, "RUNS", root / "runs")
    monkeypatch.setattr(paths, "RESULTS", root / "results")


def test_where_selects_cells_and_their_ancestors():
    g = G.expand(STUDY, PROFILE)
    part = select(g, parse_where(["intermediate_task=synth_mnli"]))
    by_id = {c.run_id: c for c in g.cells}
    inter = [c for c in part.cells if c.phase == "intermediate"]
    assert [c.params["intermediate_task"] for c in inter] == ["synth_mnli"]
    # the pretraining cell is in (the intermediate cell descends from it); nothing of the no-intermediate arm is
    assert [c.phase for c in part.cells if c.upstream is None] == ["pretrain"]
    assert all(cell_attribute(c, "intermediate_task") == "synth_mnli" for c in part.cells if c.phase != "pretrain")
    for c in part.cells:  # closed under upstream, in the grid's order
        assert c.upstream is None or c.upstream.run_id in {x.run_id for x in part.cells}
    assert [c.run_id for c in part.cells] == [c.run_id for c in g.cells if c.run_id in {x.run_id for x in part.cells}]
    # the manifest still lists the whole grid
    assert [c["run_id"] for c in part.manifest()["cells"]] == list(by_id)
    # two keys: AND; two values: OR
    one = select(g, parse_where(["intermediate_task=none,synth_mnli", "phase=eval", "target_task=synth_xnli"]))
    evals = [c for c in one.cells if c.phase == "eval"]
    assert len(evals) == 2 and {cell_attribute(c, "target_task") for c in evals} == {"synth_xnli"}
    # the two arms' parts cover the grid
    rest = select(g, parse_where(["intermediate_task=none"]))
    assert {c.run_id for c in part.cells} | {c.run_id for c in rest.cells} == set(by_id)
    assert {c.run_id for c in part.cells} & {c.run_id for c in rest.cells} == {
        c.run_id for c in g.cells if c.phase == "pretrain"}


@pytest.mark.parametrize("items, match", [
    (["seed"], r"--where takes KEY=VALUE\[,VALUE...\], got 'seed'; keys: phase, world, model"),
    (["task=x"], r"unknown --where key 'task'; valid: intermediate_task, kind, model, phase, seed, target_task, world"),
    (["intermediate_task=mnli"], r"--where intermediate_task: mnli not in paper / smoke; it has: none, synth_mnli"),
])
def test_bad_where_is_one_line(items, match, capsys):
    code = main(["grid", STUDY, "--profile", PROFILE, "--dry-run", *[a for i in items for a in ("--where", i)]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert __import__("re").search(match, err[0]), err


def test_parts_put_back_together_equal_the_whole(tmp_path, monkeypatch, capsys):
    g = G.expand(STUDY, PROFILE)
    mnli = {c.run_id for c in select(g, {"intermediate_task": {"synth_mnli"}}).cells}
    rest = {c.run_id for c in select(g, {"intermediate_task": {"none"}}).cells}

    use_outputs(monkeypatch, tmp_path / "whole")  # the whole grid in one place
    write_fake_runs(STUDY, PROFILE)
    R.collect()
    whole = {n: pd.read_csv(paths.RESULTS / n) for n in R.BUNDLE_FILES if (paths.RESULTS / n).exists()}
    assert set(whole) == {"metrics.csv", "training.csv", "efficiency.csv"}
    # a part of it, from the command line: only that part's runs
    assert main(["results", "--export", str(tmp_path / "part"), "--study", STUDY, "--profile", PROFILE,
                 "--where", "intermediate_task=synth_mnli"]) == 0
    part = json.loads((tmp_path / "part" / "bundle.json").read_text())
    assert part["runs"] == sorted(mnli) and part["where"] == ["intermediate_task=synth_mnli"]
    assert part["part_cells"] == len(mnli) and set(pd.read_csv(tmp_path / "part" / "metrics.csv")["run_id"]) == mnli

    use_outputs(monkeypatch, tmp_path / "a")  # part one, on "machine" a; first with one cell unfinished
    last = next(c.run_id for c in reversed(g.cells) if c.run_id in mnli)
    write_fake_runs(STUDY, PROFILE, only=mnli - {last})
    capsys.readouterr()
    assert main(["results", "--export", str(tmp_path / "early"), "--study", STUDY, "--profile", PROFILE,
                 "--where", "intermediate_task=synth_mnli"]) == 0
    assert "warning: 1 cell(s) of this part have not finished here and no imported bundle holds them" in capsys.readouterr().out
    write_fake_runs(STUDY, PROFILE, only=mnli)
    R.collect()
    meta = R.export_bundle(STUDY, PROFILE, tmp_path / "bundle-a")
    assert meta["runs"] == sorted(mnli) and meta["grid_cells"] == len(g.cells)
    (pre,) = [r for r in mnli if r.startswith("pretrain/")]
    assert list(meta["pretrain_encoders_sha256"]) == [pre]  # fake runs have no weights: sha None
    for rid in mnli:  # every run's parameters and environment travel with its rows
        assert json.loads((tmp_path / "bundle-a" / "runs" / rid / "params.json").read_text())["run_id"] == rid
        assert (tmp_path / "bundle-a" / "runs" / rid / "env.json").exists()
    assert not list((tmp_path / "bundle-a").rglob("*.safetensors"))
    with pytest.raises(XLTError, match="exists and is not empty; give a new folder"):
        R.export_bundle(STUDY, PROFILE, tmp_path / "bundle-a")

    use_outputs(monkeypatch, tmp_path / "b")  # part two on "machine" b, then a's bundle imported
    write_fake_runs(STUDY, PROFILE, only=rest)
    lines: list[str] = []
    R.import_bundle(tmp_path / "bundle-a", out=lines.append)
    R.import_bundle(tmp_path / "bundle-a", out=lines.append)  # twice: nothing changes
    assert len(list(R.imported_dir().iterdir())) == 1 and "already imported" in lines[-1]
    (imp,) = R.imported_bundles()
    assert sorted(str(p.parent.relative_to(imp / "runs")) for p in imp.rglob("params.json")) == sorted(mnli)
    R.collect()
    for name, frame in whole.items():
        merged = pd.read_csv(paths.RESULTS / name)
        pd.testing.assert_frame_equal(merged.reset_index(drop=True), frame.reset_index(drop=True), check_like=True)
    # the analysis notebooks' overview says how many runs of each phase came from the bundle
    view = R.overview(pd.read_csv(paths.RESULTS / "metrics.csv"))
    want = pd.Series([c.phase for c in g.cells if c.run_id in mnli - rest]).value_counts()
    assert view["imported"].to_dict() == {p: int(want.get(p, 0)) for p in view.index}
    assert view["imported"].sum() == len(mnli - rest) > 0
    # nothing left to run: every cell is done here or imported
    assert [c.run_id for c in leave_out_imported(g, R.imported_run_ids(), out=lambda s: None).cells
            if not c.done()] == []


def same_as_whole(whole, study):
    """The study's rows in outputs/results equal ``whole``'s: the same values; a column empty in every row (a key
    only other runs of a source grid had) says nothing."""
    for name, frame in whole.items():
        merged = pd.read_csv(paths.RESULTS / name)
        merged = merged[merged["study"] == study].sort_values(["run_id", *(["lang"] if "lang" in merged else [])],
                                                              kind="stable").reset_index(drop=True)
        frame = frame.sort_values(["run_id", *(["lang"] if "lang" in frame else [])], kind="stable")
        pd.testing.assert_frame_equal(merged.dropna(axis=1, how="all"),
                                      frame.reset_index(drop=True).dropna(axis=1, how="all"), check_like=True,
                                      check_dtype=False)  # a seed read back beside seedless rows is a float


def fake_encoder(run_id, content):
    """A pretraining run's weights file (fake runs have none), so bundles record its SHA-256."""
    f = paths.RUNS / run_id / "encoder" / "model.safetensors"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(content)
    return hashlib.sha256(content).hexdigest()


def test_a_study_bundle_carries_the_runs_it_shares_with_another_studys_bundle(tmp_path, monkeypatch, capsys):
    """rq1's smoke grid shares three cells with the paper's (same run ids: the pretraining and the no-intermediate
    target and evaluation). On a machine where the last two came from a paper bundle (the pretraining runs again
    there: its weights are needed), rq1's report counts them as its own and rq1's export carries them (rows
    relabelled to rq1, their run files, ``reused`` naming the source, the source's encoder and task records), so
    rq1's bundle alone gives the rows of the whole rq1 grid run in one place."""
    study = "rq1_batch_size"
    shared = ({c.run_id for c in G.expand(STUDY, PROFILE).cells}
              & {c.run_id for c in G.expand(study, PROFILE).cells})
    (pre,) = [r for r in shared if r.startswith("pretrain/")]
    assert len(shared) == 3
    use_outputs(monkeypatch, tmp_path / "whole")  # rq1 in one place
    write_fake_runs(study, PROFILE)
    R.collect()
    whole = {n: pd.read_csv(paths.RESULTS / n) for n in R.BUNDLE_FILES if (paths.RESULTS / n).exists()}

    use_outputs(monkeypatch, tmp_path / "a")  # the paper's grid, exported
    write_fake_runs(STUDY, PROFILE)
    sha_a = fake_encoder(pre, b"encoder of machine a")
    R.collect()
    R.export_bundle(STUDY, PROFILE, tmp_path / "paper")

    use_outputs(monkeypatch, tmp_path / "b")  # rq1 with the paper's bundle imported
    R.import_bundle(tmp_path / "paper", out=lambda s: None)
    own = {c.run_id for c in G.expand(study, PROFILE).cells} - shared
    write_fake_runs(study, PROFILE, only=own | {pre})
    sha_b = fake_encoder(pre, b"encoder of machine b")
    R.collect()
    same_as_whole(whole, study)  # rq1's report here sees the paper bundle's runs as its own cells
    capsys.readouterr()
    assert main(["results", "--export", str(tmp_path / "rq1"), "--study", study, "--profile", PROFILE]) == 0
    out = capsys.readouterr().out
    assert "2 of the runs from imported bundles" in out and "have not finished" not in out
    assert f"warning: the reused runs were computed from another {pre} (sha256 {sha_a[:12]})" in out
    meta = json.loads((tmp_path / "rq1" / "bundle.json").read_text())
    (imp,) = R.imported_bundles()
    source = json.loads((imp / "bundle.json").read_text())
    assert meta["runs"] == sorted(own | shared) and meta["reused"] == {
        r: f"paper / smoke, exported {source['created']}" for r in sorted(shared - {pre})}
    assert meta["pretrain_encoders_sha256"] == {pre: sha_b}  # this machine's pretraining run
    assert meta["reused_differs"] == {pre: {"reused": sha_a, "here": sha_b}}
    assert meta["task_data"]["synth_xnli"] == source["task_data"]["synth_xnli"]
    for rid in shared:
        assert json.loads((tmp_path / "rq1" / "runs" / rid / "params.json").read_text())["run_id"] == rid
    rows = pd.read_csv(tmp_path / "rq1" / "metrics.csv")
    assert set(rows["study"]) == {study} and shared <= set(rows["run_id"])
    assert list(rows["run_id"]) == sorted(rows["run_id"])  # reused rows sorted in
    # a part made only of reused runs exports too
    part = R.export_bundle(study, PROFILE, tmp_path / "reused-only", only=shared - {pre})
    assert part["runs"] == sorted(shared - {pre}) and set(part["reused"]) == shared - {pre}

    use_outputs(monkeypatch, tmp_path / "c")  # rq1's bundle alone
    R.import_bundle(tmp_path / "rq1", out=lambda s: None)
    R.collect()
    same_as_whole(whole, study)

    # a bundle holding a run under the study's own label wins over another study's copy, whatever their order
    use_outputs(monkeypatch, tmp_path / "d")
    write_fake_runs(study, PROFILE, only=own | {pre})  # rq1's manifest here
    mine = tmp_path / "rq1-changed"
    shutil.copytree(tmp_path / "rq1", mine)
    changed = pd.read_csv(mine / "metrics.csv")
    eval_run = next(r for r in shared if r.startswith("eval/"))
    changed.loc[changed["run_id"] == eval_run, "value"] = 999.0
    changed.to_csv(mine / "metrics.csv", index=False)
    for src in (tmp_path / "paper", mine):
        R.import_bundle(src, out=lambda s: None)
    R.collect()
    got = pd.read_csv(paths.RESULTS / "metrics.csv")
    got = got[(got["study"] == study) & (got["run_id"] == eval_run)]
    assert len(got) and set(got["value"]) == {999.0}
    # with nothing imported, nothing is carried over
    use_outputs(monkeypatch, tmp_path / "e")
    write_fake_runs(study, PROFILE, only=own)
    R.collect()
    assert "reused" not in R.export_bundle(study, PROFILE, tmp_path / "rq1-own")


def test_an_imported_cell_runs_again_only_when_a_cell_to_run_needs_it(tmp_path, monkeypatch, capsys):
    g = G.expand(STUDY, PROFILE)
    none_arm = {c.run_id for c in select(g, {"intermediate_task": {"none"}}).cells}
    use_outputs(monkeypatch, tmp_path / "a")
    write_fake_runs(STUDY, PROFILE, only=none_arm)
    R.collect()
    R.export_bundle(STUDY, PROFILE, tmp_path / "bundle")

    use_outputs(monkeypatch, tmp_path / "b")  # a fresh machine with the bundle only
    R.import_bundle(tmp_path / "bundle", out=lambda s: None)
    lines: list[str] = []
    todo = leave_out_imported(g, R.imported_run_ids(), out=lines.append)
    pre = next(c.run_id for c in g.cells if c.phase == "pretrain")
    # the other arm runs, with the imported pretraining run it descends from (its weights are not here)
    assert {c.run_id for c in todo.cells} == {c.run_id for c in g.cells if c.run_id not in none_arm} | {pre}
    assert lines == [(f"[grid] {STUDY} / {PROFILE}: {len(none_arm) - 1} cells left out, their results imported; "
                      f"1 imported cell(s) run again, upstream of cells to run: {pre}")]
    assert todo.manifest() == g.manifest()
    # the dry run marks them
    assert main(["grid", STUDY, "--profile", PROFILE, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{len(none_arm)} imported" not in out and f"{len(none_arm) - 1} imported, " in out
    assert sum(line.strip().startswith("imported") for line in out.splitlines()) == len(none_arm) - 1


def test_encoder_mismatch_is_reported(tmp_path, monkeypatch):
    use_outputs(monkeypatch, tmp_path / "b")
    bundles = []
    for i, sha in enumerate(("a" * 64, "b" * 64)):
        d = tmp_path / f"bundle{i}"
        d.mkdir()
        (d / R.BUNDLE_JSON).write_text(json.dumps({"study": STUDY, "profile": PROFILE, "runs": [f"eval/x{i}"],
                                                   "pretrain_encoders_sha256": {"pretrain/p": sha}}))
        pd.DataFrame({"study": [STUDY], "profile": [PROFILE], "run_id": [f"eval/x{i}"]}).to_csv(d / "metrics.csv")
        bundles.append(d)
    lines: list[str] = []
    R.import_bundle(bundles[0], out=lines.append)
    R.import_bundle(bundles[1], out=lines.append)
    warn = [x for x in lines if "warning" in x]
    assert len(warn) == 1 and "another encoder" in warn[0] and "bbbbbbbbbbbb vs aaaaaaaaaaaa" in warn[0]


def test_results_command_checks_its_arguments(tmp_path, monkeypatch, capsys):
    use_outputs(monkeypatch, tmp_path)
    for argv, match in ((["results", "--export", str(tmp_path / "x")], "--export DIR needs --study S and --profile P"),
                        (["results", "--study", "paper"], "--study and --profile only go with --export DIR"),
                        (["results", "--where", "seed=13"], "--where only goes with --export DIR"),
                        (["results", "--export", str(tmp_path / "x"), "--study", "paper", "--profile", "smoke",
                          "--where", "seed=99"], "--where seed: 99 not in paper / smoke; it has: 13"),
                        (["results", "--import", str(tmp_path)], "is not a result bundle"),
                        (["results", "--export", str(tmp_path / "x"), "--study", "paper", "--profile", "smoke"],
                         "no grid paper / smoke has run here")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    assert not (tmp_path / "x").exists() and not (tmp_path / "results" / "metrics.csv").exists()


def test_a_report_of_an_unfinished_grid_says_so(tmp_path, monkeypatch):
    g = G.expand(STUDY, PROFILE)
    none_arm = {c.run_id for c in select(g, {"intermediate_task": {"none"}}).cells}
    use_outputs(monkeypatch, tmp_path / "a")
    monkeypatch.setattr(paths, "REPORT", tmp_path / "a" / "report")
    write_fake_runs(STUDY, PROFILE, only=none_arm)
    R.collect()
    assert R.grid_size(STUDY, PROFILE) == len(g.cells)

    def fail(nb_path, executed, html, parameters):
        raise XLTError("analysis notebook 10_paper.ipynb failed: KeyError: 'target_task'")

    monkeypatch.setattr(R, "_execute_to_html", fail)
    lines: list[str] = []
    with pytest.raises(XLTError, match=(rf"KeyError: 'target_task'; its grid is not finished: {len(none_arm)} of "
                                        rf"{len(g.cells)} cells have results, and the analysis may need the rest")):
        R.render_reports(PROFILE, [STUDY], out=lines.append)
    assert lines == [(f"[report] {STUDY}/{PROFILE}: its grid is not finished: {len(none_arm)} of {len(g.cells)} "
                      "cells have results; the report reads what is there")]
    # on a machine with only the bundle, the grid's size comes from it
    R.export_bundle(STUDY, PROFILE, tmp_path / "bundle")
    use_outputs(monkeypatch, tmp_path / "b")
    assert R.grid_size(STUDY, PROFILE) is None
    R.import_bundle(tmp_path / "bundle", out=lambda s: None)
    assert R.grid_size(STUDY, PROFILE) == len(g.cells)


def test_the_written_answer_says_when_results_are_partial(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from xlt_utils import studies

    g = G.expand(STUDY, PROFILE)
    cfg = SimpleNamespace(study=STUDY, profile=PROFILE)
    mnli = {c.run_id for c in select(g, {"intermediate_task": {"synth_mnli"}}).cells}
    use_outputs(monkeypatch, tmp_path / "part")
    write_fake_runs(STUDY, PROFILE, only=mnli)
    R.collect()
    df = R.load(cfg)
    assert studies.unfinished_note(df, cfg) == (
        f"**Partial results:** {len(mnli)} of the grid's {len(g.cells)} cells have results; every number above reads "
        "only those, and the claims about what is missing (other intermediate tasks, seeds, worlds) are not made yet.")
    use_outputs(monkeypatch, tmp_path / "whole")
    write_fake_runs(STUDY, PROFILE)
    R.collect()
    assert studies.unfinished_note(R.load(cfg), cfg) == ""


@pytest.mark.parametrize("name", [R.EFFICIENCY_CSV, R.TRAINING_CSV])
def test_imported_timings_without_a_cpu_column_read_it_from_the_bundles_env(tmp_path, monkeypatch, name):
    """A bundle exported before its timing rows (inference latencies, training seconds) named their CPU: each row
    gets its run's ``env.json`` processor (none where the run has no such file), so timings from different CPUs are
    never averaged unknowingly."""
    b = tmp_path / "bundle"
    (b / "runs" / "eval" / "x-1").mkdir(parents=True)
    (b / "runs" / "eval" / "x-1" / "env.json").write_text(json.dumps({"processor": "CPU [avx2]"}))
    pd.DataFrame([{"study": "s", "profile": "p", "run_id": rid, "batch_size": 1, "latency_p50_ms": 3.0,
                   "passed_step": 10} for rid in ("eval/x-1", "eval/y-2")]).to_csv(b / name, index=False)
    monkeypatch.setattr(R, "imported_bundles", lambda: [b])
    rows = R._with_imported(pd.DataFrame(), name)
    assert rows["processor"].iloc[0] == "CPU [avx2]" and rows["processor"].isna().iloc[1]


def test_import_says_when_two_bundles_hold_one_run_with_other_values(tmp_path, monkeypatch):
    """The same run id in two bundles with other metric values (the same computation run again on another CPU):
    one warning line naming the largest difference; equal values, or the same bundle imported again, say
    nothing."""
    use_outputs(monkeypatch, tmp_path / "out")

    def bundle(name, study, values):
        d = tmp_path / name
        d.mkdir()
        (d / "bundle.json").write_text(json.dumps({"study": study, "profile": "p", "runs": ["target/x-1", "eval/y-2"]}))
        pd.DataFrame([{"study": study, "profile": "p", "run_id": rid, "phase": rid.split("/")[0], "split": "dev",
                       "lang": "en", "metric": "accuracy", "value": v}
                      for rid, v in zip(["target/x-1", "eval/y-2"], values)]).to_csv(d / "metrics.csv", index=False)
        return d

    lines: list[str] = []
    R.import_bundle(bundle("a", "paper", [96.83, 50.0]), out=lines.append)
    R.import_bundle(bundle("same", "rq1", [96.83, 50.0]), out=lines.append)
    assert not [x for x in lines if "warning" in x]
    R.import_bundle(bundle("b", "rq3", [96.84, 50.0]), out=lines.append)
    warn = [x for x in lines if "warning" in x]
    assert len(warn) == 2  # against each bundle imported before
    assert "hold 2 run(s) in common, 1 of them with other metric values (1 rows; largest difference 0.01 in " \
        "target/x-1 dev en accuracy)" in warn[0]
    lines.clear()
    R.import_bundle(tmp_path / "b", out=lines.append)  # again: already imported; still differs from the others
    assert "already imported" in lines[-1] and len([x for x in lines if "warning" in x]) == 2
