"""The real-targets page: its interval by hand, its table from hand-made result rows, and (where the bundles are
committed) that the committed page regenerates byte-identically from them."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from xlt_utils import real_targets as RT
from xlt_utils.errors import XLTError


def test_interval_combines_seed_spread_and_item_sampling():
    # [80, 82, 84] on 100 items: a = s^2/k = 4/3, b = 1e4 * .82 * .18 / 100 = 14.76,
    # df = (a + b)^2 * 2 / a^2 = 291.4, t = 1.9682, half = 1.9682 * sqrt(16.0933) = 7.896
    mean, lo, hi = RT.interval([80.0, 82.0, 84.0], 100)
    assert mean == 82.0 and lo == pytest.approx(74.104, abs=2e-3) and hi == pytest.approx(89.896, abs=2e-3)
    # one seed (or seeds that agree): the binomial part with z = 1.96: 1.96 * sqrt(14.76) = 7.530
    assert RT.interval([82.0], 100)[1] == pytest.approx(82 - 1.959964 * math.sqrt(14.76), abs=1e-6)
    assert RT.interval([82.0, 82.0], 100) == RT.interval([82.0], 100)
    # wide spread over few items: clipped to the scale
    assert RT.interval([50.0, 90.0, 70.0], 10)[2] == 100.0


def _rows() -> pd.DataFrame:
    base = {"study": "real_targets", "profile": "embedded-full", "world": "offline-real",
            "model": "multilingual-e5-small", "intermediate_task": "none", "target_task": "review_sentiment",
            "task": "review_sentiment", "metric": "accuracy", "kind": ""}
    rows = []
    for seed, de, dev in ((13, 70.0, 85.0), (14, 72.0, 86.0), (15, 74.0, 87.0)):
        rows.append({**base, "run_id": f"eval/e{seed}", "phase": "eval", "seed": seed, "split": "test", "lang": "de",
                     "value": de, "n_examples": 200})
        rows.append({**base, "run_id": f"eval/e{seed}", "phase": "eval", "seed": seed, "split": "test", "lang": "en",
                     "value": dev - 1, "n_examples": 250})
        rows.append({**base, "run_id": f"target/t{seed}", "phase": "target", "seed": seed, "split": "dev",
                     "lang": "en", "value": dev, "n_examples": 250})
    for kind, value in (("majority", 50.0), ("lexical", 51.0), ("probe", 60.0)):
        rows.append({**base, "run_id": f"baselines/{kind}", "phase": "baselines", "seed": 13, "kind": kind,
                     "split": "test", "lang": "de", "value": value, "n_examples": 200})
    rows.append({**base, "run_id": "baselines/probe", "phase": "baselines", "seed": 13, "kind": "probe",
                 "split": "dev", "lang": "en", "value": 75.0, "n_examples": 250})
    rows.append({**base, "run_id": "baselines/other", "phase": "baselines", "seed": 13, "kind": "probe",
                 "split": "test", "lang": "de", "value": 99.0, "n_examples": 200, "study": "paper"})
    return pd.DataFrame(rows)


def test_table_puts_each_run_in_its_column_and_leaves_other_studies_out():
    tab = RT.table(_rows()).set_index("lang")
    de = tab.loc["de"]
    assert de["n"] == 200 and de["labels"] == "gold"
    assert de["e5 English-trained"] == RT.interval([70.0, 72.0, 74.0], 200) and de["e5 English-trained seeds"] == 3
    assert de["probe"] == RT.interval([60.0], 200)  # the other study's probe row (99) is not read
    assert de["majority"][0] == 50.0 and de["lexical"][0] == 51.0 and de["in-language"] is None
    assert list(tab.index) == ["en", "de"]  # the task's language order; fr and nl have no rows
    dev = RT.dev_table(_rows()).set_index("column")
    assert dev.loc["e5 English-trained", "mean"] == 86.0 and dev.loc["e5 English-trained", "sd"] == 1.0
    assert dev.loc["probe", "n_runs"] == 1


def test_page_states_its_numbers_and_the_tagset_caveat():
    text = RT.render(_rows())
    assert "| de | gold | 200 | 72.0 [" in text
    assert "coarser than XTREME's 17 UD tags" in text
    assert "English dev (selection split): e5 English-trained 86.0 (sd 1.0 over 3 runs); probe 75.0." in text
    assert "| en (trained) | gold | 250 | 85.0 [" in text
    assert text == RT.render(_rows().sample(frac=1, random_state=0))  # row order does not matter


def test_no_rows_is_a_one_line_error_naming_the_way_to_get_them():
    with pytest.raises(XLTError, match="no rows of study 'real_targets'.*results --import"):
        RT.table(_rows().assign(study="paper"))


def test_the_committed_page_regenerates_from_the_committed_bundles(tmp_path, monkeypatch):
    from xlt_utils import paths
    from xlt_utils import results as R

    bundles = sorted(p for p in (paths.PROJECT_ROOT / "docs" / "results" / "real_targets").glob("*")
                     if (p / "bundle.json").exists())
    page = paths.PROJECT_ROOT / RT.PAGE
    if not bundles or not page.exists():
        pytest.skip("no committed real_targets bundles yet")
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    for b in bundles:
        R.import_bundle(b, out=lambda s: None)
    R.collect()
    RT.main(out=str(tmp_path / "page.md"))
    assert (tmp_path / "page.md").read_text(encoding="utf-8") == page.read_text(encoding="utf-8")
