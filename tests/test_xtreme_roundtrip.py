"""Every ``xtreme`` task end to end on CPU: fixtures (Hub schema) -> featurize -> a tiny XLM-R trained for a
few steps -> evaluation in each fixture language (``xlt_utils.testing.tiny_roundtrip``)."""

from __future__ import annotations

import pytest

from xlt_utils.tasks import list_tasks, load_world_tasks
from xlt_utils.xtreme.fixtures import FIXTURE_DIR, FIXTURE_LANGS, use_local_copies

load_world_tasks("xtreme")
TASKS = {t.name: t for t in list_tasks(world="xtreme")}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    with use_local_copies(FIXTURE_DIR, cache_dir=tmp_path_factory.mktemp("xtreme_cache")) as root:
        yield root


@pytest.mark.parametrize("name", sorted(TASKS))
def test_tiny_roundtrip(local, monkeypatch, name):
    from xlt_utils.testing import tiny_roundtrip

    monkeypatch.delenv("XLT_CCG_DIR", raising=False)
    task = TASKS[name]
    # two evaluation languages suffice here (the loader tests cover every fixture language and source route)
    langs = [lg for lg in FIXTURE_LANGS[name] if lg in task.languages_for(task.eval_split)][:2]
    result = tiny_roundtrip(task, steps=2, languages=langs)
    assert result.rows
    if task.format == "retrieval" and "layer_of" in task.options:
        # layer 14 of 24 is pooled at the same relative depth of the 2-layer tiny encoder: round(14 * 2 / 24)
        assert {r["layer"] for r in result.rows} == {round(task.options["layer"] * 2 / task.options["layer_of"])}
    if task.trainable:
        assert result.train is not None and result.final_train_loss is not None
