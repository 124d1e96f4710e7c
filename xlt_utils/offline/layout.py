"""Where the offline-real world's built assets live: the cache folder, the files of the converted encoder, and the
committed registry snapshot.

:mod:`xlt_utils.offline.build` writes these places (``make setup``); the readers (:mod:`~xlt_utils.offline.typology`,
:mod:`~xlt_utils.offline.encoder`, :mod:`xlt_utils.worlds.offline_real`) find them here, so no reader imports the
builder. The folders under :func:`cache_dir` are listed in :mod:`xlt_utils.offline.build`.
"""

from __future__ import annotations

from pathlib import Path

from xlt_utils import paths

ENCODER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
SNAPSHOT = Path(__file__).with_name("registry_snapshot.json")


def cache_dir() -> Path:
    """The offline-real cache folder (``XLT_CACHE``/offline-real)."""
    return paths.CACHE / "offline-real"
