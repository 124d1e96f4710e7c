"""Models: heads built from ``transformers`` Auto classes, encoder transfer between phases, tiny XLM-R.

The unit passed between phases is an *encoder directory*: a ``transformers`` base model (no task head) saved
as safetensors, with its tokenizer. Intermediate training ends with :func:`save_encoder`; target training
starts with :func:`build_model`, which puts a freshly initialised head of the target format on it. Heads are
never carried over.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaModel,
    XLMRobertaTokenizerFast,
)
from transformers.utils import logging as hf_logging

from xlt_utils.choices import CLASSIFIER_POOLINGS, PACKABLE_FORMATS, TOKENIZER_MODELS
from xlt_utils.errors import XLTError, unknown
from xlt_utils.tasks import Task

HEADS = {
    "classification": AutoModelForSequenceClassification,
    "pair_classification": AutoModelForSequenceClassification,
    "tagging": AutoModelForTokenClassification,
    "span_qa": AutoModelForQuestionAnswering,
    "multiple_choice": AutoModelForMultipleChoice,
    "retrieval": AutoModel,
}
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]  # XLM-R ids 0..3; <mask> is the last id
# How a sequence-level head reads the encoder: ``cls``, the architecture's own head (BERT: its pooler on [CLS];
# XLM-R: a dense layer on <s>), or ``mean``, a linear classifier on the mean of the last layer's token states over
# the attention mask (the pooling sentence encoders such as e5 are trained with; no random pooler).
POOLING_CONFIG_KEY = "xlt_classifier_pooling"  # saved in a fine-tuned model's config.json


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2000, out_dir: str | Path | None = None,
                    model_max_length: int = 512, model: str = "unigram") -> PreTrainedTokenizerBase:
    """Train an XLM-R-style tokenizer locally: SentencePiece Unigram (as XLM-R) or word-level.

    Special tokens follow XLM-R (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, ``<mask>`` last), with
    Metaspace pre-tokenisation, so featurization (offsets, word ids) behaves as with the real XLM-R.

    Args:
        texts: training corpus.
        vocab_size: target vocabulary size (including specials); for ``word`` an upper bound (the most frequent
            words, ties in code-point order; the rest become ``<unk>``).
        out_dir: if given, the tokenizer is saved there.
        model_max_length: the tokenizer's maximum length.
        model: ``unigram`` (subwords, as XLM-R) or ``word`` (one token per whitespace word: for the synth
            world, whose languages have a closed vocabulary; a letter-mapped control is then tokenised exactly
            as English is, which a Unigram model trained on 15 languages does not do).

    Returns:
        A fast tokenizer: ``XLMRobertaTokenizerFast`` (unigram) or ``PreTrainedTokenizerFast`` (word; the XLM-R
        class is Unigram-only), with the same specials, template, offsets and word ids.
    """
    import collections
    import io
    import unicodedata

    from tokenizers import Tokenizer, models

    if model not in TOKENIZER_MODELS:
        raise XLTError(f"unknown tokenizer model {model!r}; choose one of: {', '.join(TOKENIZER_MODELS)}")
    corpus = [unicodedata.normalize("NFKC", t) for t in texts]
    if model == "word":
        counts = collections.Counter("\u2581" + w for t in corpus for w in t.split())
        ranked = sorted(counts, key=lambda w: (-counts[w], w))[: max(0, vocab_size - len(SPECIAL_TOKENS) - 1)]
        vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS + ranked)}
        tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        return _xlmr_fast(tok, out_dir, model_max_length, cls=PreTrainedTokenizerFast)

    import sentencepiece as spm

    # SentencePiece's Unigram trainer, single-threaded: the same corpus gives the same pieces, scores and ids in every
    # process (the `tokenizers` Unigram trainer sums scores in hash-map order, so near-ties and ids varied between
    # runs, and with them every synth encoder trained on top)
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=proto, model_type="unigram",
        vocab_size=vocab_size - len(SPECIAL_TOKENS), hard_vocab_limit=False,  # + 3 specials + <mask> = vocab_size
        character_coverage=1.0, normalization_rule_name="identity", add_dummy_prefix=True,
        remove_extra_whitespaces=False, num_threads=1, shuffle_input_sentence=False, input_sentence_size=0,
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    pieces = [(sp.id_to_piece(i), float(sp.get_score(i))) for i in range(sp.get_piece_size()) if i != sp.unk_id()]
    vocab = [(t, 0.0) for t in SPECIAL_TOKENS] + pieces
    return _xlmr_fast(Tokenizer(models.Unigram(vocab, unk_id=SPECIAL_TOKENS.index("<unk>"))), out_dir,
                      model_max_length)


def _xlmr_fast(tok: Any, out_dir: str | Path | None, model_max_length: int,
               cls: type = XLMRobertaTokenizerFast) -> PreTrainedTokenizerBase:
    """Wrap a ``tokenizers`` model as an XLM-R fast tokenizer (NFKC, Metaspace, XLM-R specials and template)."""
    from tokenizers import decoders, normalizers, pre_tokenizers, processors

    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.add_special_tokens(SPECIAL_TOKENS + ["<mask>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    fast = cls(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   model_max_length=model_max_length)
    if out_dir is not None:
        fast.save_pretrained(str(out_dir))
    return fast


def tiny_xlmr_config(vocab_size: int, hidden_size: int = 32, num_hidden_layers: int = 2,
                     num_attention_heads: int = 2, intermediate_size: int = 64,
                     max_position_embeddings: int = 514, **kwargs: Any) -> XLMRobertaConfig:
    """Config of a small XLM-R (same architecture as the real one; sizes are parameters)."""
    return XLMRobertaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        type_vocab_size=1, attn_implementation="sdpa", **kwargs,
    )


def init_encoder(config: XLMRobertaConfig, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path,
                 seed: int = 0) -> Path:
    """Create a randomly initialised encoder directory (model + tokenizer) from a config."""
    torch.manual_seed(seed)
    model = XLMRobertaModel(config, add_pooling_layer=False)
    out = Path(out_dir)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return out


def load_tokenizer(encoder: str | Path) -> PreTrainedTokenizerBase:
    """Load the (fast) tokenizer saved with an encoder or named by a Hub id.

    A local directory with a ``tokenizer.json`` goes through :func:`_tokenizer_cache`: the tokenizer that
    ``AutoTokenizer`` builds from it, saved once and then loaded as is. ``AutoTokenizer`` builds the class the config
    names, and ``XLMRobertaTokenizer`` (XLM-R, e5, the synth encoders) rebuilds its normalizer, pre-tokenizer and
    Unigram model from the file's vocabulary: 2.5 s for e5's 250k pieces on this machine, paid by every cell that
    loads it, and not the same tokenizer as the file itself for a trained synth tokenizer (no NFKC normalizer, a
    whitespace split), so the file cannot simply be read instead. Hub ids and directories without the file keep
    ``AutoTokenizer``.
    """
    path = Path(encoder)
    cached = None
    if path.is_dir() and (path / "tokenizer.json").is_file():
        try:
            cached = _tokenizer_cache(path)
        except OSError:  # a cache that cannot be written (read-only checkout): build it here, as before
            cached = None
    if cached is not None:
        tok = PreTrainedTokenizerFast.from_pretrained(str(cached))
    else:
        tok = AutoTokenizer.from_pretrained(str(encoder))
    if not tok.is_fast:
        raise XLTError(f"tokenizer of {encoder} is not a fast tokenizer; offsets and word ids need one")
    return tok


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")


def _tokenizer_cache(encoder: Path) -> Path:
    """A directory holding the tokenizer ``AutoTokenizer`` builds from ``encoder``'s files, saved by it (its
    ``tokenizer.json`` is that tokenizer's own backend), under ``.cache/xlt/tokenizers/<key>``; the key hashes the
    tokenizer files and the transformers version, so every run directory holding the same files shares one entry.
    Built on first use (atomically: concurrent cells each build and one rename wins)."""
    import hashlib
    import shutil
    import tempfile

    import transformers

    from xlt_utils import paths

    h = hashlib.sha256(transformers.__version__.encode())
    for name in TOKENIZER_FILES:
        f = encoder / name
        h.update(name.encode() + b"\0" + (f.read_bytes() if f.is_file() else b"-") + b"\0")
    root = paths.CACHE / "xlt" / "tokenizers"
    out = root / h.hexdigest()[:24]
    if (out / "tokenizer.json").is_file():
        return out
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        AutoTokenizer.from_pretrained(str(encoder)).save_pretrained(str(tmp))
        try:
            tmp.rename(out)
        except OSError:  # built meanwhile by another cell
            if not (out / "tokenizer.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def mean_pool_classifier_class(config: Any) -> type:
    """A sequence classifier of ``config``'s architecture whose head is a linear layer on the mean-pooled last
    hidden states (padding excluded by the attention mask); loss as ``transformers``' classifiers (cross-entropy).

    The class is built on the architecture's own ``PreTrainedModel`` base, so ``from_pretrained`` loads an encoder
    directory into it (the new ``classifier`` is the only missing weight) and a saved model reloads exactly."""
    from torch import nn
    from transformers import MODEL_MAPPING
    from transformers.modeling_outputs import SequenceClassifierOutput

    try:
        base_cls = MODEL_MAPPING[type(config)]
    except KeyError:
        raise XLTError(f"classifier_pooling 'mean' needs a base model class for {type(config).__name__}; "
                       f"use classifier_pooling 'cls'") from None
    pre = next(c for c in base_cls.__mro__[1:] if issubclass(c, PreTrainedModel) and c is not PreTrainedModel)

    class MeanPoolForSequenceClassification(pre):  # type: ignore[misc, valid-type]
        xlt_pooling = "mean"  # read by Packer: a packed batch's sequence summary is its mean, not its first token

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.num_labels = config.num_labels
            kwargs = {"add_pooling_layer": False} if "add_pooling_layer" in base_cls.__init__.__code__.co_varnames \
                else {}
            setattr(self, self.base_model_prefix, base_cls(config, **kwargs))
            drop = getattr(config, "classifier_dropout", None)
            self.dropout = nn.Dropout(config.hidden_dropout_prob if drop is None else drop)
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
            self.post_init()

        def forward(self, input_ids: Any = None, attention_mask: Any = None, labels: Any = None,
                    **kwargs: Any) -> SequenceClassifierOutput:
            kwargs.pop("return_dict", None)
            hidden = getattr(self, self.base_model_prefix)(input_ids=input_ids, attention_mask=attention_mask,
                                                           **kwargs).last_hidden_state
            if attention_mask is None:
                pooled = hidden.mean(dim=1)
            else:
                m = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
            logits = self.classifier(self.dropout(pooled))
            loss = None
            if labels is not None:
                loss = nn.functional.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
            return SequenceClassifierOutput(loss=loss, logits=logits)

    MeanPoolForSequenceClassification.__qualname__ = f"MeanPool{pre.__name__.replace('PreTrainedModel', '')}"
    return MeanPoolForSequenceClassification


def build_model(task: Task, encoder: str | Path, *, trust_remote_code: bool = False,
                freeze_embeddings: bool = False, classifier_pooling: str | None = None,
                num_layers: int | None = None, **model_kwargs: Any) -> PreTrainedModel:
    """Load an encoder and put a fresh head of the task's format on it.

    Args:
        task: the task (format and labels decide the head).
        encoder: an encoder directory (:func:`save_encoder`), a fine-tuned model's directory, or a model id
            available locally.
        trust_remote_code: passed through; off unless a user asks for it by name.
        freeze_embeddings: freeze the word embeddings (:func:`freeze_word_embeddings`).
        classifier_pooling: one of :data:`CLASSIFIER_POOLINGS`, for the sequence-level formats
            (classification, pair_classification; token-level and span heads read every token and ignore it).
            None: what ``encoder``'s config records (a fine-tuned model reloads with its own head), else ``cls``.
        num_layers: keep only the encoder's first n transformer layers (loaded from ``encoder``'s first n; the
            others are never built), so the model is trained, saved (``num_hidden_layers`` n) and evaluated at
            that depth; None = all of them.
        **model_kwargs: extra ``from_pretrained`` arguments (e.g. ``torch_dtype``).

    Returns:
        The model; for ``retrieval`` the bare encoder.
    """
    if classifier_pooling is not None and classifier_pooling not in CLASSIFIER_POOLINGS:
        raise unknown("classifier_pooling", classifier_pooling, CLASSIFIER_POOLINGS)
    head = HEADS[task.format]
    kwargs: dict[str, Any] = dict(trust_remote_code=trust_remote_code, **model_kwargs)
    if task.format in ("classification", "pair_classification"):
        if classifier_pooling is None:
            classifier_pooling = getattr(model_config(encoder), POOLING_CONFIG_KEY, "cls")
        if classifier_pooling == "mean":
            head = mean_pool_classifier_class(model_config(encoder))
    if task.format in ("classification", "pair_classification", "tagging"):
        labels = list(task.labels or ())
        kwargs.update(num_labels=len(labels), id2label=dict(enumerate(labels)),
                      label2id={lab: i for i, lab in enumerate(labels)})
    if task.format == "span_qa":
        # start and end logits; without this the head takes num_labels from the encoder's saved config, which
        # after an intermediate classification task is that task's label count (MNLI: 3 -> the QA forward fails)
        kwargs.update(num_labels=2, id2label={0: "LABEL_0", 1: "LABEL_1"}, label2id={"LABEL_0": 0, "LABEL_1": 1})
    if task.format == "retrieval":
        kwargs["add_pooling_layer"] = False
    if num_layers is not None:
        kwargs["num_hidden_layers"] = check_depth(num_layers, encoder)
    try:
        # The new head is *meant* to be missing from the encoder checkpoint: silence that load report.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            model = head.from_pretrained(str(encoder), **kwargs)
        finally:
            hf_logging.set_verbosity(verbosity)
    except OSError as e:
        raise XLTError(f"could not load encoder {encoder!r}: {str(e).splitlines()[0]}") from e
    if task.format in ("classification", "pair_classification"):
        setattr(model.config, POOLING_CONFIG_KEY, classifier_pooling)  # saved with the model: eval rebuilds it
    if freeze_embeddings:
        freeze_word_embeddings(model)
    return model


def check_depth(num_layers: int, encoder: str | Path) -> int:
    """``num_layers`` if ``encoder`` has at least that many transformer layers, else a one-line error naming
    the valid range."""
    depth = int(model_config(encoder).num_hidden_layers)
    if not 1 <= num_layers <= depth:
        raise XLTError(f"num_layers {num_layers} is not a depth of the encoder {encoder} ({depth} layers); valid: "
                       f"1..{depth}, or None for all of them")
    return num_layers


def encoder_of(model: PreTrainedModel) -> PreTrainedModel:
    """The base encoder inside a head model (the model itself if it has no head)."""
    base = getattr(model, model.base_model_prefix, None)
    return base if isinstance(base, PreTrainedModel) else model


def save_encoder(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path,
                 provenance: dict[str, Any] | None = None) -> Path:
    """Save the encoder alone (safetensors, no task head) with its tokenizer.

    Args:
        model: a head model or bare encoder.
        tokenizer: its tokenizer.
        out_dir: the encoder directory to write.
        provenance: optional JSON-serialisable record (which run, which task) saved as ``provenance.json``.

    Returns:
        The directory.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    enc = encoder_of(model)
    # the head's pooling is the head's, not the encoder's: a later head chooses its own
    pooling = enc.config.__dict__.pop(POOLING_CONFIG_KEY, None)
    try:
        enc.save_pretrained(str(out), safe_serialization=True)
    finally:
        if pooling is not None:
            setattr(enc.config, POOLING_CONFIG_KEY, pooling)
    tokenizer.save_pretrained(str(out))
    if provenance is not None:
        (out / "provenance.json").write_text(json.dumps(provenance, indent=1, default=str))
    return out


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def freeze_word_embeddings(model: PreTrainedModel) -> int:
    """Freeze the input word embeddings (position/type embeddings and LayerNorm stay trainable).

    Large-vocabulary encoders train about 2× faster on CPU with half the memory this way (the embedding
    matrix is most of their parameters and AdamW state).

    Returns:
        The number of parameters frozen.
    """
    weight = model.get_input_embeddings().weight
    weight.requires_grad_(False)
    return weight.numel()


def model_config(encoder: str | Path) -> Any:
    """The config of an encoder directory or model id (no weights loaded)."""
    return AutoConfig.from_pretrained(str(encoder))


# ------------------------------------------------------------------------------------- padding-free training
PACKED_ATTENTION = "xlt_packed"  # the attention function Packer registers with transformers' AttentionInterface
def _packed_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                      cu_seq_lens_q: torch.Tensor | None = None, xlt_pack: dict[str, torch.Tensor] | None = None,
                      **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention over one packed row ``(1, heads, tokens, head_dim)``, kept within each sequence.

    Only the attention itself runs on the padded layout: queries, keys and values are gathered into
    ``(sequences, heads, longest, head_dim)`` (``xlt_pack['index']``), SDPA runs with a key-padding mask, and the
    real positions are gathered back; every other layer (projections, feed-forward, LayerNorm, head) runs on the
    real tokens only. The attention costs what it costs in the padded batch (sum of longest² per batch, not
    tokens²); attention dropout is SDPA's, as in the padded model."""
    if xlt_pack is None:
        raise XLTError(f"attention {PACKED_ATTENTION!r} needs a packed batch (xlt_utils.models.Packer)")
    index, valid = xlt_pack["index"], xlt_pack["valid"]
    q, k, v = (t[0].transpose(0, 1)[index].transpose(1, 2) for t in (query, key, value))
    out = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=valid[:, None, None, :], dropout_p=dropout, scale=scaling)
    # back to the row by an index, not the boolean mask: its size is known, so torch.compile does not break here
    return out.transpose(1, 2).flatten(0, 1)[xlt_pack["real"]].unsqueeze(0), None


def packing_kind(model: torch.nn.Module) -> str:
    """``"sequence"`` (a sequence classifier: one label per sequence) or ``"token"`` (token classification, masked
    LM: labels per token) when ``model`` can train on packed batches; a one-line error naming what can otherwise."""
    name = type(model).__name__
    kind = ("token" if name.endswith(("ForTokenClassification", "ForMaskedLM"))
            else "sequence" if name.endswith("ForSequenceClassification") else None)
    if kind is None or not getattr(model, "_supports_attention_backend", False):
        raise XLTError(f"packing (padding-free training) supports the formats {', '.join(PACKABLE_FORMATS)} and "
                       f"MLM pretraining, with transformers models whose attention is pluggable; got {name}: train "
                       f"it with packing off")
    return kind


def position_offset(model: torch.nn.Module) -> int:
    """Where a sequence's position ids start: ``padding_idx + 1`` for RoBERTa / XLM-R (2), 0 for BERT-like models."""
    emb = getattr(encoder_of(model), "embeddings", None)
    if hasattr(emb, "create_position_ids_from_input_ids"):
        return int(emb.padding_idx) + 1
    return 0


class Packer:
    """Padding-free training of ``model``: each collated batch becomes one row of its sequences back to back.

    Position ids restart per sequence (as the padded model numbers them) and the attention stays within each
    sequence: with ``flash_attention_*`` models through transformers' own variable-length path (``cu_seq_lens_*``
    keyword arguments), otherwise through :func:`_packed_attention` (SDPA on the padded layout for the attention
    alone), switched on for the packed forward only (the model's config keeps its own implementation, so
    evaluation and the saved config are unchanged). transformers 5 also builds a block-diagonal mask when
    position ids restart and no attention mask is given, but that attends over the whole row (tokens², ~batch
    times the padded attention at ~50 tokens per sequence), hence the gather.

    A sequence classifier reads each sequence's first token (``cls``) or the mean of its tokens (the mean-pooling
    head): a forward hook on the encoder hands the head ``(sequences, 1, hidden)`` (and recomputes a BERT pooler
    from it), so the head and its loss run unchanged. Token-level heads read the row as it is; their labels are
    packed alongside (ignored positions stay ignored), so the loss is the same mean over labelled tokens.

    Usage: ``batch = packer.pack(collated)`` (on the host), then ``with packer.active(): model(**batch)``."""

    def __init__(self, model: torch.nn.Module):
        from transformers import AttentionInterface

        self.kind = packing_kind(model)
        self.config = model.config
        self.offset = position_offset(model)
        self.flash = str(model.config._attn_implementation or "").startswith("flash_attention")
        self.mean = getattr(model, "xlt_pooling", "cls") == "mean"
        AttentionInterface.register(PACKED_ATTENTION, _packed_attention)
        encoder = encoder_of(model)
        self._pooler = getattr(encoder, "pooler", None)
        stale = getattr(encoder, "_xlt_packer_hook", None)
        if stale is not None:  # a run that ended in an exception left its hook: one summary per forward
            stale.remove()
        self._hook = (encoder.register_forward_hook(self._summarise, with_kwargs=True)
                      if self.kind == "sequence" else None)
        encoder._xlt_packer_hook = self._hook

    def pack(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The model inputs of a collated batch, packed (host tensors; move them to the device as they are)."""
        from xlt_utils.formats.pipelines import pack_batch

        packed = pack_batch(batch, self.offset)
        cu = packed.pop("cu_seq_lens")
        lengths = cu.diff()
        longest = int(lengths.max())
        if self.flash:
            return {**packed, "cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest,
                    "max_length_k": longest}
        steps = torch.arange(longest)
        valid = steps[None] < lengths[:, None]
        index = torch.where(valid, cu[:-1, None].long() + steps[None], 0)
        real = valid.flatten().nonzero().squeeze(1)  # each real token's place in the (sequences x longest) layout
        return {**packed, "cu_seq_lens_q": cu, "xlt_pack": {"index": index, "valid": valid, "real": real}}

    def active(self):
        """Route the model's attention through the packed path while in this context (not for flash models); run
        the backward pass inside it too, since gradient checkpointing recomputes the forward there."""
        import contextlib

        if self.flash:
            return contextlib.nullcontext()

        @contextlib.contextmanager
        def switched():
            before = self.config._attn_implementation
            self.config._attn_implementation = PACKED_ATTENTION
            try:
                yield
            finally:
                self.config._attn_implementation = before

        return switched()

    def _summarise(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        cu = kwargs.get("cu_seq_lens_q")
        if cu is None:  # a padded call (evaluation): leave it alone
            return output
        hidden = output["last_hidden_state"][0]  # (tokens, hidden)
        starts = cu[:-1].long()
        if self.mean:
            lengths = cu.diff()
            seq = torch.repeat_interleave(torch.arange(len(lengths), device=hidden.device), lengths,
                                          output_size=hidden.shape[0])
            summary = torch.zeros(len(lengths), hidden.shape[1], dtype=hidden.dtype, device=hidden.device)
            summary = summary.index_add(0, seq, hidden) / lengths[:, None].to(hidden.dtype)
        else:
            summary = hidden[starts]
        output["last_hidden_state"] = summary[:, None, :]
        if output.get("pooler_output") is not None and self._pooler is not None:
            output["pooler_output"] = self._pooler(output["last_hidden_state"])
        return output

    def close(self) -> None:
        """Remove the encoder hook (the model then behaves as before)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
