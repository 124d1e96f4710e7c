"""Counterfactual diagnostics of the synth world: change one word of a language and re-score a fine-tuned model.

``python -m xlt_utils synth-negation --model RUN/model`` scores a fine-tuned NLI-like classifier (e.g. a
``02_target`` run's ``model/`` folder) zero-shot in ``lx60`` and ``lx0`` as generated, and again with only the
languages' negation word replaced by English ``not`` (same items, same everything else). The NLI-like labels turn
on polarity x direction (:func:`xlt_utils.synth.builders.nli_item`), and polarity is carried by one word, so the
difference measures how much of a language's NLI transfer that single shared word decides (docs/synth-world.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from xlt_utils.errors import XLTError


@contextmanager
def lexicon_override(overrides: Mapping[str, Mapping[str, str]]) -> Iterator[None]:
    """Within the block, language ``L``'s lexicon has ``overrides[L]`` (concept key -> form) applied on top.

    Every cache of realisers and generated records is cleared on entry and on exit, so nothing generated
    inside leaks out (or in).
    """
    from xlt_utils.synth import grammar, languages
    from xlt_utils.worlds import synth as world

    keys = languages.concept_keys()
    for lang, o in overrides.items():
        languages.get_language(lang)
        bad = sorted(set(o) - set(keys))
        if bad:
            raise XLTError(f"unknown concept key(s) {', '.join(bad)}; e.g. f:not, f:and, v:see")
    original = grammar.lexicon

    def patched(spec):  # the Realiser's only source of word forms
        out = original(spec)
        sid = spec if isinstance(spec, str) else spec.id
        return {**out, **overrides.get(sid, {})}

    def clear() -> None:
        grammar.realiser.cache_clear()
        world._records.cache_clear()

    clear()
    grammar.lexicon = patched
    try:
        yield
    finally:
        grammar.lexicon = original
        clear()


def negation_swap(model_dir: str | Path, languages: Sequence[str] = ("lx60", "lx0"), task: str = "synth_xnli",
                  max_examples: int | None = 1000) -> list[dict[str, object]]:
    """Zero-shot accuracy of the classifier in ``model_dir`` per language, as generated and with the negation
    word made English ``not``; one row per language (``negation`` is the language's own form)."""
    from transformers import AutoModelForSequenceClassification

    from xlt_utils.evaluate import evaluate
    from xlt_utils.models import load_tokenizer
    from xlt_utils.synth.languages import lexicon
    from xlt_utils.tasks import get_task

    have = get_task(task).languages_for("test")
    bad = [lang for lang in languages if lang not in have]
    if bad:
        raise XLTError(f"{task} has no test split in {', '.join(bad)}; languages with one: {', '.join(have)}")
    path = Path(model_dir)
    if not (path / "config.json").exists():
        raise XLTError(f"no model in {path}: give a fine-tuned classifier folder (e.g. a target run's model/)")
    model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
    tok = load_tokenizer(path)

    def score() -> dict[str, float]:
        rows = evaluate(model, tok, task, split="test", languages=list(languages), max_examples=max_examples,
                        seed=0)
        return {r["lang"]: r["value"] for r in rows if r["metric"] == "accuracy"}

    before = score()
    with lexicon_override({lang: {"f:not": "not"} for lang in languages}):
        after = score()
    return [{"lang": lang, "negation": lexicon(lang)["f:not"], "as_generated": before[lang],
             "negation_not": after[lang], "change": after[lang] - before[lang]} for lang in languages]


def main(model: str, languages: Sequence[str], max_examples: int | None) -> None:
    rows = negation_swap(model, languages, max_examples=max_examples)
    print("| language | its negation | NLI as generated | with `not` | change |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['lang']} | `{r['negation']}` | {r['as_generated']:.1f} | {r['negation_not']:.1f} | "
              f"{r['change']:+.1f} |")
