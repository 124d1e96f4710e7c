"""Small local tasks of all six formats, in English and German, with a learnable signal.

Each task's data are JSON-lines files in the ``local`` world layout; the signal is simple on purpose (a
sentiment word decides the class, capitalised words are names...) so that a tiny model's loss falls within a
few steps.
"""

from __future__ import annotations

import random
from pathlib import Path

from xlt_utils.worlds.local import register_local_task, write_jsonl

LEX = {
    "en": {"good": "good", "bad": "bad", "the": "the", "film": "film", "was": "was", "very": "very",
           "book": "book", "is": "is", "city": "city", "lives": "lives", "in": "in", "where": "where",
           "does": "does", "live": "live", "yes": "yes", "no": "no", "it": "it", "rains": "rains",
           "so": "so", "umbrella": "takes an umbrella", "sun": "wears a hat", "and": "and", "not": "not"},
    "de": {"good": "gut", "bad": "schlecht", "the": "der", "film": "Film", "was": "war", "very": "sehr",
           "book": "Buch", "is": "ist", "city": "Stadt", "lives": "wohnt", "in": "in", "where": "wo",
           "does": "tut", "live": "wohnen", "yes": "ja", "no": "nein", "it": "es", "rains": "regnet",
           "so": "also", "umbrella": "nimmt einen Schirm", "sun": "trägt einen Hut", "and": "und", "not": "nicht"},
}
NAMES = ["Anna", "Bernd", "Clara", "David", "Emil", "Frieda", "Gustav", "Hanna"]
CITIES = ["Berlin", "Paris", "Rom", "Wien", "Oslo", "Prag"]
NOUNS = {"en": ["film", "book", "city"], "de": ["Film", "Buch", "Stadt"]}


def _w(lang: str, key: str) -> str:
    return LEX[lang][key]


def _classification(lang: str, n: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(n):
        label = rng.choice(["positive", "negative"])
        noun = rng.choice(NOUNS[lang])
        adj = _w(lang, "good" if label == "positive" else "bad")
        filler = " ".join(rng.choice(NOUNS[lang]) for _ in range(rng.randint(0, 6)))
        out.append({"id": f"{lang}-{i}", "text": f"{_w(lang, 'the')} {noun} {_w(lang, 'was')} "
                    f"{_w(lang, 'very')} {adj} {filler}".strip(), "label": label})
    return out


def _pair(lang: str, n: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(n):
        name, city = rng.choice(NAMES), rng.choice(CITIES)
        label = rng.choice(["entailment", "contradiction"])
        hyp_city = city if label == "entailment" else rng.choice([c for c in CITIES if c != city])
        neg = "" if label == "entailment" else f" {_w(lang, 'not')}"
        out.append({"id": f"{lang}-{i}", "text_a": f"{name} {_w(lang, 'lives')} {_w(lang, 'in')} {city}",
                    "text_b": f"{name} {_w(lang, 'lives')}{neg} {_w(lang, 'in')} {hyp_city}", "label": label})
    return out


def _tagging(lang: str, n: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(n):
        toks, tags = [], []
        name = rng.choice(NAMES)
        surname = rng.choice(NAMES) + "son"
        toks += [name, surname, _w(lang, "lives"), _w(lang, "in"), rng.choice(CITIES)]
        tags += ["B-PER", "I-PER", "O", "O", "B-LOC"]
        for _ in range(rng.randint(0, 4)):
            toks.append(rng.choice(NOUNS[lang]))
            tags.append("O")
        out.append({"id": f"{lang}-{i}", "tokens": toks, "tags": tags})
    return out


def _qa(lang: str, n: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(n):
        people = rng.sample(NAMES, 3)
        cities = [rng.choice(CITIES) for _ in people]
        sents = [f"{p} {_w(lang, 'lives')} {_w(lang, 'in')} {c}." for p, c in zip(people, cities)]
        # Long filler makes some contexts exceed one window, exercising doc-stride decoding.
        filler = " ".join(rng.choice(NOUNS[lang]) for _ in range(rng.randint(0, 40)))
        context = " ".join(sents) + (" " + filler if filler else "")
        k = rng.randrange(3)
        answer = cities[k]
        start = context.index(sents[k]) + len(sents[k]) - len(answer) - 1
        assert context[start : start + len(answer)] == answer
        out.append({"id": f"{lang}-{i}", "context": context,
                    "question": f"{_w(lang, 'where')} {_w(lang, 'does')} {people[k]} {_w(lang, 'live')}?",
                    "answers": {"text": [answer], "answer_start": [start]}})
    return out


def _mc(lang: str, n: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(n):
        name = rng.choice(NAMES)
        rain = rng.random() < 0.5
        premise = f"{_w(lang, 'it')} {_w(lang, 'rains')}" if rain else f"{_w(lang, 'it')} {_w(lang, 'rains')} {_w(lang, 'not')}"
        right, wrong = (_w(lang, "umbrella"), _w(lang, "sun")) if rain else (_w(lang, "sun"), _w(lang, "umbrella"))
        label = rng.randrange(2)
        choices = [f"{name} {right}", f"{name} {wrong}"] if label == 0 else [f"{name} {wrong}", f"{name} {right}"]
        out.append({"id": f"{lang}-{i}", "context": premise, "question": _w(lang, "so"), "choices": choices,
                    "label": label})
    return out


def _retrieval(lang: str, n: int, rng: random.Random) -> list[dict]:
    recs = []
    for i in range(n):
        name, city = NAMES[i % len(NAMES)], CITIES[(i * 7) % len(CITIES)]
        noun = NOUNS["en"][i % 3], NOUNS[lang][i % 3]
        recs.append({"id": f"q{i}", "text": f"{name} {_w(lang, 'lives')} {_w(lang, 'in')} {city} {noun[1]}",
                     "side": "query", "gold": [f"c{i}"]})
        recs.append({"id": f"c{i}", "text": f"{name} lives in {city} {noun[0]}", "side": "candidate", "gold": []})
    return recs


BUILDERS = {
    "classification": (_classification, {"labels": ["positive", "negative"]}),
    "pair_classification": (_pair, {"labels": ["entailment", "contradiction"]}),
    "tagging": (_tagging, {"labels": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]}),
    "span_qa": (_qa, {}),
    "multiple_choice": (_mc, {}),
    "retrieval": (_retrieval, {"retrieval_mode": "tatoeba"}),
}


def make_local_tasks(root: Path, n_train: int = 64, n_eval: int = 16) -> dict[str, str]:
    """Write and register one local task per format; returns format → task name."""
    names = {}
    for fmt, (build, extra) in BUILDERS.items():
        d = root / fmt
        rng = random.Random(fmt)
        if fmt != "retrieval":
            write_jsonl(d / "train-en.jsonl", build("en", n_train, rng))
        for lang in ("en", "de"):
            write_jsonl(d / f"dev-{lang}.jsonl", build(lang, n_eval, rng))
            write_jsonl(d / f"test-{lang}.jsonl", build(lang, n_eval, rng))
        langs = ["en", "de"]
        splits = {"dev": langs, "test": langs}
        if fmt != "retrieval":
            splits["train"] = ["en"]
        name = f"local_{fmt}"
        register_local_task(name, fmt, d, langs, splits=splits, **extra)
        names[fmt] = name
    return names
