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


DATASETS3_REFUSAL = ValueError(
    "Loading allenai/cosmos_qa requires you to execute the dataset script in that repo on your local machine. "
    "Make sure you have read the code there to avoid malicious use, then set the option `trust_remote_code=True` "
    "to remove this error."
)  # datasets 3.x, HubDatasetModuleFactoryWithScript, without trust_remote_code
DATASETS4_REFUSAL = RuntimeError("Dataset scripts are no longer supported, but found cosmos_qa.py")


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """The Hub 'reachable', no local copies, no lock file; ``datasets.load_dataset`` replaced by ``answer``."""
    import datasets

    calls: list[dict] = []
    answers: list = []

    def fake_load(path, name=None, **kw):
        calls.append({"path": path, "name": name, **kw})
        a = answers.pop(0)
        if isinstance(a, BaseException):
            raise a
        return a

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.setattr(source, "LOCAL_DIR", None)
    monkeypatch.delenv(source.ENV_LOCAL_DIR, raising=False)
    monkeypatch.setattr(source, "hub_reachable", lambda: True)
    monkeypatch.setattr(source, "LOCK_FILE", tmp_path / "none.json")
    return calls, answers


@pytest.mark.parametrize("refusal", [DATASETS3_REFUSAL, DATASETS4_REFUSAL], ids=["datasets3", "datasets4"])
def test_a_refused_script_falls_back_to_the_parquet_export(fake_hub, refusal):
    """Both ways ``datasets`` refuses a loading script (3.x: a ValueError about trust_remote_code; >= 4: a
    RuntimeError) retry the parquet export, and never with trust_remote_code."""
    calls, answers = fake_hub
    answers.extend([refusal, "the export's table"])
    assert source.read_table("some/script_ds", None, "train") == "the export's table"
    first, second = calls
    assert first["revision"] == "main" and "data_files" not in first
    assert second["revision"] == source.PARQUET_EXPORT and second["data_files"] == {"train": "default/train/*.parquet"}
    assert not any("trust_remote_code" in c for c in calls)


def test_a_refused_script_without_an_export_is_one_clear_line(fake_hub):
    calls, answers = fake_hub
    answers.extend([DATASETS3_REFUSAL, FileNotFoundError("Unable to find 'default/train/*.parquet'\nmore")])
    with pytest.raises(XLTError) as e:
        source.read_table("some/script_ds", None, "train")
    msg = str(e.value)
    assert "\n" not in msg and "some/script_ds" in msg and "loading-script dataset" in msg
    assert "trust_remote_code" in msg and source.PARQUET_EXPORT in msg and "FileNotFoundError" in msg
    assert len(calls) == 2


def test_other_value_errors_are_not_taken_for_a_script(fake_hub):
    calls, answers = fake_hub
    answers.append(ValueError("BuilderConfig 'nope' not found. Available: ['a', 'b']"))
    with pytest.raises(XLTError, match=r"cannot load some/ds config 'nope'.*ValueError: BuilderConfig 'nope'"):
        source.read_table("some/ds", "nope", "train")
    assert len(calls) == 1
