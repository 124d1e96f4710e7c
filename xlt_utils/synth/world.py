"""The synthetic world: entities, concepts and logical forms (LFs), and seeded samplers over them.

Everything language-independent lives here. An LF is a small frozen tree (:class:`NP`, :class:`Clause`,
:class:`Complex`); :mod:`xlt_utils.synth.grammar` realises it in any language with gold labels and alignment.

Concepts are keyed ``"n:dog"`` (noun), ``"a:big"`` (adjective), ``"v:see"`` (verb), ``"per:3"``/``"loc:4"``/
``"org:1"`` (named entities). English forms are the concept names themselves (see ``ENGLISH`` tables in
:mod:`xlt_utils.synth.lexicon`).

Frequencies are Zipfian with selectional preferences: a uniform world would make translations unidentifiable
from non-parallel text (reference/synthetic-world.md §3).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

# --- concept inventory -------------------------------------------------------------------------------------

NOUNS: dict[str, tuple[str, ...]] = {  # hypernym -> hyponyms
    "animal": ("dog", "cat", "horse", "cow", "bird", "goat", "fox", "duck"),
    "food": ("apple", "bread", "cheese", "cake", "soup", "egg", "banana", "carrot"),
    "vehicle": ("car", "bus", "truck", "bike", "boat", "train"),
    "tool": ("hammer", "rope", "drill", "spade", "ladder", "brush"),
    "instrument": ("guitar", "drum", "piano", "violin", "flute", "trumpet"),
    "building": ("house", "school", "church", "shop", "barn", "tower"),
    "plant": ("tree", "flower", "rose", "bush", "tulip", "fern"),
    "clothing": ("hat", "coat", "shirt", "shoe", "sock", "boot"),
    "person": ("teacher", "doctor", "farmer", "nurse", "pilot", "student", "singer", "waiter"),
}
HYPERNYM = {h: cat for cat, hs in NOUNS.items() for h in hs}
ANIMATE = ("animal", "person")

# adjective -> (antonym, categories it applies to; None = any)
ADJ_PAIRS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("big", "small", None), ("old", "new", None), ("fast", "slow", ("animal", "vehicle", "person")),
    ("clean", "dirty", None), ("heavy", "light", ("tool", "vehicle", "instrument", "food", "clothing")),
    ("cheap", "expensive", ("food", "vehicle", "tool", "instrument", "clothing", "plant")),
    ("good", "bad", None), ("nice", "awful", None), ("hot", "cold", ("food", "building")),
    ("loud", "quiet", ("animal", "instrument", "vehicle", "person")),
    ("happy", "sad", ANIMATE), ("tired", "rested", ANIMATE), ("hungry", "full", ANIMATE),
    ("sick", "healthy", ANIMATE),
)
ANTONYM = {**{a: b for a, b, _ in ADJ_PAIRS}, **{b: a for a, b, _ in ADJ_PAIRS}}
ADJ_CATS = {**{a: c for a, _, c in ADJ_PAIRS}, **{b: c for _, b, c in ADJ_PAIRS}}
ADJECTIVES = tuple(a for pair in ADJ_PAIRS for a in pair[:2])
# attributive adjectives that make sense in random sentences (mood adjectives are kept for predicates)
POSITIVE_ADJ = ("good", "nice", "happy")
NEGATIVE_ADJ = ("bad", "awful", "sad")

# verb -> (subject categories, object categories); "name" = person names, "org" = organisations
_ANY = tuple(NOUNS) + ("name",)
TRANSITIVE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "see": (ANIMATE + ("name",), _ANY),
    "like": (ANIMATE + ("name",), _ANY),
    "hate": (ANIMATE + ("name",), _ANY),
    "buy": (("person", "name", "org"), ("food", "vehicle", "tool", "instrument", "clothing", "plant")),
    "sell": (("person", "name", "org"), ("food", "vehicle", "tool", "instrument", "clothing", "plant")),
    "eat": (ANIMATE + ("name",), ("food",)),
    "cook": (("person", "name"), ("food",)),
    "drive": (("person", "name"), ("vehicle",)),
    "play": (("person", "name"), ("instrument",)),
    "fix": (("person", "name", "org"), ("vehicle", "tool", "instrument")),
    "visit": (("person", "name"), ("building", "person", "name", "org")),
    "paint": (("person", "name"), ("building", "vehicle")),
    "carry": (ANIMATE + ("name",), ("food", "tool", "instrument", "clothing", "plant")),
    "wash": (("person", "name"), ("vehicle", "clothing", "animal")),
    "find": (ANIMATE + ("name",), _ANY),
    "lose": (("person", "name"), ("tool", "clothing", "instrument")),
    "build": (("person", "name", "org"), ("building", "vehicle")),
    "help": (ANIMATE + ("name",), ("person", "animal", "name", "org")),
    "call": (("person", "name", "org"), ("person", "animal", "name")),
    "chase": (("animal",), ("animal", "person", "vehicle", "name")),
    "wear": (("person", "name"), ("clothing",)),
    "grow": (("person", "name"), ("plant", "food")),
}
INTRANSITIVE = ("sleep", "run", "laugh", "cry", "leave", "arrive", "sing", "smile", "fall", "work", "shout", "wait")
SENTIMENT_VERBS = {"like": 1, "hate": -1}

FIRST_NAMES = ("anna", "ben", "carla", "david", "elena", "frank", "grace", "hugo", "iris", "jack", "kate", "leo",
               "maria", "nick", "olga", "paul", "rosa", "sam", "tina", "victor")
LAST_NAMES = ("baker", "carter", "dixon", "evans", "fisher", "grant", "hayes", "irwin", "jones", "klein", "lopez",
              "moore")
PLACES = (("paris",), ("london",), ("cairo",), ("lima",), ("oslo",), ("rome",), ("delhi",), ("tokyo",),
          ("new", "york"), ("hong", "kong"), ("san", "diego"), ("buenos", "aires"))
ORGS = (("acme", "corp"), ("globex", "bank"), ("initech", "labs"), ("vortex", "group"), ("zenith", "media"),
        ("apex", "motors"), ("nova", "foods"), ("orbit", "air"))
# a person is a fixed (first, last) pair, so full names recur as multi-token entities
PEOPLE = tuple((FIRST_NAMES[i], LAST_NAMES[(i * 5) % len(LAST_NAMES)]) for i in range(len(FIRST_NAMES)))
NUMERALS = ("two", "three", "four", "five", "six", "seven", "eight", "nine")
LOC_PREPS = ("in", "near")

# (cause, effect) scripts for the causal tasks; X = the shared animate subject, slots filled at sampling time.
# Each tuple: (cause kind, cause args, effect kind, effect args); kinds: "cop" (X was ADJ), "tv" (X V the N-cat),
# "iv" (X V).
SCRIPTS: tuple[tuple[tuple, tuple], ...] = (
    (("cop", "tired"), ("iv", "sleep")),
    (("cop", "hungry"), ("tv", "eat", "food")),
    (("cop", "sad"), ("iv", "cry")),
    (("cop", "happy"), ("iv", "laugh")),
    (("tv", "lose", "tool"), ("tv", "buy", "tool")),
    (("cop", "sick"), ("tv", "visit", "doctor")),
    (("iv", "run"), ("cop", "tired")),
    (("tv", "eat", "food"), ("cop", "full")),
    (("tv", "find", "clothing"), ("cop", "happy")),
    (("cop", "cold"), ("tv", "wear", "clothing")),
    (("iv", "fall"), ("tv", "visit", "doctor")),
    (("tv", "hate", "food"), ("tv", "sell", "food")),
    (("iv", "work"), ("cop", "hungry")),
)


# --- logical forms -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NP:
    """A noun phrase.

    Attributes:
        kind: ``noun`` | ``person`` | ``place`` | ``org`` | ``coord`` (two people) | ``wh``.
        head: noun (``dog``), or entity index as a string for named entities.
        det: ``def`` | ``indef`` | ``num`` (with ``num``) | ``none`` (names).
        number: ``sg`` | ``pl``.
        adj: attributive adjective or ``None``.
        poss: index of a person possessor or ``None`` (then no article).
        rel: subject relative clause ``(verb, object NP)`` or ``None``.
        num: numeral word for ``det == "num"``.
        full: person named by first + last name (else first name only).
        other: second conjunct of a ``coord`` NP.
    """

    kind: str
    head: str
    det: str = "def"
    number: str = "sg"
    adj: str | None = None
    poss: int | None = None
    rel: tuple[str, NP] | None = None
    num: str | None = None
    full: bool = True
    other: NP | None = None

    @property
    def category(self) -> str:
        """Semantic category (``name``/``org``/``place`` for entities, the hypernym for nouns)."""
        if self.kind in ("person", "coord"):
            return "name"
        if self.kind in ("org", "place"):
            return self.kind
        return HYPERNYM.get(self.head, self.head)

    @property
    def animate(self) -> bool:
        return self.category in ANIMATE + ("name",)


@dataclass(frozen=True)
class Clause:
    """A clause: transitive (``obj``), intransitive, or copular (``verb == "be"`` with ``adj``).

    Attributes:
        verb: verb lemma or ``be``.
        subj: subject NP.
        obj: object NP (transitive verbs).
        adj: predicate adjective (copular clauses).
        tense: ``past`` | ``present``.
        neg: sentential negation.
        loc: locative adjunct ``(preposition, NP)`` or ``None``.
        loc_front: adjunct fronted to the start of the clause (a meaning-preserving alternation).
        wh: questioned constituent ``subj`` | ``obj`` | ``loc`` (questions), else ``None``.
    """

    verb: str
    subj: NP
    obj: NP | None = None
    adj: str | None = None
    tense: str = "past"
    neg: bool = False
    loc: tuple[str, NP] | None = None
    loc_front: bool = False
    wh: str | None = None


@dataclass(frozen=True)
class Complex:
    """Two clauses joined by a subordinator (``because``): the complementizer switch s6 orders them."""

    main: Clause
    sub: Clause
    conj: str = "because"


Sentence = Clause | Complex


# --- sampling ----------------------------------------------------------------------------------------------

def zipf_weights(n: int, a: float = 1.0) -> list[float]:
    """Zipfian weights ``1/(r+1)^a`` for ranks 0..n-1."""
    return [1.0 / (r + 1) ** a for r in range(n)]


class Sampler:
    """Seeded sampler of LFs with Zipfian frequencies.

    The rank order of every inventory is a fixed permutation drawn from ``world_seed`` (so frequency is not
    alphabetical), while ``rng`` drives the individual draws; two samplers with the same seeds produce the same
    stream.

    Args:
        rng: the random stream of this sampler.
        world_seed: seed of the frequency ranks (shared by every split and language).
        topic: ``general`` or ``other``: ``other`` reverses the category ranks, a domain shift for the
            intermediate tasks (same world, other topics).
    """

    def __init__(self, rng: random.Random, world_seed: int = 0, topic: str = "general"):
        self.rng = rng
        ranks = random.Random(f"ranks:{world_seed}")
        self.cats = list(NOUNS)
        ranks.shuffle(self.cats)
        if topic == "other":
            self.cats.reverse()
        self.nouns = {c: ranks.sample(list(hs), len(hs)) for c, hs in NOUNS.items()}
        self.adjs = ranks.sample(list(ADJECTIVES), len(ADJECTIVES))
        self.tverbs = ranks.sample(list(TRANSITIVE), len(TRANSITIVE))
        self.iverbs = ranks.sample(list(INTRANSITIVE), len(INTRANSITIVE))
        self.people = ranks.sample(range(len(PEOPLE)), len(PEOPLE))
        self.places = ranks.sample(range(len(PLACES)), len(PLACES))
        self.orgs = ranks.sample(range(len(ORGS)), len(ORGS))

    def pick(self, items, a: float = 1.0):
        """One item, Zipf-weighted by position."""
        items = list(items)
        return self.rng.choices(items, weights=zipf_weights(len(items), a))[0]

    # noun phrases
    def person(self, exclude: tuple[int, ...] = ()) -> NP:
        idx = self.pick([p for p in self.people if p not in exclude], 0.7)
        return NP("person", str(idx), det="none", full=self.rng.random() < 0.6)

    def noun_np(self, cats: tuple[str, ...], *, adj_p: float = 0.3, poss_p: float = 0.1, rel_p: float = 0.0,
                pl_p: float = 0.25, exclude: tuple[str, ...] = ()) -> NP:
        """A common-noun NP of one of ``cats`` (hypernym nouns appear with probability 0.1)."""
        cats = [c for c in self.cats if c in cats]
        cat = self.pick(cats, 0.8)
        if self.rng.random() < 0.1 and cat not in exclude:
            head = cat
        else:
            choices = [n for n in self.nouns[cat] if n not in exclude] or self.nouns[cat]
            head = self.pick(choices)
        adj = self.adjective(cat) if self.rng.random() < adj_p else None
        number, det, num = "sg", self.rng.choice(("def", "def", "indef")), None
        if self.rng.random() < pl_p:
            number = "pl"
            det, num = ("num", self.rng.choice(NUMERALS)) if self.rng.random() < 0.5 else ("def", None)
        poss = None
        if self.rng.random() < poss_p:
            poss, det, num = int(self.person().head), "def", None
        rel = None
        if self.rng.random() < rel_p and cat in ANIMATE:
            v = self.pick([v for v in self.tverbs if cat in TRANSITIVE[v][0]])
            rel = (v, self.noun_np(TRANSITIVE[v][1], adj_p=0, poss_p=0, pl_p=0))
        return NP("noun", head, det=det, number=number, adj=adj, poss=poss, rel=rel, num=num)

    def adjective(self, cat: str) -> str:
        return self.pick([a for a in self.adjs if ADJ_CATS[a] is None or cat in ADJ_CATS[a]])

    def arg(self, cats: tuple[str, ...], *, name_p: float = 0.4, **kw) -> NP:
        """An argument NP: a person name, an organisation or a common noun, as the categories allow."""
        r = self.rng.random()
        if "name" in cats and r < name_p:
            if self.rng.random() < 0.08:
                a = self.person()
                b = self.person(exclude=(int(a.head),))
                return NP("coord", a.head, det="none", number="pl", full=a.full, other=b)
            return self.person()
        if "org" in cats and r < name_p + 0.15:
            return NP("org", str(self.pick(self.orgs)), det="none")
        noun_cats = tuple(c for c in cats if c in NOUNS)
        if not noun_cats:
            return self.person()
        return self.noun_np(noun_cats, **kw)

    def location(self) -> tuple[str, NP]:
        if self.rng.random() < 0.6:
            return ("in", NP("place", str(self.pick(self.places)), det="none"))
        return (self.rng.choice(LOC_PREPS), self.noun_np(("building",), adj_p=0.2, poss_p=0.05, pl_p=0))

    # clauses
    def clause(self, *, kind: str | None = None, loc_p: float = 0.3, neg_p: float = 0.15, rel_p: float = 0.05,
               adj_p: float = 0.3, name_p: float = 0.4) -> Clause:
        """A random clause; ``kind`` forces ``tv`` (transitive), ``iv`` or ``cop``."""
        kind = kind or self.rng.choices(("tv", "iv", "cop"), weights=(0.65, 0.15, 0.2))[0]
        tense = "past" if self.rng.random() < 0.7 else "present"
        neg = self.rng.random() < neg_p
        loc = self.location() if self.rng.random() < loc_p else None
        loc_front = loc is not None and self.rng.random() < 0.2
        kw = {"adj_p": adj_p, "rel_p": rel_p}
        if kind == "tv":
            v = self.pick(self.tverbs)
            subj_cats, obj_cats = TRANSITIVE[v]
            subj = self.arg(subj_cats, name_p=name_p, **kw)
            obj = self.arg(obj_cats, name_p=name_p * 0.6, **kw)
            if obj == subj:
                obj = self.arg(obj_cats, name_p=0.0, **kw)
            return Clause(v, subj, obj=obj, tense=tense, neg=neg, loc=loc, loc_front=loc_front)
        if kind == "iv":
            subj = self.arg(ANIMATE + ("name",), name_p=name_p, **kw)
            return Clause(self.pick(self.iverbs), subj, tense=tense, neg=neg, loc=loc, loc_front=loc_front)
        subj = self.arg(tuple(NOUNS) + ("name",), name_p=name_p * 0.6, adj_p=0.0, rel_p=rel_p)
        adj = self.adjective("person" if subj.kind in ("person", "coord") else subj.category)
        return Clause("be", subj, adj=adj, tense=tense, neg=neg, loc=loc, loc_front=loc_front)

    def sentence(self, complex_p: float = 0.1, **kw) -> Sentence:
        """A clause, or with probability ``complex_p`` two clauses joined by ``because``."""
        if self.rng.random() < complex_p:
            return Complex(self.clause(**kw), self.clause(**kw))
        return self.clause(**kw)


def with_neg(c: Clause, neg: bool) -> Clause:
    """The clause with its polarity set."""
    return replace(c, neg=neg)
