"""Cheap transfer probes on a frozen encoder: retrieval P@1 and zero-shot linear-probe POS tagging.

Used to measure, within CPU-minutes, whether a pretraining configuration yields graded transfer (before the
full fine-tuning grid): a logistic-regression POS tagger trained on frozen English token features and
applied to every other language is a fine-tuning-free proxy for tagging transfer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xlt_utils.synth.builders import build_records
from xlt_utils.synth.pretrain import embed


@torch.no_grad()
def token_features(model, tok, records: Sequence[dict], layer: int | None = None) -> tuple[np.ndarray, list[str]]:
    """First-subword hidden states of ``layer`` (default: middle) for every word of tagging records."""
    enc = getattr(model, "roberta", model)
    layer = enc.config.num_hidden_layers // 2 if layer is None else layer
    feats, tags = [], []
    for i in range(0, len(records), 64):
        recs = records[i:i + 64]
        b = tok([r["tokens"] for r in recs], is_split_into_words=True, padding=True, truncation=True,
                max_length=min(128, enc.config.max_position_embeddings - 2), return_tensors="pt")
        h = enc(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                output_hidden_states=True).hidden_states[layer].float()
        for j, r in enumerate(recs):
            seen = set()
            for k, w in enumerate(b.word_ids(j)):
                if w is not None and w not in seen:
                    seen.add(w)
                    feats.append(h[j, k].numpy())
                    tags.append(r["tags"][w])
    return np.stack(feats), tags


def probe_encoder(encoder_dir: str | Path, languages: Sequence[str], *, n_train: int = 1500, n_test: int = 300,
                  n_retrieval: int = 300, layer: int | None = None) -> dict[str, dict[str, Any]]:
    """Zero-shot POS linear-probe accuracy and retrieval P@1 (L→en) per language.

    Returns:
        ``{lang: {"pos": acc, "retrieval": p1}}``.
    """
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(encoder_dir))
    model = AutoModel.from_pretrained(str(encoder_dir)).eval()
    train = build_records("pos", "train", "en")[:n_train]
    x, y = token_features(model, tok, train, layer)
    clf = LogisticRegression(max_iter=300, C=1.0).fit(x, y)
    ret_en = build_records("retrieval", "test", "en")[:n_retrieval]
    out = {}
    for lang in languages:
        xt, yt = token_features(model, tok, build_records("pos", "test", lang)[:n_test], layer)
        acc = float((clf.predict(xt) == np.array(yt)).mean())
        q = [r["text"] for r in build_records("retrieval", "test", lang)[:n_retrieval]]
        e_q, e_c = embed(model, tok, q, layer), embed(model, tok, [r["text"] for r in ret_en], layer)
        p1 = float(((e_q @ e_c.T).argmax(1) == torch.arange(len(q))).float().mean())
        out[lang] = {"pos": round(acc, 4), "retrieval": round(p1, 4)}
    return out
