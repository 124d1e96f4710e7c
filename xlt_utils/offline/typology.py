"""Typological distances between languages from lang2vec 1.1.2 (URIEL), computed offline at set-up.

lang2vec ships its URIEL feature tables in the wheel but no distance function and no precomputed matrices, so
distances are cosine distances between feature vectors (reference: offline-resources.md):

``syntactic``   ``syntax_knn`` (WALS/SSWL/Ethnologue syntax, k-NN imputed: no missing values)
``genetic``     ``fam`` (membership in every Glottolog family and subfamily)
``geographic``  ``geo`` (distances to fixed points on the globe)

The wheel is downloaded pinned (no install), and imported from the cache with a ``pkg_resources`` shim:
lang2vec calls ``pkg_resources.resource_filename``, which setuptools >= 81 no longer provides, and pinning
setuptools for the whole environment would be a worse cure. The table is written to
``typology/distances.csv`` (long format: lang1, lang2, one column per distance).
"""

from __future__ import annotations

import csv
import importlib
import math
import sys
import types
import zipfile
from pathlib import Path

import numpy as np

from xlt_utils.errors import XLTError
from xlt_utils.offline import fetch
from xlt_utils.offline.langcodes import URIEL_FALLBACKS, to_iso639_3
from xlt_utils.offline.layout import cache_dir

FEATURE_SETS = {"syntactic": "syntax_knn", "genetic": "fam", "geographic": "geo"}


def _pkg_resources_shim(package_root: Path) -> types.ModuleType:
    """A stand-in ``pkg_resources`` offering only ``resource_filename``, resolved inside ``package_root``."""
    mod = types.ModuleType("pkg_resources")

    def resource_filename(package: str, resource: str) -> str:
        # As pkg_resources does: relative to the module's own folder (lang2vec passes its module __name__).
        mod = sys.modules.get(package)
        base = Path(mod.__file__).parent if mod is not None and getattr(mod, "__file__", None) else \
            package_root.joinpath(*package.split("."))
        return str(base / resource)

    mod.resource_filename = resource_filename  # type: ignore[attr-defined]
    return mod


def import_lang2vec(wheel: str | Path, extract_to: str | Path) -> types.ModuleType:
    """Import ``lang2vec.lang2vec`` from its wheel, unpacked into ``extract_to``, with the shim if needed.

    Args:
        wheel: the pinned lang2vec wheel.
        extract_to: folder to unpack it into (kept, so later imports are instant).

    Returns:
        The ``lang2vec.lang2vec`` module.
    """
    root = Path(extract_to)
    if not (root / "lang2vec" / "lang2vec.py").exists():
        with zipfile.ZipFile(wheel) as z:
            z.extractall(root, [n for n in z.namelist() if n.startswith("lang2vec/")])
    saved = sys.modules.get("pkg_resources")
    sys.path.insert(0, str(root))
    try:
        # Our shim answers from the unpacked folder whatever setuptools provides; restored afterwards.
        sys.modules["pkg_resources"] = _pkg_resources_shim(root)
        for name in [n for n in sys.modules if n == "lang2vec" or n.startswith("lang2vec.")]:
            del sys.modules[name]
        return importlib.import_module("lang2vec.lang2vec")
    finally:
        sys.path.remove(str(root))
        if saved is None:
            sys.modules.pop("pkg_resources", None)
        else:
            sys.modules["pkg_resources"] = saved


def uriel_code(lang: str, available: set[str]) -> str | None:
    """The URIEL (ISO 639-3) code used for a language, trying individual languages for macrolanguages."""
    code = to_iso639_3(lang)
    for c in [code, *URIEL_FALLBACKS.get(code, [])]:
        if c in available:
            return c
    return None


def _vectors(l2v: types.ModuleType, codes: list[str], feature_set: str) -> dict[str, np.ndarray | None]:
    feats = l2v.get_features(codes, feature_set)
    out = {}
    for c in codes:
        vals = feats[c]
        if any(v == "--" for v in vals):  # a missing value: no distance for this language
            out[c] = None
        else:
            v = np.asarray(vals, dtype=np.float64)
            out[c] = v if np.any(v) else None
    return out


def cosine_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """``1 - cos(a, b)`` (clipped at 0 against rounding); NaN when either vector is missing."""
    if a is None or b is None:
        return math.nan
    return max(0.0, float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))


def build_distances(languages: list[str], downloads: Path, out_dir: Path) -> dict:
    """Write ``distances.csv`` for every ordered pair of ``languages`` (English included).

    Args:
        languages: ISO 639 codes of the world (``en`` is added).
        downloads: folder of pinned downloads.
        out_dir: the ``typology`` folder.

    Returns:
        A summary: languages covered per feature set, and the path.
    """
    wheel = fetch.fetch("lang2vec", downloads)
    try:
        l2v = import_lang2vec(wheel, out_dir / "lang2vec-1.1.2")
    except (zipfile.BadZipFile, ImportError, OSError) as e:
        raise XLTError(f"lang2vec: cannot import the pinned wheel ({type(e).__name__}: {e}); rerun make setup")
    available = set(l2v.available_uriel_languages())
    langs = sorted(set(languages) | {"en"})
    codes = {lang: uriel_code(lang, available) for lang in langs}
    known = sorted({c for c in codes.values() if c})
    vecs = {name: _vectors(l2v, known, fs) for name, fs in FEATURE_SETS.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "distances.csv"
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["lang1", "lang2", "uriel1", "uriel2", *FEATURE_SETS])
        for a in langs:
            for b in langs:
                ca, cb = codes[a], codes[b]
                ds = [cosine_distance(vecs[n].get(ca) if ca else None, vecs[n].get(cb) if cb else None)
                      for n in FEATURE_SETS]
                w.writerow([a, b, ca or "", cb or "", *("" if math.isnan(d) else f"{d:.6f}" for d in ds)])
    tmp.replace(path)
    coverage = {n: sum(1 for lang in langs if codes[lang] and vecs[n].get(codes[lang]) is not None)
                for n in FEATURE_SETS}
    return {"languages": len(langs), "coverage": coverage, "unmapped": [x for x in langs if not codes[x]]}


def load_distances(path: str | Path | None = None):
    """The distance table as a pandas DataFrame (``lang1, lang2, syntactic, genetic, geographic``).

    Raises:
        XLTError: the table has not been built (run ``make setup``).
    """
    import pandas as pd

    path = Path(path) if path else cache_dir() / "typology" / "distances.csv"
    if not path.exists():
        raise XLTError(f"no typology table at {path}; run `make setup` (python -m xlt_utils setup-assets)")
    return pd.read_csv(path, keep_default_na=False, na_values=[""])
