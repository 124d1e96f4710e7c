"""Shared fixtures: local tasks of every format, and a tiny XLM-R encoder trained on their text."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def local_tasks(tmp_path_factory):
    """format → name of a registered local task (English train, en/de dev and test)."""
    from local_fixtures import make_local_tasks

    return make_local_tasks(tmp_path_factory.mktemp("local_tasks"))


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory, local_tasks):
    """A random tiny XLM-R encoder directory whose tokenizer was trained on all local task text."""
    from xlt_utils.tasks import get_task
    from xlt_utils.testing import make_tiny_encoder, record_texts
    from xlt_utils.worlds import load_records

    texts = []
    for name in local_tasks.values():
        task = get_task(name)
        for split in ("train", "dev", "test"):
            for lang in task.languages_for(split):
                texts.extend(record_texts(load_records(task, split, lang)))
    return make_tiny_encoder(texts, tmp_path_factory.mktemp("tiny_encoder"), vocab_size=300)


@pytest.fixture(scope="session")
def smoke_reference(tmp_path_factory):
    """The paper study's smoke grid run once with the local executor, uninterrupted: (outputs dir, the collected
    metrics.csv bytes, seconds). The kill/resume, nbval and Ray executor tests compare against it."""
    import time

    from smoke import collect, run_grid

    out = tmp_path_factory.mktemp("smoke_a")
    t0 = time.monotonic()
    r = run_grid(out, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, collect(out), time.monotonic() - t0
