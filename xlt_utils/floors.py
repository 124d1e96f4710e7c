"""Floors that need no fine-tuning, for classification and tagging targets (``04_baselines`` kinds ``probe`` and
``lexical``): what a zero-shot model must beat before its transfer says anything about the encoder's training.

* :func:`probe`: a linear probe (multinomial logistic regression) on a *frozen* encoder's features: a sentence is
  the masked mean of its token states, a word the mean of its sub-tokens' states. The layer and the inverse
  regularisation ``C`` are chosen on English dev (:data:`PROBE_LAYERS` x :data:`CS`).
* :func:`lexical`: a linear SVM (one-vs-rest) on hashed surface features trained in English, so whatever it
  transfers is shared spelling (cognates, names, numbers, punctuation): character 2-5-grams and words of a text;
  for a token, character 1-4-grams of the word and of its two neighbours. ``C`` is chosen on English dev
  (:data:`LEXICAL_CS`). (Logistic regression on these 2^18 sparse features took 70 s a fit for POS, the SVM 2 s,
  with the same English dev accuracy within half a point.)

Both are deterministic (no seed enters them). Each returns metric rows for English dev (the selection score) and
every language of the evaluation split, and what it chose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from xlt_utils.errors import XLTError

PROBE_LAYERS = (4, 8, 12)  # of e5's 12; clipped to the encoder's depth
CS = (0.1, 1.0, 10.0)
LEXICAL_CS = (0.01, 0.1, 1.0)
FORMATS = ("classification", "pair_classification", "tagging")
HASH_FEATURES = 2**18


def check(task: Any, kind: str) -> None:
    """A floor scores classification and tagging targets only (one-line error naming the valid formats)."""
    if task.format not in FORMATS:
        raise XLTError(f"baseline kind {kind!r} needs a classification or tagging target; {task.name} is "
                       f"{task.format}; valid formats: {', '.join(FORMATS)}")


def _texts(rec: dict[str, Any]) -> tuple[str, ...]:
    return (rec["text"],) if "text" in rec else (rec["text_a"], rec["text_b"])


def _labels(task: Any, recs: Sequence[dict[str, Any]]) -> list[Any]:
    return [t for r in recs for t in r["tags"]] if task.format == "tagging" else [r["label"] for r in recs]


def _regroup(task: Any, recs: Sequence[dict[str, Any]], flat: Sequence[Any]) -> list[Any]:
    """Flat predictions back into one list per sentence (tagging) or one per record."""
    if task.format != "tagging":
        return list(flat)
    out, i = [], 0
    for r in recs:
        out.append(list(flat[i: i + len(r["tokens"])]))
        i += len(r["tokens"])
    return out


def _score(task: Any, recs: Sequence[dict[str, Any]], preds: list[Any]) -> dict[str, float]:
    from xlt_utils import metrics

    refs = [r["tags"] for r in recs] if task.format == "tagging" else [r["label"] for r in recs]
    return {k: float(v) for k, v in metrics.compute(task.metric, preds, refs).items()}


def _select(task: Any, fit: Callable[[Any, float], Any], train: tuple[Any, list], dev: tuple[Any, list],
            dev_recs: Sequence[dict[str, Any]], options: Sequence[Any]) -> tuple[Any, Any, dict[str, float], list]:
    """Fit every option on English train, keep the best on English dev (ties: the first, i.e. the simplest)."""
    from xlt_utils import metrics

    best = None
    table = []
    for opt in options:
        X, y = train[0](opt), train[1]
        clf = fit(X, y, opt)
        score = _score(task, dev_recs, _regroup(task, dev_recs, clf.predict(dev[0](opt))))
        main = metrics.primary(task.metric, score)
        table.append({"option": opt, "dev": round(main, 4)})
        if best is None or main > best[0]:
            best = (main, opt, clf, score)
    return best[1], best[2], best[3], table


def _logreg(X: Any, y: list, C: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    if len(set(y)) < 2:
        raise XLTError("a floor needs at least two labels in the English training data")
    return LogisticRegression(C=C, max_iter=2000).fit(X, y)


def _svm(X: Any, y: list, C: float) -> Any:
    from sklearn.svm import LinearSVC

    if len(set(y)) < 2:
        raise XLTError("a floor needs at least two labels in the English training data")
    return LinearSVC(C=C, max_iter=5000, random_state=0).fit(X, y)


# --------------------------------------------------------------------------------------------------------- probe
def encode(encoder: Any, tokenizer: Any, task: Any, recs: Sequence[dict[str, Any]], layers: Sequence[int],
           max_seq_length: int, batch_size: int = 32) -> dict[int, Any]:
    """Frozen features of ``recs`` at each of ``layers``: one row per record (classification: masked mean over
    tokens) or per word (tagging: mean of the word's sub-tokens; a word cut off by ``max_seq_length`` gets zeros).
    Records are encoded in length order (less padding); rows come back in record order."""
    import numpy as np
    import torch

    encoder.eval()
    hidden = int(encoder.config.hidden_size)
    tagging = task.format == "tagging"
    order = sorted(range(len(recs)), key=lambda i: len(recs[i]["tokens"]) if tagging else len(" ".join(
        _texts(recs[i]))))
    per_rec: dict[int, dict[int, Any]] = {}
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            batch = [recs[i] for i in idx]
            if tagging:
                enc = tokenizer([r["tokens"] for r in batch], is_split_into_words=True, truncation=True,
                                max_length=max_seq_length, padding=True, return_tensors="pt")
            else:
                cols = list(zip(*[_texts(r) for r in batch]))
                enc = tokenizer(*cols, truncation=True, max_length=max_seq_length, padding=True,
                                return_tensors="pt")
            out = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                          output_hidden_states=True)
            mask = enc["attention_mask"].unsqueeze(-1).float()
            for b, i in enumerate(idx):
                per_rec[i] = {}
                for layer in layers:
                    h = out.hidden_states[layer][b]
                    if not tagging:
                        per_rec[i][layer] = ((h * mask[b]).sum(0) / mask[b].sum()).numpy()
                        continue
                    words = enc.word_ids(b)
                    feats = np.zeros((len(batch[b]["tokens"]), hidden), dtype=np.float32)
                    counts = np.zeros(len(batch[b]["tokens"]), dtype=np.float32)
                    for pos, w in enumerate(words):
                        if w is not None:
                            feats[w] += h[pos].numpy()
                            counts[w] += 1
                    per_rec[i][layer] = feats / np.maximum(counts, 1)[:, None]
    stack = np.concatenate if tagging else np.stack
    return {layer: stack([per_rec[i][layer] for i in range(len(recs))]) for layer in layers}


def probe(encoder: Any, tokenizer: Any, task: Any, train: Sequence[dict], dev: Sequence[dict],
          tests: dict[str, Sequence[dict]], max_seq_length: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The frozen-encoder linear probe: fit on English ``train``, choose (layer, C) on English ``dev``, score
    every language of ``tests``.

    Returns:
        (metric rows ``{"split", "lang", "metric", "value", "n_examples"}``, what was chosen with the dev table).
    """
    from sklearn.preprocessing import StandardScaler

    check(task, "probe")
    n_layers = int(encoder.config.num_hidden_layers)
    layers = sorted({min(layer, n_layers) for layer in PROBE_LAYERS})
    feats = {name: encode(encoder, tokenizer, task, recs, layers, max_seq_length)
             for name, recs in (("train", train), ("dev", dev))}
    scalers = {layer: StandardScaler().fit(feats["train"][layer]) for layer in layers}

    def view(split: str) -> Callable[[tuple[int, float]], Any]:
        return lambda opt: scalers[opt[0]].transform(feats[split][opt[0]])

    options = [(layer, c) for layer in layers for c in CS]
    (layer, c), clf, dev_score, table = _select(
        task, lambda X, y, opt: _logreg(X, y, opt[1]), (view("train"), _labels(task, train)),
        (view("dev"), None), dev, options)
    rows = [{"split": "dev", "lang": "en", "metric": k, "value": v, "n_examples": len(dev)}
            for k, v in dev_score.items()]
    for lang, recs in tests.items():
        X = scalers[layer].transform(encode(encoder, tokenizer, task, recs, [layer], max_seq_length)[layer])
        for k, v in _score(task, recs, _regroup(task, recs, clf.predict(X))).items():
            rows.append({"split": "test", "lang": lang, "metric": k, "value": v, "n_examples": len(recs)})
    chosen = {"layer": layer, "C": c, "dev_table": [{"layer": o[0], "C": o[1], "dev": d["dev"]}
                                                     for o, d in zip(options, table)]}
    return rows, chosen


# ------------------------------------------------------------------------------------------------------- lexical
def token_features(tokens: Sequence[str], i: int) -> list[str]:
    """Hashed-feature strings of token ``i``: its lower-cased word and the character 1-4-grams of ``<word>``, for
    the word itself and its left and right neighbours (``-1:``/``+1:`` prefixes; ``<s>``/``</s>`` at the edges)."""
    out = []
    for off, tag in ((-1, "-1:"), (0, "0:"), (1, "+1:")):
        j = i + off
        word = tokens[j].lower() if 0 <= j < len(tokens) else ("<s>" if j < 0 else "</s>")
        out.append(f"{tag}w={word}")
        padded = f"<{word}>"
        out += [f"{tag}{padded[k:k + n]}" for n in (1, 2, 3, 4) for k in range(len(padded) - n + 1)]
    return out


def _lexical_vectorizer(task: Any) -> Callable[[Sequence[dict]], Any]:
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.feature_extraction.text import HashingVectorizer

    if task.format == "tagging":
        hasher = FeatureHasher(n_features=HASH_FEATURES, input_type="string", alternate_sign=False)
        return lambda recs: hasher.transform(token_features(r["tokens"], i) for r in recs
                                             for i in range(len(r["tokens"])))
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), n_features=HASH_FEATURES,
                              alternate_sign=False, norm="l2")
    words = HashingVectorizer(analyzer="word", ngram_range=(1, 1), n_features=HASH_FEATURES, alternate_sign=False,
                              norm="l2", token_pattern=r"(?u)\b\w+\b")

    def vec(recs: Sequence[dict]) -> Any:
        texts = [" </s> ".join(_texts(r)) for r in recs]
        return chars.transform(texts) + words.transform(texts)

    return vec


def lexical(task: Any, train: Sequence[dict], dev: Sequence[dict],
            tests: dict[str, Sequence[dict]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The lexical floor: fit on English ``train``, choose C on English ``dev``, score every language of
    ``tests``. Returns the metric rows and what was chosen (as :func:`probe`)."""
    check(task, "lexical")
    vec = _lexical_vectorizer(task)
    Xtr, Xdev = vec(train), vec(dev)
    c, clf, dev_score, table = _select(task, lambda X, y, opt: _svm(X, y, opt),
                                       (lambda _: Xtr, _labels(task, train)), (lambda _: Xdev, None), dev,
                                       LEXICAL_CS)
    rows = [{"split": "dev", "lang": "en", "metric": k, "value": v, "n_examples": len(dev)}
            for k, v in dev_score.items()]
    for lang, recs in tests.items():
        for k, v in _score(task, recs, _regroup(task, recs, clf.predict(vec(recs)))).items():
            rows.append({"split": "test", "lang": lang, "metric": k, "value": v, "n_examples": len(recs)})
    return rows, {"C": c, "dev_table": [{"C": o["option"], "dev": o["dev"]} for o in table]}
