"""Read one table (dataset id, config, split) from the Hugging Face Hub or from a local copy in the Hub layout.

Every loader of the ``xtreme`` world reads through :func:`read_table`, so the schema mapping that follows is
the same code whether the rows came from the Hub or from local files (tests, users with their own copies).

Local copies
    Set ``XLT_XTREME_LOCAL_DIR`` (or :data:`LOCAL_DIR`) to a folder laid out like the Hub's parquet files::

        <root>/<hub_id>/<config>/<split>-00000-of-00001.parquet   # layout of parquet repos (google/xtreme)
        <root>/<hub_id>/<config>/<split>/0000.parquet             # layout of the parquet export branch
        <root>/<hub_id>/<config>/<split>.jsonl                    # JSON lines with the same columns

    ``<config>`` is ``default`` for datasets without named configs. A table found there is loaded with
    ``datasets.load_dataset("parquet" | "json", data_files=...)``; one not found falls through to the Hub.

Hub
    ``datasets.load_dataset(hub_id, config, split=..., revision=...)``. Datasets that still ship a loading
    script are read from the Hub's parquet export (``refs/convert/parquet``, files
    ``<config>/<split>/*.parquet``); a dataset that turns out to be script-based is retried there
    automatically, whichever way ``datasets`` refuses the script (>= 4: a ``RuntimeError``, scripts are no
    longer supported; 3.x: a ``ValueError`` asking for ``trust_remote_code=True``, which xlt never sets). When
    the export cannot be read either, the error says both in one line.

No network
    When the Hub cannot be reached (``HF_HUB_OFFLINE`` set, or a 3-second connection probe fails) the load
    runs in offline mode, so a copy in the ``datasets`` cache is still used and anything else fails at once
    with a one-line :class:`~xlt_utils.errors.XLTError` naming the dataset, config and split, instead of
    retrying for half a minute.

Revisions
    Each source names a revision. ``revisions.lock.json`` next to this file (written by
    ``python -m xlt_utils.worlds.xtreme lock`` on a machine with network) maps ``hub_id@revision`` to the
    commit it resolved to; loads use the locked commit when there is one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from xlt_utils import paths
from xlt_utils.errors import XLTError

ENV_LOCAL_DIR = "XLT_XTREME_LOCAL_DIR"
# Module-level override of the local copy root (takes precedence over the environment variable).
LOCAL_DIR: str | Path | None = None
PARQUET_EXPORT = "refs/convert/parquet"
LOCK_FILE = Path(__file__).with_name("revisions.lock.json")
_PROBE_TIMEOUT_S = 3.0
_LOCAL_PATTERNS = (
    "{split}-*.parquet",
    "{split}.parquet",
    "{split}/*.parquet",
    "{split}-*.jsonl",
    "{split}.jsonl",
    "{split}.json",
    "{split}/*.jsonl",
)


def local_root() -> Path | None:
    """The folder of local copies (:data:`LOCAL_DIR`, else ``$XLT_XTREME_LOCAL_DIR``), or ``None``."""
    root = LOCAL_DIR if LOCAL_DIR is not None else os.environ.get(ENV_LOCAL_DIR)
    return Path(root).expanduser() if root else None


def local_dir_of(hub_id: str, config: str | None) -> Path | None:
    """Where a local copy of ``hub_id``/``config`` would live (``None`` without a local root)."""
    root = local_root()
    return None if root is None else root / hub_id / (config or "default")


def local_files(hub_id: str, config: str | None, split: str) -> list[Path]:
    """Files of a local copy of one split, by the first matching layout pattern; ``[]`` when absent."""
    base = local_dir_of(hub_id, config)
    if base is None or not base.is_dir():
        return []
    for pattern in _LOCAL_PATTERNS:
        found = sorted(base.glob(pattern.format(split=split)))
        if found:
            return found
    return []


def locked_revisions() -> dict[str, str]:
    """``{"hub_id@revision": commit}`` from the lock file (empty when there is none)."""
    if not LOCK_FILE.exists():
        return {}
    with LOCK_FILE.open(encoding="utf-8") as f:
        return dict(json.load(f))


def resolve_revision(hub_id: str, revision: str | None) -> str:
    """The revision a load uses: the locked commit of ``hub_id@revision`` if any, else ``revision``."""
    rev = revision or "main"
    return locked_revisions().get(f"{hub_id}@{rev}", rev)


@functools.lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """Whether the Hub answers a TCP connection within a few seconds (``False`` in offline mode)."""
    import huggingface_hub.constants as hub_constants

    if hub_constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(hub_constants.ENDPOINT).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _offline_mode() -> Iterator[None]:
    """Run ``datasets``/``huggingface_hub`` in offline mode (cache only, no HTTP retries) for a block."""
    import datasets.config as ds_config
    import huggingface_hub.constants as hub_constants

    saved = (hub_constants.HF_HUB_OFFLINE, ds_config.HF_HUB_OFFLINE)
    hub_constants.HF_HUB_OFFLINE = True
    ds_config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE, ds_config.HF_HUB_OFFLINE = saved


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence ``datasets`` progress bars (small local tables) for a block."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _local_cache_dir() -> str:
    return str(Path(os.environ.get("XLT_XTREME_CACHE", paths.CACHE / "xtreme-local")))


@functools.lru_cache(maxsize=256)
def _load_local(files: tuple[str, ...], split: str) -> Any:
    import datasets

    builder = "parquet" if files[0].endswith(".parquet") else "json"
    # Offline mode: local files need no network (and datasets would otherwise ping the Hub on every load).
    with _quiet(), _offline_mode():
        return datasets.load_dataset(
            builder, data_files={split: list(files)}, split=split, cache_dir=_local_cache_dir()
        )


def _load_hub(hub_id: str, config: str | None, split: str, revision: str, layout: str) -> Any:
    import datasets

    if layout == "parquet-export":
        pattern = f"{config or 'default'}/{split}/*.parquet"
        return datasets.load_dataset(hub_id, data_files={split: pattern}, split=split, revision=revision)
    return datasets.load_dataset(hub_id, config, split=split, revision=revision)


def revision_for(hub_id: str, revision: str | None, layout: str) -> str:
    """The revision a load uses: a parquet-export source reads ``refs/convert/parquet`` unless it names a
    commit; either is replaced by its locked commit when the lock file has one."""
    rev = revision or "main"
    if layout == "parquet-export" and rev == "main":
        rev = PARQUET_EXPORT
    return resolve_revision(hub_id, rev)


def script_refused(e: BaseException) -> bool:
    """Whether ``datasets`` refused to run a dataset's loading script: ``datasets`` >= 4 raises
    ``RuntimeError("Dataset scripts are no longer supported, but found <name>.py")``; 3.x, without
    ``trust_remote_code=True``, raises a ``ValueError`` that names ``trust_remote_code``."""
    msg = str(e)
    return (isinstance(e, RuntimeError) and "scripts are no longer supported" in msg) or (
        isinstance(e, ValueError) and "trust_remote_code" in msg
    )


def _describe(hub_id: str, config: str | None, split: str, revision: str) -> str:
    return f"{hub_id} config {config or 'default'!r} split {split!r} (revision {revision})"


def read_table(
    hub_id: str, config: str | None, split: str, revision: str | None = None, layout: str = "hub"
) -> Any:
    """Load one split of one config as a ``datasets.Dataset``, from a local copy if present, else the Hub.

    Args:
        hub_id: dataset id on the Hub (``google/xtreme``).
        config: config name (``PAN-X.de``), ``None`` for datasets without named configs.
        split: the Hub's split name (``train``, ``validation``, ``test``, ``train_r1``...).
        revision: a branch, tag or commit; ``None`` = ``main`` (see the lock file).
        layout: ``hub`` (a parquet repo: load by config name) or ``parquet-export`` (a script dataset:
            read ``refs/convert/parquet``).

    Raises:
        XLTError: one line naming the dataset, config and split when no local copy exists and the Hub
            cannot serve it (offline, unknown config, gated...).
    """
    files = local_files(hub_id, config, split)
    if files:
        return _load_local(tuple(str(f) for f in files), split)
    rev = revision_for(hub_id, revision, layout)
    where = _describe(hub_id, config, split, rev)
    base = local_dir_of(hub_id, config)
    hint = (
        f"no local copy under {base}/ ({split}-*.parquet, {split}/*.parquet or {split}.jsonl)"
        if base is not None
        else f"set {ENV_LOCAL_DIR} to a folder of local copies in the Hub layout"
    )
    online = hub_reachable()
    try:
        with contextlib.nullcontext() if online else _offline_mode():
            try:
                return _load_hub(hub_id, config, split, rev, layout)
            except (RuntimeError, ValueError) as e:  # a script dataset: read its parquet export instead
                if layout != "hub" or not script_refused(e):
                    raise
                export = revision_for(hub_id, None, "parquet-export")
                try:
                    return _load_hub(hub_id, config, split, export, "parquet-export")
                except Exception as e2:  # noqa: BLE001 - one line saying both attempts
                    first = str(e2).splitlines()[0] if str(e2) else ""
                    raise XLTError(
                        f"xtreme: cannot load {where}: it is a loading-script dataset, which datasets will not "
                        f"run without trust_remote_code (xlt never sets it), and its parquet export "
                        f"({export}) could not be read: {type(e2).__name__}: {first}; {hint}"
                    ) from None
    except XLTError:
        raise
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear line
        reason = (
            "the Hugging Face Hub is unreachable (offline) and the datasets cache has no copy"
            if not online
            else f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        )
        raise XLTError(f"xtreme: cannot load {where}: {reason}; {hint}") from None
