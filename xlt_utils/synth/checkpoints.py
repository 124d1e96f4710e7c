"""Committed synth encoders: pretraining the reproduce budget cannot afford, done once and shipped with the repo.

Each entry of :data:`CHECKPOINTS` is the full parameter set of one ``00_pretrain`` run. The files live in
``checkpoints/synth/<name>/`` (safetensors weights, tokenizer, ``provenance.json`` with the parameters, seed,
corpus hash, timings and git revision, ``pretrain_log.jsonl`` with the loss and retrieval curves) and
``checkpoints/synth/SHA256SUMS`` pins every file. The ``embedded`` profiles load them (phase 00 with
``checkpoint: <name>``: the files are verified and copied into the run, nothing is trained); the ``embedded-full``
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
FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "provenance.json",
         "pretrain_log.jsonl")

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


def verify(name: str) -> Path:
    """The checkpoint's folder, after checking every file against ``SHA256SUMS``; a clear error otherwise."""
    folder = path(name)
    sums = pinned()
    for f in FILES:
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


def copy_to(name: str, out: str | Path) -> dict[str, Any]:
    """Verify checkpoint ``name`` and copy it into ``out``; returns the pretraining summary (as
    :func:`xlt_utils.synth.pretrain.pretrain` returns it) read from its provenance."""
    import json

    src = verify(name)
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for f in FILES:
        shutil.copy2(src / f, out / f)
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
    return pretrain(out, size=r["model"].removeprefix("synth-"),
                    languages=r["languages"] or list(LANGUAGE_IDS), steps=r["steps"], batch_size=r["batch_size"],
                    max_len=r["max_len"], lr=r["learning_rate"], warmup_frac=r["warmup_ratio"],
                    n_per_language=r["n_per_language"], parallel_frac=r["parallel_frac"],
                    vocab_size=r["vocab_size"], seed=r["seed"], probe_every=r["probe_every"],
                    tokenizer=r["tokenizer"], threads=threads, device=device, save_every=save_every,
                    # float32 on every machine: bf16 autocast (the phase's default on CUDA and AMX CPUs) would make
                    # the weights depend on the host (synth-medium of grammar 1 was trained on an AMX host in bf16)
                    bf16=False,
                    extra_provenance={"checkpoint": name, "recipe": r, "command": command})


def write_sums() -> Path:
    """Rewrite ``SHA256SUMS`` over every committed checkpoint folder that exists."""
    lines = []
    for name in names():
        folder = ROOT / name
        if folder.exists():
            lines += [f"{_sha256(folder / f)}  {name}/{f}" for f in FILES]
    SUMS.write_text("\n".join(lines) + "\n")
    return SUMS
