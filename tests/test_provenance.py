"""Data provenance in result bundles (xlt_utils.provenance): a task's data hash is stable and changes with one byte
of its files; ``bundle.json`` records it per task read; an import of a bundle made on other data warns in one line
(against the data here and against bundles imported before), the same data say nothing, and a bundle exported
before the record existed imports as it did."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from fake_results import write_fake_runs

from xlt_utils import grid as G
from xlt_utils import paths
from xlt_utils import provenance as P
from xlt_utils import results as R
from xlt_utils import tasks as T

STUDY, PROFILE = "paper", "smoke"
BOOKWORM = {"apt": "apt_2.6.1_amd64.deb", "bison": "bison_2%3a3.8.2+dfsg-1+b1_amd64.deb",
            "sed": "sed_4.9-1+deb12u1_amd64.deb", "tar": "tar_1.34+dfsg-1.2+deb12u1_amd64.deb"}
TRIXIE = {"apt": "apt_3.0.3_amd64.deb", "bison": "bison_2%3a3.8.2+dfsg-1+b2_amd64.deb",
          "sed": "sed_4.9-2_amd64.deb", "tar": "tar_1.35+dfsg-3.1+deb13u1_amd64.deb"}


def use_outputs(monkeypatch, root):
    monkeypatch.setattr(paths, "RUNS", root / "runs")
    monkeypatch.setattr(paths, "RESULTS", root / "results")


def debian_world(monkeypatch, cache, packages=BOOKWORM):
    """A built offline-real cache under ``cache`` holding one Debian task, ``debian_topic``, registered."""
    from xlt_utils.worlds import offline_real

    monkeypatch.setattr(paths, "CACHE", cache)
    root = cache / "offline-real"
    entry = {"name": "debian_topic", "format": "classification", "metric": "accuracy", "labels": ["files", "system"],
             "languages": ["de", "en"], "eval_split": "test",
             "splits": {"train": ["en"], "dev": ["en"], "test": ["de", "en"]},
             "source": {"dir": "tasks/debian_topic", "corpus": "debian", "license": "GPL"}}
    (root / "tasks" / "debian_topic").mkdir(parents=True)
    (root / "tasks" / "manifest.json").write_text(json.dumps({"version": 1, "tasks": [entry]}))
    for split, lang in (("train", "en"), ("dev", "en"), ("test", "de"), ("test", "en")):
        (root / "tasks" / "debian_topic" / f"{split}-{lang}.jsonl").write_text(
            json.dumps({"id": f"{split}-0", "text": f"Datei {lang} (apt {packages['apt']})", "label": "files"}) + "\n")
    (root / "corpora").mkdir()
    (root / "corpora" / "debian.meta.json").write_text(json.dumps(
        {"sha256": "c" * 64, "packages": {p: {"file": f, "sha256": "d" * 64} for p, f in packages.items()}}))
    (root / ".tasks.stamp.json").write_text(json.dumps({"inputs": {"version": 5}}))
    monkeypatch.setitem(T._REGISTRY, "debian_topic", offline_real._task_of(entry, True))
    return root / "tasks" / "debian_topic"


def test_offline_real_hash_is_stable_sensitive_and_says_where_the_data_came_from(tmp_path, monkeypatch):
    folder = debian_world(monkeypatch, tmp_path / "cache")
    first = P.task_data("debian_topic")
    assert first["world"] == "offline-real" and len(first["sha256"]) == 64
    assert first["summary"] == "Debian 12 (bookworm)"
    assert first["facts"]["debian_release"] == "Debian 12 (bookworm)" and first["facts"]["task_builder_version"] == 5
    assert first["facts"]["packages"] == {"apt": "2.6.1", "bison": "2:3.8.2+dfsg-1+b1", "sed": "4.9-1+deb12u1",
                                          "tar": "1.34+dfsg-1.2+deb12u1"}
    P.clear_cache()
    assert P.task_data("debian_topic") == first  # stable
    f = folder / "test-de.jsonl"  # one byte of one file, same size
    data = bytearray(f.read_bytes())
    data[data.index(b"D")] = ord(b"d")
    f.write_bytes(bytes(data))
    P.clear_cache()
    changed = P.task_data("debian_topic")
    assert changed["sha256"] != first["sha256"] and changed["facts"] == first["facts"]
    # a task not built here has no hash
    shutil.rmtree(folder)
    assert P.task_data("debian_topic")["sha256"] is None


@pytest.mark.parametrize("versions, release", [
    ({p: P.debian_version(f) for p, f in TRIXIE.items()}, "Debian 13 (trixie)"),
    ({"apt": "2.2.4", "sed": "4.7-1"}, "Debian 11 (bullseye)"),  # no +debNN suffix: apt's series says
    ({"sed": "4.7-1"}, "unknown"),
])
def test_debian_release_is_read_from_the_package_versions(versions, release):
    assert P.debian_release(versions) == release


def test_synth_and_xtreme_records():
    a, b = P.task_data("synth_xnli"), P.task_data("synth_mnli")
    assert a["world"] == "synth" and a["sha256"] != b["sha256"] and a["facts"]["grammar_version"]
    assert P.task_data("synth_xnli") == a
    x = P.task_data("xnli")
    assert x["world"] == "xtreme" and "google/xtreme@" in x["facts"]["sources"]
    assert P.task_data("no_such_task") == {"world": None, "sha256": None, "summary": "not a task here", "facts": {}}


def test_bundle_records_its_task_data_and_an_import_of_other_data_warns(tmp_path, monkeypatch):
    g = G.expand(STUDY, PROFILE)
    use_outputs(monkeypatch, tmp_path / "a")
    write_fake_runs(STUDY, PROFILE)
    R.collect()
    meta = R.export_bundle(STUDY, PROFILE, tmp_path / "bundle")
    assert meta["runs"] == sorted(c.run_id for c in g.cells)  # run ids as they were
    on_disk = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert set(on_disk["task_data"]) == {"synth_mnli", "synth_xnli", "synth_tatoeba"}
    for task, rec in on_disk["task_data"].items():
        assert rec == P.task_data(task) and rec["world"] == "synth"

    # the same bundle with the NLI-like data of another generator version
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "bundle", other)
    meta2 = json.loads((other / "bundle.json").read_text())
    here = meta2["task_data"]["synth_xnli"]
    meta2["task_data"]["synth_xnli"] = {**here, "sha256": "1a2b3c4d5e6f" + "0" * 52,
                                        "summary": "synth generator, grammar 1",
                                        "facts": {**here["facts"], "grammar_version": "1"}}
    meta2["runs"] = meta2["runs"][:1]  # another bundle (its own digest)
    (other / "bundle.json").write_text(json.dumps(meta2))

    use_outputs(monkeypatch, tmp_path / "b")
    lines: list[str] = []
    R.import_bundle(tmp_path / "bundle", out=lines.append)  # the same data: silent
    assert [x for x in lines if "warning" in x] == [] and "before bundles recorded" not in lines[-1]
    lines.clear()
    R.import_bundle(other, out=lines.append)
    warn = [x for x in lines if "warning" in x]
    assert len(warn) == 2  # against the data here and against the bundle imported before
    for w, where in zip(warn, ("here", "imported bundle paper__smoke__")):
        assert "\n" not in w
        assert (f"[results] warning: {other}: synth_xnli (synth): bundle data from synth generator, grammar 1 sha256 "
                f"1a2b3c4d5e6f, {where}") in w
        assert f"grammar {here['facts']['grammar_version']} sha256 {here['sha256'][:12]}" in w
        assert "(differ: grammar_version 1 vs 2)" in w and w.endswith("arms from different data should not be compared")
    assert len(R.imported_bundles()) == 2  # imported all the same, nothing overwritten
    kept = {len(m["runs"]): m for m in (json.loads((b / "bundle.json").read_text()) for b in R.imported_bundles())}
    assert kept[len(g.cells)]["task_data"]["synth_xnli"] == here and kept[1] == meta2


def fake_bundle(d, task_data=None):
    d.mkdir(parents=True)
    meta = {"study": STUDY, "profile": PROFILE, "runs": [f"eval/{d.name}"], "pretrain_encoders_sha256": {}}
    if task_data is not None:
        meta["task_data"] = task_data
    (d / R.BUNDLE_JSON).write_text(json.dumps(meta))
    pd.DataFrame({"study": [STUDY], "profile": [PROFILE], "run_id": [f"eval/{d.name}"]}).to_csv(d / "metrics.csv")
    return d


def test_debian_bundles_of_two_releases_warn_with_the_release(tmp_path, monkeypatch):
    use_outputs(monkeypatch, tmp_path / "out")
    debian_world(monkeypatch, tmp_path / "cache12")
    b12 = P.task_data("debian_topic")
    P.clear_cache()
    debian_world(monkeypatch, tmp_path / "cache13", TRIXIE)
    b13 = P.task_data("debian_topic")
    monkeypatch.setattr(paths, "CACHE", tmp_path / "none")  # not built on the importing machine
    lines: list[str] = []
    R.import_bundle(fake_bundle(tmp_path / "bookworm", {"debian_topic": b12}), out=lines.append)
    R.import_bundle(fake_bundle(tmp_path / "trixie", {"debian_topic": b13}), out=lines.append)
    (warn,) = [x for x in lines if "warning" in x]
    assert (f"debian_topic (offline-real): bundle data from Debian 13 (trixie) sha256 {b13['sha256'][:12]}, imported "
            f"bundle paper__smoke__") in warn
    assert (f"Debian 12 (bookworm) sha256 {b12['sha256'][:12]} (differ: debian_release Debian 13 (trixie) vs Debian "
            "12 (bookworm), packages.apt 3.0.3 vs 2.6.1, packages.bison 2:3.8.2+dfsg-1+b2 vs 2:3.8.2+dfsg-1+b1, "
            "packages.sed 4.9-2 vs 4.9-1+deb12u1 +1 more)") in warn


def test_a_bundle_from_before_the_record_imports_as_before(tmp_path, monkeypatch):
    use_outputs(monkeypatch, tmp_path / "out")
    lines: list[str] = []
    R.import_bundle(fake_bundle(tmp_path / "old"), out=lines.append)
    assert len(lines) == 1 and "warning" not in lines[0]
    assert lines[0].endswith("(exported before bundles recorded their task data: none to compare)")
    assert "task_data" not in json.loads((R.imported_bundles()[0] / "bundle.json").read_text())
