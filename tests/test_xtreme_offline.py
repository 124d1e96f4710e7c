"""Without network and without local copies a real load fails at once, in one line naming the dataset."""

from __future__ import annotations

import time

import pytest

from xlt_utils.errors import XLTError
from xlt_utils.tasks import list_tasks, load_world_tasks
from xlt_utils.worlds import load_records
from xlt_utils.xtreme import source

load_world_tasks("xtreme")
TASKS = {t.name: t for t in list_tasks(world="xtreme")}


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """No local copies, an empty Hub cache, and the Hub unreachable (never touch the network in tests)."""
    import datasets.config as ds_config
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(source, "LOCAL_DIR", None)
    monkeypatch.delenv(source.ENV_LOCAL_DIR, raising=False)
    monkeypatch.setattr(ds_config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    source.hub_reachable.cache_clear()
    if source.hub_reachable():  # a machine with network: still do not use it
        monkeypatch.setattr(source, "hub_reachable", lambda: False)
    yield
    source.hub_reachable.cache_clear()


@pytest.mark.parametrize(
    "name,split,lang,hub_id,config",
    [
        ("panx", "test", "de", "google/xtreme", "PAN-X.de"),
        ("xnli", "train", "en", "nyu-mll/glue", "mnli"),
        ("hellaswag", "train", "en", "Rowan/hellaswag", "default"),
    ],
)
def test_offline_load_fails_fast_naming_dataset_and_config(no_hub, name, split, lang, hub_id, config):
    t0 = time.time()
    with pytest.raises(XLTError) as e:
        load_records(TASKS[name], split, lang)
    elapsed = time.time() - t0
    msg = str(e.value)
    assert hub_id in msg and repr(config) in msg, msg
    assert "unreachable" in msg and source.ENV_LOCAL_DIR in msg and "\n" not in msg
    assert elapsed < 10, f"took {elapsed:.1f}s"


def test_hf_offline_env_means_unreachable(monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    source.hub_reachable.cache_clear()
    try:
        t0 = time.time()
        assert source.hub_reachable() is False
        assert time.time() - t0 < 1
    finally:
        source.hub_reachable.cache_clear()


def test_lock_file_pins_revisions(monkeypatch, tmp_path):
    lock = tmp_path / "revisions.lock.json"
    lock.write_text(
        '{"google/xtreme@main": "0123456789abcdef0123456789abcdef01234567",'
        ' "Rowan/hellaswag@refs/convert/parquet": "fedcba9876543210fedcba9876543210fedcba98"}'
    )
    monkeypatch.setattr(source, "LOCK_FILE", lock)
    assert source.revision_for("google/xtreme", "main", "hub").startswith("0123")
    assert source.revision_for("Rowan/hellaswag", None, "parquet-export").startswith("fedc")
    assert source.revision_for("nyu-mll/glue", "main", "hub") == "main"
    assert source.revision_for("nyu-mll/glue", "main", "parquet-export") == source.PARQUET_EXPORT
