"""Parallel pairs for the auxiliary contrastive objective, from catalogs held out of every retrieval evaluation.

The offline-real world's retrieval tasks (``django_*``, ``debian_*``, ``udhr_bitext``) are built from the Django,
Debian and UDHR corpora, and between them they evaluate 431 languages: no language of any packaged corpus with
more than a few dozen pairs is left out of all of them. So the auxiliary pairs are held out by *catalog* instead:
they come from Sphinx's gettext catalogs (PyPI ``sphinx==9.2.0``, BSD-2-Clause, pinned by sha256 in
:data:`xlt_utils.offline.fetch.PINS`), which no task reads, and a pair whose English or translated side also occurs
(case, punctuation and quote style ignored) in any retrieval task's data is dropped. Their *languages* are
evaluated by retrieval tasks, so a retrieval score of a language whose pairs trained the encoder is not zero-shot:
:func:`pair_set` names those languages (``not_zero_shot``), the intermediate run records them, and the results table
marks its descendants' retrieval rows in them ``zero_shot = False`` (:func:`xlt_utils.auxiliary.not_zero_shot`).

Files under the offline-real cache::

    aux/sphinx.jsonl.gz        every cleaned pair of the wheel's catalogs ({"lang", "key", "label", "en", "xx"})
    aux/sphinx.meta.json       artefact, licence, counts, sha256
    aux/pairs-<hash>.jsonl     one selected pair set (languages, pairs per language, overlap removed)
    aux/pairs-<hash>.json      its provenance: what it was built from and what was removed, with the file's sha256
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError, unknown
from xlt_utils.offline import catalogs, fetch
from xlt_utils.offline.layout import cache_dir

SOURCE = "sphinx"
LICENSE = "BSD-2-Clause (Sphinx translations)"
VERSION = 1  # bump when the cleaning or the selection below changes what a pair set holds
MIN_PAIRS = 100
# Cleaned pairs per language in the pinned wheel's catalogs, for the languages with at least MIN_PAIRS of them
# (one locale per language, as the other corpora). A constant, so that a parameter check needs no download; a test
# checks it against the built corpus.
# fmt: off
LANGUAGES: dict[str, int] = {
    "ca": 497, "el": 290, "es": 358, "et": 146, "fa": 346, "fr": 503, "gl": 387, "hi": 302, "id": 301, "ja": 351,
    "ka": 245, "ko": 355, "pl": 125, "ru": 431, "sk": 302, "sq": 487, "sv": 500, "tr": 260, "zh": 505,
}
# fmt: on


def aux_dir() -> Path:
    """``<offline-real cache>/aux``."""
    return cache_dir() / "aux"


def _loose(text: str) -> str:
    """A text with case, punctuation and quote style ignored (as the task builder's near-duplicate check)."""
    from xlt_utils.offline.taskdata import _loose as loose

    return loose(text)


def corpus_rows(wheel: Path) -> list[dict]:
    """The cleaned ``{"lang", "key", "label", "en", "xx"}`` pairs of every ``sphinx.po`` in the wheel."""
    from xlt_utils.offline.corpora import _finalise, _gettext_rows

    pat = re.compile(r"^sphinx/locale/([^/]+)/LC_MESSAGES/sphinx\.po$")
    rows: dict[str, list[dict]] = defaultdict(list)
    try:
        with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
            for name in sorted(z.namelist()):
                m = pat.match(name)
                found = _gettext_rows(catalogs.read_po(Path(z.extract(name, tmp))), SOURCE, SOURCE) if m else []
                if found:  # an empty catalog (``pt``: the translations are under pt_BR) is no candidate locale
                    rows[m.group(1)] += found
    except zipfile.BadZipFile as e:
        wheel.unlink(missing_ok=True)
        raise XLTError(f"{SOURCE}: {wheel.name} is not a valid wheel ({e}); deleted it, rerun make setup") from None
    out, _ = _finalise(rows)
    return out


def build_corpus(force: bool = False) -> dict:
    """Fetch the pinned Sphinx wheel and write ``aux/sphinx.jsonl.gz`` and its meta (skipped when up to date).

    Returns:
        The corpus meta: artefact, licence, pairs per language, sha256.
    """
    out = aux_dir()
    data, meta_path = out / f"{SOURCE}.jsonl.gz", out / f"{SOURCE}.meta.json"
    pin = fetch.PINS[SOURCE]
    if not force and data.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("artefact_sha256") == pin.sha256 and meta.get("version") == VERSION \
                and meta.get("sha256") == fetch.sha256_of(data):
            return meta
    rows = corpus_rows(fetch.fetch(SOURCE, cache_dir() / "downloads"))
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{SOURCE}.jsonl.gz.tmp"
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        for r in rows:
            f.write((json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    os.replace(tmp, data)
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r["lang"]] += 1
    meta = {"source": SOURCE, "version": VERSION, "artefact": pin.spec, "artefact_sha256": pin.sha256,
            "license": LICENSE, "n_pairs": len(rows), "pairs_per_language": dict(sorted(counts.items())),
            "sha256": fetch.sha256_of(data)}
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta


def retrieval_sets() -> list[dict[str, Any]]:
    """Every retrieval task of the offline-real world: name, source corpus, languages and the loose-normalised texts
    of all its splits (what a held-out pair must not contain)."""
    import xlt_utils.worlds.offline_real as world
    from xlt_utils.tasks import list_tasks

    out = []
    for task in list_tasks(world=world.WORLD):
        if task.format != "retrieval":
            continue
        texts: set[str] = set()
        for split in ("train", "dev", "test"):
            for lang in task.languages_for(split):
                texts.update(_loose(r["text"]) for r in world.load(task, split, lang))
        out.append({"task": task.name, "corpus": task.source.get("corpus"), "languages": list(task.languages),
                    "texts": texts})
    return out


def select(rows: Iterable[Mapping[str, Any]], languages: Sequence[str], per_language: int,
           retrieval: Sequence[Mapping[str, Any]], source: str = SOURCE) -> tuple[list[dict], dict[str, Any]]:
    """The held-out pair set: up to ``per_language`` pairs of each language, none sharing a text with a retrieval
    task, and what was held out and what was not.

    Args:
        rows: the source corpus (``{"lang", "key", "en", "xx"}``).
        languages: the pair languages.
        per_language: pairs kept per language (a seeded sample of those left after the overlap check).
        retrieval: :func:`retrieval_sets` (``task``, ``corpus``, ``languages``, ``texts``).
        source: the corpus the rows come from.

    Returns:
        ``(pairs, report)``: pairs sorted by language and key; the report has pairs per language, the pairs dropped
        for sharing a text with a retrieval task, and ``not_zero_shot``: per retrieval task, the pair languages it
        evaluates.

    Raises:
        XLTError: a retrieval task is built from ``source`` itself (the catalogs would not be held out), or a
            language has no pairs left.
    """
    shared = sorted(r["task"] for r in retrieval if r["corpus"] == source)
    if shared:
        raise XLTError(f"auxiliary pairs from {source} are not held out: retrieval task(s) {', '.join(shared)} are "
                       f"built from the same catalogs")
    seen = set().union(*(r["texts"] for r in retrieval)) if retrieval else set()
    by_lang: dict[str, list[dict]] = defaultdict(list)
    dropped: dict[str, int] = defaultdict(int)
    wanted = set(languages)
    for r in rows:
        if r["lang"] not in wanted:
            continue
        if _loose(r["en"]) in seen or _loose(r["xx"]) in seen:
            dropped[r["lang"]] += 1
            continue
        by_lang[r["lang"]].append({"lang": r["lang"], "key": r["key"], "en": r["en"], "xx": r["xx"]})
    pairs: list[dict] = []
    for lang in sorted(wanted):
        have = sorted(by_lang.get(lang, []), key=lambda p: p["key"])
        if not have:
            raise XLTError(f"auxiliary pairs: {source} has no held-out pairs in {lang!r}")
        pairs += sorted(random.Random(f"xlt-aux-pairs:{source}:{lang}").sample(have, min(per_language, len(have))),
                        key=lambda p: p["key"])
    counts: dict[str, int] = defaultdict(int)
    for p in pairs:
        counts[p["lang"]] += 1
    report = {"pairs_per_language": dict(sorted(counts.items())), "dropped_overlap": dict(sorted(dropped.items())),
              "retrieval_tasks": {r["task"]: r["corpus"] for r in retrieval},
              "not_zero_shot": {r["task"]: sorted(wanted & set(r["languages"])) for r in retrieval
                                if wanted & set(r["languages"])}}
    return pairs, report


def _manifest_sha256() -> str:
    path = cache_dir() / "tasks" / "manifest.json"
    return fetch.sha256_of(path) if path.exists() else "none"


def pair_set(languages: Sequence[str] | None, per_language: int) -> tuple[list[dict], dict[str, Any]]:
    """The cached held-out pair set for these languages (built on first use), and its provenance.

    Args:
        languages: pair languages (None: every language of :data:`LANGUAGES`).
        per_language: pairs per language.

    Returns:
        ``(pairs, provenance)``; the provenance (also ``aux/pairs-<hash>.json``) has ``hash``, ``path``, ``sha256``
        of the pair file, the corpus it was drawn from and :func:`select`'s report.
    """
    langs = sorted(languages) if languages is not None else sorted(LANGUAGES)
    bad = [lang for lang in langs if lang not in LANGUAGES]
    if bad:
        raise unknown(f"auxiliary pair language ({SOURCE} catalogs, >= {MIN_PAIRS} pairs):", bad[0], LANGUAGES)
    meta = build_corpus()
    spec = {"source": SOURCE, "version": VERSION, "corpus_sha256": meta["sha256"], "languages": langs,
            "per_language": per_language, "tasks_manifest_sha256": _manifest_sha256()}
    h = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    path, prov_path = aux_dir() / f"pairs-{h}.jsonl", aux_dir() / f"pairs-{h}.json"
    if path.exists() and prov_path.exists():
        prov = json.loads(prov_path.read_text())
        if prov.get("sha256") == fetch.sha256_of(path):
            with path.open(encoding="utf-8") as f:
                return [json.loads(line) for line in f], prov
    with gzip.open(aux_dir() / f"{SOURCE}.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    pairs, report = select(rows, langs, per_language, retrieval_sets())
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)
    prov = {**spec, "hash": h, "path": str(path.relative_to(cache_dir())), "sha256": fetch.sha256_of(path),
            "n_pairs": len(pairs), "artefact": meta["artefact"], "artefact_sha256": meta["artefact_sha256"],
            "license": LICENSE, **report}
    tmp = prov_path.with_name(prov_path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(prov, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, prov_path)
    return pairs, prov
