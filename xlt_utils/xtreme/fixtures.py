"""Test support: the hand-made local copies in ``tests/fixtures/xtreme`` (Hub layout, Hub schema, a few rows
per split) and a context manager that points the ``xtreme`` loaders at them, with the Hub switched off.

Used by ``tests/test_xtreme_*.py`` and available to other tests that need real-world tasks offline.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from xlt_utils import paths
from xlt_utils.xtreme import source

FIXTURE_DIR = paths.PROJECT_ROOT / "tests" / "fixtures" / "xtreme"

# Languages each task's fixtures cover (two where the task is multilingual, plus the XTREME-R additions and
# test-only languages that take a different source route).
FIXTURE_LANGS: dict[str, tuple[str, ...]] = {
    "xnli": ("en", "de"),
    "pawsx": ("en", "de"),
    "udpos": ("en", "de", "th", "uk"),
    "panx": ("en", "de", "pl"),
    "xquad": ("en", "de", "ro"),
    "mlqa": ("en", "de"),
    "tydiqa": ("en", "ar", "fi"),
    "bucc2018": ("de", "fr"),
    "tatoeba": ("de", "af", "pl"),
    "xcopa": ("en", "et", "it"),
    "lareqa": ("en", "de", "zh"),
    "mewslix": ("en", "de"),
    "flores200": ("de", "fr"),
    "mnli_mt": ("en", "de"),
    "tydiqa_mul": ("mul",),
    "anli_plus": ("en",),
    "mnli": ("en",),
    "qqp": ("en",),
    "sst2": ("en",),
    "squad_v1": ("en",),
    "squad_v2": ("en",),
    "commonsenseqa": ("en",),
    "cosmosqa": ("en",),
    "hellaswag": ("en",),
    "siqa": ("en",),
    "ccg": ("en",),
}


@contextlib.contextmanager
def use_local_copies(
    root: str | Path = FIXTURE_DIR, cache_dir: str | Path | None = None, hub: bool = False
) -> Iterator[Path]:
    """Read ``xtreme`` tables from ``root`` (Hub layout) for the duration of a block.

    Args:
        root: the local copy root (default: the test fixtures).
        cache_dir: where ``datasets`` caches the local tables (default: ``.cache/xtreme-local``).
        hub: leave the Hub reachable for tables missing locally (default: off, so a missing fixture fails at
            once instead of touching the network).
    """
    saved_dir, saved_env = source.LOCAL_DIR, os.environ.get("XLT_XTREME_CACHE")
    source.LOCAL_DIR = Path(root)
    if cache_dir is not None:
        os.environ["XLT_XTREME_CACHE"] = str(cache_dir)
    source._load_local.cache_clear()
    patch = contextlib.nullcontext() if hub else mock.patch.object(source, "hub_reachable", lambda: False)
    try:
        with patch:
            yield Path(root)
    finally:
        source.LOCAL_DIR = saved_dir
        if saved_env is None:
            os.environ.pop("XLT_XTREME_CACHE", None)
        else:
            os.environ["XLT_XTREME_CACHE"] = saved_env
        source._load_local.cache_clear()
