"""Every ``xtreme`` task loads from hand-made local copies in the exact Hub schema, through the same code path
as the Hub (``read_table`` -> mapper), and validates into records; schema drift fails with one clear line."""

from __future__ import annotations

import json
import time

import pytest

from xlt_utils.errors import XLTError
from xlt_utils.tasks import list_tasks, load_world_tasks
from xlt_utils.worlds import load_records
from xlt_utils.worlds import xtreme as xtreme_world
from xlt_utils.xtreme import mappers, source
from xlt_utils.xtreme.fixtures import FIXTURE_DIR, FIXTURE_LANGS, use_local_copies

load_world_tasks("xtreme")
TASKS = {t.name: t for t in list_tasks(world="xtreme")}
CASES = [
    (name, split, lang)
    for name, t in sorted(TASKS.items())
    for split in t.splits
    for lang in FIXTURE_LANGS[name]
    if lang in t.languages_for(split)
]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    with use_local_copies(FIXTURE_DIR, cache_dir=tmp_path_factory.mktemp("xtreme_cache")) as root:
        yield root


@pytest.fixture(autouse=True)
def _no_ccg_env(monkeypatch):
    monkeypatch.delenv("XLT_CCG_DIR", raising=False)


def test_every_task_split_has_a_fixture_case():
    covered = {(name, split) for name, split, _ in CASES}
    for name, t in TASKS.items():
        for split in t.splits:
            assert (name, split) in covered, f"no fixture for {name}/{split}"


@pytest.mark.parametrize("name,split,lang", CASES, ids=[f"{n}-{s}-{lg}" for n, s, lg in CASES])
def test_fixture_loads_and_validates(local, name, split, lang):
    task = TASKS[name]
    records = load_records(task, split, lang)  # validates (schema, labels, offsets, unique ids)
    assert records
    if task.format == "retrieval":
        queries = [r for r in records if r["side"] == "query"]
        cands = {r["id"] for r in records if r["side"] == "candidate"}
        assert queries and cands
        assert all(set(q["gold"]) <= cands for q in queries)
        assert any(q["gold"] for q in queries)


def _fixture_columns(hub_id, config, split):
    files = source.local_files(hub_id, config, split)
    if not files:
        return None
    with files[0].open(encoding="utf-8") as f:
        return [set(json.loads(line)) for line in f if line.strip()]


def test_fixtures_have_exactly_the_declared_hub_columns():
    """Each fixture file has the columns its Hub config serves (the part's ``features``), no more, no less."""
    checked = 0
    with use_local_copies(FIXTURE_DIR):
        for name, split, lang in CASES:
            task = TASKS[name]
            if task.source.get("local_env"):
                continue
            for route in [xtreme_world._route(task, split, lang)]:  # the route the loader uses
                for part in route["parts"]:
                    if split not in part["splits"]:
                        continue
                    ctx = mappers.Context(task, split, lang, part)
                    configs = ctx.configs() if part["mapper"] not in ("flores", "lareqa") else []
                    if part["mapper"] == "flores":
                        configs = [part["args"]["english"], part["args"]["codes"][lang]]
                    if part["mapper"] == "lareqa":
                        configs = [part["config"].format(lang=lg) for lg in task.languages]
                    for config in configs:
                        for hub_split in ctx.hub_splits():
                            rows = _fixture_columns(part["hub_id"], config, hub_split)
                            assert rows is not None, (name, part["hub_id"], config, hub_split)
                            for cols in rows:
                                assert cols == set(part["features"]), (name, part["hub_id"], config, cols)
                            checked += 1
    assert checked > 60


def test_nested_hub_fields_match():
    """Spot checks of nested Hub features: SQuAD answers, CSQA choices, Mewsli-X mentions."""
    row = json.loads((FIXTURE_DIR / "google/xtreme/XQuAD.de/validation.jsonl").read_text().splitlines()[0])
    assert set(row["answers"]) == {"answer_start", "text"}
    row = json.loads((FIXTURE_DIR / "tau/commonsense_qa/default/train.jsonl").read_text().splitlines()[0])
    assert set(row["choices"]) == {"label", "text"}
    row = json.loads((FIXTURE_DIR / "izhx/mewsli-x/de/test.jsonl").read_text().splitlines()[0])
    assert {"example_id", "mention_span", "entity_id"} <= set(row["mention"])
    assert {"text", "sentence_spans", "language"} <= set(row["context"])


def test_tydiqa_trains_on_english_only(local):
    train = load_records(TASKS["tydiqa"], "train", "en")
    assert train and all(r["id"].startswith("english-") for r in train)
    assert len(load_records(TASKS["tydiqa_mul"], "train", "mul")) > len(train)


def test_xquad_english_dev_leaves_out_xquad_articles(local):
    dev_ids = {r["id"] for r in load_records(TASKS["xquad"], "dev", "en")}
    test_ids = {r["id"] for r in load_records(TASKS["xquad"], "test", "en")}
    assert dev_ids and not dev_ids & test_ids


def test_labels_are_mapped_by_name(local):
    assert {r["label"] for r in load_records(TASKS["xnli"], "dev", "de")} == {"contradiction", "neutral"}
    assert load_records(TASKS["siqa"], "train", "en")[0]["label"] == 0  # SIQA "1" -> 0
    snli_dev = [r for r in load_records(TASKS["anli_plus"], "dev", "en") if r["id"].startswith("stanfordnlp")]
    assert len(snli_dev) == 2  # the row without a gold label (-1) is dropped
    ud = load_records(TASKS["udpos"], "test", "uk")
    assert "_" not in {t for r in ud for t in r["tags"]}


def test_parquet_copy_with_class_labels_reads_the_same(tmp_path, local):
    import datasets

    from xlt_utils.xtreme.catalog import PANX_TAGS

    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(PANX_TAGS))),
            "langs": datasets.Sequence(datasets.Value("string")),
        }
    )
    rows = [
        json.loads(x) for x in (FIXTURE_DIR / "google/xtreme/PAN-X.de/test.jsonl").read_text().splitlines()
    ]
    out = tmp_path / "google/xtreme/PAN-X.de"
    out.mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(out / "test-00000-of-00001.parquet"))
    expected = load_records(TASKS["panx"], "test", "de")
    with use_local_copies(tmp_path, cache_dir=tmp_path / "cache"):
        assert load_records(TASKS["panx"], "test", "de") == expected


def test_class_label_names_must_match_the_catalog(tmp_path):
    import datasets

    wrong = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(
                datasets.ClassLabel(names=["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-ORG", "I-ORG"])
            ),
            "langs": datasets.Sequence(datasets.Value("string")),
        }
    )
    out = tmp_path / "google/xtreme/PAN-X.de"
    out.mkdir(parents=True)
    datasets.Dataset.from_list(
        [{"tokens": ["Berlin"], "ner_tags": [1], "langs": ["de"]}], features=wrong
    ).to_parquet(str(out / "test-00000-of-00001.parquet"))
    with (
        use_local_copies(tmp_path, cache_dir=tmp_path / "cache"),
        pytest.raises(XLTError, match="class names"),
    ):
        load_records(TASKS["panx"], "test", "de")


def test_schema_drift_is_one_clear_line(tmp_path):
    out = tmp_path / "google/xtreme/PAWS-X.de"
    out.mkdir(parents=True)
    (out / "test.jsonl").write_text(json.dumps({"sentence1": "a", "sentence2": "b"}) + "\n")
    drift = pytest.raises(XLTError, match=r"lacks columns \['label'\]")
    with use_local_copies(tmp_path, cache_dir=tmp_path / "cache"), drift as e:
        load_records(TASKS["pawsx"], "test", "de")
    assert "\n" not in str(e.value)


def test_missing_local_table_fails_at_once_naming_it(tmp_path):
    t0 = time.time()
    with use_local_copies(tmp_path, cache_dir=tmp_path / "cache"), pytest.raises(XLTError) as e:
        load_records(TASKS["udpos"], "test", "uk")
    msg = str(e.value)
    assert "universal-dependencies/universal_dependencies" in msg and "uk_iu" in msg and "\n" not in msg
    assert time.time() - t0 < 10


def test_ccg_reads_jiant_files_and_explains_when_absent(local, monkeypatch, tmp_path):
    recs = load_records(TASKS["ccg"], "train", "en")
    assert recs[0]["tags"][:2] == ["0", "1"]
    with use_local_copies(tmp_path), pytest.raises(XLTError, match="licensed.*XLT_CCG_DIR"):
        load_records(TASKS["ccg"], "train", "en")
    monkeypatch.setenv("XLT_CCG_DIR", str(FIXTURE_DIR / "ccg"))
    with use_local_copies(tmp_path):
        assert load_records(TASKS["ccg"], "dev", "en")


def test_mlm_text_reads_wikipedia_copy(local):
    from xlt_utils.worlds.xtreme import load_mlm_text

    texts = load_mlm_text("de", max_docs=1)
    assert len(texts) == 1 and "Pseudonym" in texts[0]


def test_sentence_spans_cover_the_paragraph():
    text = "Paris ist die Hauptstadt. Es hat zwei Millionen Einwohner! 巴黎是首都。它很大。"
    spans = mappers.sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Paris ist die Hauptstadt.",
        "Es hat zwei Millionen Einwohner!",
        "巴黎是首都。",
        "它很大。",
    ]


def test_answer_repair_reanchors_or_drops():
    ctx = "abc Paris def Paris"
    assert mappers.repair_answers(ctx, ["Paris"], [14]) == (["Paris"], [14])
    assert mappers.repair_answers(ctx, ["Paris"], [12]) == (["Paris"], [14])
    assert mappers.repair_answers(ctx, ["Lyon"], [0]) == ([], [])


def test_mewslix_candidates_come_from_the_split_the_hub_serves(local, monkeypatch):
    """``candidate_entities`` is served as split ``test`` (the Hub has no ``train`` for it): the loader reads that
    split, and the fixture sits where the Hub serves it."""
    cand = TASKS["mewslix"].source["routes"][0]["parts"][0]["args"]["candidates"]
    assert cand["split"] == "test"
    assert source.local_files("izhx/mewsli-x", "candidate_entities", "test")
    assert not source.local_files("izhx/mewsli-x", "candidate_entities", "train")
    reads = []
    real = mappers.read_table
    monkeypatch.setattr(mappers, "read_table", lambda *a, **k: reads.append(a[:3]) or real(*a, **k))
    records = load_records(TASKS["mewslix"], "dev", "de")
    assert ("izhx/mewsli-x", "candidate_entities", "test") in reads
    assert any(r["side"] == "candidate" for r in records)


def test_cosmosqa_reads_the_parquet_conversion_without_remote_code(monkeypatch, tmp_path):
    """CosmosQA's ``main`` is a loading script with no parquet export: the catalog reads the repo's parquet
    conversion (revision ``refs/pr/6``, provenance in the task's notes) as a plain parquet repo, never with
    ``trust_remote_code``."""
    import datasets

    task = TASKS["cosmosqa"]
    (part,) = task.source["routes"][0]["parts"]
    assert (part["hub_id"], part["revision"], part["layout"]) == ("allenai/cosmos_qa", "refs/pr/6", "hub")
    assert "refs/pr/6" in task.notes and "Convert dataset to Parquet" in task.notes
    rows = [json.loads(x) for x in (FIXTURE_DIR / "allenai/cosmos_qa/default/train.jsonl").read_text().splitlines()]
    calls = []

    def fake_load(path, name=None, **kw):
        calls.append((path, name, kw))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.setattr(source, "LOCAL_DIR", tmp_path)  # no local copy: the Hub path
    monkeypatch.setattr(source, "hub_reachable", lambda: True)
    monkeypatch.setattr(source, "LOCK_FILE", tmp_path / "none.json")
    records = load_records(task, "train", "en")
    assert len(records) == len(rows)
    (path, name, kw), = calls
    assert (path, name, kw["split"], kw["revision"]) == ("allenai/cosmos_qa", None, "train", "refs/pr/6")
    assert "trust_remote_code" not in kw
