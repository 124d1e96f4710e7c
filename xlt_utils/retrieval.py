"""Sentence embeddings from an encoder's hidden states, and the three retrieval protocols.

* :func:`embed`: pooled hidden states of one layer (``mean`` over the attention mask, or the first token),
  L2-normalised, so that a dot product is a cosine.
* Tatoeba (:func:`tatoeba`): cosine 1-NN accuracy, as faiss ``IndexFlatL2`` on normalised vectors in jiant
  and xtreme (``third_party/utils_retrieve.py::similarity_search``). xtreme indexes the non-English
  sentences and queries with the English ones, so loaders should make English the ``query`` side.
* BUCC (:func:`mine`, :func:`tune_threshold`, :func:`extract`): LASER/xtreme margin mining (``mine_bitext``
  with ``mode="mine"``, ``retrieval="max"``, ``margin="ratio"``, ``neighborhood=4``, cosine), the threshold
  that maximises F1 on the dev split (BUCC *sample*), applied unchanged to the test split (BUCC *training*,
  xtreme#13). Unlike xtreme's ``run_retrieval.py``, which re-optimises the threshold on any split whose gold
  file exists (so its "test" F1 uses a test-tuned threshold), test labels here are only used for scoring.
* Ranking (:func:`rank`): top-k candidates by cosine, scored with mAP@k (LAReQA, Mewsli-X).

:func:`evaluate_retrieval` runs one protocol on records of the ``retrieval`` format
(:mod:`xlt_utils.formats.schema`). faiss is not needed: similarities are exact, computed in chunks with torch
(on CUDA when available), so results match ``IndexFlatIP``/``IndexFlatL2`` up to float rounding and ties.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from xlt_utils import metrics
from xlt_utils.batching import sorted_batches
from xlt_utils.errors import XLTError, unknown

POOLINGS = ("mean", "cls")
RETRIEVAL_MODES = ("tatoeba", "bucc", "map")
MINE_RETRIEVALS = ("max", "fwd", "bwd", "intersect")
# Similarity blocks hold at most this many float32 scores (1 GiB): BUCC has ~400k sentences a side.
_BLOCK_ELEMENTS = 2**28


# ------------------------------------------------------------------------------------------- embeddings


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise XLTError(f"embeddings must be a 2-d array (n_texts, dim), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def embed(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    layer: int = -1,
    pooling: str = "mean",
    batch_size: int = 64,
    max_length: int = 128,
    device: Any = None,
    prefix: str = "",
) -> np.ndarray:
    """Embed texts with one hidden layer of a transformers encoder.

    ``layer`` indexes ``hidden_states`` of ``model(..., output_hidden_states=True)``: 0 is the embedding
    output, ``i`` the output of transformer layer ``i``, -1 the last layer. jiant's X-STILTs setting
    "layer 14 of 24" (and xtreme ``run_tatoeba.sh`` ``LAYER=13`` counted from 0 over the 24 layers) is
    ``layer=14``. Mean pooling averages every non-padding position, special tokens included, as jiant and
    xtreme do; ``cls`` takes the first position (``<s>``/``[CLS]``).

    Texts are tokenised once, sorted by length and batched with dynamic padding (right side), then the
    original order is restored, so a text's embedding does not depend on its batch mates.

    Args:
        model: an encoder (``AutoModel``, ``XLMRobertaModel``, ``BertModel``...) returning ``hidden_states``.
        tokenizer: its tokenizer (needs ``pad_token_id``).
        texts: the texts.
        layer: hidden-states index, ``-(L+1) .. L`` for an encoder of ``L`` layers.
        pooling: ``mean`` or ``cls``.
        batch_size: texts per forward pass.
        max_length: truncation length in tokens (special tokens included).
        device: where to run; ``None`` = where the model is. The model is moved there if needed.
        prefix: prepended to every text (e.g. ``"query: "`` for E5 models).

    Returns:
        ``float32`` array ``(len(texts), hidden_size)`` with unit-norm rows.

    Raises:
        XLTError: invalid ``layer``, ``pooling``, ``batch_size`` or ``max_length``.
    """
    import torch

    if pooling not in POOLINGS:
        raise unknown("pooling", pooling, POOLINGS)
    if batch_size < 1 or max_length < 2:
        raise XLTError(f"embed: batch_size must be >= 1 and max_length >= 2, got {batch_size} and {max_length}")
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if n_layers is not None and not -(n_layers + 1) <= layer <= n_layers:
        raise XLTError(
            f"invalid layer {layer} for an encoder with {n_layers} layers; valid: {-(n_layers + 1)}..{n_layers} "
            f"(0 = embedding output, -1 = last layer)"
        )
    hidden = getattr(getattr(model, "config", None), "hidden_size", 0)
    if len(texts) == 0:
        return np.zeros((0, hidden), dtype=np.float32)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        raise XLTError("embed: the tokenizer has no pad token; set tokenizer.pad_token before embedding")

    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev)
    was_training = model.training
    model.eval()
    ids = tokenizer([prefix + t for t in texts], truncation=True, max_length=max_length,
                    add_special_tokens=True)["input_ids"]
    # Longest first: the first batch shows the peak memory at once; stable sort keeps ties in input order; a batch
    # is cut where the lengths fall below 0.8 of its longest, so no text is padded to more than 1.25x its length.
    out = np.zeros((len(ids), hidden), dtype=np.float32) if hidden else None
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda"
                else contextlib.nullcontext())
    try:
        with torch.inference_mode(), autocast:
            for idx in sorted_batches([len(x) for x in ids], batch_size):
                width = max(len(ids[i]) for i in idx)
                input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    input_ids[row, : len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                    mask[row, : len(ids[i])] = 1
                input_ids, mask = input_ids.to(dev), mask.to(dev)
                outputs = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
                states = outputs.hidden_states
                if not -len(states) <= layer < len(states):
                    raise XLTError(f"invalid layer {layer}; valid: {-len(states)}..{len(states) - 1}")
                h = states[layer].float()
                if pooling == "cls":
                    pooled = h[:, 0]
                else:
                    m = mask.unsqueeze(-1).to(h.dtype)
                    pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
                pooled = pooled.cpu().numpy()
                if out is None:
                    out = np.zeros((len(ids), pooled.shape[1]), dtype=np.float32)
                out[idx] = pooled
    finally:
        model.train(was_training)
    return _l2_normalize(out)


# ---------------------------------------------------------------------------------- similarity search


def _device(device: Any):
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def knn(x: np.ndarray, y: np.ndarray, k: int, device: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of each row of ``x`` among the rows of ``y`` by dot product.

    On L2-normalised rows this is cosine similarity (faiss ``IndexFlatIP``).

    Args:
        x: queries ``(n, d)``.
        y: database ``(m, d)``.
        k: neighbours per query (at most ``m``).
        device: torch device for the products; ``None`` = CUDA when available, else CPU.

    Returns:
        ``(sims, inds)``, both ``(n, k)``, best first.
    """
    import torch

    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise XLTError(f"knn: need 2-d arrays of equal width, got shapes {x.shape} and {y.shape}")
    if not 1 <= k <= len(y):
        raise XLTError(f"knn: k must be in 1..{len(y)} (the database size), got {k}")
    if len(x) == 0:
        return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
    dev = _device(device)
    yt = torch.from_numpy(y).to(dev)
    rows = max(1, min(len(x), _BLOCK_ELEMENTS // max(1, len(y))))
    sims, inds = [], []
    for start in range(0, len(x), rows):
        block = torch.from_numpy(x[start:start + rows]).to(dev) @ yt.T
        s, i = torch.topk(block, k, dim=1)
        sims.append(s.cpu().numpy())
        inds.append(i.cpu().numpy())
    return np.concatenate(sims), np.concatenate(inds).astype(np.int64)


def rank(query_emb: np.ndarray, cand_emb: np.ndarray, k: int, device: Any = None) -> list[list[int]]:
    """Top-``k`` candidate indices per query by cosine similarity (k is capped at the number of candidates).

    Args:
        query_emb: L2-normalised query embeddings.
        cand_emb: L2-normalised candidate embeddings.
        k: how many to return per query.
        device: as in :func:`knn`.

    Returns:
        One list of candidate indices per query, best first.
    """
    _, inds = knn(query_emb, cand_emb, min(k, len(cand_emb)), device)
    return inds.tolist()


# ------------------------------------------------------------------------------------------------ Tatoeba


def tatoeba(query_emb: np.ndarray, cand_emb: np.ndarray, gold: Sequence[int], device: Any = None) -> dict[str, Any]:
    """Cosine 1-NN retrieval accuracy in both directions for aligned (1-1) sentence pairs.

    Args:
        query_emb: ``(n, d)`` query embeddings (English in XTREME).
        cand_emb: ``(m, d)`` candidate embeddings.
        gold: for each query, the index of its translation among the candidates.
        device: as in :func:`knn`.

    Returns:
        ``accuracy`` (query → candidate, the XTREME number), ``accuracy_reverse`` (each candidate that is
        some query's gold → nearest query; correct if that query has it as gold), ``accuracy_both`` (their
        mean), all 0–100; ``predictions`` (nearest candidate index per query) and ``predictions_reverse``
        (nearest query index per candidate).
    """
    q, c = _l2_normalize(query_emb), _l2_normalize(cand_emb)
    gold = [int(g) for g in gold]
    if len(gold) != len(q):
        raise XLTError(f"tatoeba: {len(q)} queries but {len(gold)} gold indices")
    if any(not 0 <= g < len(c) for g in gold):
        raise XLTError(f"tatoeba: gold indices must be in 0..{len(c) - 1}")
    fwd = knn(q, c, 1, device)[1][:, 0].tolist()
    bwd = knn(c, q, 1, device)[1][:, 0].tolist()
    acc = metrics.compute("tatoeba_accuracy", fwd, gold)["accuracy"]
    owners: dict[int, set[int]] = {}
    for qi, ci in enumerate(gold):
        owners.setdefault(ci, set()).add(qi)
    cands = sorted(owners)
    acc_rev = metrics.compute("tatoeba_accuracy", [bwd[ci] for ci in cands], [owners[ci] for ci in cands])["accuracy"]
    return {
        "accuracy": acc,
        "accuracy_reverse": acc_rev,
        "accuracy_both": (acc + acc_rev) / 2,
        "predictions": fwd,
        "predictions_reverse": bwd,
    }


# --------------------------------------------------------------------------------------------------- BUCC


def margin_scores(x: np.ndarray, y: np.ndarray, k: int = 4, device: Any = None) -> np.ndarray:
    """Dense ratio-margin scores of every (x, y) pair (for small inputs, inspection and tests).

    ``score(x, y) = cos(x, y) / ((mean_{z in kNN_y(x)} cos(x, z) + mean_{z in kNN_x(y)} cos(y, z)) / 2)``,
    i.e. ``cos / (sum_knn_x / 2k + sum_knn_y / 2k)`` (LASER, Artetxe & Schwenk 2019), with ``k`` capped at the
    other side's size as in xtreme.

    Args:
        x: L2-normalised source embeddings ``(n, d)``.
        y: L2-normalised target embeddings ``(m, d)``.
        k: neighbourhood size.
        device: as in :func:`knn`.

    Returns:
        ``(n, m)`` scores.
    """
    x, y = _l2_normalize(x), _l2_normalize(y)
    fwd_mean = knn(x, y, min(k, len(y)), device)[0].mean(axis=1)
    bwd_mean = knn(y, x, min(k, len(x)), device)[0].mean(axis=1)
    return (x @ y.T) / ((fwd_mean[:, None] + bwd_mean[None, :]) / 2)


def mine(
    x: np.ndarray,
    y: np.ndarray,
    *,
    k: int = 4,
    retrieval: str = "max",
    threshold: float = 0.0,
    device: Any = None,
) -> list[tuple[int, int, float]]:
    """Mine candidate sentence pairs with the ratio margin, as xtreme ``mine_bitext`` (``mode="mine"``).

    Each source sentence's best target is chosen among its ``k`` nearest targets by margin score (forward),
    and each target's best source among its ``k`` nearest sources (backward). ``retrieval``:

    * ``max`` (xtreme's default for BUCC): pool the forward and backward best pairs, go through them by
      decreasing score and keep a pair only if neither its source nor its target was kept before (a greedy
      one-to-one matching), and only if its score exceeds ``threshold``;
    * ``fwd`` / ``bwd``: the forward / backward best pairs; ``intersect``: pairs that are best both ways.

    Args:
        x: source embeddings ``(n, d)`` (L2-normalised here).
        y: target embeddings ``(m, d)``.
        k: neighbourhood size of the margin (xtreme: 4).
        retrieval: ``max``, ``fwd``, ``bwd`` or ``intersect``.
        threshold: only pairs scoring above it are returned (xtreme mines with 0 and tunes later).
        device: as in :func:`knn`.

    Returns:
        ``(source index, target index, score)`` triples, by decreasing score.
    """
    if retrieval not in MINE_RETRIEVALS:
        raise unknown("mining retrieval", retrieval, MINE_RETRIEVALS)
    if k < 1:
        raise XLTError(f"mine: k must be >= 1, got {k}")
    x, y = _l2_normalize(x), _l2_normalize(y)
    if len(x) == 0 or len(y) == 0:
        return []
    fwd_sim, fwd_ind = knn(x, y, min(k, len(y)), device)
    bwd_sim, bwd_ind = knn(y, x, min(k, len(x)), device)
    fwd_mean, bwd_mean = fwd_sim.mean(axis=1), bwd_sim.mean(axis=1)
    # Margin scores of the k candidates only (LASER score_candidates); the cosine is the kNN similarity.
    fwd_scores = fwd_sim / ((fwd_mean[:, None] + bwd_mean[fwd_ind]) / 2)
    bwd_scores = bwd_sim / ((bwd_mean[:, None] + fwd_mean[bwd_ind]) / 2)
    fwd_arg, bwd_arg = fwd_scores.argmax(axis=1), bwd_scores.argmax(axis=1)
    fwd_best = fwd_ind[np.arange(len(x)), fwd_arg]
    bwd_best = bwd_ind[np.arange(len(y)), bwd_arg]
    fwd_max = fwd_scores[np.arange(len(x)), fwd_arg]
    bwd_max = bwd_scores[np.arange(len(y)), bwd_arg]

    if retrieval == "fwd":
        pairs = [(i, int(j), float(s)) for i, (j, s) in enumerate(zip(fwd_best, fwd_max))]
    elif retrieval == "bwd":
        pairs = [(int(i), j, float(s)) for j, (i, s) in enumerate(zip(bwd_best, bwd_max))]
    elif retrieval == "intersect":
        pairs = [(i, int(j), float(s)) for i, (j, s) in enumerate(zip(fwd_best, fwd_max)) if bwd_best[j] == i]
    else:
        src = np.concatenate([np.arange(len(x)), bwd_best])
        tgt = np.concatenate([fwd_best, np.arange(len(y))])
        scores = np.concatenate([fwd_max, bwd_max])
        seen_src, seen_tgt, pairs = set(), set(), []
        for i in np.argsort(-scores, kind="stable"):
            s, t = int(src[i]), int(tgt[i])
            if s not in seen_src and t not in seen_tgt:
                seen_src.add(s)
                seen_tgt.add(t)
                pairs.append((s, t, float(scores[i])))
    pairs = [p for p in pairs if p[2] > threshold]
    return sorted(pairs, key=lambda p: -p[2])


def _candidate_map(candidates: Mapping | Iterable) -> dict[tuple[Hashable, Hashable], float]:
    if isinstance(candidates, Mapping):
        return {tuple(key): float(v) for key, v in candidates.items()}
    out: dict[tuple[Hashable, Hashable], float] = {}
    for src, tgt, score in candidates:
        # A pair mined twice keeps its best score (xtreme read_candidate2score).
        out[(src, tgt)] = max(float(score), out.get((src, tgt), float(score)))
    return out


def tune_threshold(
    candidates: Mapping[tuple[Hashable, Hashable], float] | Iterable[tuple[Hashable, Hashable, float]],
    gold_pairs: Iterable[tuple[Hashable, Hashable]],
) -> tuple[float, float]:
    """The margin threshold that maximises F1 of the extracted pairs against gold (xtreme ``bucc_optimize``).

    Candidates are taken in order of decreasing score; after each one the F1 of "everything so far" is
    computed, and the best cut's threshold is the midpoint between its last score and the next one (the last
    score itself when the best cut keeps every candidate). Unlike ``bucc_optimize``, a cut is only considered
    after the last of a group of tied scores, so :func:`extract` at the returned threshold reproduces the
    returned F1 exactly; the earliest best cut wins, as in xtreme. With no correct candidate the threshold is
    0.0 and F1 is 0, as in xtreme.

    Args:
        candidates: ``{(src_id, tgt_id): score}`` or ``(src_id, tgt_id, score)`` triples.
        gold_pairs: the gold ``(src_id, tgt_id)`` pairs.

    Returns:
        ``(threshold, f1)``, F1 on the 0–100 scale.
    """
    cand = _candidate_map(candidates)
    gold = {tuple(p) for p in gold_pairs}
    if not gold:
        raise XLTError("tune_threshold: no gold pairs; the BUCC dev split needs gold alignments")
    items = sorted(cand.items(), key=lambda kv: -kv[1])
    best_f1, threshold = 0.0, 0.0
    n_correct = 0
    for i, (pair, score) in enumerate(items):
        n_correct += pair in gold
        if i + 1 < len(items) and items[i + 1][1] == score:
            continue  # not a valid cut inside a tie
        if n_correct:
            p, r = n_correct / (i + 1), n_correct / len(gold)
            f1 = 2 * p * r / (p + r)
            if f1 > best_f1:
                best_f1 = f1
                threshold = (score + items[i + 1][1]) / 2 if i + 1 < len(items) else score
    return float(threshold), 100.0 * best_f1


def extract(
    candidates: Mapping[tuple[Hashable, Hashable], float] | Iterable[tuple[Hashable, Hashable, float]],
    threshold: float,
) -> list[tuple[Hashable, Hashable]]:
    """The candidate pairs scoring at least ``threshold`` (xtreme ``bucc_extract``), by decreasing score."""
    cand = _candidate_map(candidates)
    return [pair for pair, s in sorted(cand.items(), key=lambda kv: -kv[1]) if s >= threshold]


# ----------------------------------------------------------------------------------------- orchestration


def _sides(records: Sequence[Mapping[str, Any]], where: str) -> tuple[list, list]:
    queries = [r for r in records if r["side"] == "query"]
    cands = [r for r in records if r["side"] == "candidate"]
    if not queries or not cands:
        raise XLTError(f"{where}: need both query and candidate records, got {len(queries)} and {len(cands)}")
    ids = [c["id"] for c in cands]
    if len(set(ids)) != len(ids):
        raise XLTError(f"{where}: candidate ids must be unique")
    known = set(ids)
    for q in queries:
        bad = [g for g in q.get("gold", []) if g not in known]
        if bad:
            raise XLTError(f"{where}: query {q['id']!r} has gold {bad[0]!r}, which is no candidate id")
    return queries, cands


def _embed_checked(embed_fn: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
    emb = np.asarray(embed_fn(texts))
    if emb.ndim != 2 or len(emb) != len(texts):
        raise XLTError(f"embed_fn returned shape {emb.shape} for {len(texts)} texts; need (n_texts, dim)")
    return _l2_normalize(emb)


def memoized(embed_fn: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    """``embed_fn`` that embeds each distinct text once and reuses its row afterwards.

    Bitext sets share their English side across languages (Django: 2,266 English candidates over ten languages,
    288 distinct), so one evaluation embeds each English sentence once instead of once per language. A row is
    the same text's embedding in another batch: equal up to float rounding of the batch shapes (~1e-7), which
    leaves nearest-neighbour results unchanged unless two candidates tie to that precision.
    """
    cache: dict[str, np.ndarray] = {}

    def fn(texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in cache))
        if new:
            cache.update(zip(new, _embed_checked(embed_fn, new)))
        if not texts:
            return np.asarray(embed_fn([]))
        return np.stack([cache[t] for t in texts])

    return fn


def _bucc_candidates(records: Sequence[Mapping[str, Any]], embed_fn, where: str, device: Any):
    """Mine one BUCC split; returns ({(src_id, tgt_id): score}, gold pairs)."""
    queries, cands = _sides(records, where)
    gold = {(q["id"], g) for q in queries for g in q["gold"]}
    sides = []
    for recs in (queries, cands):
        # xtreme unifies identical sentences before mining (each text is embedded once, so duplicates do not
        # fill the k-NN neighbourhoods), and drops a text that occurs more than once from the candidate pairs
        # (read_sent2id: its id is ambiguous). Gold pairs involving such texts still count as misses.
        uniq: dict[str, list[Any]] = {}
        for r in recs:
            uniq.setdefault(r["text"], []).append(r["id"])
        texts = list(uniq)
        sides.append((texts, [ids[0] if len(ids) == 1 else None for ids in uniq.values()]))
    (src_texts, src_ids), (tgt_texts, tgt_ids) = sides
    pairs = mine(_embed_checked(embed_fn, src_texts), _embed_checked(embed_fn, tgt_texts), device=device)
    cand = _candidate_map(
        (src_ids[i], tgt_ids[j], s) for i, j, s in pairs if src_ids[i] is not None and tgt_ids[j] is not None
    )
    return cand, gold


def evaluate_retrieval(
    mode: str,
    test_records: Sequence[Mapping[str, Any]],
    embed_fn: Callable[[list[str]], np.ndarray],
    dev_records: Sequence[Mapping[str, Any]] | None = None,
    k: int = 20,
    device: Any = None,
) -> tuple[dict[str, float], Any]:
    """Run one retrieval protocol on ``retrieval``-format records.

    Records are ``{"id", "text", "side": "query" | "candidate", "gold": [candidate ids]}``.

    * ``tatoeba``: every query has exactly one gold candidate. Metrics: ``accuracy`` (query → candidate
      1-NN, the XTREME Tatoeba number when queries are English), ``accuracy_reverse`` (candidate → query),
      ``accuracy_both`` (their mean). Predictions: the index (in candidate-record order) of the nearest
      candidate, one per query, as xtreme's Tatoeba submission lines.
    * ``bucc``: queries are source-language sentences, candidates English ones, ``gold`` the aligned English
      ids (mostly empty). The threshold is tuned on ``dev_records`` (BUCC sample) and applied to
      ``test_records`` (BUCC training). Metrics: ``f1``, ``precision``, ``recall`` on test, the
      ``threshold`` and ``dev_f1`` (F1 on dev at that threshold). Predictions: the extracted
      ``(src_id, tgt_id)`` pairs (xtreme writes them as ``src_id<TAB>tgt_id`` lines).
    * ``map``: Metrics: ``map@{k}`` over queries with at least one gold candidate. Predictions:
      ``{query_id: [top-k candidate ids]}`` (Mewsli-X's prediction format).

    Args:
        mode: ``tatoeba``, ``bucc`` or ``map``.
        test_records: the split to score.
        embed_fn: ``texts -> (n, d)`` array (e.g. a closure over :func:`embed`); rows are L2-normalised here.
        dev_records: the dev split (required for ``bucc``, unused otherwise).
        k: cut-off of ``map``.
        device: torch device of the similarity search (``None``: CUDA when available).

    Returns:
        ``(metrics, predictions)``; metrics on the 0–100 scale except ``threshold``.

    Raises:
        XLTError: unknown mode, malformed records, missing dev records for ``bucc``.
    """
    if mode not in RETRIEVAL_MODES:
        raise unknown("retrieval mode", mode, RETRIEVAL_MODES)
    if mode == "bucc":
        if not dev_records:
            raise XLTError("bucc: dev_records are required (the margin threshold is tuned on dev, never on test)")
        dev_cand, dev_gold = _bucc_candidates(dev_records, embed_fn, "bucc dev", device)
        threshold, _ = tune_threshold(dev_cand, dev_gold)
        dev_f1 = metrics.compute("bucc_f1", extract(dev_cand, threshold), dev_gold)["f1"]
        test_cand, test_gold = _bucc_candidates(test_records, embed_fn, "bucc test", device)
        predicted = extract(test_cand, threshold)
        result = metrics.compute("bucc_f1", predicted, test_gold)
        return {**result, "threshold": float(threshold), "dev_f1": dev_f1}, predicted

    queries, cands = _sides(test_records, mode)
    q_emb = _embed_checked(embed_fn, [q["text"] for q in queries])
    c_emb = _embed_checked(embed_fn, [c["text"] for c in cands])
    cand_pos = {c["id"]: i for i, c in enumerate(cands)}
    if mode == "tatoeba":
        bad = [q["id"] for q in queries if len(q["gold"]) != 1]
        if bad:
            raise XLTError(f"tatoeba: query {bad[0]!r} must have exactly one gold candidate")
        res = tatoeba(q_emb, c_emb, [cand_pos[q["gold"][0]] for q in queries], device)
        return {key: res[key] for key in ("accuracy", "accuracy_reverse", "accuracy_both")}, res["predictions"]
    ranked = [[cands[j]["id"] for j in row] for row in rank(q_emb, c_emb, k, device)]
    result = metrics.compute("map_at_k", ranked, [set(q["gold"]) for q in queries], k=k)
    return result, {q["id"]: r for q, r in zip(queries, ranked)}


def resolve_layer(options: Mapping[str, Any], num_layers: int, layer: int | None = None) -> int:
    """The hidden-states index to pool, for an encoder with ``num_layers`` layers.

    A task's ``options["layer"]`` may be given for a reference depth ``options["layer_of"]`` (XTREME's
    "layer 14 of 24" for XLM-R large); other depths get the same relative depth, rounded (XLM-R base 12 → 7,
    XL 36 → 21, XXL 48 → 28). Without ``layer_of`` the index is literal. ``-1`` (the default) is the last layer.

    Args:
        options: the task's options.
        num_layers: the encoder's number of layers.
        layer: an explicit index that overrides the task's (taken literally).

    Returns:
        An index into ``hidden_states`` (0 = embeddings, ``num_layers`` = last layer).
    """
    if layer is not None:
        chosen = int(layer)
    else:
        chosen = int(options.get("layer", -1))
        if chosen >= 0 and "layer_of" in options:
            chosen = round(chosen * num_layers / int(options["layer_of"]))
    if chosen < 0:
        chosen = num_layers + 1 + chosen
    if not 0 <= chosen <= num_layers:
        raise XLTError(f"retrieval layer {chosen} does not exist; valid: 0..{num_layers} (or -1 for the last)")
    return chosen
