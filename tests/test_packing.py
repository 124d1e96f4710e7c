"""Padding-free (packed) training and token-budget batches in the one training loop: a packed batch gives the
padded batch's loss and gradients (tiny XLM-R and BERT built from configs, every packable head), the loop trains
to the same weights packed as padded, heads that cannot pack are refused in one line, token budgets hold."""

from __future__ import annotations

import pytest
import torch

from xlt_utils.errors import XLTError
from xlt_utils.formats.pipelines import get_pipeline, pack_batch
from xlt_utils.models import Packer, build_model, load_tokenizer, position_offset
from xlt_utils.tasks import get_task
from xlt_utils.train import TrainConfig, length_grouped_batches, train
from xlt_utils.worlds import load_records

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def _features(local_tasks, tiny_encoder, fmt, n=6):
    task = get_task(local_tasks[fmt])
    pipe = get_pipeline(task, load_tokenizer(tiny_encoder), max_seq_length=48)
    return task, pipe, pipe.featurize(load_records(task, "train", "en")[:n], train=True)


def _loss_and_grads(model, batch, packer=None):
    model.zero_grad(set_to_none=True)
    with packer.active() if packer else torch.autocast("cpu", enabled=False):
        loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_packed_equals_padded(model, batch):
    model.eval()  # no dropout: both layouts compute the same function (gradients flow in eval mode too)
    loss, grads = _loss_and_grads(model, batch)
    packer = Packer(model)
    packed = packer.pack(batch)
    assert packed["input_ids"].shape == (1, int(batch["attention_mask"].sum())) and "attention_mask" not in packed
    p_loss, p_grads = _loss_and_grads(model, packed, packer)
    packer.close()
    torch.testing.assert_close(p_loss, loss, atol=1e-5, rtol=1e-5)
    assert grads.keys() == p_grads.keys() and len(grads) > 10
    for name in grads:
        torch.testing.assert_close(p_grads[name], grads[name], atol=1e-5, rtol=1e-4, msg=name)
    assert model.config._attn_implementation == "sdpa"  # switched for the packed forward only
    # the padded model is untouched afterwards (hook removed)
    torch.testing.assert_close(_loss_and_grads(model, batch)[0], loss)


@pytest.mark.parametrize("fmt, pooling", [("classification", "cls"), ("classification", "mean"),
                                          ("pair_classification", "cls"), ("tagging", None)])
def test_packed_batch_has_the_padded_loss_and_gradients(fmt, pooling, local_tasks, tiny_encoder):
    task, pipe, feats = _features(local_tasks, tiny_encoder, fmt)
    assert len({f["length"] for f in feats}) > 1  # lengths differ: the padded batch has padding to drop
    torch.manual_seed(0)
    model = build_model(task, tiny_encoder, **({"classifier_pooling": pooling} if pooling else {}))
    _assert_packed_equals_padded(model, pipe.collate(feats))


def test_packed_masked_lm_and_bert_like_models():
    """MLM pretraining packs too (labels per token); XLM-R XL (pre-LayerNorm) as XLM-R; a BERT-like model numbers
    positions from 0 and its pooler reads each sequence's first token."""
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        XLMRobertaForMaskedLM,
        XLMRobertaXLConfig,
        XLMRobertaXLForSequenceClassification,
    )

    from xlt_utils.models import tiny_xlmr_config

    g = torch.Generator().manual_seed(0)
    lengths = [7, 3, 12, 5]
    ids = torch.ones(len(lengths), max(lengths), dtype=torch.long)  # <pad> = 1
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(4, 90, (n,), generator=g)
        mask[i, :n] = 1
    mlm_labels = torch.where(mask.bool() & (torch.rand(ids.shape, generator=g) < 0.3), ids, -100)
    torch.manual_seed(0)
    mlm = XLMRobertaForMaskedLM(tiny_xlmr_config(90))
    assert position_offset(mlm) == 2
    _assert_packed_equals_padded(mlm, {"input_ids": ids, "attention_mask": mask, "labels": mlm_labels})
    xl = XLMRobertaXLForSequenceClassification(XLMRobertaXLConfig(
        vocab_size=90, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=3,
        pad_token_id=1, attn_implementation="sdpa"))
    assert position_offset(xl) == 2
    _assert_packed_equals_padded(xl, {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 2, 1, 0])})
    bert = BertForSequenceClassification(BertConfig(vocab_size=90, hidden_size=32, num_hidden_layers=2,
                                                    num_attention_heads=2, intermediate_size=64, num_labels=3,
                                                    pad_token_id=1, attn_implementation="sdpa"))
    assert position_offset(bert) == 0
    _assert_packed_equals_padded(bert, {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 2, 1, 0])})


def test_pack_batch_flattens_tokens_and_keeps_sequence_labels():
    ids = torch.tensor([[0, 5, 2, 1], [0, 6, 7, 2]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    packed = pack_batch({"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([2, 0])}, 2)
    assert packed["input_ids"].tolist() == [[0, 5, 2, 0, 6, 7, 2]]
    assert packed["position_ids"].tolist() == [[2, 3, 4, 2, 3, 4, 5]]
    assert packed["cu_seq_lens"].tolist() == [0, 3, 7] and packed["labels"].tolist() == [2, 0]
    with pytest.raises(XLTError, match="right-padded"):
        pack_batch({"input_ids": ids, "attention_mask": mask.flip(1)})
    with pytest.raises(XLTError, match=r"multiple choice's \(batch, choices, length\) batches train padded"):
        pack_batch({"input_ids": ids[None], "attention_mask": mask[None]})


def test_the_loop_trains_packed_to_the_padded_weights(local_tasks, tiny_encoder):
    """Four steps of AdamW through train(): the same weights (dropout off), no padding counted; also with
    gradient checkpointing and torch.compile (the eager backend: the graph capture, not a C++ compile)."""
    task, pipe, feats = _features(local_tasks, tiny_encoder, "tagging", n=16)
    results, weights = [], []
    for options in ({}, {"packing": True}, {"packing": True, "gradient_checkpointing": True},
                    {"packing": True, "torch_compile": "eager"}):
        torch.manual_seed(0)
        model = build_model(task, tiny_encoder, **NO_DROPOUT)
        cfg = TrainConfig(learning_rate=1e-3, max_steps=4, per_device_train_batch_size=4, progress=False,
                          warmup_ratio=0.0, **options)
        results.append(train(model, feats, pipe.collate, cfg, device="cpu"))
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
    for res, w in zip(results[1:], weights[1:]):
        assert res.padded_tokens == 0 < results[0].padded_tokens
        assert res.train_tokens == results[0].train_tokens
        assert res.history[-1]["loss"] == pytest.approx(results[0].history[-1]["loss"], abs=1e-5)
        for k in weights[0]:
            torch.testing.assert_close(w[k], weights[0][k], atol=2e-5, rtol=1e-4, msg=k)


@pytest.mark.parametrize("fmt", ["span_qa", "multiple_choice"])
def test_heads_that_cannot_pack_are_refused_in_one_line(fmt, local_tasks, tiny_encoder):
    task, pipe, feats = _features(local_tasks, tiny_encoder, fmt, n=4)
    model = build_model(task, tiny_encoder)
    with pytest.raises(XLTError) as e:
        train(model, feats, pipe.collate, TrainConfig(max_steps=1, progress=False, packing=True), device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and "classification, pair_classification, tagging" in msg and type(model).__name__ in msg


def test_token_budget_batches():
    lengths = [((i * 37) % 50) + 3 for i in range(300)]
    old = length_grouped_batches(lengths, 16, seed=3, epoch=1)
    assert length_grouped_batches(lengths, 16, seed=3, epoch=1, max_tokens=None, packed=True) == old
    for packed in (False, True):
        batches = length_grouped_batches(lengths, 16, seed=3, epoch=1, max_tokens=400, packed=packed)
        assert batches == length_grouped_batches(lengths, 16, seed=3, epoch=1, max_tokens=400, packed=packed)
        assert sorted(i for b in batches for i in b) == list(range(300))
        costs = [sum(lengths[i] for i in b) if packed else len(b) * max(lengths[i] for i in b) for b in batches]
        assert max(costs) <= 400 and sum(costs) / len(costs) > 300  # full, not just within budget
    with pytest.raises(XLTError, match="max_tokens_per_batch must be ≥ 1 or None"):
        TrainConfig(max_tokens_per_batch=0)


def test_the_loop_cuts_steps_by_tokens(local_tasks, tiny_encoder):
    task, pipe, feats = _features(local_tasks, tiny_encoder, "classification", n=24)
    torch.manual_seed(0)
    model = build_model(task, tiny_encoder)
    budget = 3 * max(f["length"] for f in feats)
    cfg = TrainConfig(max_steps=None, num_train_epochs=1, per_device_train_batch_size=4, progress=False,
                      max_tokens_per_batch=budget, packing=True)
    res = train(model, feats, pipe.collate, cfg, device="cpu")
    expected = length_grouped_batches([f["length"] for f in feats], 4, cfg.seed, 0, max_tokens=budget, packed=True)
    assert res.global_step == len(expected) <= 8 and res.train_examples == 24 and res.padded_tokens == 0
