"""The engine end to end: six formats, encoder transfer, exact resume, featurization invariants, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from xlt_utils.batching import sorted_batches
from xlt_utils.errors import XLTError
from xlt_utils.evaluate import evaluate
from xlt_utils.formats.pipelines import get_pipeline, padding_fraction
from xlt_utils.models import build_model, encoder_of, load_tokenizer, save_encoder
from xlt_utils.tasks import FORMATS, Task, get_task
from xlt_utils.testing import tiny_roundtrip
from xlt_utils.train import TrainConfig, length_grouped_batches, train
from xlt_utils.worlds import load_records


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_trains_and_evaluates_in_two_languages(fmt, local_tasks, tmp_path):
    rt = tiny_roundtrip(local_tasks[fmt], steps=100, batch_size=8, workdir=tmp_path)
    rows = rt.rows
    langs = {r["lang"] for r in rows}
    assert langs == {"en", "de"}
    assert all(np.isfinite(r["value"]) and 0 <= r["value"] <= 100 for r in rows)
    if fmt != "retrieval":
        assert rt.train.global_step == 100
        # Loss over the whole training set, before and after: robust to per-batch noise.
        assert rt.final_train_loss < rt.initial_train_loss, (rt.initial_train_loss, rt.final_train_loss)
    # Predictions are written in the XTREME layout, one file per language.
    pred_files = sorted(p.name for p in (tmp_path / "predictions" / local_tasks[fmt]).iterdir())
    assert [p.split(".")[0] for p in pred_files] == ["test-de", "test-en"]


def test_encoder_transfer_keeps_encoder_and_gives_a_fresh_head(local_tasks, tiny_encoder, tmp_path):
    cls_task = get_task(local_tasks["classification"])
    tok = load_tokenizer(tiny_encoder)
    model = build_model(cls_task, tiny_encoder)
    pipe = get_pipeline(cls_task, tok, max_seq_length=32)
    feats = pipe.featurize(load_records(cls_task, "train", "en"), train=True)
    train(model, feats, pipe.collate, TrainConfig(learning_rate=1e-3, max_steps=3, per_device_train_batch_size=8,
                                                   progress=False))
    out = save_encoder(model, tok, tmp_path / "enc", provenance={"task": cls_task.name})
    saved = load_file(str(out / "model.safetensors"))
    assert not any("classifier" in k for k in saved), "the task head must not be saved with the encoder"
    trained = encoder_of(model).state_dict()
    for k, v in saved.items():
        assert torch.equal(v, trained[k]), k
    # Load under another format's head: the encoder is identical, the head newly initialised.
    tag_task = get_task(local_tasks["tagging"])
    torch.manual_seed(1)
    tagger = build_model(tag_task, out)
    for k, v in encoder_of(tagger).state_dict().items():
        assert torch.equal(v, trained[k]), k
    assert tagger.classifier.out_features == len(tag_task.labels)
    torch.manual_seed(2)
    tagger2 = build_model(tag_task, out)
    assert not torch.equal(tagger.classifier.weight, tagger2.classifier.weight)
    assert json.loads((out / "provenance.json").read_text())["task"] == cls_task.name
    # A span-QA head on an encoder saved after a task of more than 2 labels: start and end logits, and its
    # forward runs (it used to take num_labels from the saved config and fail: "too many values to unpack").
    assert len(tag_task.labels) > 2
    tagged = save_encoder(tagger, tok, tmp_path / "enc_tagger")
    qa_task = get_task(local_tasks["span_qa"])
    qa = build_model(qa_task, tagged)
    assert qa.qa_outputs.out_features == 2
    qa_pipe = get_pipeline(qa_task, tok, max_seq_length=64)
    batch = qa_pipe.collate(qa_pipe.featurize(load_records(qa_task, "train", "en"), train=True)[:4])
    assert torch.isfinite(qa(**batch).loss)


def _train_run(task, encoder, tok, out_dir, crash_at=None, steps=8):
    torch.manual_seed(0)
    model = build_model(task, encoder)  # dropout stays on: resume must restore the RNG too
    pipe = get_pipeline(task, tok, max_seq_length=32)
    feats = pipe.featurize(load_records(task, "train", "en"), train=True)
    cfg = TrainConfig(learning_rate=1e-3, max_steps=steps, per_device_train_batch_size=4,
                      gradient_accumulation_steps=2, checkpoint_every=2, eval_every=3, progress=False, seed=5)
    dev = load_records(task, "dev", "en")

    def eval_fn(m):
        rows = evaluate(m, tok, task, split="dev", languages=["en"], max_seq_length=32)
        return next(r["value"] for r in rows if r["metric"] == "accuracy")

    def on_step(step, loss):
        if crash_at is not None and step == crash_at:
            raise KeyboardInterrupt("simulated crash")

    assert dev
    result = train(model, feats, pipe.collate, cfg, output_dir=out_dir, eval_fn=eval_fn, on_step=on_step)
    return model, result


def test_resume_is_exact(local_tasks, tiny_encoder, tmp_path):
    task = get_task(local_tasks["pair_classification"])
    tok = load_tokenizer(tiny_encoder)
    straight, r1 = _train_run(task, tiny_encoder, tok, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        _train_run(task, tiny_encoder, tok, tmp_path / "b", crash_at=4)
    assert (tmp_path / "b" / "checkpoint" / "trainer_state.json").exists()
    resumed, r2 = _train_run(task, tiny_encoder, tok, tmp_path / "b")
    assert r2.resumed_from_step == 4
    assert r1.best_step == r2.best_step and r1.global_step == r2.global_step == 8
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    assert not (tmp_path / "b" / "checkpoint").exists(), "a finished run leaves no resumable checkpoint"


def test_length_grouping_is_deterministic_and_pads_less():
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.lognormal(3.5, 0.6, size=2000).clip(5, 256)]
    a = length_grouped_batches(lengths, 32, seed=3, epoch=1)
    assert a == length_grouped_batches(lengths, 32, seed=3, epoch=1)
    assert a != length_grouped_batches(lengths, 32, seed=3, epoch=2)
    assert sorted(i for b in a for i in b) == list(range(2000))

    def pad_frac(batches):
        tot = sum(max(lengths[i] for i in b) * len(b) for b in batches)
        return 1 - sum(lengths) / tot

    assert pad_frac(a) < 0.1 < pad_frac(length_grouped_batches(lengths, 32, 3, 1, group_by_length=False))


def test_eval_batches_are_cut_where_padding_would_exceed_the_fill():
    lengths = [10, 9, 8, 7, 3, 2, 12]  # sorted: 12, 10, 9, 8, 7, 3, 2 (indices 6, 0, 1, 2, 3, 4, 5)
    # 10 >= 0.8 * 12 joins; 9 < 9.6 opens a batch; 8 >= 7.2 joins; 7 < 7.2, 3 < 5.6 and 2 < 2.4 each open one
    assert sorted_batches(lengths, 3) == [[6, 0], [1, 2], [3], [4], [5]]
    assert sorted_batches(lengths, 3, min_fill=0.0) == [[6, 0, 1], [2, 3, 4], [5]]  # size alone
    assert sorted_batches([5] * 7, 3) == [[0, 1, 2], [3, 4, 5], [6]]  # equal lengths fill batches, ties in order


def test_tagging_labels_only_first_subtoken(local_tasks, tiny_encoder):
    task = get_task(local_tasks["tagging"])
    tok = load_tokenizer(tiny_encoder)
    pipe = get_pipeline(task, tok, max_seq_length=64)
    rec = {"id": "x", "tokens": ["Gustavson", "Hannason", "lives"], "tags": ["B-PER", "I-PER", "O"]}
    (f,) = pipe.featurize([rec], train=True)
    labelled = [(p, lab) for p, lab in enumerate(f["labels"]) if lab != -100]
    assert [task.labels[lab] for _, lab in labelled] == rec["tags"]
    assert [p for p, _ in labelled] == f["first_subtoken"]
    enc = tok(rec["tokens"], is_split_into_words=True)
    assert len(enc["input_ids"]) > 5, "words split into several sub-tokens, so the test is meaningful"
    # Decoding gold-peaked outputs gives the gold tags back.
    ids = np.zeros(len(f["input_ids"]), dtype=int)
    for p, lab in labelled:
        ids[p] = lab
    assert pipe.decode([rec], [f], [ids]) == [rec["tags"]]


def test_qa_windows_label_and_reconstruct_the_answer(local_tasks, tiny_encoder):
    task = get_task(local_tasks["span_qa"])
    tok = load_tokenizer(tiny_encoder)
    pipe = get_pipeline(task, tok, max_seq_length=32, doc_stride=8)
    filler = " ".join(["Film Buch Stadt"] * 12)
    context = f"{filler} Anna wohnt in Oslo. {filler}"
    start = context.index("Oslo")
    rec = {"id": "q", "context": context, "question": "wo wohnt Anna?",
           "answers": {"text": ["Oslo"], "answer_start": [start]}}
    feats = pipe.featurize([rec], train=True)
    assert len(feats) > 2, "the context spans several windows"
    hits = [f for f in feats if f["start_positions"] > 0]
    assert hits, "some window contains the answer"
    for f in hits:
        s, e = f["offsets"][f["start_positions"]][0], f["offsets"][f["end_positions"]][1]
        assert context[s:e] == "Oslo"
    # Logits peaked at the gold span of one window (and flat elsewhere) decode to the answer text.
    outputs = []
    for f in feats:
        n = len(f["input_ids"])
        sl, el = np.zeros(n), np.zeros(n)
        if f is hits[-1]:
            sl[f["start_positions"]] = el[f["end_positions"]] = 10.0
        outputs.append((sl, el))
    assert pipe.decode([rec], feats, outputs) == ["Oslo"]


def test_qa_windows_fit_the_overlap_to_a_long_question(local_tasks, tiny_encoder):
    """The tokenizer panics when the window overlap is not below the room a window leaves for context (length
    minus question minus special tokens): a question of 20-odd tokens at 32 tokens left less room than the
    default overlap (half the length). The overlap shrinks to half that room, and only then (a short question keeps
    the features it had); with no room at all, one line names the least length that fits."""
    task = get_task(local_tasks["span_qa"])
    tok = load_tokenizer(tiny_encoder)
    filler = " ".join(["Film Buch Stadt"] * 12)
    context = f"{filler} Anna wohnt in Oslo. {filler}"
    specials = tok.num_special_tokens_to_add(pair=True)
    words = ["wo", "wohnt", "Anna"]
    while 32 - len(tok(" ".join(words) + "?", add_special_tokens=False)["input_ids"]) - specials > 32 // 2:
        words.append("heute")  # until the default overlap (16) no longer fits
    long_q = " ".join(words) + "?"
    q_len = len(tok(long_q, add_special_tokens=False)["input_ids"])
    assert 32 // 2 >= 32 - q_len - specials > 1, "the default overlap would not fit, and some context does"
    rec = {"id": "q", "context": context, "question": long_q, "answers": {"text": ["Oslo"], "answer_start": [0]}}
    feats = get_pipeline(task, tok, max_seq_length=32).featurize([rec])
    room = 32 - q_len - specials

    def windows(question, stride):  # the tokenizer called directly with a given overlap
        return tok(question, context, truncation="only_second", max_length=32, stride=stride,
                   return_overflowing_tokens=True)["input_ids"]

    assert len(feats) > 2 and [f["input_ids"] for f in feats] == windows(long_q, room // 2)
    short = {**rec, "question": "wo wohnt Anna?"}  # the overlap fits: the default (half the length) stays
    assert [f["input_ids"] for f in get_pipeline(task, tok, max_seq_length=32).featurize([short])] == windows(
        "wo wohnt Anna?", 16)
    with pytest.raises(XLTError, match=rf"^max_seq_length 8 leaves no room for the context after the longest "
                                       rf"question \({q_len} tokens\) and {specials} special tokens; use at least "
                                       rf"{q_len + specials + 1}$"):
        get_pipeline(task, tok, max_seq_length=8).featurize([rec])


def test_multiple_choice_collates_choices(local_tasks, tiny_encoder):
    task = get_task(local_tasks["multiple_choice"])
    tok = load_tokenizer(tiny_encoder)
    pipe = get_pipeline(task, tok)
    feats = pipe.featurize(load_records(task, "train", "en")[:3], train=True)
    batch = pipe.collate(feats)
    assert batch["input_ids"].shape[:2] == (3, 2) and batch["labels"].shape == (3,)
    assert 0 <= padding_fraction([batch]) < 1


# ---- bad input: one line, naming what is valid -------------------------------------------------------------

def test_unknown_task_names_valid_ones(local_tasks):
    with pytest.raises(XLTError, match=r"unknown task 'nope'; valid: .*local_classification"):
        get_task("nope")


def test_unknown_format_names_valid_ones():
    with pytest.raises(XLTError, match=r"valid: classification, multiple_choice, pair_classification"):
        Task(name="t", format="regression", world="local", languages=("en",), metric="accuracy")


def test_label_outside_label_set(local_tasks):
    task = get_task(local_tasks["classification"])
    from xlt_utils.formats.schema import validate_records

    with pytest.raises(XLTError, match=r"label 'neutral'; valid labels: positive, negative"):
        validate_records([{"id": "1", "text": "x", "label": "neutral"}], task.format, task.labels, "t/train/en")


def test_empty_split_is_an_error(tmp_path):
    from xlt_utils.worlds.local import register_local_task

    (tmp_path / "train-en.jsonl").write_text("")
    register_local_task("local_empty", "classification", tmp_path, ["en"], labels=["a", "b"])
    with pytest.raises(XLTError, match=r"local_empty/train/en: the split is empty"):
        load_records("local_empty", "train", "en")


def test_qa_answer_not_in_context():
    from xlt_utils.formats.schema import validate_record

    rec = {"id": "q1", "context": "Anna lives in Oslo.", "question": "Where?",
           "answers": {"text": ["Paris"], "answer_start": [14]}}
    with pytest.raises(XLTError, match=r"answer 'Paris' does not occur in its context at character 14"):
        validate_record(rec, "span_qa", None, "t/dev/en")


def test_unknown_language_names_valid_ones(local_tasks):
    with pytest.raises(XLTError, match=r"has no test split in 'fr'; languages with one: en, de"):
        load_records(local_tasks["classification"], "test", "fr")


def test_error_messages_are_one_line(local_tasks):
    for call in (lambda: get_task("nope"), lambda: load_records(local_tasks["tagging"], "dev", "xx")):
        with pytest.raises(XLTError) as e:
            call()
        assert "\n" not in str(e.value)


def test_train_tokenizer_is_deterministic():
    """The same corpus gives the same tokenizer (pieces, scores, ids) every time: synth encoders, and so every
    synth result, depend on it (the tokenizers Unigram trainer did not: its scores varied with hash order)."""
    from xlt_utils.models import train_tokenizer
    from xlt_utils.synth.corpus import mlm_corpus

    texts = [d[1] for d in mlm_corpus(["en", "fr_like", "hi_like"], 60, seed=0)]
    a, b = (train_tokenizer(texts, vocab_size=400).backend_tokenizer.to_str() for _ in range(2))
    assert a == b
    tok = train_tokenizer(texts, vocab_size=400)
    assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tok.mask_token_id == len(tok) - 1 and len(tok) <= 400


# ---- padding to a multiple of 8 (the default where CUDA is available) --------------------------------------

def test_pad_multiple_defaults_to_8_with_cuda_and_1_without(local_tasks, tiny_encoder, monkeypatch):
    import torch

    task = get_task(local_tasks["classification"])
    tok = load_tokenizer(tiny_encoder)
    feats = get_pipeline(task, tok).featurize(load_records(task, "train", "en")[:5], train=True)
    longest = max(f["length"] for f in feats)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_pipeline(task, tok).pad_to_multiple_of == 8
    assert get_pipeline(task, tok).collate(feats)["input_ids"].shape[1] == -(-longest // 8) * 8
    assert get_pipeline(task, tok, pad_to_multiple_of=1).collate(feats)["input_ids"].shape[1] == longest
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_pipeline(task, tok).pad_to_multiple_of == 1
    with pytest.raises(XLTError, match="pad_to_multiple_of"):
        get_pipeline(task, tok, pad_to_multiple_of=0)


@pytest.mark.parametrize("fmt", ["classification", "tagging", "span_qa", "multiple_choice"])
def test_padding_to_8_changes_no_prediction_or_loss(fmt, local_tasks, tiny_encoder):
    """The extra padding is masked: outputs at real positions, decoded predictions and the training loss agree."""
    from xlt_utils.evaluate import predict_features

    task = get_task(local_tasks[fmt])
    tok = load_tokenizer(tiny_encoder)
    torch.manual_seed(0)
    model = build_model(task, tiny_encoder).eval()
    recs = load_records(task, "dev", "en")[:12]
    outs, losses = [], []
    for multiple in (1, 8):
        pipe = get_pipeline(task, tok, max_seq_length=64, pad_to_multiple_of=multiple)
        feats = pipe.featurize(recs)
        lengths = {pipe.collate(feats[i : i + 4])["input_ids"].shape[-1] for i in range(0, len(feats), 4)}
        assert multiple == 1 or all(n % 8 == 0 for n in lengths)
        outs.append((pipe.decode(recs, feats, predict_features(model, pipe, feats, batch_size=4, device="cpu")),
                     predict_features(model, pipe, feats, batch_size=4, device="cpu")))
        train_feats = pipe.featurize(load_records(task, "train", "en")[:8], train=True)
        with torch.no_grad():
            losses.append(float(model(**pipe.collate(train_feats)).loss))
    assert outs[0][0] == outs[1][0]
    for a, b in zip(outs[0][1], outs[1][1]):
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            assert np.allclose(x, y[: len(x)], atol=1e-4)  # y is longer by the extra padding
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def test_mean_pooling_head_reads_the_masked_mean_and_reloads_with_it(local_tasks, tiny_encoder, tmp_path):
    from xlt_utils.models import POOLING_CONFIG_KEY

    task = get_task(local_tasks["classification"])
    torch.manual_seed(0)
    model = build_model(task, tiny_encoder, classifier_pooling="mean").eval()
    assert "MeanPool" in type(model).__name__ and getattr(encoder_of(model), "pooler", None) is None
    ids = torch.tensor([[0, 5, 6, 7, 2, 1, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]])
    out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([1]))
    hidden = encoder_of(model)(input_ids=ids, attention_mask=mask).last_hidden_state[0, :5]
    by_hand = model.classifier(hidden.mean(dim=0))
    torch.testing.assert_close(out.logits[0], by_hand)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(by_hand[None], torch.tensor([1])))
    unpadded = model(input_ids=ids[:, :5], attention_mask=mask[:, :5]).logits
    torch.testing.assert_close(unpadded, out.logits, atol=1e-5, rtol=1e-5)  # padding changes nothing
    # a fine-tuned model reloads with its own head; its encoder is saved without one
    model.save_pretrained(str(tmp_path / "m"))
    again = build_model(task, tmp_path / "m").eval()
    assert type(again).__name__ == type(model).__name__ and getattr(again.config, POOLING_CONFIG_KEY) == "mean"
    torch.testing.assert_close(again(input_ids=ids, attention_mask=mask).logits, out.logits)
    enc = save_encoder(model, load_tokenizer(tiny_encoder), tmp_path / "enc")
    assert not any("classifier" in k for k in load_file(str(enc / "model.safetensors")))
    assert POOLING_CONFIG_KEY not in json.loads((enc / "config.json").read_text())  # the head's, not the encoder's
    assert getattr(model.config, POOLING_CONFIG_KEY) == "mean"
    assert type(build_model(task, enc)).__name__.endswith("ForSequenceClassification")  # unset: cls
    # a training worker of a multi-process run rebuilds the same head from the saved directory
    from xlt_utils.dist_train import model_class

    assert model_class(type(model).__name__, tmp_path / "m").__name__ == type(model).__name__
    assert model_class("XLMRobertaForSequenceClassification", tmp_path / "m").__name__ == \
        "XLMRobertaForSequenceClassification"
    with pytest.raises(XLTError, match="'Nope' is not a transformers model class"):
        model_class("Nope", tmp_path / "m")
    # it trains through the one loop
    tok = load_tokenizer(tiny_encoder)
    pipe = get_pipeline(task, tok, max_seq_length=32)
    feats = pipe.featurize(load_records(task, "train", "en"), train=True)
    res = train(model.train(), feats, pipe.collate, TrainConfig(learning_rate=3e-3, max_steps=6,
                                                                per_device_train_batch_size=8, progress=False,
                                                                log_every=1))
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    with pytest.raises(XLTError, match="unknown classifier_pooling 'max'; valid: cls, mean"):
        build_model(task, tiny_encoder, classifier_pooling="max")
