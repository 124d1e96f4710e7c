"""Synth generator invariants: determinism, gold labels, exact alignment, answer spans, disjoint splits, cards."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from xlt_utils.errors import XLTError
from xlt_utils.synth import builders
from xlt_utils.synth import world as W
from xlt_utils.synth.grammar import NER_TAGS, UPOS, align, realise
from xlt_utils.synth.languages import (
    CHAIN,
    LANGUAGE_IDS,
    LanguageSpec,
    distances,
    get_language,
    language_card,
    lexicon,
)

SMALL = {"n_train": 60, "n_dev": 20, "n_test": 30}


def _digest(kind: str, lang: str, **opts) -> str:
    recs = [builders.build_records(kind, s, lang, **opts) for s in ("train", "dev", "test") if
            not (kind == "retrieval" and s == "train")]
    return hashlib.sha256(json.dumps(recs, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("kind", sorted(builders.KINDS))
def test_same_seed_same_bytes(kind):
    a = _digest(kind, "hi_like", **SMALL)
    builders._items.cache_clear()  # regenerate from scratch, not from the cache
    lexicon.cache_clear()
    assert _digest(kind, "hi_like", **SMALL) == a
    assert _digest(kind, "hi_like", seed=7, **SMALL) != a


def _sentences(n=150, seed=0):
    sm = W.Sampler(random.Random(seed))
    return [sm.sentence(complex_p=0.3, rel_p=0.3, neg_p=0.3, name_p=0.6) for _ in range(n)]


def test_gold_labels_match_tokens_and_iob2_is_valid():
    for lang in LANGUAGE_IDS:
        for s in _sentences(60):
            toks = realise(s, lang)
            assert all(t.form and " " not in t.form for t in toks)
            assert all(t.pos in UPOS and t.ner in NER_TAGS for t in toks)
            for prev, t in zip([None] + toks[:-1], toks):
                if t.ner.startswith("I-"):
                    assert prev is not None and prev.ner[2:] == t.ner[2:], (lang, [(x.form, x.ner) for x in toks])
            assert all((t.ner != "O") == (t.pos == "PROPN") for t in toks)


def test_alignment_is_exact_and_one_to_one():
    content = {"NOUN", "VERB", "ADJ", "PROPN", "NUM"}
    for lang in LANGUAGE_IDS:
        for s in _sentences(60, seed=1):
            en, other = realise(s, "en"), realise(s, lang)
            pairs = align(other, en)
            assert len({j for _, j in pairs}) == len(pairs)  # one-to-one
            for i, j in pairs:  # same node; content words keep their POS (function words may differ: 's / of)
                assert other[i].node == en[j].node
                assert other[i].pos == en[j].pos or other[i].pos not in content
            # every content word has its counterpart (same node) in English
            aligned = {i for i, _ in pairs}
            assert all(i in aligned for i, t in enumerate(other) if t.pos in content)


def test_script_and_order_controls():
    s = _sentences(20, seed=2)
    for x in s:
        en, ex, inv = realise(x, "en"), realise(x, "en_x"), realise(x, "en_inv")
        assert [t.node for t in ex] == [t.node for t in en]          # same order
        assert not ({t.form for t in ex} & {t.form for t in en}) - {".", "?"}  # disjoint vocabulary
        assert [t.node for t in inv] == [t.node for t in en][::-1]    # reversed


def test_qa_answers_inside_context_and_retrieval_gold():
    for lang in ("en", "ja_like", "en_inv", "sw5"):
        for r in builders.build_records("qa", "test", lang, **SMALL):
            (text,), (start,) = r["answers"]["text"], r["answers"]["answer_start"]
            assert text and r["context"][start:start + len(text)] == text
        recs = builders.build_records("retrieval", "test", lang, **SMALL)
        cands = {r["id"] for r in recs if r["side"] == "candidate"}
        assert all(set(r["gold"]) <= cands and r["gold"] for r in recs if r["side"] == "query")


@pytest.mark.parametrize("kind", sorted(builders.KINDS))
def test_splits_are_disjoint(kind):
    k = builders.get_kind(kind)
    keys = {s: {k.key(it) for it in builders.items(kind, s, **SMALL)} for s in ("train", "dev", "test")}
    assert not keys["train"] & keys["dev"] and not keys["train"] & keys["test"] and not keys["dev"] & keys["test"]


def test_nli_labels_balanced_and_hypothesis_negation_uninformative():
    recs = builders.build_records("nli", "train", "en", n_train=3000, n_dev=10, n_test=10)
    by = {}
    for r in recs:
        by.setdefault(r["label"], []).append(" not " in f" {r['text_b']} ")
    assert all(800 < len(v) < 1200 for v in by.values())
    assert all(0.35 < sum(v) / len(v) < 0.65 for v in by.values())


def test_cards_and_distances():
    assert distances("en", "en_x") == {"d_syn": 0.0, "d_morph": 0.0, "d_lex": 1.0, "d_script": 1.0}
    assert distances("en", "en")["d_syn"] == 0.0 and distances("en", "en")["d_lex"] == 0.0
    chain = [distances("en", f"sw{i}")["d_syn"] for i in range(6)]
    assert chain == sorted(chain) and len(set(chain)) == 6 and chain[0] == 0.0
    assert distances("en", "en_inv")["d_syn"] >= 0.9
    assert distances("en", "lx60")["d_lex"] < distances("en", "lx0")["d_lex"]
    for lang in LANGUAGE_IDS:
        card = json.loads(json.dumps(language_card(lang)))
        assert set(card["distances"]) == set(LANGUAGE_IDS)
        assert card["distances"][lang]["d_syn"] == 0.0
        for o in LANGUAGE_IDS:
            assert card["distances"][o] == distances(o, lang)  # symmetric
    assert len(CHAIN) == 10


def test_the_chain_changes_word_order_only():
    # sw1..sw5 have sw0's lexicon, so a chain step changes the order and nothing else: same words, same counts
    base = lexicon("sw0")
    for i in range(1, 6):
        assert lexicon(f"sw{i}") == base and distances("sw0", f"sw{i}")["d_lex"] == 0.0
        assert distances("sw0", f"sw{i}")["d_morph"] == 0.0
    # the words of each sentence are sw0's words (articles dropped from sw2 on: the multiset can only shrink)
    from collections import Counter
    s0 = builders.build_records("nli", "test", "sw0", n_train=10, n_dev=10, n_test=40)
    for i in range(1, 6):
        si = builders.build_records("nli", "test", f"sw{i}", n_train=10, n_dev=10, n_test=40)
        for a, b in zip(s0, si):
            assert a["label"] == b["label"]
            for f in ("text_a", "text_b"):
                wa, wb = Counter(a[f].split()), Counter(b[f].split())
                assert (wa == wb) if i == 1 else (wb <= wa)
    # grammar 2 changed the chain only: the other languages keep the lexicons of grammar 1 (hashes of grammar 1)
    from xlt_utils.synth.languages import lexicon_hash
    assert {lg: lexicon_hash(lg) for lg in ("sw0", "lx0", "fr_like")} == {
        "sw0": "bc7c36417cfe7d82", "lx0": "e4d30f1c336f4e2f", "fr_like": "95bf43c9749dcc9f"}


def test_bad_knobs_fail_with_valid_choices():
    with pytest.raises(XLTError, match="valid:"):
        LanguageSpec("zz", switches=("sov",))
    with pytest.raises(XLTError, match="valid:"):
        get_language("klingon")
    with pytest.raises(XLTError, match="valid:"):
        builders.build_records("nope", "test", "en")


def test_bytes_identical_across_processes():
    """Set iteration or hash() leaking into generation would differ between interpreter runs."""
    import os
    import subprocess
    import sys

    code = ("import json,hashlib;from xlt_utils.synth import builders as b;"
            "r=[b.build_records(k,'test','ja_like',n_train=5,n_dev=5,n_test=20) for k in sorted(b.KINDS)];"
            "print(hashlib.sha256(json.dumps(r,ensure_ascii=False,sort_keys=True).encode()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    recs = [builders.build_records(k, "test", "ja_like", n_train=5, n_dev=5, n_test=20) for k in sorted(builders.KINDS)]
    assert out.strip() == hashlib.sha256(json.dumps(recs, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
