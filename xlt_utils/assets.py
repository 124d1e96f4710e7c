"""Offline assets built by ``make setup`` (idempotent). Each world adds its builder to :data:`BUILDERS`."""

from __future__ import annotations

import importlib

# name -> "module:function" taking force: bool. Builders must be idempotent and fail with one clear line.
BUILDERS: dict[str, str] = {
    "offline-real": "xlt_utils.offline.build:build",
}


def setup_all(force: bool = False) -> None:
    """Run every registered asset builder."""
    for name, target in BUILDERS.items():
        mod, fn = target.split(":")
        print(f"[setup] {name}")
        getattr(importlib.import_module(mod), fn)(force=force)
