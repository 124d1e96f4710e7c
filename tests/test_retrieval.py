"""Unit tests of xlt_utils.retrieval: hand-built embeddings with known answers, and embed() on tiny encoders."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xlt_utils import retrieval as R
from xlt_utils.errors import XLTError

E = np.eye(8, dtype=np.float32)


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


# -------------------------------------------------------------------------------------------- Tatoeba


def _tatoeba_vectors():
    queries = np.stack([E[0], E[1], E[2], E[3]])
    cands = np.stack([E[2], unit(E[0] + 0.1 * E[3]), E[1], unit(E[0] + 0.3 * E[3])])
    gold = [3, 2, 0, 1]
    return queries, cands, gold


def test_tatoeba_both_directions():
    q, c, gold = _tatoeba_vectors()
    res = R.tatoeba(q, c, gold)
    # q0 = e0: cos with c1 = 1/sqrt(1.01) = .995 > c3 = 1/sqrt(1.09) = .958 -> c1, gold c3: wrong
    # q1 = e1 -> c2 right; q2 = e2 -> c0 right
    # q3 = e3: cos with c3 = .3/sqrt(1.09) = .287 > c1 = .1/sqrt(1.01) = .0995 -> c3, gold c1: wrong -> 2/4
    assert res["predictions"] == [1, 2, 0, 3]
    assert res["accuracy"] == 50.0
    # reverse: c0 -> q2 (owner q2) right; c1 -> q0 (.995 vs .0995), owner q3: wrong; c2 -> q1 right;
    # c3 -> q0 (.958 vs .287), owner q0: right -> 3/4
    assert res["predictions_reverse"] == [2, 0, 1, 0]
    assert res["accuracy_reverse"] == 75.0
    assert res["accuracy_both"] == 62.5


def test_evaluate_retrieval_tatoeba_records():
    q, c, gold = _tatoeba_vectors()
    vec = {f"q{i}": v for i, v in enumerate(q)} | {f"c{i}": v for i, v in enumerate(c)}
    records = [{"id": f"en-{i}", "text": f"q{i}", "side": "query", "gold": [f"xx-{g}"]} for i, g in enumerate(gold)]
    records += [{"id": f"xx-{i}", "text": f"c{i}", "side": "candidate", "gold": []} for i in range(4)]
    # embed_fn need not normalise: evaluate_retrieval does (scale every vector by 3).
    metrics, preds = R.evaluate_retrieval("tatoeba", records, lambda ts: 3 * np.stack([vec[t] for t in ts]))
    assert metrics == {"accuracy": 50.0, "accuracy_reverse": 75.0, "accuracy_both": 62.5}
    assert preds == [1, 2, 0, 3]
    bad = [dict(records[0], gold=[])] + records[1:]
    with pytest.raises(XLTError, match="exactly one gold"):
        R.evaluate_retrieval("tatoeba", bad, lambda ts: np.stack([vec[t] for t in ts]))


def test_memoized_embeds_each_distinct_text_once_in_order():
    vec = {t: E[i] for i, t in enumerate("abcde")}
    calls: list[list[str]] = []

    def embed_fn(ts):
        calls.append(list(ts))
        return np.stack([vec[t] for t in ts]) if ts else np.zeros((0, 8), dtype=np.float32)

    fn = R.memoized(embed_fn)
    np.testing.assert_array_equal(fn(["a", "b", "a"]), np.stack([E[0], E[1], E[0]]))
    np.testing.assert_array_equal(fn(["c", "b", "a", "d"]), np.stack([E[2], E[1], E[0], E[3]]))
    assert calls == [["a", "b"], ["c", "d"]]  # the repeats (within and across calls) are served from the cache
    assert fn(["d"]).shape == (1, 8) and len(calls) == 2
    assert fn([]).shape == (0, 8)
    # the same metrics as the plain embed_fn: two languages sharing their English candidates
    q, c, gold = _tatoeba_vectors()
    vec2 = {f"q{i}": v for i, v in enumerate(q)} | {f"c{i}": v for i, v in enumerate(c)}
    records = [{"id": f"en-{i}", "text": f"q{i}", "side": "query", "gold": [f"xx-{g}"]} for i, g in enumerate(gold)]
    records += [{"id": f"xx-{i}", "text": f"c{i}", "side": "candidate", "gold": []} for i in range(4)]
    seen: list[str] = []
    cached = R.memoized(lambda ts: (seen.extend(ts), np.stack([vec2[t] for t in ts]))[1])
    for _ in range(2):
        assert R.evaluate_retrieval("tatoeba", records, cached)[0]["accuracy"] == 50.0
    assert sorted(seen) == sorted(vec2)


# ------------------------------------------------------------------------------------------------ BUCC


def test_margin_scores_by_hand():
    x = np.stack([E[0], E[1]])
    y = np.stack([E[0], unit(E[0] + E[1])])
    s = 1 / math.sqrt(2)
    # cos: x0.y0 = 1, x0.y1 = s, x1.y0 = 0, x1.y1 = s. With k = 2 every row/column is the neighbourhood:
    # fwd means x0 (1 + s)/2, x1 s/2; bwd means y0 (1 + 0)/2, y1 (s + s)/2 = s.
    # score(x0, y0) = 1 / (((1 + s)/2 + 1/2) / 2) = 4 / (2 + s) = 1.4776
    # score(x0, y1) = s / (((1 + s)/2 + s) / 2) = 4 / (sqrt2 + 3) = 0.9062
    # score(x1, y0) = 0;  score(x1, y1) = s / ((s/2 + s) / 2) = 4/3
    expected = np.array([[4 / (2 + s), 4 / (math.sqrt(2) + 3)], [0.0, 4 / 3]])
    np.testing.assert_allclose(R.margin_scores(x, y, k=2), expected, atol=1e-6)
    # Mining (max): forward best x0 -> y0, x1 -> y1; backward y0 -> x0, y1 -> x1 (4/3 > .906).
    pairs = R.mine(x, y, k=2)
    assert [(i, j) for i, j, _ in pairs] == [(0, 0), (1, 1)]
    assert [p[2] for p in pairs] == pytest.approx([4 / (2 + s), 4 / 3], abs=1e-6)
    # Each direction alone scores its k candidates with the same margin.
    for direction in ("fwd", "bwd"):
        pairs = R.mine(x, y, k=2, retrieval=direction)
        assert [(i, j) for i, j, _ in pairs] == [(0, 0), (1, 1)]
        assert [p[2] for p in pairs] == pytest.approx([4 / (2 + s), 4 / 3], abs=1e-6)


def test_mine_max_is_a_greedy_one_to_one_matching():
    # Two sources, one target: forward both choose y0; "max" keeps only the better-scoring pair (y0 taken),
    # "fwd" keeps both, "intersect" the one that is also y0's backward choice.
    x = np.stack([E[0], unit(E[0] + 0.5 * E[1])])
    y = np.stack([E[0]])
    assert [(i, j) for i, j, _ in R.mine(x, y, k=4)] == [(0, 0)]
    assert sorted((i, j) for i, j, _ in R.mine(x, y, k=4, retrieval="fwd")) == [(0, 0), (1, 0)]
    assert [(i, j) for i, j, _ in R.mine(x, y, k=4, retrieval="intersect")] == [(0, 0)]
    with pytest.raises(XLTError, match="valid: bwd, fwd, intersect, max"):
        R.mine(x, y, retrieval="union")


def test_tune_threshold_picks_the_best_cut():
    cand = {("a", "x"): 3.0, ("b", "y"): 2.5, ("c", "z"): 2.0, ("d", "w"): 1.5, ("e", "v"): 1.0}
    gold = {("a", "x"), ("b", "y"), ("d", "w"), ("q", "r")}  # 4 gold, ("q", "r") never mined
    # cut after 1: P 1, R 1/4 -> F1 .4;  2: P 1, R 1/2 -> .667;  3: P 2/3, R 1/2 -> .571
    # cut after 4: P 3/4, R 3/4 -> .75 (best);  5: P 3/5, R 3/4 -> .667
    # threshold = midpoint of the 4th and 5th scores = (1.5 + 1.0) / 2 = 1.25
    threshold, f1 = R.tune_threshold(cand, gold)
    assert threshold == 1.25 and f1 == pytest.approx(75.0)
    assert R.extract(cand, threshold) == [("a", "x"), ("b", "y"), ("c", "z"), ("d", "w")]


def test_tune_threshold_never_cuts_inside_a_tie():
    # xtreme's bucc_optimize would cut after the first 2.0 (F1 1, threshold 2.0) although extracting at 2.0
    # keeps both tied pairs (F1 2/3). Cuts: after the tie P 1/2, R 1 -> 2/3; after all P 1/3 -> 1/2.
    cand = [("a", "x", 2.0), ("b", "y", 2.0), ("c", "z", 1.0)]
    threshold, f1 = R.tune_threshold(cand, {("a", "x")})
    assert threshold == 1.5 and f1 == pytest.approx(200 / 3)
    # The reported F1 is what extract() gives at that threshold.
    from xlt_utils.metrics import compute

    assert compute("bucc_f1", R.extract(cand, threshold), {("a", "x")})["f1"] == pytest.approx(f1)


def _bucc_world(dup_source: bool = False):
    """Seeded random unit vectors: 4 aligned pairs per split, 2 unaligned sources, 4 distractor targets.

    dev targets are their sources plus small noise (cos ~ .96); in test, pair 3's target is mostly noise, so
    its margin falls below the dev threshold.
    """
    rng = np.random.default_rng(0)
    d = 64
    base = [unit(rng.normal(size=d)) for _ in range(40)]

    def near(v, eps):
        return unit(v + eps * rng.normal(size=d) / np.sqrt(d))

    vec, splits = {}, {}
    for split, off in (("dev", 0), ("test", 20)):
        recs = []
        for i in range(6):
            vec[f"{split} src {i}"] = base[off + i]
            recs.append({"id": f"de-{i}", "text": f"{split} src {i}", "side": "query",
                         "gold": [f"en-{i}"] if i < 4 else []})
        for i in range(8):
            eps = 0.3 if i < 3 or split == "dev" else 3.0
            vec[f"{split} tgt {i}"] = near(base[off + i], eps) if i < 4 else base[off + 10 + i]
            recs.append({"id": f"en-{i}", "text": f"{split} tgt {i}", "side": "candidate", "gold": []})
        splits[split] = recs
    if dup_source:  # a second source record with de-0's text: xtreme drops both from the candidates
        splits["test"].append({"id": "de-6", "text": "test src 0", "side": "query", "gold": []})
    return vec, splits


def test_evaluate_retrieval_bucc_tunes_on_dev_and_applies_to_test():
    vec, splits = _bucc_world()

    def embed_fn(texts):
        return np.stack([vec[t] for t in texts])

    metrics, preds = R.evaluate_retrieval("bucc", splits["test"], embed_fn, dev_records=splits["dev"])
    # The threshold is the one tuned on dev candidates alone.
    dev_x = embed_fn([f"dev src {i}" for i in range(6)])
    dev_y = embed_fn([f"dev tgt {i}" for i in range(8)])
    dev_cand = {(f"de-{i}", f"en-{j}"): s for i, j, s in R.mine(dev_x, dev_y)}
    threshold, dev_f1 = R.tune_threshold(dev_cand, {(f"de-{i}", f"en-{i}") for i in range(4)})
    assert metrics["threshold"] == pytest.approx(threshold) and dev_f1 == 100.0 == metrics["dev_f1"]
    # Test: the three clean pairs pass, pair 3 does not: P 3/3, R 3/4, F1 = 2 * .75 / 1.75 = 6/7.
    assert sorted(preds) == [("de-0", "en-0"), ("de-1", "en-1"), ("de-2", "en-2")]
    assert metrics["precision"] == 100.0 and metrics["recall"] == 75.0
    assert metrics["f1"] == pytest.approx(600 / 7)
    with pytest.raises(XLTError, match="dev_records are required"):
        R.evaluate_retrieval("bucc", splits["test"], embed_fn)


def test_bucc_drops_duplicated_texts_like_xtreme():
    vec, splits = _bucc_world(dup_source=True)
    metrics, preds = R.evaluate_retrieval("bucc", splits["test"], lambda ts: np.stack([vec[t] for t in ts]),
                                          dev_records=splits["dev"])
    # "test src 0" belongs to de-0 and de-6, so neither is a candidate: P 2/2, R 2/4 -> F1 2/3.
    assert sorted(preds) == [("de-1", "en-1"), ("de-2", "en-2")]
    assert metrics["f1"] == pytest.approx(200 / 3)


# ------------------------------------------------------------------------------------------------- mAP


def test_rank_and_map():
    q = np.stack([E[0], E[1]])
    c = np.stack([unit(E[0] + 0.2 * E[1]), E[1], unit(E[1] + 0.5 * E[0]), E[2]])
    # q0 = e0: cos c0 .981, c2 .447, c1 0, c3 0 -> [0, 2, ...]; q1 = e1: c1 1, c2 .894, c0 .196 -> [1, 2, 0]
    assert R.rank(q, c, 3)[0][:2] == [0, 2]
    assert R.rank(q, c, 3)[1] == [1, 2, 0]
    assert len(R.rank(q, c, 10)[0]) == 4  # k is capped at the number of candidates
    vec = {"q0": q[0], "q1": q[1]} | {f"c{i}": v for i, v in enumerate(c)}
    records = [
        {"id": "q0", "text": "q0", "side": "query", "gold": ["c2"]},        # rank 2 -> AP 1/2
        {"id": "q1", "text": "q1", "side": "query", "gold": ["c1", "c0"]},  # ranks 1, 3 -> (1 + 2/3) / 2
        {"id": "q2", "text": "q0", "side": "query", "gold": []},            # no relevant item: skipped
    ] + [{"id": f"c{i}", "text": f"c{i}", "side": "candidate", "gold": []} for i in range(4)]
    metrics, preds = R.evaluate_retrieval("map", records, lambda ts: np.stack([vec[t] for t in ts]), k=3)
    # mAP@3 = (1/2 + 5/6) / 2 = 2/3
    assert metrics == {"map@3": pytest.approx(200 / 3)}
    assert preds["q1"] == ["c1", "c2", "c0"] and set(preds) == {"q0", "q1", "q2"}


def test_evaluate_retrieval_rejects_bad_input():
    recs = [{"id": "q", "text": "a", "side": "query", "gold": ["nope"]},
            {"id": "c", "text": "b", "side": "candidate", "gold": []}]
    def emb(ts):
        return np.ones((len(ts), 2))

    with pytest.raises(XLTError, match="unknown retrieval mode 'mine'"):
        R.evaluate_retrieval("mine", recs, emb)
    with pytest.raises(XLTError, match="no candidate id"):
        R.evaluate_retrieval("map", recs, emb)
    with pytest.raises(XLTError, match="returned shape"):
        R.evaluate_retrieval("map", [dict(recs[0], gold=["c"]), recs[1]], lambda ts: np.ones((5, 2)))


# ---------------------------------------------------------------------------------------------- embed


@pytest.fixture(scope="module")
def toy_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["the", "cat", "dog", "sat", "on", "mat", "a", "big", "small", "red", "blue", "house", "tree", "ran",
             "quickly"]
    vocab = {t: i for i, t in enumerate(["[UNK]", "[PAD]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")


@pytest.fixture(scope="module", params=["bert", "xlm-roberta"])
def tiny_encoder(request, toy_tokenizer):
    import torch
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    kw = {"vocab_size": len(toy_tokenizer), "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 64, "pad_token_id": toy_tokenizer.pad_token_id, "max_position_embeddings": 64}
    if request.param == "bert":
        return BertModel(BertConfig(**kw))
    return XLMRobertaModel(XLMRobertaConfig(**kw))


TEXTS = ["the cat sat on the mat", "a dog", "big red house on a small tree", "cat", "the dog ran quickly"]


def test_embed_shape_norm_and_order_restoration(tiny_encoder, toy_tokenizer):
    tiny_encoder.train()  # embed() must evaluate without dropout and restore the mode afterwards
    batched = R.embed(tiny_encoder, toy_tokenizer, TEXTS, batch_size=2)
    assert tiny_encoder.training
    assert batched.shape == (5, 32) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-6)
    # Sorted, padded batches give each text the embedding it has alone, in the input order.
    for i, text in enumerate(TEXTS):
        alone = R.embed(tiny_encoder, toy_tokenizer, [text])[0]
        np.testing.assert_allclose(batched[i], alone, atol=1e-5)
    assert R.embed(tiny_encoder, toy_tokenizer, []).shape == (0, 32)


def test_embed_pooling_and_layers_match_a_manual_forward(tiny_encoder, toy_tokenizer):
    import torch

    text = "big red house on a small tree"
    enc = toy_tokenizer([text], return_tensors="pt")
    tiny_encoder.eval()
    with torch.no_grad():
        states = tiny_encoder(**enc, output_hidden_states=True).hidden_states
    assert len(states) == 3  # embeddings + 2 layers
    for layer in (0, 1, 2, -1):
        mean = states[layer][0].mean(0).numpy()
        cls = states[layer][0, 0].numpy()
        np.testing.assert_allclose(R.embed(tiny_encoder, toy_tokenizer, [text], layer=layer)[0],
                                   unit(mean), atol=1e-5)
        np.testing.assert_allclose(R.embed(tiny_encoder, toy_tokenizer, [text], layer=layer, pooling="cls")[0],
                                   unit(cls), atol=1e-5)
    mean_last = R.embed(tiny_encoder, toy_tokenizer, TEXTS)
    assert not np.allclose(mean_last, R.embed(tiny_encoder, toy_tokenizer, TEXTS, pooling="cls"), atol=1e-3)
    assert not np.allclose(mean_last, R.embed(tiny_encoder, toy_tokenizer, TEXTS, layer=1), atol=1e-3)
    np.testing.assert_allclose(mean_last, R.embed(tiny_encoder, toy_tokenizer, TEXTS, layer=2), atol=1e-6)


def test_embed_prefix_and_truncation(tiny_encoder, toy_tokenizer):
    # A prefix is prepended to the text; truncation at 4 tokens keeps [CLS] the cat [SEP].
    with_prefix = R.embed(tiny_encoder, toy_tokenizer, ["cat"], prefix="the ")
    np.testing.assert_allclose(with_prefix, R.embed(tiny_encoder, toy_tokenizer, ["the cat"]), atol=1e-6)
    truncated = R.embed(tiny_encoder, toy_tokenizer, ["the cat sat on the mat"], max_length=4)
    np.testing.assert_allclose(truncated, R.embed(tiny_encoder, toy_tokenizer, ["the cat"]), atol=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    ({"layer": 3}, r"valid: -3\.\.2"),
    ({"layer": -4}, r"valid: -3\.\.2"),
    ({"pooling": "max"}, "unknown pooling 'max'; valid: cls, mean"),
    ({"batch_size": 0}, "batch_size"),
])
def test_embed_rejects_bad_parameters(tiny_encoder, toy_tokenizer, kwargs, match):
    with pytest.raises(XLTError, match=match):
        R.embed(tiny_encoder, toy_tokenizer, TEXTS, **kwargs)
