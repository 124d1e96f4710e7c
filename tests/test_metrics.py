"""Unit tests of xlt_utils.metrics: hand-worked cases (arithmetic in the comments) and seqeval cross-checks."""

from __future__ import annotations

import random
import warnings

import pandas as pd
import pytest

from xlt_utils import metrics
from xlt_utils.errors import XLTError
from xlt_utils.metrics import compute


def approx(x: float) -> object:
    return pytest.approx(x, abs=1e-9)


# ------------------------------------------------------------------------------------------------ API


def test_unknown_metric_names_the_valid_ones():
    with pytest.raises(XLTError, match=r"unknown metric 'f2'; valid: accuracy, bucc_f1, map_at_k"):
        compute("f2", [1], [1])


@pytest.mark.parametrize("name,preds,refs", [
    ("accuracy", [1, 2], [1]),
    ("accuracy", [], []),
    ("span_f1", [["O"]], [["O", "O"]]),
    ("squad", ["a"], [[]]),
    ("map_at_k", [[1]], [[]]),
    ("bucc_f1", [("a", "b")], []),
])
def test_bad_inputs_are_one_line_errors(name, preds, refs):
    with pytest.raises(XLTError) as e:
        compute(name, preds, refs)
    assert "\n" not in str(e.value)


def test_unknown_option_is_rejected():
    with pytest.raises(XLTError, match="valid: lang, normalization"):
        compute("squad", ["x"], [["x"]], language="de")
    with pytest.raises(XLTError, match="unknown QA normalization"):
        compute("squad", ["x"], [["x"]], normalization="xquad")
    with pytest.raises(XLTError, match="positive integer"):
        compute("map_at_k", [[1]], [[1]], k=0)


def test_primary_keys():
    assert set(metrics.PRIMARY) == set(metrics.METRICS)
    assert metrics.primary("squad", {"exact_match": 10.0, "f1": 20.0}) == 20.0
    assert metrics.primary("map_at_k", {"map@5": 3.0}, k=5) == 3.0
    assert metrics.primary("map_at_k", {"map@20": 4.0}) == 4.0
    with pytest.raises(XLTError):
        metrics.primary("map_at_k", {"map@20": 4.0}, k=5)


# ------------------------------------------------------------------------------------- classification


def test_accuracy():
    # 2 of 4 right -> 50
    assert compute("accuracy", ["a", "b", "c", "a"], ["a", "b", "b", "b"]) == {"accuracy": 50.0}


# ------------------------------------------------------------------------------------------- tagging


def test_span_f1_hand_worked():
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    preds = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG"]]
    # gold spans {PER 0-1, LOC 3} + {ORG 1}; predicted {PER 0-1, ORG 3} + {ORG 1}: 2 correct of 3 and 3
    # -> P = R = 2/3, F1 = 2/3
    r = compute("span_f1", preds, refs)
    assert r["precision"] == approx(200 / 3) and r["recall"] == approx(200 / 3) and r["f1"] == approx(200 / 3)


def test_span_f1_lenient_like_seqeval_default():
    # IOB1: an I- after O opens a chunk, so I-PER I-PER is the same span as B-PER I-PER.
    assert compute("span_f1", [["I-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]])["f1"] == 100.0
    # A type change inside a chunk splits it: B-PER I-LOC = {PER 0, LOC 1}; gold {PER 0-1} -> 0 correct.
    assert compute("span_f1", [["B-PER", "I-LOC"]], [["B-PER", "I-PER"]])["f1"] == 0.0
    # IOBES: S-LOC is a chunk, B-PER E-PER one chunk.
    assert metrics.get_entities(["S-LOC", "B-PER", "E-PER", "O"]) == [("LOC", 0, 0), ("PER", 1, 2)]
    # No predicted entities: precision 0/0 -> 0 (seqeval's zero_division), F1 0.
    assert compute("span_f1", [["O", "O"]], [["B-PER", "O"]]) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_pos_accuracy_reports_token_accuracy_and_seqeval_f1():
    refs = [["NOUN", "NOUN", "VERB"]]
    preds = [["NOUN", "VERB", "VERB"]]
    # token accuracy: 2 of 3 -> 66.67.
    # seqeval reads NOUN as chunk tag N / type OUN: gold chunks {OUN 0-1, ERB 2}, predicted {OUN 0, ERB 1-2}
    # -> no chunk matches -> F1 0 (why XTREME's POS "accuracy" is not accuracy, xtreme#56).
    r = compute("pos_accuracy", preds, refs)
    assert r["accuracy"] == approx(200 / 3)
    assert r["f1"] == 0.0


def _random_sequences(rng: random.Random, tagset: list[str], n: int) -> list[list[str]]:
    return [[rng.choice(tagset) for _ in range(rng.randint(1, 8))] for _ in range(n)]


@pytest.mark.parametrize("tagset", [
    ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],                          # IOB2 / IOB1 (lenient)
    ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "E-LOC", "S-LOC"],  # IOBES
    ["NOUN", "VERB", "ADJ", "INTJ", "SCONJ", "SYM", "X", "PROPN", "PRON"],  # UD POS through seqeval (xtreme)
])
def test_span_f1_matches_seqeval(tagset):
    from seqeval.metrics import f1_score, precision_score, recall_score

    rng = random.Random(13)
    for _ in range(40):
        refs = _random_sequences(rng, tagset, rng.randint(1, 6))
        preds = [[rng.choice(tagset) if rng.random() < 0.4 else t for t in s] for s in refs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns about non-NE tags and 0/0
            expected = {
                "f1": 100 * f1_score(refs, preds),
                "precision": 100 * precision_score(refs, preds),
                "recall": 100 * recall_score(refs, preds),
            }
        got = compute("span_f1", preds, refs)
        assert got == {k: pytest.approx(v, abs=1e-9) for k, v in expected.items()}, (refs, preds)
        if tagset[0] == "NOUN":
            assert compute("pos_accuracy", preds, refs)["f1"] == pytest.approx(expected["f1"], abs=1e-9)


# ------------------------------------------------------------------------------------------------ QA


def test_squad_english_v11():
    # "The Eiffel Tower!" -> "eiffel tower" (article and ASCII punctuation dropped): EM 1, F1 1.
    # "in the big city" vs "the city": tokens [in, big, city] vs [city]: P 1/3, R 1, F1 = 2/3 / (4/3) = 0.5.
    r = compute("squad", ["The Eiffel Tower!", "in the big city"], [["eiffel tower"], ["the city"]])
    # EM mean (1 + 0) / 2 = 50; F1 mean (1 + 0.5) / 2 = 75.
    assert r == {"exact_match": 50.0, "f1": 75.0}


def test_squad_max_over_gold_answers():
    # gold "Paris" -> F1 0; gold "in Paris France" -> P 1, R 2/3, F1 0.8; gold "Paris France" -> EM 1.
    r = compute("squad", ["Paris, France"], [["Berlin", "in Paris France", "Paris France"]])
    assert r == {"exact_match": 100.0, "f1": 100.0}
    r = compute("squad", ["Paris, France"], [["Berlin", "in Paris France"]])
    assert r == {"exact_match": 0.0, "f1": approx(80.0)}


def test_mlqa_german_articles():
    # de articles go: "der große Hund" -> [große, hund]; "Ein großer Hund" -> [großer, hund]:
    # 1 common token, P = R = 1/2 -> F1 50. "dieser" keeps its "die" (word boundaries).
    r = compute("squad", ["der große Hund"], [["Ein großer Hund"]], lang="de")
    assert r == {"exact_match": 0.0, "f1": 50.0}
    assert metrics.normalize_answer("Dieser Hund, den", "de") == "dieser hund"


def test_mlqa_spanish_articles_vs_squad():
    # es: "el río Amazonas" -> [río, amazonas] vs [amazonas]: P 1/2, R 1, F1 = 1 / 1.5 = 2/3.
    r = compute("squad", ["el río Amazonas"], [["Amazonas"]], lang="es")
    assert r == {"exact_match": 0.0, "f1": approx(200 / 3)}
    # The SQuAD normalisation keeps "el": [el, río, amazonas] vs [amazonas]: P 1/3, R 1, F1 0.5.
    r = compute("squad", ["el río Amazonas"], [["Amazonas"]], lang="es", normalization="squad")
    assert r == {"exact_match": 0.0, "f1": 50.0}


def test_mlqa_chinese_mixed_segmentation():
    # zh: every CJK character is a token: [北, 京, 大, 学] vs [北, 京]: P 1/2, R 1, F1 2/3.
    r = compute("squad", ["北京大学"], [["北京"]], lang="zh")
    assert r == {"exact_match": 0.0, "f1": approx(200 / 3)}
    # Under SQuAD normalisation (what xtreme uses for XQuAD zh) the strings are single tokens: F1 0.
    assert compute("squad", ["北京大学"], [["北京"]], lang="zh", normalization="squad")["f1"] == 0.0
    # Unicode punctuation (“ ” 。 are category P*) is removed by MLQA, not by SQuAD v1.1 (ASCII only).
    assert compute("squad", ["“北京”。"], [["北京"]], lang="zh")["exact_match"] == 100.0
    assert compute("squad", ["“北京”。"], [["北京"]], lang="zh", normalization="squad")["exact_match"] == 0.0
    # Latin runs stay whitespace tokens.
    assert metrics.normalize_answer("iPhone 手机", "zh") == "iphone 手 机"


def test_mlqa_arabic_and_vietnamese():
    # ar: the script replaces every "ال" by a space (even inside words): "الكتاب" -> "كتاب".
    assert compute("squad", ["كتاب"], [["الكتاب"]], lang="ar")["exact_match"] == 100.0
    assert metrics.normalize_answer("مالك", "ar") == "م ك"
    # vi: "của", "những" ... are removed.
    assert metrics.normalize_answer("những con mèo của tôi", "vi") == "con mèo tôi"


def test_squad_auto_normalization_is_squad_for_english():
    # ASCII "~" is punctuation for both, but "¡" (Unicode P*) only for MLQA; en defaults to SQuAD v1.1.
    assert metrics.normalize_answer("¡hola~", "en") == "¡hola"
    assert metrics.normalize_answer("¡hola~", "en", "mlqa") == "hola"
    # Unknown languages under MLQA: punctuation out, no articles, whitespace tokens.
    assert metrics.normalize_answer("Η Αθήνα!", "el") == "η αθήνα"


# ------------------------------------------------------------------------------------------ retrieval


def test_tatoeba_accuracy():
    # 1 right, 2 in the acceptable set {2, 5}, 3 != 4 -> 2 of 3.
    assert compute("tatoeba_accuracy", [1, 2, 3], [1, [2, 5], 4]) == {"accuracy": approx(200 / 3)}


def test_bucc_f1():
    # 1 correct of 3 predicted and 2 gold: P 1/3, R 1/2, F1 = 2 * 1/6 / (5/6) = 0.4.
    r = compute("bucc_f1", [("a", "x"), ("b", "y"), "c\tz"], {("a", "x"), ("b", "w")})
    assert r == {"f1": approx(40.0), "precision": approx(100 / 3), "recall": 50.0}
    # Predicting nothing scores 0 (no 0/0 crash).
    assert compute("bucc_f1", [], [("a", "x")]) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_map_at_k():
    ranked = [["c1", "c2", "c3"], ["a", "b", "c", "d"], ["z"]]
    relevant = [{"c2"}, {"a", "c"}, set()]
    # q1: hit at rank 2 -> AP = (1/2) / min(20, 1) = 0.5
    # q2: hits at 1 (P 1) and 3 (P 2/3) -> AP = (1 + 2/3) / 2 = 5/6
    # q3: no relevant item -> skipped. mAP@20 = (0.5 + 5/6) / 2 = 2/3.
    assert compute("map_at_k", ranked, relevant) == {"map@20": approx(200 / 3)}
    # k = 2: q1 0.5 / min(2, 1) = 0.5; q2 top-2 [a, b] -> 1 / min(2, 2) = 0.5; mAP@2 = 0.5.
    assert compute("map_at_k", ranked, relevant, k=2) == {"map@2": 50.0}
    # Mewsli-X: one gold -> AP@k is the reciprocal rank; a gold beyond k scores 0.
    assert compute("map_at_k", [["x", "y", "g"], ["g"]], ["g", ["g"]], k=2) == {"map@2": 50.0}


# -------------------------------------------------------------------------------------- aggregation


def _rows() -> list[dict]:
    rows = []
    for lang, acc in (("en", 80.0), ("de", 70.0)):
        rows.append({"task": "xnli", "lang": lang, "metric": "accuracy", "value": acc})
    for lang, em, f1 in (("en", 60.0, 80.0), ("de", 40.0, 60.0)):
        rows.append({"task": "mlqa", "lang": lang, "metric": "exact_match", "value": em})
        rows.append({"task": "mlqa", "lang": lang, "metric": "f1", "value": f1})
    for lang, acc, f1 in (("en", 90.0, 85.0), ("de", 80.0, 75.0)):
        rows.append({"task": "udpos", "lang": lang, "metric": "accuracy", "value": acc})
        rows.append({"task": "udpos", "lang": lang, "metric": "f1", "value": f1})
    return rows


def test_aggregate_xtreme_style():
    # xnli (80 + 70) / 2 = 75; mlqa en (60+80)/2 = 70, de (40+60)/2 = 50 -> 60 (= (mean EM 50 + mean F1 70) / 2);
    # udpos picks f1 as xtreme evaluate.py does: (85 + 75) / 2 = 80. Overall (75 + 60 + 80) / 3 = 71.67.
    res = metrics.aggregate(_rows())
    assert res["per_task"] == {"mlqa": 60.0, "udpos": 80.0, "xnli": 75.0}
    assert res["overall"] == approx(215 / 3)
    # The same from a DataFrame, with an explicit key for udpos: accuracy (90 + 80) / 2 = 85.
    res = metrics.aggregate(pd.DataFrame(_rows()), keys={"udpos": "accuracy"})
    assert res["per_task"]["udpos"] == 85.0 and res["overall"] == approx(220 / 3)
    # Zero-shot languages only: xnli 70, mlqa 50, udpos 75 -> 65.
    assert metrics.aggregate(_rows(), exclude_langs=["en"])["overall"] == approx(65.0)


def test_aggregate_errors():
    rows = _rows()
    with pytest.raises(XLTError, match="several rows"):
        metrics.aggregate(rows + [rows[0]])
    with pytest.raises(XLTError, match="lacks 'f1' for language 'ar'"):
        metrics.aggregate(rows + [{"task": "mlqa", "lang": "ar", "metric": "exact_match", "value": 1.0}])
    with pytest.raises(XLTError, match="task 'xnli' lacks 'accuracy' for language 'ar'"):
        metrics.aggregate(rows + [{"task": "xnli", "lang": "ar", "metric": "f1", "value": 1.0}],
                          keys={"xnli": "accuracy"})
    with pytest.raises(XLTError, match="lack column"):
        metrics.aggregate([{"task": "x", "value": 1.0}])
    with pytest.raises(XLTError, match="cannot tell"):
        metrics.aggregate([{"task": "x", "lang": "en", "metric": "loss", "value": 1.0}])


def test_aggregate_table_by_seed():
    rows = [{**r, "seed": 1} for r in _rows()] + [{**r, "seed": 2, "value": r["value"] - 10} for r in _rows()]
    table = metrics.aggregate_table(rows, by=["seed"])
    overall = table[table["task"] == "overall"].set_index("seed")["score"]
    # Seed 2 is every number minus 10, so every mean is 10 lower.
    assert overall[1] == approx(215 / 3) and overall[2] == approx(215 / 3 - 10)
    assert len(table) == 2 * 4
