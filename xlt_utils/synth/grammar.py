"""Realisation: logical form → tokens of one language, with gold POS, NER and alignment nodes.

Every token carries the LF *node* it realises (``subj.n``, ``obj.adj``, ``v``...). Two realisations of the same
LF align exactly on equal nodes (:func:`align`), whatever the word order, morphology or script.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from xlt_utils.synth import world as W
from xlt_utils.synth.languages import (
    LanguageSpec,
    english_plural,
    english_verb,
    get_language,
    lexicon,
    to_script,
)

UPOS = ("ADJ", "ADP", "AUX", "CCONJ", "DET", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "VERB")
NER_TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")


class Tok(NamedTuple):
    """One realised token."""

    form: str
    pos: str
    ner: str
    node: str


class Realiser:
    """Realises LFs in one language.

    Args:
        lang: language id or spec.
    """

    def __init__(self, lang: str | LanguageSpec):
        self.spec = get_language(lang)
        self.lex = lexicon(self.spec)
        self.en = self.spec.lexicon == "english"
        self.on = self.spec.on

    # --- words -------------------------------------------------------------------------------------------
    def w(self, key: str) -> str:
        return self.lex[key]

    def noun(self, n: str, number: str) -> list[tuple[str, str]]:
        """(form, pos) list: the noun and, for particle languages, a plural particle."""
        if self.en:
            return [(english_plural(n) if number == "pl" else n, "NOUN")]
        stem = self.w(f"n:{n}")
        if number == "sg":
            return [(stem, "NOUN")]
        if self.spec.affix == "fused":
            return [(stem + self.w("x:pl"), "NOUN")]
        return [(stem, "NOUN"), (self.w("x:pl"), "PART")]

    def verb(self, v: str, tense: str, plural_subj: bool, base: bool = False) -> list[tuple[str, str]]:
        pos = "AUX" if v in ("be", "do") else "VERB"
        key = f"f:{v}" if v in ("be", "do") else f"v:{v}"
        if self.en:
            return [(v if base else english_verb(v, tense, plural_subj), pos)]
        suffix = (self.w("x:past") if tense == "past" and not base else "") + (
            self.w("x:agr") if self.spec.agreement and plural_subj and not base else "")
        if self.spec.affix == "fused" or not suffix:
            return [(self.w(key) + suffix, pos)]
        return [(self.w(key), pos), (suffix, "PART")]

    # --- phrases -----------------------------------------------------------------------------------------
    def person(self, idx: int, full: bool, node: str) -> list[Tok]:
        first, last = W.PEOPLE[idx]
        names = [(first, "first"), (last, "last")] if full else [(first, "first")]
        if full and self.on("nposs"):
            names.reverse()
        return [Tok(self.w(f"ent:{t}"), "PROPN", ("B-PER" if i == 0 else "I-PER"), f"{node}.{r}")
                for i, (t, r) in enumerate(names)]

    def np(self, np: W.NP, node: str, case: str | None = None) -> list[Tok]:
        """Tokens of an NP; ``case`` (``acc``/``erg``) is marked on its head or by a following particle."""
        if np.kind == "person":
            toks = self.person(int(np.head), np.full, node)
        elif np.kind == "coord":
            toks = (self.person(int(np.head), np.full, f"{node}.c1") + [Tok(self.w("f:and"), "CCONJ", "O", f"{node}.and")]
                    + self.np(np.other, f"{node}.c2"))
        elif np.kind in ("place", "org"):
            words = (W.PLACES if np.kind == "place" else W.ORGS)[int(np.head)]
            t = "LOC" if np.kind == "place" else "ORG"
            toks = [Tok(self.w(f"ent:{x}"), "PROPN", ("B-" if i == 0 else "I-") + t, f"{node}.e{i}")
                    for i, x in enumerate(words)]
        elif np.kind == "wh":
            toks = [Tok(self.w(f"f:{np.head}"), "PRON", "O", node)]
        else:
            toks = self.common_np(np, node)
        if case:
            toks = self.mark_case(toks, case, node)
        return toks

    def common_np(self, np: W.NP, node: str) -> list[Tok]:
        head = [Tok(f, p, "O", f"{node}.n" if p == "NOUN" else f"{node}.pl") for f, p in self.noun(np.head, np.number)]
        core = head
        if np.adj:
            adj = [Tok(self.w(f"a:{np.adj}"), "ADJ", "O", f"{node}.adj")]
            core = head + adj if self.on("nadj") else adj + head
        if np.num:
            core = [Tok(self.w(f"num:{np.num}"), "NUM", "O", f"{node}.num")] + core
        art: list[Tok] = []
        if not self.on("noart") and np.det in ("def", "indef") and not (np.poss is not None and not self.on("nposs")):
            form = self.w("f:the") if np.det == "def" else self.w("f:a")
            if self.en and np.det == "indef" and core[0].form[0] in "aeiou":
                form = "an"
            art = [Tok(form, "DET", "O", f"{node}.det")]
        toks = art + core
        if np.poss is not None:
            owner = self.person(np.poss, True, f"{node}.poss")
            if self.on("nposs"):
                toks = toks + [Tok(self.w("f:of" if self.en else "f:poss"), "ADP", "O", f"{node}.pm")] + owner
            else:
                toks = owner + [Tok(self.w("f:poss"), "PART", "O", f"{node}.pm")] + toks
        if np.rel is not None:
            v, obj = np.rel
            vp = [Tok(f, p, "O", f"{node}.rel.v" if p != "PART" else f"{node}.rel.t")
                  for f, p in self.verb(v, "past", np.number == "pl")]
            o = self.np(obj, f"{node}.rel.obj", "acc" if self.spec.case == "acc" else None)
            vp = o + vp if self.on("ov") else vp + o
            rel = Tok(self.w("f:rel"), "PRON", "O", f"{node}.rel.c")
            toks = vp + [rel] + toks if self.on("reln") else toks + [rel] + vp
        return toks

    def mark_case(self, toks: list[Tok], case: str, node: str) -> list[Tok]:
        if self.en or self.spec.case == "none":
            return toks
        suffix = self.w(f"x:{case}")
        if self.spec.affix == "particle":
            return toks + [Tok(suffix, "ADP", "O", f"{node}.case")]
        # fused: on the head noun, or on the last token of a name
        idx = max((i for i, t in enumerate(toks) if t.node in (f"{node}.n",)), default=len(toks) - 1)
        t = toks[idx]
        return toks[:idx] + [t._replace(form=t.form + suffix)] + toks[idx + 1:]

    def pp(self, loc: tuple[str, W.NP], node: str) -> list[Tok]:
        p = Tok(self.w(f"f:{loc[0]}"), "ADP", "O", f"{node}.p")
        np = self.np(loc[1], f"{node}.np")
        return np + [p] if self.on("postp") else [p] + np

    # --- clauses -----------------------------------------------------------------------------------------
    def clause(self, c: W.Clause, node: str = "") -> list[Tok]:
        """Tokens of a clause (no final punctuation)."""
        pre = f"{node}." if node else ""
        trans = c.obj is not None
        plural = c.subj.number == "pl"
        wh_word = {"subj": "who" if c.subj.animate else "what", "obj": None, "loc": "where"}
        if c.wh == "obj":
            wh_word["obj"] = "who" if c.obj.animate else "what"
        subj_case = "erg" if self.spec.case == "erg" and trans else None
        obj_case = "acc" if self.spec.case == "acc" else None
        whtok = Tok(self.w(f"f:{wh_word[c.wh]}"), "PRON", "O", f"{pre}wh") if c.wh else None
        fronting = c.wh is not None and not self.on("insitu")

        S = [whtok] if c.wh == "subj" else self.np(c.subj, f"{pre}subj", subj_case)
        # verb group (with negation); English do-support for negation and fronted non-subject questions
        do_support = self.en and c.verb != "be" and (
            (c.neg and not self.on("negafter")) or (fronting and c.wh in ("obj", "loc")))
        aux: list[Tok] = []
        if do_support:
            aux = [Tok(f, p, "O", f"{pre}aux") for f, p in self.verb("do", c.tense, plural)]
            vg = [Tok(f, p, "O", f"{pre}v") for f, p in self.verb(c.verb, c.tense, plural, base=True)]
        else:
            vg = [Tok(f, p, "O", f"{pre}v" if p != "PART" else f"{pre}tense")
                  for f, p in self.verb(c.verb, c.tense, plural)]
        if c.neg:
            neg = Tok(self.w("f:not"), "PART", "O", f"{pre}neg")
            if do_support:
                aux = aux + [neg]
            elif self.on("negafter") or (self.en and c.verb == "be"):
                vg = vg + [neg]
            else:
                vg = [neg] + vg
        if aux and not (fronting and c.wh in ("obj", "loc")):
            vg, aux = aux + vg, []
        if c.verb == "be":
            comp = [Tok(self.w(f"a:{c.adj}"), "ADJ", "O", f"{pre}adj")]
        elif trans:
            comp = [whtok] if c.wh == "obj" else self.np(c.obj, f"{pre}obj", obj_case)
        else:
            comp = []
        vp = comp + vg if self.on("ov") else vg + comp
        adjunct: list[Tok] = []
        if c.loc is not None:
            adjunct = [whtok] if c.wh == "loc" else self.pp(c.loc, f"{pre}loc")
        if fronting:  # the wh-word leaves its place and goes first (it is kept only in the fronted slot)
            S = [t for t in S if t is not whtok]
            vp = [t for t in vp if t is not whtok]
            adjunct = [t for t in adjunct if t is not whtok]
        front = adjunct if c.loc_front and adjunct else []
        if not front and adjunct:
            vp = adjunct + vp if self.on("ov") else vp + adjunct
        toks = aux + S + vp if not self.on("vs") else aux + vp + S
        toks = front + toks
        if fronting:
            toks = [whtok] + toks
        elif c.wh and not self.en:
            toks = toks + [Tok(self.w("f:q"), "PART", "O", f"{pre}q")]
        return toks

    def sentence(self, s: W.Sentence) -> list[Tok]:
        """Tokens of a sentence with final punctuation, script applied and order reversed if the language
        says so."""
        if isinstance(s, W.Complex):
            main, sub = self.clause(s.main, "m"), self.clause(s.sub, "s")
            c = Tok(self.w(f"f:{s.conj}"), "SCONJ", "O", "c")
            toks = sub + [c] + main if self.on("cfinal") else main + [c] + sub
            is_q = False
        else:
            toks = self.clause(s)
            is_q = s.wh is not None
        toks = toks + [Tok("?" if is_q else ".", "PUNCT", "O", "punct")]
        if self.spec.reverse:
            toks = toks[::-1]
            # reversal also reverses multi-token entities: re-derive IOB2 so B- starts each span
            toks = _fix_iob(toks)
        if self.spec.script != "latin":
            toks = [t._replace(form=to_script(t.form, self.spec.script)) for t in toks]
        return toks


def _fix_iob(toks: list[Tok]) -> list[Tok]:
    out, prev = [], None
    for t in toks:
        if t.ner == "O":
            out.append(t)
            prev = None
            continue
        typ = t.ner[2:]
        ent = t.node.rsplit(".", 1)[0]  # tokens of one entity share the node prefix
        tag = ("I-" if prev == (typ, ent) else "B-") + typ
        out.append(t._replace(ner=tag))
        prev = (typ, ent)
    return out


@lru_cache(maxsize=64)
def realiser(lang: str) -> Realiser:
    """A cached realiser per language id."""
    return Realiser(lang)


def realise(s: W.Sentence, lang: str | LanguageSpec) -> list[Tok]:
    """Tokens of ``s`` in ``lang``."""
    r = realiser(lang) if isinstance(lang, str) else Realiser(lang)
    return r.sentence(s)


def text(toks: list[Tok]) -> str:
    """The sentence string (tokens joined by single spaces)."""
    return " ".join(t.form for t in toks)


def align(a: list[Tok], b: list[Tok]) -> list[tuple[int, int]]:
    """Exact word alignment of two realisations of one LF: index pairs of tokens with the same node."""
    where = {}
    for j, t in enumerate(b):
        where.setdefault(t.node, j)
    return [(i, where[t.node]) for i, t in enumerate(a) if t.node in where]
