"""Per-format featurization, collation and prediction decoding.

A *feature* is a dict of Python lists (``input_ids``, ``attention_mask``, ``labels``...) plus ``length``
(tokens, for length-grouped batching) and ``example_index`` (which record it came from; span QA splits a
record into several doc-stride windows). :meth:`Pipeline.collate` pads a list of features into tensors
(dynamic padding: to the longest in the batch). :meth:`Pipeline.decode` turns the model outputs of all the
features of a split back into one prediction per record, the form :func:`xlt_utils.metrics.compute` takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xlt_utils.errors import XLTError, unknown
from xlt_utils.tasks import Task

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

# torch is imported where tensors are made (collate, packing), not here: featurizing, decoding and scoring need
# none, so a cell that only scores (a majority baseline) pays for no torch import.

Feature = dict[str, Any]
IGNORE = -100


def _pad(seqs: Sequence[Sequence[int]], value: int, multiple: int = 1) -> torch.Tensor:
    import torch

    n = max(len(s) for s in seqs)
    n = -(-n // multiple) * multiple
    out = torch.full((len(seqs), n), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def default_pad_multiple() -> int:
    """8 where CUDA is available (tensor-core friendly batch lengths), else 1 (no extra padding on CPU)."""
    import torch

    return 8 if torch.cuda.is_available() else 1


class Pipeline:
    """Featurization, collation and decoding of one task format.

    Args:
        task: the task.
        tokenizer: a fast tokenizer (offsets and word ids are needed).
        max_seq_length: maximum tokens per feature.
        pad_to_multiple_of: pad batch length up to a multiple; default (``None``): 8 where CUDA is available
            (bf16 matrix products on tensor cores want dimensions that are multiples of 8), else 1. Padding is
            masked, so a model's outputs at real positions do not depend on it (tested).
    """

    format: str = ""

    def __init__(self, task: Task, tokenizer: PreTrainedTokenizerBase, max_seq_length: int = 128,
                 pad_to_multiple_of: int | None = None, **options: Any):
        if task.format != self.format:
            raise XLTError(f"task {task.name!r} has format {task.format!r}, not {self.format!r}")
        self.task = task
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.pad_to_multiple_of = default_pad_multiple() if pad_to_multiple_of is None else int(pad_to_multiple_of)
        if self.pad_to_multiple_of < 1:
            raise XLTError(f"pad_to_multiple_of must be a positive integer, not {pad_to_multiple_of!r}")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.options = {**dict(task.options), **options}
        self.label2id = {lab: i for i, lab in enumerate(task.labels or ())}

    # -- to override -------------------------------------------------------------------------------------
    def featurize(self, records: Sequence[dict], train: bool = False) -> list[Feature]:
        """Tokenize records into features (``train`` adds the training labels)."""
        raise NotImplementedError

    def decode(self, records: Sequence[dict], features: Sequence[Feature], outputs: Sequence[Any]) -> list[Any]:
        """Turn the per-feature outputs (one per feature, in feature order) into one prediction per record."""
        raise NotImplementedError

    def references(self, records: Sequence[dict]) -> list[Any]:
        """The gold side matching :meth:`decode`'s predictions."""
        raise NotImplementedError

    def output_of(self, model_output: Any) -> list[Any]:
        """Extract what :meth:`decode` needs from a batch's forward output: one numpy item per feature."""
        return list(model_output.logits.float().cpu().numpy())

    # -- shared ------------------------------------------------------------------------------------------
    model_keys = ("input_ids", "attention_mask", "labels")

    def collate(self, features: Sequence[Feature]) -> dict[str, torch.Tensor]:
        """Pad a list of features into a batch (dynamic padding)."""
        import torch

        batch = {
            "input_ids": _pad([f["input_ids"] for f in features], self.pad_id, self.pad_to_multiple_of),
            "attention_mask": _pad([f["attention_mask"] for f in features], 0, self.pad_to_multiple_of),
        }
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        return batch

    def metric_options(self, lang: str) -> dict[str, Any]:
        """Options for :func:`xlt_utils.metrics.compute` (e.g. the language for QA normalisation)."""
        return {}


class ClassificationPipeline(Pipeline):
    """Single-text sequence classification (SST-2 style)."""

    format = "classification"

    def _encode(self, records: Sequence[dict]) -> dict[str, list]:
        return self.tokenizer([r["text"] for r in records], truncation=True, max_length=self.max_seq_length)

    def featurize(self, records: Sequence[dict], train: bool = False) -> list[Feature]:
        enc = self._encode(records)
        feats = []
        for i, r in enumerate(records):
            f = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "length": len(enc["input_ids"][i]), "example_index": i}
            if train:
                f["labels"] = self.label2id[r["label"]]
            feats.append(f)
        return feats

    def decode(self, records, features, outputs):
        labels = self.task.labels
        return [labels[int(np.argmax(o))] for o in outputs]

    def references(self, records):
        return [r["label"] for r in records]


class PairClassificationPipeline(ClassificationPipeline):
    """Sentence-pair classification (NLI, paraphrase); the pair is truncated longest-first."""

    format = "pair_classification"

    def _encode(self, records: Sequence[dict]) -> dict[str, list]:
        return self.tokenizer([r["text_a"] for r in records], [r["text_b"] for r in records],
                              truncation=True, max_length=self.max_seq_length)


class TaggingPipeline(Pipeline):
    """Token classification: the first sub-token of each word carries its label, the others are ignored.

    Words cut off by ``max_seq_length`` are predicted as ``O`` (or the first label when there is no ``O``)
    and counted in :attr:`truncated_words`.
    """

    format = "tagging"

    def featurize(self, records: Sequence[dict], train: bool = False) -> list[Feature]:
        enc = self.tokenizer([r["tokens"] for r in records], is_split_into_words=True, truncation=True,
                             max_length=self.max_seq_length)
        feats = []
        for i, r in enumerate(records):
            word_ids = enc.word_ids(i)
            first = []  # token position of each word's first sub-token
            prev = None
            for pos, w in enumerate(word_ids):
                if w is not None and w != prev:
                    first.append(pos)
                prev = w
            f = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "length": len(enc["input_ids"][i]), "example_index": i, "first_subtoken": first}
            # A word the tokenizer maps to no sub-token at all (e.g. a lone combining mark) would shift the
            # alignment; record the word index of each first sub-token so decoding stays exact.
            f["word_index"] = [word_ids[p] for p in first]
            if train:
                labels = [IGNORE] * len(word_ids)
                for p, w in zip(first, f["word_index"]):
                    labels[p] = self.label2id[r["tags"][w]]
                f["labels"] = labels
            feats.append(f)
        return feats

    def collate(self, features):
        batch = super().collate([{k: v for k, v in f.items() if k != "labels"} for f in features])
        if "labels" in features[0]:
            labels = _pad([f["labels"] for f in features], IGNORE, self.pad_to_multiple_of)
            batch["labels"] = labels[:, : batch["input_ids"].shape[1]]
        return batch

    def output_of(self, model_output):
        return list(model_output.logits.float().argmax(-1).cpu().numpy())

    def decode(self, records, features, outputs):
        labels = self.task.labels
        fallback = "O" if "O" in labels else labels[0]
        self.truncated_words = 0
        preds = []
        for r, f, ids in zip(records, features, outputs):
            tags = [fallback] * len(r["tokens"])
            for p, w in zip(f["first_subtoken"], f["word_index"]):
                tags[w] = labels[int(ids[p])]
            self.truncated_words += len(r["tokens"]) - len(set(f["word_index"]))
            preds.append(tags)
        return preds

    def references(self, records):
        return [list(r["tags"]) for r in records]


class SpanQAPipeline(Pipeline):
    """Extractive QA with doc-stride windows; the answer is the best span over all windows of a record.

    Options: ``doc_stride`` (token overlap between windows, default 128), ``max_answer_length`` (tokens,
    default 30), ``n_best`` (start/end candidates per window, default 20), ``normalization`` (answer
    normalisation for scoring: ``auto``, ``squad`` or ``mlqa``).
    """

    format = "span_qa"

    def featurize(self, records: Sequence[dict], train: bool = False) -> list[Feature]:
        stride = int(self.options.get("doc_stride", 128))
        stride = min(stride, max(self.max_seq_length // 2, 1))
        questions = [r["question"].lstrip() for r in records]  # XLM-R is sensitive to leading spaces
        # The tokenizer needs the overlap below the room a window leaves for context (it panics otherwise): the
        # length minus the longest question and the special tokens. Where the overlap above fits, it is kept.
        q_len = max((len(ids) for ids in self.tokenizer(questions, add_special_tokens=False)["input_ids"]), default=0)
        specials = self.tokenizer.num_special_tokens_to_add(pair=True)
        room = self.max_seq_length - q_len - specials
        if room < 1:
            raise XLTError(f"max_seq_length {self.max_seq_length} leaves no room for the context after the longest "
                           f"question ({q_len} tokens) and {specials} special tokens; use at least "
                           f"{q_len + specials + 1}")
        if stride >= room:
            stride = room // 2
        # The tokenizer pads nothing here.
        enc = self.tokenizer(questions, [r["context"] for r in records],
                             truncation="only_second", max_length=self.max_seq_length, stride=stride,
                             return_overflowing_tokens=True, return_offsets_mapping=True)
        feats = []
        for j in range(len(enc["input_ids"])):
            i = enc["overflow_to_sample_mapping"][j]
            seq_ids = enc.sequence_ids(j)
            offsets = enc["offset_mapping"][j]
            # Keep offsets of context tokens only; others become None so they are never predicted.
            ctx_offsets = [o if s == 1 else None for o, s in zip(offsets, seq_ids)]
            f = {"input_ids": enc["input_ids"][j], "attention_mask": enc["attention_mask"][j],
                 "length": len(enc["input_ids"][j]), "example_index": i, "offsets": ctx_offsets}
            if train:
                r = records[i]
                start_pos = end_pos = 0  # the <s> token: "no answer in this window"
                if r["answers"]["text"]:
                    a_start = r["answers"]["answer_start"][0]
                    a_end = a_start + len(r["answers"]["text"][0])
                    ctx = [k for k, o in enumerate(ctx_offsets) if o is not None]
                    if ctx and ctx_offsets[ctx[0]][0] <= a_start and ctx_offsets[ctx[-1]][1] >= a_end:
                        start_pos = next(k for k in ctx if ctx_offsets[k][1] > a_start)
                        end_pos = next(k for k in reversed(ctx) if ctx_offsets[k][0] < a_end)
                f["start_positions"], f["end_positions"] = start_pos, end_pos
            feats.append(f)
        return feats

    def collate(self, features):
        import torch

        batch = super().collate(features)
        if "start_positions" in features[0]:
            batch["start_positions"] = torch.tensor([f["start_positions"] for f in features])
            batch["end_positions"] = torch.tensor([f["end_positions"] for f in features])
        return batch

    def output_of(self, model_output):
        s = model_output.start_logits.float().cpu().numpy()
        e = model_output.end_logits.float().cpu().numpy()
        return list(zip(s, e))

    def decode(self, records, features, outputs):
        n_best = int(self.options.get("n_best", 20))
        max_len = int(self.options.get("max_answer_length", 30))
        best: dict[int, tuple[float, str]] = {}
        for f, (start_logits, end_logits) in zip(features, outputs):
            offsets = f["offsets"]
            n = len(offsets)
            start_logits, end_logits = start_logits[:n], end_logits[:n]
            starts = np.argsort(start_logits)[::-1][:n_best]
            ends = np.argsort(end_logits)[::-1][:n_best]
            ctx = records[f["example_index"]]["context"]
            for s in starts:
                if offsets[s] is None:
                    continue
                for e in ends:
                    if offsets[e] is None or e < s or e - s + 1 > max_len:
                        continue
                    score = float(start_logits[s] + end_logits[e])
                    cur = best.get(f["example_index"])
                    if cur is None or score > cur[0]:
                        best[f["example_index"]] = (score, ctx[offsets[s][0] : offsets[e][1]])
        return [best.get(i, (0.0, ""))[1] for i in range(len(records))]

    def references(self, records):
        return [list(r["answers"]["text"]) for r in records]

    def metric_options(self, lang):
        # XTREME scores XQuAD/TyDiQA with SQuAD rules in every language and MLQA with its per-language
        # rules: a task says which through options["normalization"] (see xlt_utils.metrics).
        return {"lang": lang, "normalization": self.options.get("normalization", "auto")}


class MultipleChoicePipeline(Pipeline):
    """Multiple choice: each (context + question, choice) pair is encoded; the head scores each choice."""

    format = "multiple_choice"

    def featurize(self, records: Sequence[dict], train: bool = False) -> list[Feature]:
        firsts, seconds = [], []
        for r in records:
            first = " ".join(x for x in (r["context"], r["question"]) if x)
            for c in r["choices"]:
                firsts.append(first)
                seconds.append(c)
        enc = self.tokenizer(firsts, seconds, truncation=True, max_length=self.max_seq_length)
        feats, k = [], 0
        for i, r in enumerate(records):
            n = len(r["choices"])
            ids = enc["input_ids"][k : k + n]
            mask = enc["attention_mask"][k : k + n]
            k += n
            f = {"input_ids": ids, "attention_mask": mask, "length": max(len(x) for x in ids) * n,
                 "example_index": i}
            if train:
                f["labels"] = r["label"]
            feats.append(f)
        return feats

    def collate(self, features):
        import torch

        n_choices = {len(f["input_ids"]) for f in features}
        if len(n_choices) != 1:
            raise XLTError(f"a multiple_choice batch mixes {sorted(n_choices)} choices; a task needs a fixed number")
        flat_ids = [x for f in features for x in f["input_ids"]]
        flat_mask = [x for f in features for x in f["attention_mask"]]
        b, c = len(features), n_choices.pop()
        batch = {"input_ids": _pad(flat_ids, self.pad_id, self.pad_to_multiple_of).view(b, c, -1),
                 "attention_mask": _pad(flat_mask, 0, self.pad_to_multiple_of).view(b, c, -1)}
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        return batch

    def decode(self, records, features, outputs):
        return [int(np.argmax(o)) for o in outputs]

    def references(self, records):
        return [r["label"] for r in records]


class RetrievalPipeline(Pipeline):
    """Retrieval needs no head: texts are embedded by :func:`xlt_utils.retrieval.embed` (see evaluate)."""

    format = "retrieval"

    def featurize(self, records, train=False):
        raise XLTError(f"retrieval task {self.task.name!r} is evaluated from embeddings; it has no training features")


PIPELINES: dict[str, type[Pipeline]] = {
    p.format: p
    for p in (ClassificationPipeline, PairClassificationPipeline, TaggingPipeline, SpanQAPipeline,
              MultipleChoicePipeline, RetrievalPipeline)
}


def get_pipeline(task: Task, tokenizer: PreTrainedTokenizerBase, **kwargs: Any) -> Pipeline:
    """The pipeline of a task's format.

    Args:
        task: the task.
        tokenizer: a fast tokenizer.
        **kwargs: ``max_seq_length``, ``pad_to_multiple_of`` and format options (``doc_stride``...).
    """
    if task.format not in PIPELINES:
        raise unknown("format", task.format, PIPELINES)
    if not getattr(tokenizer, "is_fast", False):
        raise XLTError("a fast tokenizer is required (offset mapping and word ids)")
    return PIPELINES[task.format](task, tokenizer, **kwargs)


def padding_fraction(batches: Sequence[dict[str, torch.Tensor]]) -> float:
    """Fraction of padded positions over a list of collated batches."""
    total = sum(b["attention_mask"].numel() for b in batches)
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    return 1.0 - real / total if total else 0.0


def pack_batch(batch: dict[str, torch.Tensor], position_offset: int = 0) -> dict[str, torch.Tensor]:
    """A collated batch as one row without padding: its sequences one after the other (padding-free training).

    ``input_ids`` and every other per-token tensor of the batch's ``(batch, length)`` shape (``token_type_ids``,
    token-level ``labels``) become ``(1, total real tokens)``; per-sequence tensors (a classifier's ``labels``)
    stay as they are. ``position_ids`` restart at ``position_offset`` for each sequence (0 for BERT-like models;
    RoBERTa / XLM-R number positions from ``padding_idx + 1``), and ``cu_seq_lens`` (int32, ``batch + 1``) holds
    where each sequence starts, the last entry being the total. ``attention_mask`` is dropped: the attention has
    to be kept within each sequence by the model (:class:`xlt_utils.models.Packer`). The batch must be padded on
    the right (as :meth:`Pipeline.collate` pads) and hold no empty sequence."""
    import torch

    mask = batch["attention_mask"]
    if mask.dim() != 2:
        raise XLTError(f"packing needs (batch, length) inputs, got attention_mask of shape {tuple(mask.shape)} "
                       f"(multiple choice's (batch, choices, length) batches train padded)")
    real = mask.bool()
    lengths = real.sum(dim=1)
    positions = torch.arange(mask.shape[1]).expand_as(mask)
    if bool((lengths == 0).any()) or not torch.equal(real, positions < lengths[:, None]):
        raise XLTError("packing needs right-padded batches without empty sequences")
    cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    cu[1:] = lengths.cumsum(0)
    packed = {"position_ids": (positions[real] + position_offset)[None], "cu_seq_lens": cu}
    for key, value in batch.items():
        if key != "attention_mask":
            packed[key] = value[real][None] if value.shape[:2] == mask.shape else value
    return packed


__all__ = ["PIPELINES", "Pipeline", "default_pad_multiple", "get_pipeline", "pack_batch", "padding_fraction"]
