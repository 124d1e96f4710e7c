"""Task builders: language-independent *items* (LFs with labels by construction) → records in any language.

Each kind (``nli``, ``paraphrase``, ``pos``, ``ner``, ``qa``, ``retrieval``, ``copa``, ``hellaswag``, ``qq``,
``sentiment``) has an item sampler and a realiser into the exact record schema of its format
(:mod:`xlt_utils.formats.schema`). Items of all splits are drawn together so that splits are disjoint (a
test item's key never occurs in dev or train); the same items are realised in every language, so a record id
names the same meaning in every language (parallel dev/test, translate-train style train sets).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from xlt_utils.errors import XLTError, unknown
from xlt_utils.synth import world as W
from xlt_utils.synth.grammar import NER_TAGS, UPOS, realise, realiser, text
from xlt_utils.synth.languages import get_language, to_script

WORLD_SEED = 0  # the world's frequency ranks; task seeds only change which items are drawn
NLI_LABELS = ("entailment", "neutral", "contradiction")
BINARY = ("0", "1")
SENTIMENT = ("negative", "positive")


# --- NLI: natural-logic edits -----------------------------------------------------------------------------

def _generalise(sm: W.Sampler, c: W.Clause) -> W.Clause | None:
    """A clause ``g`` entailed by positive ``c`` (hypernym, dropped modifier or dropped adjunct), or None."""
    rng = sm.rng
    opts: list[Callable[[], W.Clause]] = []
    for role in ("subj", "obj"):
        np = getattr(c, role)
        if np is None or np.kind != "noun":
            continue
        if np.head in W.HYPERNYM:
            opts.append(lambda role=role, np=np: replace(c, **{role: replace(np, head=W.HYPERNYM[np.head],
                                                                               adj=np.adj if np.adj and W.ADJ_CATS[np.adj] is None else None)}))
        if np.adj:
            opts.append(lambda role=role, np=np: replace(c, **{role: replace(np, adj=None)}))
    if c.loc is not None:
        opts.append(lambda: replace(c, loc=None, loc_front=False))
    return rng.choice(opts)() if opts else None


def _antonym(c: W.Clause) -> W.Clause | None:
    """The clause with one adjective replaced by its antonym; only on definite or named referents, where
    "big" and "small" describe the same thing and so contradict."""
    if c.verb == "be" and c.adj:
        return replace(c, adj=W.ANTONYM[c.adj]) if c.subj.det in ("def", "none") else None
    for role in ("subj", "obj"):
        np = getattr(c, role)
        if np is not None and np.kind == "noun" and np.adj and np.det == "def" and np.poss is None:
            return replace(c, **{role: replace(np, adj=W.ANTONYM[np.adj])})
    return None


def nli_item(sm: W.Sampler) -> tuple[W.Clause, W.Clause, str]:
    """(premise, hypothesis, label) by a natural-logic construction, label drawn first (uniform).

    With ``s ⊨ g`` (hypernym, dropped modifier or adjunct), ``a`` = ``s`` with an antonym adjective, and ``¬``
    sentential negation, the constructions are

    - entailment: ``(s, g)``, ``(¬g, ¬s)``, copular ``(s, ¬a)``
    - neutral: ``(¬s, ¬g)``, ``(g, s)``, ``(¬s, ¬a)``, ``(g, ¬s)``, ``(¬s, g)``, copular ``(¬s, a)``
    - contradiction: ``(s, a)``, ``(s, ¬g)``, ``(¬g, s)``

    so every word-difference signature (more/less specific, negation added/removed, antonym) occurs under
    two or more labels: the label needs the polarity × direction interaction, not a lexical cue. Identity
    negation toggles and sibling swaps are left out on purpose (each would be a one-label cue).
    """
    rng = sm.rng
    label = rng.choice(NLI_LABELS)
    N = W.with_neg
    while True:
        s = sm.clause(kind=rng.choice(("tv", "tv", "iv", "cop")), neg_p=0.0, loc_p=0.5, adj_p=0.6, rel_p=0.0)
        g = _generalise(sm, s)
        if g is None:
            continue
        a = _antonym(s)
        cop = s.verb == "be"
        if label == "entailment":
            cands = [(s, g), (N(g, True), N(s, True))] + ([(s, N(a, True))] if a is not None and cop else [])
        elif label == "neutral":
            cands = [(N(s, True), N(g, True)), (g, s), (g, N(s, True)), (N(s, True), g)]
            if a is not None:
                cands.append((N(s, True), N(a, True)))
                if cop:
                    cands.append((N(s, True), a))
        else:
            cands = [(s, N(g, True)), (N(g, True), s)] + ([(s, a)] if a is not None else [])
        p, h = rng.choice(cands)
        return p, h, label


# --- paraphrase (PAWS-like) and question pairs (QQP-like) -------------------------------------------------

_SWAPPABLE = ("see", "like", "hate", "help", "call", "find", "visit")


def para_item(sm: W.Sampler, question: bool = False) -> tuple[W.Clause, W.Clause, str]:
    """(a, b, "1"|"0"): same words, same bag; paraphrase = adjunct moved, non-paraphrase = roles or modifiers
    swapped (with the adjunct also moved half the time)."""
    rng = sm.rng
    v = rng.choice(_SWAPPABLE)
    subj = sm.arg(("name", "person"), name_p=0.6, adj_p=0.5)
    obj = sm.arg(("name", "person", "animal"), name_p=0.5, adj_p=0.5)
    while obj == subj:
        obj = sm.arg(("name", "person", "animal"), name_p=0.5, adj_p=0.5)
    a = W.Clause(v, subj, obj=obj, tense=rng.choice(("past", "present")), loc=sm.location(),
                 loc_front=rng.random() < 0.5, wh=rng.choice(("subj", "obj")) if question else None)
    if rng.random() < 0.5:
        b = replace(a, loc_front=not a.loc_front)
        if a.subj.kind == "coord" and rng.random() < 0.5:
            b = replace(b, subj=W.NP("coord", a.subj.other.head, det="none", number="pl", full=a.subj.other.full,
                                     other=replace(a.subj, kind="person", other=None, number="sg")))
        return a, b, "1"
    b = replace(a, subj=a.obj, obj=a.subj)
    if a.subj.kind == "noun" and a.obj.kind == "noun" and a.subj.adj != a.obj.adj and rng.random() < 0.4:
        b = replace(a, subj=replace(a.subj, adj=a.obj.adj), obj=replace(a.obj, adj=a.subj.adj))
    if b == a:
        return para_item(sm, question)
    if rng.random() < 0.5:
        b = replace(b, loc_front=not b.loc_front)
    return a, b, "0"


# --- causal scripts (XCOPA-, HellaSwag-like) --------------------------------------------------------------

def _script_clause(sm: W.Sampler, tmpl: tuple, x: W.NP) -> W.Clause:
    kind = tmpl[0]
    if kind == "cop":
        return W.Clause("be", x, adj=tmpl[1])
    if kind == "iv":
        return W.Clause(tmpl[1], x)
    cat = tmpl[2]
    obj = W.NP("noun", cat, det="def") if cat not in W.NOUNS else sm.noun_np((cat,), adj_p=0.2, poss_p=0, pl_p=0)
    return W.Clause(tmpl[1], x, obj=obj)


def _valid(cause: tuple, effect: tuple) -> bool:
    return any(c[:2] == cause[:2] and e[:2] == effect[:2] for c, e in W.SCRIPTS)


def copa_item(sm: W.Sampler, n_choices: int = 2) -> tuple[W.Clause, str, list[W.Clause], int]:
    """(premise, "cause"|"effect", choices, label): distractors are the same side of other scripts and are
    never a valid pair with the premise."""
    rng = sm.rng
    i = rng.randrange(len(W.SCRIPTS))
    cause, effect = W.SCRIPTS[i]
    ask = rng.choice(("cause", "effect")) if n_choices == 2 else "effect"
    x = sm.arg(("name", "person"), name_p=0.7, adj_p=0.0)
    premise_t, answer_t = (effect, cause) if ask == "cause" else (cause, effect)
    pool = []
    for c, e in W.SCRIPTS:
        d = c if ask == "cause" else e
        ok = not (_valid(d, effect) if ask == "cause" else _valid(cause, d))
        if ok and d[:2] not in [p[:2] for p in pool]:
            pool.append(d)
    distractors = rng.sample(pool, n_choices - 1)
    label = rng.randrange(n_choices)
    choices = [_script_clause(sm, t, x) for t in distractors]
    choices.insert(label, _script_clause(sm, answer_t, x))
    return _script_clause(sm, premise_t, x), ask, choices, label


# --- sentiment (SST-like) ---------------------------------------------------------------------------------

def sentiment_item(sm: W.Sampler) -> tuple[W.Clause, str]:
    """(clause, label): exactly one sentiment carrier (evaluative adjective or like/hate), flipped by negation."""
    rng = sm.rng
    neg = rng.random() < 0.4
    r = rng.random()
    if r < 0.4:
        subj = sm.arg(tuple(W.NOUNS) + ("name",), name_p=0.2, adj_p=0.0)
        pol = rng.choice((1, -1))
        adj = rng.choice(("good", "nice") if pol > 0 else ("bad", "awful"))
        c = W.Clause("be", subj, adj=adj, tense=rng.choice(("past", "present")), neg=neg)
    elif r < 0.7:
        v = rng.choice(tuple(W.SENTIMENT_VERBS))
        pol = W.SENTIMENT_VERBS[v]
        obj = sm.noun_np(tuple(W.NOUNS), adj_p=0.0)
        c = W.Clause(v, sm.arg(("name", "person"), adj_p=0.0), obj=obj, neg=neg, loc=sm.location() if rng.random() < 0.3 else None)
    else:
        pol = rng.choice((1, -1))
        adj = rng.choice(("good", "nice") if pol > 0 else ("bad", "awful"))
        v = rng.choice(("buy", "find", "see", "visit", "eat"))
        subj_cats, obj_cats = W.TRANSITIVE[v]
        obj = replace(sm.noun_np(obj_cats, adj_p=0.0), adj=adj)
        c = W.Clause(v, sm.arg(subj_cats, adj_p=0.0), obj=obj, neg=neg)
    return c, SENTIMENT[(pol * (-1 if neg else 1) + 1) // 2]


# --- QA stories (XQuAD-, SQuAD-like) ----------------------------------------------------------------------

def qa_item(sm: W.Sampler) -> tuple[tuple[W.Clause, ...], int, str]:
    """(story clauses, index of the questioned clause, questioned role): verbs are distinct within a story so
    the question has exactly one answer."""
    rng = sm.rng
    n = rng.randint(3, 5)
    story: list[W.Clause] = []
    verbs: set[str] = set()
    while len(story) < n:
        c = sm.clause(kind="tv", neg_p=0.0, loc_p=0.5, rel_p=0.05)
        if c.verb in verbs:
            continue
        verbs.add(c.verb)
        story.append(c)
    q = rng.randrange(n)
    roles = ["subj", "obj"] + (["loc"] if story[q].loc is not None else [])
    return tuple(story), q, rng.choice(roles)


# --- item kinds and records -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """A task kind: format, labels, item sampler, record realiser, disjointness key, sizes."""

    format: str
    labels: tuple[str, ...] | None
    sample: Callable[[W.Sampler, Mapping[str, Any]], Any]
    record: Callable[[Any, str, str], dict]
    key: Callable[[Any], Any]
    sizes: tuple[int, int, int]  # default n_train, n_dev, n_test


def _tagging(field: str) -> Callable[[Any, str, str], dict]:
    def rec(item, lang, rid):
        toks = realise(item, lang)
        return {"id": rid, "tokens": [t.form for t in toks], "tags": [getattr(t, field) for t in toks]}
    return rec


def _pair(item, lang, rid):
    a, b, label = item
    return {"id": rid, "text_a": text(realise(a, lang)), "text_b": text(realise(b, lang)), "label": label}


def _qword(word: str, lang: str) -> str:
    spec = get_language(lang)
    return to_script(realiser(lang).w(f"f:{word}"), spec.script)


def _copa(item, lang, rid):
    premise, ask, choices, label = item
    return {"id": rid, "context": text(realise(premise, lang)), "question": _qword(ask, lang),
            "choices": [text(realise(c, lang)) for c in choices], "label": label}


def _hellaswag(item, lang, rid):
    premise, _, choices, label = item
    return {"id": rid, "context": text(realise(premise, lang)), "question": "",
            "choices": [text(realise(c, lang)) for c in choices], "label": label}


def _sentiment(item, lang, rid):
    return {"id": rid, "text": text(realise(item[0], lang)), "label": item[1]}


def _qa(item, lang, rid):
    story, q, role = item
    sents = [realise(c, lang) for c in story]
    context, start = "", None
    answer = ""
    prefix = {"subj": "subj.", "obj": "obj.", "loc": "loc.np."}[role]
    for i, toks in enumerate(sents):
        if context:
            context += " "
        if i == q:
            idx = [k for k, t in enumerate(toks) if t.node.startswith(prefix) and t.node != f"{prefix}case"]
            lo, hi = min(idx), max(idx)
            if idx != list(range(lo, hi + 1)):
                raise XLTError(f"internal: answer span of {rid} in {lang} is not contiguous")
            start = len(context) + len(" ".join(t.form for t in toks[:lo])) + (1 if lo else 0)
            answer = " ".join(t.form for t in toks[lo:hi + 1])
        context += text(toks)
    question = text(realise(replace(story[q], wh=role), lang))
    return {"id": rid, "context": context, "question": question,
            "answers": {"text": [answer], "answer_start": [start]}}


def _ner_sample(sm, o):
    while True:
        s = sm.sentence(complex_p=0.1, name_p=0.7, loc_p=0.5, rel_p=0.05)
        if any(t.ner != "O" for t in realise(s, "en")):
            return s


KINDS: dict[str, Kind] = {
    "nli": Kind("pair_classification", NLI_LABELS, lambda sm, o: nli_item(sm), _pair, lambda it: it[0],
                (20000, 1000, 1000)),
    "paraphrase": Kind("pair_classification", BINARY, lambda sm, o: para_item(sm), _pair, lambda it: it[0],
                       (10000, 1000, 1000)),
    "qq": Kind("pair_classification", BINARY, lambda sm, o: para_item(sm, question=True), _pair,
               lambda it: it[0], (20000, 1000, 1000)),
    "pos": Kind("tagging", UPOS, lambda sm, o: sm.sentence(complex_p=0.15, rel_p=0.1, neg_p=0.2), _tagging("pos"),
                lambda it: it, (5000, 500, 1000)),
    "ner": Kind("tagging", NER_TAGS, _ner_sample, _tagging("ner"), lambda it: it, (5000, 500, 1000)),
    "qa": Kind("span_qa", None, lambda sm, o: qa_item(sm), _qa, lambda it: it[0], (5000, 500, 1000)),
    "copa": Kind("multiple_choice", None, lambda sm, o: copa_item(sm, 2), _copa, lambda it: (it[0], it[1]),
                 (2000, 200, 500)),
    "hellaswag": Kind("multiple_choice", None, lambda sm, o: copa_item(sm, 4), _hellaswag,
                      lambda it: (it[0], tuple(it[2])), (10000, 1000, 1000)),
    "sentiment": Kind("classification", SENTIMENT, lambda sm, o: sentiment_item(sm), _sentiment, lambda it: it[0],
                      (10000, 1000, 1000)),
    "retrieval": Kind("retrieval", None, lambda sm, o: sm.sentence(complex_p=0.1), None, lambda it: it,
                      (0, 200, 1000)),
}


def get_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise unknown("synth task kind", kind, KINDS)
    return KINDS[kind]


@lru_cache(maxsize=64)
def _items(kind: str, sizes: tuple[int, int, int], seed: int, topic: str) -> dict[str, list]:
    k = get_kind(kind)
    out: dict[str, list] = {}
    seen: set = set()
    # test first, then dev, then train: held-out splits keep their items whatever n_train is
    for split, n in (("test", sizes[2]), ("dev", sizes[1]), ("train", sizes[0])):
        sm = W.Sampler(random.Random(f"{kind}:{split}:{seed}:{topic}"), WORLD_SEED, topic)
        items, tries = [], 0
        while len(items) < n:
            it = k.sample(sm, {})
            key = k.key(it)
            tries += 1
            if tries > 50 * n + 1000:
                raise XLTError(f"synth {kind}/{split}: could not draw {n} distinct items (got {len(items)})")
            if key in seen:
                continue
            seen.add(key)
            items.append(it)
        out[split] = items
    return out


def items(kind: str, split: str, *, n_train: int | None = None, n_dev: int | None = None,
          n_test: int | None = None, seed: int = 0, topic: str = "general") -> list:
    """Language-independent items of one split (cached)."""
    k = get_kind(kind)
    sizes = (k.sizes[0] if n_train is None else n_train, k.sizes[1] if n_dev is None else n_dev,
             k.sizes[2] if n_test is None else n_test)
    return _items(kind, sizes, seed, topic)[split]


def build_records(kind: str, split: str, lang: str, *, prefix: str = "", shuffle_labels: bool = False,
                  **options: Any) -> list[dict]:
    """Records of one split in one language.

    Args:
        kind: one of :data:`KINDS`.
        split: ``train``, ``dev`` or ``test``.
        lang: a language id of :mod:`xlt_utils.synth.languages`.
        prefix: record id prefix (the task name).
        shuffle_labels: permute the labels across records (the shuffled-label control), seeded.
        **options: ``n_train``, ``n_dev``, ``n_test``, ``seed``, ``topic``.

    Returns:
        Records in the schema of the kind's format.
    """
    k = get_kind(kind)
    get_language(lang)
    its = items(kind, split, **options)
    pre = f"{prefix or kind}-{split}-"
    if k.format == "retrieval":
        queries = [{"id": f"q{i}", "text": text(realise(s, lang)), "side": "query", "gold": [f"c{i}"]}
                   for i, s in enumerate(its)]
        cands = [{"id": f"c{i}", "text": text(realise(s, "en")), "side": "candidate", "gold": []}
                 for i, s in enumerate(its)]
        return queries + cands
    recs = [k.record(it, lang, f"{pre}{i}") for i, it in enumerate(its)]
    if shuffle_labels:
        labels = [r["label"] for r in recs]
        random.Random(f"shuffle:{prefix}:{split}:{options.get('seed', 0)}").shuffle(labels)
        for r, lab in zip(recs, labels):
            r["label"] = lab
    return recs
