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


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Every study's committed embedded-full bundles imported into one empty outputs folder and collected."""
    from xlt_utils import paths
    from xlt_utils import results as R

    tmp = tmp_path_factory.mktemp("pages")
    mp = pytest.MonkeyPatch()
    mp.setattr(paths, "RUNS", tmp / "runs")
    mp.setattr(paths, "RESULTS", tmp / "results")
    try:
        bundles = [b for study in pages.CLAIMS for b in pages.bundle_dirs(study)]
        for b in bundles:
            R.import_bundle(b, out=lambda s: None)
        if bundles:
            R.collect()
        yield tmp
    finally:
        mp.undo()


@pytest.mark.parametrize("study", sorted(pages.CLAIMS))
def test_the_committed_page_regenerates_from_the_committed_bundles(study, imported):
    """Import the study's committed embedded-full bundles into an empty outputs folder, collect, render: the page
    is byte-identical to the committed one (a page whose bundles or code changed must be regenerated)."""
    from xlt_utils import paths

    page = paths.PROJECT_ROOT / pages.PAGE_DIR / f"{study}.md"
    if not pages.bundle_dirs(study):
        assert not page.exists(), f"{page} has no bundles to regenerate it from"
        pytest.skip(f"no committed {study} bundles yet")
    written = pages.write(study, out_dir=imported)
    assert written.read_text(encoding="utf-8") == page.read_text(encoding="utf-8")


def test_the_readme_results_table_regenerates_from_the_committed_bundles(imported):
    from xlt_utils import paths

    readme = (paths.PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(pages.README_BEGIN, 1)[1].split(pages.README_END, 1)[0]
    assert block == "\n" + pages.readme_table() + "\n"
    copy = imported / "README.md"
    copy.write_text(readme.replace(block, "\nstale\n"), encoding="utf-8")
    assert pages.update_readme(copy) and copy.read_text(encoding="utf-8") == readme
    assert not pages.update_readme(copy)


def test_the_readme_is_a_door_not_a_lab_notebook():
    """At most about 12,000 characters; every link inside the repository resolves."""
    import re

    from xlt_utils import paths

    text = (paths.PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text) <= 12_500, len(text)
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http", "../")):  # ../shared is beside the repository, not in it
            assert (paths.PROJECT_ROOT / target).exists(), target
