"""The number trace: every decimal of the README and the hand-written docs comes from a committed source."""

from __future__ import annotations

from xlt_utils import trace


def test_numbers_outside_code_links_and_identifiers():
    text = "gain +2.40 [−4.78, +9.59] and `1.5` ```\n3.25\n``` [x](a/0.5.md) arXiv 2005.13013 v2.13.0 10 runs"
    assert [n for _, n in trace.numbers_in(text)] == ["+2.40", "−4.78", "+9.59"]


def test_trace_finds_pages_and_records_sign_included_and_names_what_has_no_source(tmp_path):
    (tmp_path / "docs" / "results" / "b").mkdir(parents=True)
    (tmp_path / "docs" / "changes").mkdir()
    (tmp_path / "docs" / "results" / "paper.md").write_text("| claim | -1.01 points |\n")
    (tmp_path / "docs" / "results" / "b" / "metrics.csv").write_text("lang,value\nde,86.333333\n")
    (tmp_path / "docs" / "changes" / "before.csv").write_text("ours\n+1.91 points\n")
    (tmp_path / "README.md").write_text("now −1.01, before +1.91, not 1.01 nor -1.91; de 86.3 (a bundle's raw "
                                        "value is no source), made up 7.77; CC BY-SA 4.0\n")
    rows = trace.trace(tmp_path, ["README.md"])
    assert [(r.text, r.source) for r in rows] == [
        ("−1.01", "page docs/results/paper.md"), ("+1.91", "record docs/changes/before.csv"), ("1.01", None),
        ("-1.91", None), ("86.3", None), ("7.77", None)]


def test_the_readme_and_docs_trace_to_committed_sources(capsys):
    assert trace.main(check=True) == 0, capsys.readouterr().out
