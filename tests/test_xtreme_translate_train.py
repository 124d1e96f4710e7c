"""The real study's translate-train baseline: the ``in_language`` baseline on XNLI and PAWS-X, whose non-English
training sets are the machine translations the Hub serves (``facebook/xnli`` ``{lang}`` train: XNLI-MT 1.0, MNLI
translated by the XNLI authors; ``google/xtreme`` ``PAWS-X.{lang}`` train: PAWS translated by the PAWS-X authors),
with selection on the language's human-translated dev. Read from local copies in the exact Hub schema; no MT model
is involved."""

from __future__ import annotations

import pytest

from xlt_utils.expand import expand
from xlt_utils.tasks import get_task, load_world_tasks
from xlt_utils.worlds import load_records
from xlt_utils.worlds import xtreme as xtreme_world
from xlt_utils.xtreme.fixtures import FIXTURE_DIR, use_local_copies

load_world_tasks("xtreme")


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    with use_local_copies(FIXTURE_DIR, cache_dir=tmp_path_factory.mktemp("xtreme_cache")) as root:
        yield root


@pytest.mark.parametrize("name,hub_id,config,dev_hub_id", [
    ("xnli", "facebook/xnli", "de", "google/xtreme"),
    ("pawsx", "google/xtreme", "PAWS-X.de", "google/xtreme"),
])
def test_non_english_training_data_is_the_hubs_machine_translation(local, name, hub_id, config, dev_hub_id):
    task = get_task(name)
    train = next(p for p in xtreme_world._route(task, "train", "de")["parts"] if "train" in p["splits"])
    assert (train["hub_id"], train["config"].format(lang="de"), train["splits"]["train"]) == (hub_id, config, "train")
    dev = next(p for p in xtreme_world._route(task, "dev", "de")["parts"] if "dev" in p["splits"])
    assert dev["hub_id"] == dev_hub_id  # selection on XTREME's human-translated dev, not on a translation
    de, en = load_records(task, "train", "de"), load_records(task, "train", "en")
    assert de and {r["label"] for r in de} <= set(task.labels)
    assert not {r["text_a"] for r in de} & {r["text_a"] for r in en}  # German text, not the English source
    assert "machine translation" in task.notes and "translate-train" in task.notes


def test_the_grid_runs_translate_train_as_one_in_language_model_per_language(tmp_path):
    study = tmp_path / "tt.yaml"
    study.write_text("""
study: tt
profiles:
  p:
    world: xtreme
    models: [xlmr-base]
    seeds: [13]
    intermediate_tasks: [none]
    target_tasks: [xnli, pawsx]
    baselines: [in_language]
""")
    cells = [c for c in expand(study, "p").cells if c.phase == "baselines"]
    assert sorted((c.params["target_task"], c.params["kind"]) for c in cells) == [
        ("pawsx", "in_language"), ("xnli", "in_language")]
    # languages None: every language with train, dev and test data, i.e. the 14 (XNLI) and 6 (PAWS-X) translations
    # and English
    for c in cells:
        task = get_task(c.params["target_task"])
        have = set(task.languages_for("train")) & set(task.languages_for("dev")) & set(task.languages_for("test"))
        assert c.params["languages"] is None and len(have) == {"xnli": 15, "pawsx": 7}[task.name]
