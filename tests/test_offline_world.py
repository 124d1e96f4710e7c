"""The offline-real world's registry and data: importable without the cache, complete after ``make setup``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xlt_utils import paths
from xlt_utils.errors import XLTError
from xlt_utils.offline.build import SNAPSHOT, cache_dir, snapshot_of
from xlt_utils.tasks import get_task, list_tasks
from xlt_utils.worlds import load_records, offline_real

built = pytest.mark.skipif(not offline_real.manifest_path().exists(),
                           reason="offline-real cache not built: run `make setup`")


@pytest.fixture
def no_cache(tmp_path, monkeypatch):
    """A world whose cache does not exist; the real registrations are restored afterwards."""
    monkeypatch.setattr(paths, "CACHE", tmp_path / "empty-cache")
    yield
    monkeypatch.undo()
    offline_real.register_tasks()


def test_registry_without_cache_uses_snapshot(no_cache):
    tasks = offline_real.register_tasks()
    names = {t.name for t in tasks}
    assert {"django_bitext", "django_mining", "django_topic"} <= names
    t = get_task("django_bitext")
    assert t.world == "offline-real" and t.source["built"] is False and len(t.languages) >= 50
    with pytest.raises(XLTError, match="make setup") as e:
        load_records("django_bitext", "test", t.languages[0])
    assert "\n" not in str(e.value)


def test_load_encoder_without_cache_says_how_to_build(no_cache):
    from xlt_utils.offline import load_encoder

    with pytest.raises(XLTError, match="make setup"):
        load_encoder()


def test_snapshot_languages_have_enough_pairs():
    snap = json.loads(SNAPSHOT.read_text())
    bitext = next(t for t in snap["tasks"] if t["name"] == "django_bitext")
    counts = bitext["counts"]["test"]
    assert len(counts) >= 50 and min(counts.values()) >= 100


@built
def test_snapshot_matches_built_manifest():
    manifest, is_built = offline_real.read_manifest()
    assert is_built
    assert snapshot_of(manifest) == json.loads(SNAPSHOT.read_text()), \
        "refresh the snapshot: python -m xlt_utils.offline.build --snapshot"


@built
def test_cli_lists_at_least_50_languages_with_100_pairs():
    out = subprocess.run([sys.executable, "-m", "xlt_utils", "tasks", "--world", "offline-real", "--json"],
                         capture_output=True, text=True, check=True).stdout
    tasks = {t["name"]: t for t in json.loads(out)}
    counts = tasks["django_bitext"]["source"]["counts"]["test"]
    assert sum(n >= 100 for n in counts.values()) >= 50
    assert all(t["world"] == "offline-real" for t in tasks.values())


@built
def test_every_task_loads_valid_records():
    for t in list_tasks(world="offline-real"):
        for split in ("train", "dev", "test"):
            for lang in t.languages_for(split)[:2]:
                recs = load_records(t, split, lang)  # validates the schema
                assert recs


@built
def test_real_splits_are_disjoint():
    t = get_task("django_topic")
    ids = {s: {r["id"] for r in load_records(t, s, "en")} for s in ("train", "dev", "test")}
    assert not (ids["train"] & ids["dev"] or ids["train"] & ids["test"] or ids["dev"] & ids["test"])
    for lang in t.languages[1:4]:
        assert {r["id"] for r in load_records(t, "test", lang)} <= ids["test"]
    m = get_task("django_mining")
    for lang in m.languages[:5]:
        dev = {r["text"] for r in load_records(m, "dev", lang)}
        test = {r["text"] for r in load_records(m, "test", lang)}
        assert not dev & test


@built
def test_typology_table_covers_world_languages():
    from xlt_utils.offline.typology import load_distances

    d = load_distances()
    en = d[d.lang1 == "en"].set_index("lang2")
    assert en.loc["de", "syntactic"] == pytest.approx(0.10, abs=0.02)  # reference: deu .10, fra .19, hin .38
    assert en.loc["fr", "syntactic"] == pytest.approx(0.19, abs=0.02)
    assert en.loc["hi", "syntactic"] == pytest.approx(0.38, abs=0.02)
    assert en.loc["de", "genetic"] == pytest.approx(0.46, abs=0.02)  # reference: deu .46, hin .87
    assert en.loc["hi", "genetic"] == pytest.approx(0.87, abs=0.02)
    langs = {lang for t in list_tasks(world="offline-real") for lang in t.languages}
    assert langs <= set(d.lang2)
    bitext = get_task("django_bitext").languages
    assert en.loc[list(bitext), "syntactic"].notna().mean() > 0.9


@built
def test_setup_is_idempotent():
    from xlt_utils.offline import build

    before = {p: p.stat().st_mtime_ns for p in (cache_dir() / "encoder").iterdir()}
    summary = build.build()
    assert summary["tasks"]["django_bitext"] >= 50
    assert {p: p.stat().st_mtime_ns for p in (cache_dir() / "encoder").iterdir()} == before


@built
def test_shuffled_label_controls_keep_inputs_and_label_counts():
    """``<task>_shuffled`` exists for the English classification intermediate tasks only; it keeps every input
    and the label distribution, permutes the labels (seeded, so the same every time), in every split."""
    from collections import Counter

    names = {t.name for t in list_tasks(world="offline-real")}
    assert {"rt_sentiment_shuffled", "uncertainty_shuffled"} <= names
    assert "brown_pos_shuffled" not in names and "upos12_shuffled" not in names  # tagging / a target: none
    ctrl = get_task("rt_sentiment_shuffled")
    assert ctrl.options["shuffle_labels"] and ctrl.options["control_of"] == "rt_sentiment"
    for split in ("train", "dev"):
        real, shuf = load_records("rt_sentiment", split, "en"), load_records(ctrl, split, "en")
        assert [r["text"] for r in real] == [r["text"] for r in shuf]
        assert Counter(r["label"] for r in real) == Counter(r["label"] for r in shuf)
        changed = sum(a["label"] != b["label"] for a, b in zip(real, shuf)) / len(real)
        assert 0.4 < changed < 0.6  # two balanced classes: a random permutation changes about half
        assert shuf == load_records(ctrl, split, "en")
