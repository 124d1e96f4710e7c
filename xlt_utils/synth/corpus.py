"""MLM corpora for the synth world: non-parallel text per language, with an optional parallel fraction.

Each language draws its *own* sentences (a separate seeded stream), so the corpus is comparable, not parallel:
parallel equal-length text would align positions trivially (reference/synthetic-world.md §2.8). A
``parallel_frac`` adds translation pairs (English + L realisations of one LF), TLM style.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from xlt_utils.synth import world as W
from xlt_utils.synth.builders import WORLD_SEED
from xlt_utils.synth.grammar import realise, text
from xlt_utils.synth.languages import LANGUAGE_IDS, get_language


def _sampler(tag: str, seed: int) -> W.Sampler:
    return W.Sampler(random.Random(f"corpus:{tag}:{seed}"), WORLD_SEED)


def mlm_corpus(languages: Sequence[str] = LANGUAGE_IDS, n_per_language: int = 20000, *,
               sentences_per_doc: int = 4, parallel_frac: float = 0.0, seed: int = 0
               ) -> list[tuple[str, str, str | None]]:
    """Documents for MLM pretraining.

    Args:
        languages: language ids.
        n_per_language: documents per language.
        sentences_per_doc: sentences joined into one document (one training sequence before packing).
        parallel_frac: extra parallel documents per non-English language, as a fraction of
            ``n_per_language``; each is ``(en text, L text)`` of the same LFs.
        seed: corpus seed.

    Returns:
        ``(lang, text, paired_text_or_None)`` tuples, shuffled deterministically.
    """
    for lang in languages:
        get_language(lang)
    docs: list[tuple[str, str, str | None]] = []
    for lang in languages:
        sm = _sampler(lang, seed)
        for _ in range(n_per_language):
            sents = [sm.sentence(complex_p=0.1, rel_p=0.05) for _ in range(sentences_per_doc)]
            docs.append((lang, " ".join(text(realise(s, lang)) for s in sents), None))
        if parallel_frac > 0 and lang != "en":
            ps = _sampler(f"parallel:{lang}", seed)
            for _ in range(round(parallel_frac * n_per_language)):
                sents = [ps.sentence(complex_p=0.1) for _ in range(max(1, sentences_per_doc // 2))]
                docs.append((lang, " ".join(text(realise(s, "en")) for s in sents),
                             " ".join(text(realise(s, lang)) for s in sents)))
    random.Random(f"corpus-order:{seed}").shuffle(docs)
    return docs


def probe_pairs(lang: str, n: int = 200, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` held-out parallel sentences (L, en) for the retrieval probe during pretraining."""
    sm = _sampler("probe", seed)
    sents = []
    seen = set()
    while len(sents) < n:
        s = sm.sentence(complex_p=0.0)
        if s not in seen:
            seen.add(s)
            sents.append(s)
    return [text(realise(s, lang)) for s in sents], [text(realise(s, "en")) for s in sents]
