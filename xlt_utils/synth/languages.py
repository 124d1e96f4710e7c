"""Synthetic languages: typological switches, morphology, lexicon and script knobs, and language cards.

A language is a :class:`LanguageSpec` (plain data). :func:`lexicon` turns it into a concept → form table,
seeded by the spec alone, and :func:`language_card` describes it (switches, morphology, lexicon overlap, script,
distances to every other language) as JSON-ready data.

Switches (0 = English value; after White & Cotterell 2021 and reference/synthetic-world.md §2.1):

====  ==================  ====================================
s1    ``ov``              object before verb
s2    ``vs``              subject after the verb phrase
s3    ``postp``           postpositions
s4    ``nadj``            noun before adjective
s5    ``reln``            relative clause before the noun
s6    ``cfinal``          subordinate clause + complementizer first
s7    ``nposs``           possessor after the noun; last name first
s8    ``negafter``        negation after the verb
s9    ``insitu``          wh-words in situ (+ question particle)
s10   ``noart``           no articles
====  ==================  ====================================
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from functools import cache

import xlt_utils.synth.world as W
from xlt_utils.errors import XLTError, unknown

# 2 (2026-12-03): the sw1..sw5 chain shares sw0's lexicon (under 1 every chain step drew its own lexicon, so a
# step changed which words are shared with English as well as the word order; d_lex between steps was 0.76-0.80)
GRAMMAR_VERSION = "2"
# the pseudo-word draw's stream; unchanged since grammar 1, so every language outside the chain kept its lexicon
LEXICON_STREAM = "1"
SWITCHES = ("ov", "vs", "postp", "nadj", "reln", "cfinal", "nposs", "negafter", "insitu", "noart")
# first code point of a 26-letter block for a..z; every target is a letter (Unicode category L*)
SCRIPTS = {"latin": None, "georgian": 0x10D0, "cyrillic": 0x0430, "armenian": 0x0561, "ethiopic": 0x1200,
           "hiragana": 0x3042, "hangul": 0xAC00}


@dataclass(frozen=True)
class LanguageSpec:
    """One synthetic language.

    Attributes:
        id: language code used in task splits (``en``, ``en_x``, ``sw3``...).
        role: ``source`` | ``control`` | ``graded`` | ``lexical`` | ``typology``.
        switches: names of the switches (see module doc) set to the non-English value.
        lexicon: ``english`` (English words and irregular morphology) or ``synthetic`` (pseudo-words).
        shared_frac: fraction of non-entity concepts whose stem is the English stem (synthetic lexicon).
        cognate_frac: fraction whose stem is an edited English stem (shares a prefix under subword tokenizers).
        case: ``none`` | ``acc`` (object marked) | ``erg`` (transitive subject marked); synthetic lexicon only.
        agreement: verb marks a plural subject (synthetic lexicon only; English has its own 3sg agreement).
        affix: ``fused`` suffixes or separate ``particle`` tokens for plural, tense and case.
        script: one of :data:`SCRIPTS`; a non-Latin script makes every word form disjoint from English.
        reverse: the whole sentence is reversed after realisation (the impossible 'inverted' control).
        ne_policy: ``shared`` names (transliterated with the script) or ``translated`` (pseudo-words).
        seed: seed of the pseudo-word lexicon.
        lexicon_key: languages with the same key, ``seed`` and lexicon knobs (``shared_frac``, ``cognate_frac``,
            ``ne_policy``) have one lexicon (default: the language's own id), e.g. the one-switch chain.
        description: one line for cards and docs.
    """

    id: str
    role: str = "graded"
    switches: tuple[str, ...] = ()
    lexicon: str = "synthetic"
    shared_frac: float = 0.0
    cognate_frac: float = 0.0
    case: str = "none"
    agreement: bool = False
    affix: str = "fused"
    script: str = "latin"
    reverse: bool = False
    ne_policy: str = "shared"
    seed: int = 0
    lexicon_key: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        for s in self.switches:
            if s not in SWITCHES:
                raise unknown(f"switch of language {self.id!r}:", s, SWITCHES)
        if self.script not in SCRIPTS:
            raise unknown(f"script of language {self.id!r}:", self.script, SCRIPTS)
        for name, value, valid in (("lexicon", self.lexicon, ("english", "synthetic")),
                                   ("case", self.case, ("none", "acc", "erg")),
                                   ("affix", self.affix, ("fused", "particle")),
                                   ("ne_policy", self.ne_policy, ("shared", "translated"))):
            if value not in valid:
                raise unknown(f"{name} of language {self.id!r}:", value, valid)
        if not 0 <= self.shared_frac + self.cognate_frac <= 1:
            raise XLTError(f"language {self.id!r}: shared_frac + cognate_frac must be in [0, 1]")
        object.__setattr__(self, "switches", tuple(sorted(set(self.switches), key=SWITCHES.index)))

    def on(self, switch: str) -> bool:
        """Whether ``switch`` has its non-English value."""
        return switch in self.switches

    def switch_vector(self) -> tuple[int, ...]:
        """0/1 per switch; reversal flips every order switch (s1–s9) but not the presence of articles."""
        v = [int(s in self.switches) for s in SWITCHES]
        if self.reverse:
            v = [1 - x if s != "noart" else x for x, s in zip(v, SWITCHES)]
        return tuple(v)

    def morph_vector(self) -> tuple[str, ...]:
        if self.lexicon == "english":
            return ("english", "none", "3sg", "fused")
        return ("regular", self.case, "pl" if self.agreement else "none", self.affix)


# The one-switch-at-a-time chain: each step adds one switch, mildest first, with one fixed lexicon (sw0's: the
# same lexicon_key and seed), so the chain isolates syntactic distance. The chain lexicon is provisional: the GPU
# sweep in docs/synth-world.md picks it.
CHAIN = ("nadj", "noart", "nposs", "postp", "ov", "negafter", "insitu", "reln", "cfinal", "vs")
CHAIN_LEXICON = {"shared_frac": 0.3, "cognate_frac": 0.2}


def _chain(n: int) -> LanguageSpec:
    return LanguageSpec(f"sw{n}", "graded", CHAIN[:n], seed=100, lexicon_key="sw0", **CHAIN_LEXICON,
                        description=f"one-switch chain step {n}: {'+'.join(CHAIN[:n]) or 'lexicon only'}")


DEFAULT_LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec("en", "source", lexicon="english", description="English (source)"),
    LanguageSpec("en_x", "control", lexicon="english", script="georgian",
                 description="English in another script: same order, disjoint vocabulary (S1 control)"),
    LanguageSpec("en_inv", "control", lexicon="english", script="ethiopic", reverse=True,
                 description="English reversed in another script: the impossible inverted control (S5)"),
    *(_chain(n) for n in range(6)),
    LanguageSpec("lx60", "lexical", shared_frac=0.6, seed=201, description="same order, 60% shared stems"),
    LanguageSpec("lx0", "lexical", seed=202, description="same order, Latin script, no shared stems"),
    LanguageSpec("fr_like", "typology", ("nadj",), cognate_frac=0.3, shared_frac=0.1, agreement=True, seed=301,
                 description="near: N-Adj, agreement, 30% cognates"),
    LanguageSpec("ar_like", "typology", ("vs", "nadj", "nposs"), agreement=True, script="cyrillic", seed=302,
                 description="mid: VS, N-Adj, N-Poss, agreement; other script"),
    LanguageSpec("hi_like", "typology", ("ov", "postp", "reln", "insitu", "noart"), case="acc", script="armenian",
                 seed=303, description="far: OV, postpositions, Rel-N, wh in situ, no articles, case"),
    LanguageSpec("ja_like", "typology", ("ov", "postp", "reln", "insitu", "noart", "cfinal", "negafter"),
                 case="acc", affix="particle", script="hiragana", seed=304,
                 description="far: hi_like + C-final, negation after V, particles"),
)
LANGUAGES: dict[str, LanguageSpec] = {s.id: s for s in DEFAULT_LANGUAGES}
LANGUAGE_IDS: tuple[str, ...] = tuple(LANGUAGES)


def get_language(lang: str | LanguageSpec) -> LanguageSpec:
    """A language spec by id (or the spec itself)."""
    if isinstance(lang, LanguageSpec):
        return lang
    if lang not in LANGUAGES:
        raise unknown("synth language", lang, LANGUAGES)
    return LANGUAGES[lang]


def register_language(spec: LanguageSpec, *, replace: bool = False) -> LanguageSpec:
    """Add a language to :data:`LANGUAGES` (experiments; the default set is :data:`DEFAULT_LANGUAGES`)."""
    if spec.id in LANGUAGES and LANGUAGES[spec.id] != spec and not replace:
        raise XLTError(f"synth language {spec.id!r} already exists; pass replace=True to redefine it")
    LANGUAGES[spec.id] = spec
    lexicon.cache_clear()
    return spec


# --- English forms -----------------------------------------------------------------------------------------

_PAST = {"see": "saw", "buy": "bought", "sell": "sold", "eat": "ate", "drive": "drove", "find": "found",
         "lose": "lost", "build": "built", "wear": "wore", "grow": "grew", "sleep": "slept", "run": "ran",
         "leave": "left", "sing": "sang", "fall": "fell"}
FUNCTION_EN = {"the": "the", "a": "a", "poss": "'s", "of": "of", "not": "not", "rel": "that", "and": "and",
               "because": "because", "in": "in", "near": "near", "who": "who", "what": "what", "where": "where",
               "q": "", "be": "be", "do": "do", "cause": "cause", "effect": "effect"}


def _s_form(w: str) -> str:
    if w.endswith(("s", "x", "ch", "sh")):
        return w + "es"
    if w.endswith("y") and w[-2] not in "aeiou":
        return w[:-1] + "ies"
    return w + "s"


def english_plural(n: str) -> str:
    return "people" if n == "person" else _s_form(n)


def english_verb(v: str, tense: str, plural_subj: bool) -> str:
    """Inflected English verb (3rd person subjects only)."""
    if v == "be":
        return ("were" if plural_subj else "was") if tense == "past" else ("are" if plural_subj else "is")
    if v == "do":
        return "did" if tense == "past" else ("do" if plural_subj else "does")
    if tense == "past":
        if v in _PAST:
            return _PAST[v]
        if v.endswith("e"):
            return v + "d"
        if v.endswith("y") and v[-2] not in "aeiou":
            return v[:-1] + "ied"
        return v + "ed"
    return v if plural_subj else _s_form(v)


def concept_keys() -> dict[str, str]:
    """Every lexicon key with its English stem. Keys: ``n:`` nouns, ``a:`` adjectives, ``v:`` verbs, ``f:``
    function words, ``num:`` numerals, ``first:``/``last:``/``place:``/``org:`` entity tokens."""
    keys: dict[str, str] = {}
    for cat, hs in W.NOUNS.items():
        keys[f"n:{cat}"] = cat
        keys.update({f"n:{h}": h for h in hs})
    keys.update({f"a:{a}": a for a in W.ADJECTIVES})
    keys.update({f"v:{v}": v for v in (*W.TRANSITIVE, *W.INTRANSITIVE)})
    keys.update({f"f:{k}": v for k, v in FUNCTION_EN.items()})
    keys.update({f"num:{n}": n for n in W.NUMERALS})
    ents = {t for p in W.PEOPLE for t in p} | {t for p in W.PLACES for t in p} | {t for o in W.ORGS for t in o}
    keys.update({f"ent:{t}": t for t in sorted(ents)})
    return keys


AFFIXES = ("pl", "past", "agr", "acc", "erg")


@cache
def lexicon(lang: str | LanguageSpec) -> dict[str, str]:
    """Concept key → stem (before script) for one language; affixes under ``x:pl``, ``x:past``...

    Deterministic in the spec alone (its ``seed`` and knobs), so a lexicon never depends on which other
    languages exist.
    """
    spec = get_language(lang)
    en = concept_keys()
    if spec.lexicon == "english":
        return dict(en)
    rng = random.Random(f"lexicon:{spec.lexicon_key or spec.id}:{spec.seed}:{LEXICON_STREAM}")
    cons = rng.sample("bdfgklmnprstvz", 9)
    vows = rng.sample("aeiou", 4)
    taken = set(en.values())

    def pseudo(n_syl: int) -> str:
        while True:
            w = "".join(rng.choice(cons) + rng.choice(vows) + (rng.choice("nrl") if rng.random() < 0.2 else "")
                        for _ in range(n_syl))
            if w not in taken:
                taken.add(w)
                return w

    def cognate(stem: str) -> str:
        for v in vows * 2:
            w = (stem[:-1] if stem[-1] in "aeiouy" else stem) + v
            if w not in taken:
                taken.add(w)
                return w
        return pseudo(2)

    out: dict[str, str] = {}
    lexical = [k for k in en if not k.startswith("ent:") and k != "f:q"]
    order = sorted(lexical)
    rng.shuffle(order)
    n_shared = round(spec.shared_frac * len(order))
    n_cog = round(spec.cognate_frac * len(order))
    shared, cog = set(order[:n_shared]), set(order[n_shared:n_shared + n_cog])
    for k in sorted(en):  # sorted: the draw order must not depend on dict order
        if k.startswith("ent:"):
            out[k] = en[k] if spec.ne_policy == "shared" else pseudo(2)
        elif k in shared:
            out[k] = en[k]
        elif k in cog:
            out[k] = cognate(en[k])
        else:
            short = k.startswith(("f:", "num:"))
            out[k] = pseudo(1 if short else 2 + (rng.random() < 0.3))
    out["f:q"] = pseudo(1)
    for a in AFFIXES:
        out[f"x:{a}"] = rng.choice(cons) + rng.choice(vows)
    return out


def to_script(form: str, script: str) -> str:
    """Map a..z into ``script`` (1:1 per letter); other characters (punctuation, apostrophe) are kept."""
    base = SCRIPTS[script]
    if base is None:
        return form
    return "".join(chr(base + ord(c) - 97) if "a" <= c <= "z" else c for c in form)


# --- distances and cards -----------------------------------------------------------------------------------

def surface_vocabulary(lang: str | LanguageSpec) -> frozenset[str]:
    """The set of written stems of a language (after script), for lexical overlap."""
    spec = get_language(lang)
    return frozenset(to_script(f, spec.script) for k, f in lexicon(spec).items() if f and not k.startswith("x:"))


def distances(a: str | LanguageSpec, b: str | LanguageSpec) -> dict[str, float]:
    """Typological distances between two languages.

    Returns:
        ``d_syn`` (normalised Hamming over the 10 order switches), ``d_morph`` (Hamming over morphology
        features), ``d_lex`` (1 − Jaccard of written stems), ``d_script`` (0/1).
    """
    a, b = get_language(a), get_language(b)
    va, vb = a.switch_vector(), b.switch_vector()
    ma, mb = a.morph_vector(), b.morph_vector()
    la, lb = surface_vocabulary(a), surface_vocabulary(b)
    return {
        "d_syn": round(sum(x != y for x, y in zip(va, vb)) / len(va), 4),
        "d_morph": round(sum(x != y for x, y in zip(ma, mb)) / len(ma), 4),
        "d_lex": round(1 - len(la & lb) / len(la | lb), 4),
        "d_script": float(a.script != b.script),
    }


def lexicon_hash(lang: str | LanguageSpec) -> str:
    lex = lexicon(get_language(lang))
    return hashlib.sha256(json.dumps(lex, sort_keys=True).encode()).hexdigest()[:16]


def language_card(lang: str | LanguageSpec, others: tuple[str, ...] | None = None) -> dict:
    """The JSON-ready card of a language: spec, grammar version, lexicon hash, distances to ``others``
    (default: every registered language)."""
    spec = get_language(lang)
    others = LANGUAGE_IDS if others is None else others
    d = asdict(spec)
    d["switches"] = {s: bool(spec.on(s)) for s in SWITCHES}
    return {
        "language": spec.id,
        "grammar_version": GRAMMAR_VERSION,
        **d,
        "switch_vector": list(spec.switch_vector()),
        "lexicon_hash": lexicon_hash(spec),
        "n_stems": len(surface_vocabulary(spec)),
        "distances": {o: distances(spec, o) for o in others},
    }

