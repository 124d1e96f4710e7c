"""Committed synth encoders: pretraining the reproduce budget cannot afford, done once and shipped with the repo.

Each entry of :data:`CHECKPOINTS` is the full parameter set of one ``00_pretrain`` run. The files live in
``checkpoints/synth/<name>/`` (safetensors weights, tokenizer, ``provenance.json`` with the parameters, seed,
corpus hash, timings and git revision, ``pretrain_log.jsonl`` with the loss and retrieval curves) and
``checkpoints/synth/SHA256SUMS`` pins every file. Weights over :data:`MAX_FILE_BYTES` are kept as shards
(:func:`shard`; :func:`copy_to` joins them back into one ``model.safetensors``, byte for byte). The ``embedded``
profiles load them (phase 00 with ``checkpoint: <name>``: the files are verified and copied into the run, nothing is trained); the ``embedded-full``
profiles regenerate them (phase 00 with the same parameters and no ``checkpoint``).

Regenerate one (the command is also in its provenance)::

    python -m xlt_utils synth-checkpoint synth-small --out checkpoints/synth/synth-small

then ``python -m xlt_utils synth-checkpoint --sums`` rewrites ``SHA256SUMS``.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError, unknown
from xlt_utils.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT / "checkpoints" / "synth"
SUMS = ROOT / "SHA256SUMS"
WEIGHTS = "model.safetensors"
FILES = ("config.json", WEIGHTS, "tokenizer.json", "tokenizer_config.json", "provenance.json", "pretrain_log.jsonl")
# Weights larger than this are committed as shards ``model-00001-of-0000N.safetensors`` (each at most this size, so
# that no tracked file exceeds the repository's 5 MB limit); :func:`copy_to` joins them back into one WEIGHTS file,
# so a run's encoder folder always looks the same.
MAX_FILE_BYTES = 4_800_000

# The pretraining recipe measured in docs/synth-world.md: every synth language, 8,000 documents each plus 5%
# parallel (en, L) documents, Unigram vocabulary, 32 x 128-token batches, AdamW at 1e-3 (3e-3 stalls on the
# unigram plateau), 5% warmup then linear decay, one CPU thread (deterministic on one machine).
# Every size has the same recipe (data, steps, schedule), so that model scale is the only difference (rq2).
RECIPE: dict[str, Any] = {"steps": 3000, "languages": None, "batch_size": 32, "max_len": 128, "learning_rate": 1.0e-3,
                           "warmup_ratio": 0.05, "n_per_language": 8000, "parallel_frac": 0.05, "vocab_size": 8000,
                           "tokenizer": "unigram", "seed": 0, "probe_every": 500}
CHECKPOINTS: dict[str, dict[str, Any]] = {
    "synth-tiny": {"model": "synth-tiny", **RECIPE},
    "synth-small": {"model": "synth-small", **RECIPE},
    "synth-medium": {"model": "synth-medium", **RECIPE},
}


def names() -> list[str]:
    return sorted(CHECKPOINTS)


def recipe(name: str) -> dict[str, Any]:
    """The ``00_pretrain`` parameters that produce checkpoint ``name``."""
    if name not in CHECKPOINTS:
        raise unknown("synth checkpoint", name, names())
    return dict(CHECKPOINTS[name])


def path(name: str) -> Path:
    recipe(name)
    return ROOT / name


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pinned() -> dict[str, str]:
    """``{"<name>/<file>": sha256}`` from ``SHA256SUMS``."""
    if not SUMS.exists():
        return {}
    out = {}
    for line in SUMS.read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            out[rel.strip()] = digest
    return out


def _shards(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("model-*-of-*.safetensors"))


def files(folder: Path) -> list[str]:
    """The files of a checkpoint folder: :data:`FILES`, with the weights as shards where they are sharded."""
    shards = [] if (folder / WEIGHTS).exists() else _shards(folder)
    return [g for f in FILES for g in ((shards or [f]) if f == WEIGHTS else [f])]


def has_weights(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / WEIGHTS).exists() or bool(_shards(folder))


def shard(folder: str | Path, max_bytes: int = MAX_FILE_BYTES) -> list[str]:
    """Split ``folder/model.safetensors`` into shards of at most ``max_bytes`` (tensor order kept; a single larger
    tensor gets a shard of its own) if it is larger;
    returns the weight files now in ``folder``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = Path(folder)
    src = folder / WEIGHTS
    if not src.exists() or src.stat().st_size <= max_bytes:
        return [WEIGHTS] if src.exists() else _shards(folder)
    with safe_open(str(src), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    groups: list[dict[str, Any]] = [{}]
    size = 0
    for k, t in tensors.items():
        n = t.numel() * t.element_size() + 200  # + the header entry, generously
        if groups[-1] and size + n > max_bytes:
            groups.append({})
            size = 0
        groups[-1][k] = t
        size += n
    names_ = [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    for g, n in zip(groups, names_):
        save_file(g, str(folder / n), metadata=meta)
    src.unlink()
    return names_


def _join(folder: Path, out: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    tensors, meta = {}, None
    for n in _shards(folder):
        with safe_open(str(folder / n), "pt") as f:
            meta = f.metadata()
            tensors.update({k: f.get_tensor(k) for k in f.keys()})  # noqa: SIM118
    save_file(tensors, str(out), metadata=meta)


def verify(name: str) -> Path:
    """The checkpoint's folder, after checking every file against ``SHA256SUMS``; a clear error otherwise."""
    folder = path(name)
    sums = pinned()
    expected = files(folder) + [rel.split("/", 1)[1] for rel in sums if rel.startswith(f"{name}/")]
    for f in dict.fromkeys(expected):
        rel = f"{name}/{f}"
        if not (folder / f).exists():
            raise XLTError(f"committed checkpoint {name} is missing {folder / f}; regenerate it with "
                           f"`python -m xlt_utils synth-checkpoint {name} --out {folder}` or restore it from git")
        if rel not in sums:
            raise XLTError(f"{rel} is not pinned in {SUMS}; run `python -m xlt_utils synth-checkpoint --sums`")
        if _sha256(folder / f) != sums[rel]:
            raise XLTError(f"{folder / f} does not match its SHA-256 in {SUMS} (changed or corrupted); restore it "
                           f"from git or regenerate the checkpoint")
    import json

    from xlt_utils.synth.languages import GRAMMAR_VERSION

    built = json.loads((folder / "provenance.json").read_text()).get("grammar_version")
    if built != GRAMMAR_VERSION:
        raise XLTError(f"committed checkpoint {name} was pretrained on synth grammar {built}, the generator is at "
                       f"{GRAMMAR_VERSION}; regenerate it with `python -m xlt_utils synth-checkpoint {name} --out "
                       f"{folder}` and `python -m xlt_utils synth-checkpoint --sums`")
    return folder


def weights_sha256(name: str) -> str | None:
    """SHA-256 of checkpoint ``name``'s weights as :func:`copy_to` writes them (``model.safetensors``; sharded
    weights joined, byte for byte the file they were cut from), from ``SHA256SUMS`` where it pins that file."""
    import tempfile

    rel = f"{name}/{WEIGHTS}"
    sums = pinned()
    if rel in sums:
        return sums[rel]
    folder = path(name)
    if not _shards(folder):
        return None
    with tempfile.TemporaryDirectory() as d:
        _join(folder, Path(d) / WEIGHTS)
        return _sha256(Path(d) / WEIGHTS)


def copy_to(name: str, out: str | Path) -> dict[str, Any]:
    """Verify checkpoint ``name`` and copy it into ``out``; returns the pretraining summary (as
    :func:`xlt_utils.synth.pretrain.pretrain` returns it) read from its provenance."""
    import json

    src = verify(name)
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for f in files(src):
        if f not in _shards(src):
            shutil.copy2(src / f, out / f)
    if not (src / WEIGHTS).exists():
        _join(src, out / WEIGHTS)
    prov = json.loads((src / "provenance.json").read_text())
    return {"out_dir": str(out), "final_loss": prov["final_mlm_loss"], "probe": prov["final_probe_p1"],
            "seconds": prov["seconds"], "n_parameters": prov["n_parameters"], "history": [],
            "languages": prov["languages"], "provenance": prov}


def regenerate(name: str, out: str | Path, *, threads: int | None = 1, device: str = "auto",
               save_every: int = 0) -> dict[str, Any]:
    """Pretrain checkpoint ``name`` from its recipe into ``out`` (the command goes into its provenance)."""
    from xlt_utils.synth.languages import LANGUAGE_IDS
    from xlt_utils.synth.pretrain import pretrain

    r = recipe(name)
    command = f"python -m xlt_utils synth-checkpoint {name} --out {out}"
    summary = pretrain(out, size=r["model"].removeprefix("synth-"),
                    languages=r["languages"] or list(LANGUAGE_IDS), steps=r["steps"], batch_size=r["batch_size"],
                    max_len=r["max_len"], lr=r["learning_rate"], warmup_frac=r["warmup_ratio"],
                    n_per_language=r["n_per_language"], parallel_frac=r["parallel_frac"],
                    vocab_size=r["vocab_size"], seed=r["seed"], probe_every=r["probe_every"],
                    tokenizer=r["tokenizer"], threads=threads, device=device, save_every=save_every,
                    # float32 on every machine: bf16 autocast (the phase's default on CUDA and AMX CPUs) would make
                    # the weights depend on the host (synth-medium of grammar 1 was trained on an AMX host in bf16)
                    bf16=False,
                    extra_provenance={"checkpoint": name, "recipe": r, "command": command})
    shard(out)  # ready to commit: no file over the repository's size limit
    return summary


def write_sums() -> Path:
    """Rewrite ``SHA256SUMS`` over every committed checkpoint folder that exists."""
    lines = []
    for name in names():
        folder = ROOT / name
        if folder.exists():
            lines += [f"{_sha256(folder / f)}  {name}/{f}" for f in files(folder)]
    SUMS.write_text("\n".join(lines) + "\n")
    return SUMS
