"""Counterfactual diagnostics of the synth world: change one word of a language and re-score a fine-tuned model.

``python -m xlt_utils synth-negation --model RUN/model`` scores a fine-tuned NLI-like classifier (e.g. a
``02_target`` run's ``model/`` folder) zero-shot in ``lx60`` and ``lx0`` as generated, and again with only the
languages' negation word replaced by English ``not`` (same items, same everything else). The NLI-like labels turn
on polarity x direction (:func:`xlt_utils.synth.builders.nli_item`), and polarity is carried by one word, so the
difference measures how much of a language's NLI transfer that single shared word decides (docs/synth-world.md).
``--form`` puts another word (or words) in its place, e.g. a pseudo-word to take ``not`` away from a language that
has it; ``--breakdown`` splits the accuracy and the predicted labels by gold label and construction (copular or
verbal clause, negation toggled between premise and hypothesis or not), from the items' logical forms."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError

# Concept keys an English-lexicon language does not look up (its verb forms come from English morphology).
ENGLISH_MORPHOLOGY = ("f:be", "f:do")


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
        spec = languages.get_language(lang)
        bad = sorted(set(o) - set(keys))
        if bad:
            raise XLTError(f"unknown concept key(s) {', '.join(bad)}; e.g. f:not, f:and, v:see")
        inert = sorted(k for k in o if spec.lexicon == "english" and (k[:2] in ("n:", "v:") or k in ENGLISH_MORPHOLOGY))
        if inert:
            raise XLTError(f"{lang} realises nouns and verbs (do-support included) by English morphology, not from "
                           f"its lexicon, so overriding {', '.join(inert)} would change nothing; function words "
                           f"such as f:not, f:the, f:and can be overridden")
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


def _classifier(model_dir: str | Path, languages: Sequence[str], task: str,
                max_examples: int | None) -> tuple[Any, Any, Any]:
    """(task, model, tokenizer) after checking the arguments and the folder, before any model is loaded."""
    from transformers import AutoModelForSequenceClassification

    from xlt_utils.models import load_tokenizer
    from xlt_utils.tasks import get_task

    t = get_task(task)
    if max_examples is not None and max_examples < 1:
        raise XLTError(f"--max-examples must be at least 1 (or left out for every test item), got {max_examples}")
    have = t.languages_for("test")
    bad = [lang for lang in languages if lang not in have]
    if bad:
        raise XLTError(f"{task} has no test split in {', '.join(bad)}; languages with one: {', '.join(have)}")
    path = Path(model_dir)
    if not (path / "config.json").exists():
        raise XLTError(f"no model in {path}: give a fine-tuned classifier folder (e.g. a target run's model/)")
    return t, AutoModelForSequenceClassification.from_pretrained(str(path)).eval(), load_tokenizer(path)


def _check_form(form: str) -> str:
    if not form.strip() or form != " ".join(form.split()):
        raise XLTError(f"--form must be one or more words separated by single spaces, got {form!r}; e.g. not, "
                       "ser, 'does not'")
    return form


def negation_swap(model_dir: str | Path, languages: Sequence[str] = ("lx60", "lx0"), task: str = "synth_xnli",
                  max_examples: int | None = 1000, form: str = "not") -> list[dict[str, object]]:
    """Zero-shot accuracy of the classifier in ``model_dir`` per language, as generated and with the negation
    word replaced by ``form`` (default English ``not``; any word or words, e.g. a pseudo-word to take ``not``
    away); one row per language (``negation`` is the language's own form)."""
    from xlt_utils.evaluate import evaluate
    from xlt_utils.synth.languages import lexicon

    form = _check_form(form)
    t, model, tok = _classifier(model_dir, languages, task, max_examples)

    def score() -> dict[str, float]:
        rows = evaluate(model, tok, t, split="test", languages=list(languages), max_examples=max_examples,
                        seed=0)
        return {r["lang"]: r["value"] for r in rows if r["metric"] == "accuracy"}

    before = score()
    with lexicon_override({lang: {"f:not": form} for lang in languages}):
        after = score()
    return [{"lang": lang, "negation": lexicon(lang)["f:not"], "form": form, "as_generated": before[lang],
             "swapped": after[lang], "change": after[lang] - before[lang]} for lang in languages]


def construction(premise: Any, hypothesis: Any) -> str:
    """The NLI item's construction class: ``copular`` (a ``be`` clause; English negates it without do-support)
    or ``verbal``, and whether premise and hypothesis differ in polarity (``negation toggled``: the
    contradictions ``(s, not g)``, ``(not g, s)`` and the neutrals ``(g, not s)``, ``(not s, g)``, ...) or not
    (``same polarity``). See :func:`xlt_utils.synth.builders.nli_item`."""
    kind = "copular" if premise.verb == "be" else "verbal"
    return f"{kind}, {'negation toggled' if premise.neg != hypothesis.neg else 'same polarity'}"


def nli_breakdown(model_dir: str | Path, languages: Sequence[str], task: str = "synth_xnli",
                  max_examples: int | None = None, form: str | None = None) -> list[dict[str, object]]:
    """Per language, gold label and :func:`construction`: the number of test items, the accuracy and the share
    of each predicted label (``pred_<label>``), from the items' logical forms; with ``form``, the languages'
    negation word is replaced by it first (as in :func:`negation_swap`)."""
    from xlt_utils.evaluate import predict_records
    from xlt_utils.formats.pipelines import get_pipeline
    from xlt_utils.synth.builders import NLI_LABELS, items
    from xlt_utils.worlds import load_records
    from xlt_utils.worlds.synth import generator_options

    if form is not None:
        form = _check_form(form)
    t, model, tok = _classifier(model_dir, languages, task, max_examples)
    if t.source.get("kind") != "nli":
        raise XLTError(f"{task} is not an NLI-like synth task; e.g. synth_xnli")
    pipeline = get_pipeline(t, tok)
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    with lexicon_override({lang: {"f:not": form} for lang in languages} if form is not None else {}):
        for lang in languages:
            lfs = items("nli", "test", **generator_options(t.options, lang))  # the items the records were built from
            records = load_records(t, "test", lang, max_examples=max_examples, seed=0)
            preds = predict_records(model, pipeline, records)
            for rec, pred in zip(records, preds):
                premise, hypothesis, label = lfs[int(rec["id"].rsplit("-", 1)[1])]
                if label != rec["label"]:
                    raise XLTError(f"record {rec['id']} does not match its item; was the task's data changed?")
                c = counts.setdefault((lang, label, construction(premise, hypothesis)), {})
                c[pred] = c.get(pred, 0) + 1
    rows = []
    for (lang, label, cons), c in sorted(counts.items(), key=lambda kv: (languages.index(kv[0][0]),
                                                                         NLI_LABELS.index(kv[0][1]), kv[0][2])):
        n = sum(c.values())
        rows.append({"lang": lang, "label": label, "construction": cons, "n": n,
                     "accuracy": 100.0 * c.get(label, 0) / n,
                     **{f"pred_{lab}": 100.0 * c.get(lab, 0) / n for lab in NLI_LABELS}})
    return rows


def main(model: str, languages: Sequence[str], max_examples: int | None, form: str = "not",
         breakdown: bool = False) -> None:
    if breakdown:
        from xlt_utils.synth.builders import NLI_LABELS

        print("| language | negation | gold | construction | n | accuracy | "
              + " | ".join(f"predicted {lab}" for lab in NLI_LABELS) + " |")
        print("|---|---|---|---|---|---|" + "---|" * len(NLI_LABELS))
        for shown, f in (("as generated", None), (f"`{form}`", form)):
            for r in nli_breakdown(model, languages, max_examples=max_examples, form=f):
                print(f"| {r['lang']} | {shown} | {r['label']} | {r['construction']} | {r['n']} | "
                      f"{r['accuracy']:.1f} | " + " | ".join(f"{r[f'pred_{lab}']:.1f}" for lab in NLI_LABELS) + " |")
        return
    rows = negation_swap(model, languages, max_examples=max_examples, form=form)
    print(f"| language | its negation | NLI as generated | with `{form}` | change |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['lang']} | `{r['negation']}` | {r['as_generated']:.1f} | {r['swapped']:.1f} | "
              f"{r['change']:+.1f} |")
