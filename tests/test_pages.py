"""Results pages generated from the committed result bundles (docs/results/<study>.md)."""

from __future__ import annotations

import pandas as pd
import pytest

from xlt_utils import pages
from xlt_utils.errors import XLTError


def test_markdown_table_escapes_pipes_and_keeps_every_row():
    frame = pd.DataFrame({"claim": ["a | b", "c"], "ours": [1.5, float("nan")]})
    assert pages.markdown_table(frame) == "| claim | ours |\n|---|---|\n| a \\| b | 1.5 |\n| c |  |"


def test_every_study_has_its_claims_function_and_notebook():
    from xlt_utils.studies import QUESTIONS

    assert set(pages.CLAIMS) == set(QUESTIONS) == set(pages.NOTEBOOKS)
    with pytest.raises(XLTError, match="unknown study 'rq9'.*valid: paper, rq1_batch_size"):
        pages.write("rq9")


@pytest.mark.parametrize("study", sorted(pages.CLAIMS))
def test_the_committed_page_regenerates_from_the_committed_bundles(study, tmp_path, monkeypatch):
    """Import the study's committed embedded-full bundles into an empty outputs folder, collect, render: the page
    is byte-identical to the committed one (a page whose bundles or code changed must be regenerated)."""
    from xlt_utils import paths
    from xlt_utils import results as R

    bundles = pages.bundle_dirs(study)
    page = paths.PROJECT_ROOT / pages.PAGE_DIR / f"{study}.md"
    if not bundles:
        assert not page.exists(), f"{page} has no bundles to regenerate it from"
        pytest.skip(f"no committed {study} bundles yet")
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    for b in bundles:
        R.import_bundle(b, out=lambda s: None)
    R.collect()
    written = pages.write(study, out_dir=tmp_path)
    assert written.read_text(encoding="utf-8") == page.read_text(encoding="utf-8")
