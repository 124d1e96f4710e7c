"""The ``xtreme`` world's registry: every task is listed, complete, and its protocol decisions are data."""

from __future__ import annotations

import json

import pytest

from xlt_utils.tasks import FORMATS, list_tasks, load_world_tasks
from xlt_utils.xtreme import catalog, mappers
from xlt_utils.xtreme.fixtures import FIXTURE_LANGS

METRICS = {"accuracy", "pos_accuracy", "span_f1", "squad", "tatoeba_accuracy", "bucc_f1", "map_at_k"}
TARGETS = {
    "xnli",
    "pawsx",
    "udpos",
    "panx",
    "xquad",
    "mlqa",
    "tydiqa",
    "bucc2018",
    "tatoeba",
    "xcopa",
    "lareqa",
    "mewslix",
    "flores200",
}
INTERMEDIATE = {
    "anli_plus",
    "ccg",
    "commonsenseqa",
    "cosmosqa",
    "hellaswag",
    "mnli",
    "qqp",
    "squad_v1",
    "squad_v2",
    "sst2",
    "siqa",
    "mnli_mt",
    "tydiqa_mul",
}


@pytest.fixture(scope="module")
def tasks():
    load_world_tasks("xtreme")
    return {t.name: t for t in list_tasks(world="xtreme")}


def test_every_task_is_registered(tasks):
    assert set(tasks) == TARGETS | INTERMEDIATE
    assert set(FIXTURE_LANGS) == set(tasks)
    for name in TARGETS:
        assert tasks[name].role == "target"
    for name in INTERMEDIATE:
        assert tasks[name].role == "intermediate"


def test_cli_lists_every_task_with_format_metric_and_source(tasks, capsys):
    from xlt_utils.__main__ import main

    assert main(["tasks", "--world", "xtreme"]) == 0
    out = capsys.readouterr().out
    for t in tasks.values():
        line = next(ln for ln in out.splitlines() if ln.startswith(t.name + " "))
        assert t.format in line and t.metric in line
    assert main(["tasks", "--world", "xtreme", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name, row in rows.items():
        assert row["source"]["summary"], name
        assert row["n_languages"] == len(tasks[name].languages)


def test_tasks_are_complete_data(tasks):
    for t in tasks.values():
        assert t.format in FORMATS and t.metric in METRICS, t.name
        json.dumps(t.summary())  # sources are plain data
        if t.format in ("classification", "pair_classification", "tagging"):
            assert t.labels, t.name
        if t.format == "retrieval":
            assert t.retrieval_mode in ("tatoeba", "bucc", "map")
            assert "layer" in t.options and "pooling" in t.options, t.name
            assert not t.trainable
        if t.eval_split == "dev":
            assert "dev" in t.notes, t.name
        assert t.eval_split in t.splits, t.name
        for split, langs in t.splits.items():
            assert langs, (t.name, split)
        if t.source.get("local_env"):
            continue
        assert t.source["routes"], t.name
        for route in t.source["routes"]:
            for part in route["parts"]:
                assert part["hub_id"] and part["revision"] and part["features"], (t.name, part)
                assert part["mapper"] in mappers.MAPPERS
                assert set(part["splits"]) <= {"train", "dev", "test"}


def test_language_inventories(tasks):
    expected = {
        "xnli": 15,
        "pawsx": 7,
        "udpos": 38,
        "panx": 48,
        "xquad": 12,
        "mlqa": 7,
        "tydiqa": 9,
        "bucc2018": 4,
        "tatoeba": 41,
        "xcopa": 11,
        "lareqa": 11,
        "mewslix": 11,
        "flores200": 49,
    }
    for name, n in expected.items():
        assert len(tasks[name].languages) == n, name
    assert set(tasks["udpos"].options["language_sets"]["xtreme"]) < set(tasks["udpos"].languages)
    assert len(tasks["panx"].options["language_sets"]["xtreme"]) == 40
    assert len(tasks["tatoeba"].options["language_sets"]["xtreme"]) == 36


def test_protocol_decisions(tasks):
    ty = tasks["tydiqa"]
    assert ty.eval_split == "dev" and ty.train_language == "en" and ty.options["model_selection"] == "final"
    assert "english" == catalog.TYDIQA["args"]["id_prefix"]["en"]
    bucc = tasks["bucc2018"].source["routes"][0]["parts"][0]["splits"]
    assert bucc == {"dev": "validation", "test": "test"}  # sample = dev, training = test
    for name in ("tatoeba", "bucc2018"):
        assert tasks[name].options["layer"] == 14 and tasks[name].options["pooling"] == "mean"
    xquad = tasks["xquad"]
    assert xquad.splits["dev"] == ("en",) and "leak" in xquad.notes
    assert tasks["udpos"].metric == "pos_accuracy" and "span_f1" in tasks["udpos"].options["extra_metrics"]
    assert tasks["xcopa"].options["baseline_intermediate"] == "siqa"
    for t in tasks.values():
        assert t.train_language in t.languages_for("train") or not t.trainable, t.name


def test_retrieval_layer_scales_with_depth(tasks):
    from xlt_utils.worlds.xtreme import retrieval_layer

    tat = tasks["tatoeba"]
    assert [retrieval_layer(tat, n) for n in (2, 12, 24, 36, 48)] == [1, 7, 14, 21, 28]
    assert retrieval_layer(tasks["lareqa"], 24) == 24


def test_hub_sources_are_listed(tasks):
    from xlt_utils.worlds.xtreme import hub_sources

    ids = {h for h, _, _ in hub_sources()}
    for hub_id in (
        "google/xtreme",
        "nyu-mll/glue",
        "facebook/anli",
        "stanfordnlp/snli",
        "rajpurkar/squad",
        "rajpurkar/squad_v2",
        "tau/commonsense_qa",
        "allenai/cosmos_qa",
        "Rowan/hellaswag",
        "allenai/social_i_qa",
        "cambridgeltl/xcopa",
        "google-research-datasets/xquad_r",
        "izhx/mewsli-x",
        "facebook/flores",
        "facebook/xnli",
        "unimelb-nlp/wikiann",
        "wikimedia/wikipedia",
    ):
        assert hub_id in ids, hub_id


def test_catalog_hyperparameters_agree_with_task_options(tasks):
    """The span_qa pipeline reads ``options.doc_stride``: a toolkit's doc stride in the catalog must equal it; every
    toolkit's numeric sequence length is a positive int."""
    from xlt_utils.worlds.xtreme import HPARAM_SOURCES

    for t in tasks.values():
        for src, values in (t.options.get("hparams") or {}).items():
            assert src in HPARAM_SOURCES, (t.name, src)
            if "doc_stride" in values:
                assert values["doc_stride"] == t.options["doc_stride"], t.name
            n = values.get("max_seq_length")
            assert isinstance(n, str) or (isinstance(n, int) and n > 0) or n is None, (t.name, src, n)
