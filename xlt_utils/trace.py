"""Where each number the README and ``docs/`` state comes from (``python -m xlt_utils trace``).

A number written by hand must be one that a committed source holds, sign and digits as printed: a page generated
from result bundles (``docs/results/*.md``, written by ``python -m xlt_utils pages`` / ``real-targets``), a
committed benchmark JSON (``docs/bench-gpu/``), or a dated record of its own (``docs/changes/*.csv``). The bundles'
raw CSVs are not a source: they hold nearly every one-decimal number from 0 to 100, so any number would match
there; a result is cited through the page generated from them. The command lists every
decimal number of the checked files with the first source that holds it, and the ones no source holds;
``--check`` fails on those (``make test`` runs it over :data:`CHECKED`).

What counts as a number here: a decimal (``86.3``, ``+2.40``, ``−5.70``) outside code spans, code blocks and link
targets; integers (dates, counts, sizes) and version strings are not traced.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The hand-written files whose every decimal must trace (paths relative to the project root).
CHECKED = ("README.md", "docs/changes.md", "docs/results/README.md")
GENERATED_PAGES = "docs/results/*.md"
RECORDS = ("docs/changes/*.csv", "docs/bench-gpu/**/*.json")

NUMBER = re.compile(r"(?<![\w.])[+\-−]?\d+\.\d+(?![\w.]|\.\d)")
CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# a paper's id, a licence's version: not measurements
IDENTIFIER = re.compile(r"arXiv:? ?\d{4}\.\d{4,5}|(?:CC BY(?:-SA|-NC)* |Apache-|GPL-?|LGPL-?)\d+\.\d+")


@dataclass(frozen=True)
class Number:
    file: str
    line: int
    text: str  # as written
    source: str | None  # where it comes from, None when nothing holds it


def _norm(text: str) -> str:
    """The sign and digits as printed: Unicode minus as ``-``, an explicit ``+`` dropped."""
    return text.replace("−", "-").lstrip("+")


def numbers_in(text: str) -> list[tuple[int, str]]:
    """(line, number as written) of every decimal outside code, link targets and comments."""
    def blank(m: re.Match) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    for pattern in (CODE_BLOCK, HTML_COMMENT, CODE_SPAN, LINK_TARGET, IDENTIFIER):
        text = pattern.sub(blank, text)
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        out += [(i, m.group(0)) for m in NUMBER.finditer(line)]
    return out


def _csv_values(path: Path) -> set[str]:
    """Every numeric cell of a CSV at 0, 1 and 2 decimals (a text prints a bundle's value rounded)."""
    vals: set[str] = set()
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            for cell in row:
                try:
                    v = float(cell)
                except ValueError:
                    continue
                vals.update({f"{v:.1f}", f"{v:.2f}", cell.lstrip("+")})
    return vals


def sources(root: Path) -> list[tuple[str, set[str]]]:
    """(label, the normalised numbers it holds) of every committed source, generated pages first."""
    out: list[tuple[str, set[str]]] = []
    pages = sorted(root.glob(GENERATED_PAGES))
    for p in pages:
        if p.name != "README.md":
            out.append((f"page {p.relative_to(root)}", {_norm(n) for _, n in numbers_in(p.read_text("utf-8"))}))
    for pattern in RECORDS:
        for p in sorted(root.glob(pattern)):
            text = p.read_text("utf-8")
            held = {_norm(n) for _, n in numbers_in(text)} | {_norm(n) for n in re.findall(r"[+\-−]?\d+\.\d+", text)}
            if p.suffix == ".csv":
                held |= _csv_values(p)
            out.append((f"record {p.relative_to(root)}", held))
    return out


def trace(root: Path, files: Iterable[str] = CHECKED) -> list[Number]:
    """Every decimal of ``files`` with its first source (or ``None``)."""
    srcs = sources(root)
    rows = []
    for f in files:
        path = root / f
        if not path.exists():
            continue
        for line, text in numbers_in(path.read_text("utf-8")):
            n = _norm(text)
            src = next((label for label, held in srcs if n in held), None)
            rows.append(Number(f, line, text, src))
    return rows


def main(files: list[str] | None = None, check: bool = False) -> int:
    """Print the trace; with ``check``, exit 1 when a number has no source."""
    from xlt_utils import paths

    rows = trace(paths.PROJECT_ROOT, files or CHECKED)
    missing = [r for r in rows if r.source is None]
    for r in rows:
        print(f"{r.file}:{r.line}: {r.text} <- {r.source or 'NO SOURCE'}")
    print(f"{len(rows)} numbers, {len(rows) - len(missing)} traced, {len(missing)} without a source")
    return 1 if check and missing else 0
