"""Project paths, derived from this file's location (never from the current directory)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = Path(os.environ.get("XLT_OUTPUTS", PROJECT_ROOT / "outputs"))
RUNS = OUTPUTS / "runs"
RESULTS = OUTPUTS / "results"
FIGURES = OUTPUTS / "figures"
REPORT = OUTPUTS / "report"
# Downloaded and converted assets (models, corpora): rebuilt by `make setup`, never committed.
CACHE = Path(os.environ.get("XLT_CACHE", PROJECT_ROOT / ".cache"))
NOTEBOOKS = PROJECT_ROOT / "notebooks"
STUDIES = PROJECT_ROOT / "studies"
