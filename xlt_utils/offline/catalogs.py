"""gettext catalogs (``.po`` and ``.mo``) to cleaned English ↔ language sentence pairs.

A pair is an English ``msgid`` and its ``msgstr`` in one catalog. The rules (reference: offline-resources.md):
keep entries that are translated, not fuzzy, not obsolete and not identical to the English; for plurals take
form [0]; remove placeholders (printf, Python, brace, shell), markup (HTML tags and entities) and keyboard
accelerators; a *sentence-like* pair has at least 4 English words after that. Pairs used for retrieval must
also be a single line of 4–40 words.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One catalog entry: ``msgid`` (singular), optional context, and the first translated form."""

    msgid: str
    msgstr: str
    msgctxt: str = ""
    fuzzy: bool = False


# ----------------------------------------------------------------------------------------------------------
# Readers

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        raise ValueError(f"not a quoted string: {s[:40]!r}")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), s[1:-1])


def read_po(path: str | Path) -> Iterator[Entry]:
    """Entries of a ``.po`` file (header and obsolete ``#~`` entries skipped).

    Args:
        path: the file (UTF-8, as Django ships them).

    Yields:
        :class:`Entry` records, plural entries with ``msgstr[0]``.
    """
    fields: dict[str, str] = {}
    flags: set[str] = set()
    key: str | None = None

    def done() -> Entry | None:
        msgid = fields.get("msgid")
        if not msgid:  # "" is the header
            return None
        msgstr = fields.get("msgstr", fields.get("msgstr[0]", ""))
        return Entry(msgid, msgstr, fields.get("msgctxt", ""), "fuzzy" in flags)

    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#~"):
                continue
            starts_entry = line.startswith(("#", "msgctxt ", "msgid "))
            if starts_entry and any(k.startswith("msgstr") for k in fields):
                if (e := done()) is not None:  # the previous entry is complete
                    yield e
                fields, flags, key = {}, set(), None
            if line.startswith("#"):
                if line.startswith("#,"):
                    flags.update(x.strip() for x in line[2:].split(","))
                continue
            if line.startswith('"'):
                if key is not None:
                    fields[key] += _unquote(line)
                continue
            key, _, rest = line.partition(" ")
            fields[key] = _unquote(rest)
    if (e := done()) is not None:
        yield e


def read_mo(path: str | Path) -> Iterator[Entry]:
    """Entries of a compiled ``.mo`` file (msgfmt drops fuzzy entries, so none is fuzzy).

    Raises:
        ValueError: not a .mo file.
    """
    data = Path(path).read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    if magic == 0x950412DE:
        end = "<"
    elif magic == 0xDE120495:
        end = ">"
    else:
        raise ValueError(f"{path}: not a gettext .mo file")
    _, n, o_orig, o_trans = struct.unpack_from(end + "4I", data, 4)
    raw = []
    for i in range(n):
        ln, off = struct.unpack_from(end + "2I", data, o_orig + 8 * i)
        tl, toff = struct.unpack_from(end + "2I", data, o_trans + 8 * i)
        raw.append((data[off : off + ln], data[toff : toff + tl]))
    charset = "utf-8"
    for orig, trans in raw:
        if orig == b"":
            m = re.search(rb"charset=([\w-]+)", trans)
            if m and m.group(1).lower() not in (b"charset", b"utf-8", b"utf8"):
                charset = m.group(1).decode("ascii")
    for orig, trans in raw:
        if not orig:
            continue
        try:
            o, t = orig.decode(charset), trans.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
        ctxt, sep, o = o.rpartition("\x04")
        yield Entry(o.split("\x00")[0], t.split("\x00")[0], ctxt if sep else "")


# ----------------------------------------------------------------------------------------------------------
# Cleaning

_PLACEHOLDERS = re.compile(
    r"%\([^)\s]{1,40}\)[-+ #0]*\d*(?:\.\d+)?[a-zA-Z]"  # Python %(name)s
    r"|%<\w+>"  # gettext <inttypes.h> macros: %<PRIuMAX>
    r"|%[<>]|%[qw][A-Za-z]{1,2}"  # GCC diagnostics: %<...%> quotes, %qs %qD %wd
    r"|%(?:\d+\$)?[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|Z|t|I64)?[diouxXbBeEfFgGaAcspnrm%]"
    r"|%\d+"  # Qt %1
    r"|\{[A-Za-z0-9_.:!\[\]]*\}"  # Python/C# {name} {0} {}
    r"|\$\{\w+\}|\$\w+"  # shell ${var} $var
)
_TAGS = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_ENTITIES = re.compile(r"&(?:[A-Za-z]{2,8}|#\d{1,6}|#x[0-9A-Fa-f]{1,6});")
_ACCEL = re.compile(r"\s*[(（]\s*[_&~]\w\s*[)）]|(?<![\w&])[_&~](?=\w)")  # "(_F)", "_File", "&File"
# Quote pairs left empty once their placeholder is gone: '' "" `' ‘’ “” «» „“ 「」 『』 ( ) [ ] < >
_EMPTY_QUOTES = re.compile(r"""(['"`‘“«„「『(\[<]\s*['"’”»“」』)\]>])""")
_WORD = re.compile(r"\w*[^\W\d_]\w*")


def clean(text: str) -> str:
    """Remove placeholders, markup and accelerators; collapse whitespace.

    Args:
        text: a msgid or msgstr.

    Returns:
        The cleaned text (may be empty).
    """
    t = _TAGS.sub(" ", text)
    t = _ENTITIES.sub(" ", t)
    t = _PLACEHOLDERS.sub(" ", t)
    t = _ACCEL.sub("", t)
    for _ in range(2):  # nested: "('%s')"
        t = _EMPTY_QUOTES.sub(" ", t)
    t = " ".join(t.split())
    t = re.sub(r"\s+([,.;:!?])(?=\s|$)", r"\1", t)  # "file ." -> "file." (not " .msg")
    t = re.sub(r"^[\s,;:.\-–—]+|[\s,;:\-–—]+$", "", t)
    return t


def n_words(text: str) -> int:
    """Number of words (tokens containing a letter)."""
    return len(_WORD.findall(text))


def sentence_like(en: str) -> bool:
    """At least 4 English words after cleaning (the corpus criterion)."""
    return n_words(en) >= 4


def retrieval_ok(en: str, raw_en: str, raw_xx: str) -> bool:
    """The stricter retrieval criterion: a single line of 4–40 English words."""
    single = "\n" not in raw_en.strip() and "\n" not in raw_xx.strip()
    return single and 4 <= n_words(en) <= 40


def pair_of(entry: Entry) -> tuple[str, str] | None:
    """The cleaned ``(english, translation)`` of an entry, or ``None`` when it is not a usable pair."""
    if entry.fuzzy or not entry.msgstr.strip() or entry.msgstr.strip() == entry.msgid.strip():
        return None
    en, xx = clean(entry.msgid), clean(entry.msgstr)
    if not en or not xx or en == xx or not sentence_like(en):
        return None
    if not retrieval_ok(en, entry.msgid, entry.msgstr):
        return None
    return en, xx
