"""MLM pretraining of small XLM-R encoders on the synth corpus (the ``00_pretrain`` phase).

Self-contained on purpose: MLM is a different objective from the task fine-tuning loop in
:mod:`xlt_utils.train`. XLM-R architecture (``XLMRobertaForMaskedLM``), XLM-R special tokens, masking 15%
(80/10/10, ``DataCollatorForLanguageModeling``), AdamW with linear warmup/decay, bf16 autocast where it pays
(CUDA with bf16, or a CPU with AMX). Logs MLM loss and a cross-lingual retrieval probe (P@1, mean-pooled
middle layer) during training, and saves safetensors + tokenizer + ``provenance.json``.
"""

from __future__ import annotations

import json
import math
import platform
import random
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from xlt_utils.choices import SIZES
from xlt_utils.errors import XLTError, unknown
from xlt_utils.paths import PROJECT_ROOT
from xlt_utils.runs import cpu_description
from xlt_utils.synth.corpus import mlm_corpus, probe_pairs
from xlt_utils.synth.languages import GRAMMAR_VERSION, LANGUAGE_IDS, language_card


def encoder_config(size: str, vocab_size: int, max_len: int = 128):
    """``XLMRobertaConfig`` of a named size (positions for ``max_len`` tokens plus XLM-R's offset of 2)."""
    from transformers import XLMRobertaConfig

    if size not in SIZES:
        raise unknown("encoder size", size, SIZES)
    L, d, h, ff = SIZES[size]
    return XLMRobertaConfig(vocab_size=vocab_size, hidden_size=d, num_hidden_layers=L, num_attention_heads=h,
                            intermediate_size=ff, max_position_embeddings=max_len + 2, pad_token_id=1,
                            bos_token_id=0, eos_token_id=2, type_vocab_size=1, attn_implementation="sdpa")


def _use_bf16(device: torch.device, bf16: str | bool) -> bool:
    if bf16 != "auto":
        return bool(bf16)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:  # bf16 autocast is faster than fp32 on CPUs with AMX (measured 1.5x, synthetic-world.md §3)
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@torch.no_grad()
def embed(model, tok, texts: Sequence[str], layer: int | None = None, batch_size: int = 64,
          device: torch.device | str = "cpu") -> torch.Tensor:
    """L2-normalised mean-pooled hidden states of ``layer`` (default: middle) over non-special tokens."""
    enc = getattr(model, "roberta", model)
    n_layers = enc.config.num_hidden_layers
    layer = n_layers // 2 if layer is None else layer
    max_length = min(128, enc.config.max_position_embeddings - 2)  # XLM-R positions start at pad_id + 1
    out = []
    for i in range(0, len(texts), batch_size):
        b = tok(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=max_length,
                return_tensors="pt", return_special_tokens_mask=True)
        mask = (b["attention_mask"] * (1 - b.pop("special_tokens_mask"))).unsqueeze(-1).float().to(device)
        h = enc(**{k: v.to(device) for k, v in b.items()}, output_hidden_states=True).hidden_states[layer].float()
        v = (h * mask).sum(1) / mask.sum(1).clamp(min=1)
        out.append(torch.nn.functional.normalize(v, dim=-1).cpu())
    return torch.cat(out)


def retrieval_p1(model, tok, queries: Sequence[str], candidates: Sequence[str], **kw: Any) -> float:
    """P@1 of cosine nearest neighbour from ``queries[i]`` to ``candidates[i]`` (Tatoeba-style)."""
    q, c = embed(model, tok, queries, **kw), embed(model, tok, candidates, **kw)
    return float(((q @ c.T).argmax(1) == torch.arange(len(q))).float().mean())


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):  # provenance is best-effort; never fail training on it
        return ""


def pretrain(out_dir: str | Path, *, size: str = "small", languages: Sequence[str] = LANGUAGE_IDS,
             steps: int = 2000, batch_size: int = 32, max_len: int = 128, lr: float = 1e-3,
             warmup_frac: float = 0.05, weight_decay: float = 0.01, n_per_language: int = 8000,
             parallel_frac: float = 0.0, vocab_size: int = 8000, seed: int = 0, log_every: int = 50,
             probe_every: int = 250, probe_languages: Sequence[str] | None = None, device: str = "auto",
             bf16: str | bool = "auto", threads: int | None = None, init_from: str | Path | None = None,
             save_every: int = 0, tokenizer: str = "unigram", extra_provenance: dict[str, Any] | None = None,
             log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Pretrain an XLM-R-architecture encoder with MLM on the synth corpus and save it.

    Args:
        out_dir: where the encoder (safetensors), tokenizer, ``pretrain_log.jsonl`` and ``provenance.json`` go.
        size: one of :data:`SIZES`.
        languages: corpus languages (every language evaluated later must be here).
        steps: optimizer steps.
        batch_size: sequences per step.
        max_len: tokens per packed sequence (documents of one language are packed up to it).
        lr: peak AdamW learning rate. 1e-3 measured best here (docs/synth-world.md): with this post-LN
            XLM-R, subword vocabulary and 32x64-token batches, 3e-3 sat on the unigram plateau (loss 5.4) for
            1000 steps and collapsed when continued; 1e-3 reached 4.2 in 500 steps.
        warmup_frac: linear warmup fraction, then linear decay to 0.
        weight_decay: AdamW weight decay.
        n_per_language: corpus documents per language.
        parallel_frac: parallel (en, L) documents per language as a fraction of ``n_per_language``.
        vocab_size: tokenizer vocabulary size (Unigram, XLM-R specials).
        seed: seed of corpus, initialisation, masking and batch order.
        log_every: steps between loss log lines.
        probe_every: steps between retrieval probes (0 = only at the end).
        probe_languages: languages probed against English (default: every non-English corpus language).
        device: ``auto``, ``cpu`` or ``cuda``.
        bf16: ``auto`` (see :func:`_use_bf16`), True or False.
        threads: torch CPU threads (``None`` = leave as is). On a CPU shared with other jobs use 1: two
            threads were measured 6x *slower* than one under a load of 8 on 2 cores (OpenMP barrier spinning).
        init_from: continue from this encoder directory (its tokenizer and weights; the corpus is still
            built from ``languages``): staged pretraining across sessions, and the continued-MLM controls
            (e.g. extra English MLM at equal compute). Optimizer state and schedule start afresh.
        save_every: steps between snapshots of the encoder and tokenizer to ``out_dir/step-<n>/`` (0 = none):
            long runs lose nothing when stopped, and mid-run encoders can be probed.
        tokenizer: ``unigram`` (SentencePiece subwords, as XLM-R) or ``word`` (one token per word; see
            :func:`xlt_utils.models.train_tokenizer`).
        extra_provenance: more fields for ``provenance.json`` (e.g. the command that regenerates a checkpoint).
        log: line logger (``None`` = silent).

    Returns:
        Summary: ``out_dir``, ``final_loss``, ``probe`` (last P@1 per language), ``history``, ``seconds``.
    """
    from transformers import (
        DataCollatorForLanguageModeling,
        XLMRobertaForMaskedLM,
        get_linear_schedule_with_warmup,
    )

    from xlt_utils.models import train_tokenizer

    if size not in SIZES:
        raise unknown("encoder size", size, SIZES)
    if "en" not in languages:
        raise XLTError(f"pretraining languages must include 'en' (the source); got {', '.join(languages)}")
    if steps < 1 or batch_size < 1:
        raise XLTError("steps and batch_size must be positive")
    say = log or (lambda s: None)
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    use_bf16 = _use_bf16(dev, bf16)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    docs = mlm_corpus(languages, n_per_language, parallel_frac=parallel_frac, seed=seed)
    if init_from is not None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(init_from))
    else:
        tok = train_tokenizer([d[1] for d in docs] + [d[2] for d in docs if d[2]], vocab_size=vocab_size,
                              model_max_length=max_len, model=tokenizer)
    seqs = _pack(docs, tok, max_len)
    import hashlib

    corpus_sha256 = hashlib.sha256(json.dumps(docs).encode()).hexdigest()
    data_sha256 = hashlib.sha256(json.dumps(seqs).encode()).hexdigest()
    say(f"corpus: {len(docs)} documents -> {len(seqs)} sequences of <= {max_len} tokens; vocab {len(tok)}; "
        f"{time.time() - t0:.1f}s")

    torch.manual_seed(seed)
    if init_from is not None:
        model = XLMRobertaForMaskedLM.from_pretrained(str(init_from)).to(dev)
        if model.config.max_position_embeddings - 2 < max_len:
            raise XLTError(f"init_from encoder has {model.config.max_position_embeddings - 2} positions; "
                           f"max_len {max_len} must not exceed it")
    else:
        model = XLMRobertaForMaskedLM(encoder_config(size, len(tok), max_len)).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    collator = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=0.15)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=weight_decay)
    sched = get_linear_schedule_with_warmup(opt, max(1, int(warmup_frac * steps)), steps)
    probe_langs = list(probe_languages) if probe_languages is not None else [l for l in languages if l != "en"]
    probes = {l: probe_pairs(l, 200, seed=seed) for l in probe_langs}

    history: list[dict[str, Any]] = []
    logf = (out / "pretrain_log.jsonl").open("w")

    def probe(step: int) -> dict[str, float]:
        model.eval()
        res = {l: round(retrieval_p1(model, tok, q, c, device=dev), 4) for l, (q, c) in probes.items()}
        model.train()
        rec = {"step": step, "probe_p1": res}
        history.append(rec)
        logf.write(json.dumps(rec) + "\n")
        say(f"step {step}: retrieval P@1 " + " ".join(f"{l}={v:.2f}" for l, v in res.items()))
        return res

    order = random.Random(f"batches:{seed}")
    idx: list[int] = []
    model.train()
    gen = torch.Generator().manual_seed(seed)
    running, last_probe = [], {}
    for step in range(1, steps + 1):
        if len(idx) < batch_size:
            perm = list(range(len(seqs)))
            order.shuffle(perm)
            idx += perm
        batch_ids, idx = idx[:batch_size], idx[batch_size:]
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))  # seeds the masking
        batch = collator([{"input_ids": seqs[i]} for i in batch_ids])
        batch = {k: v.to(dev) for k, v in batch.items()}
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        running.append(loss.item())
        if step % log_every == 0 or step == steps:
            rec = {"step": step, "mlm_loss": round(sum(running) / len(running), 4), "lr": sched.get_last_lr()[0],
                   "seconds": round(time.time() - t0, 1)}
            running = []
            history.append(rec)
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            say(f"step {step}: loss {rec['mlm_loss']:.3f} ({rec['seconds']}s)")
        if probe_every and step % probe_every == 0 and step != steps:
            last_probe = probe(step)
        if save_every and step % save_every == 0 and step != steps:
            snap = out / f"step-{step}"
            model.save_pretrained(str(snap), safe_serialization=True)
            tok.save_pretrained(str(snap))
            logf.flush()
    last_probe = probe(steps) if probe_langs else {}
    logf.close()
    final_loss = next(h["mlm_loss"] for h in reversed(history) if "mlm_loss" in h)

    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    provenance = {
        "phase": "00_pretrain", "world": "synth", "grammar_version": GRAMMAR_VERSION, "size": size,
        "architecture": {"layers": model.config.num_hidden_layers, "hidden": model.config.hidden_size,
                         "heads": model.config.num_attention_heads, "ffn": model.config.intermediate_size}, "n_parameters": n_params,
        "languages": list(languages), "steps": steps, "batch_size": batch_size, "max_len": max_len, "lr": lr,
        "warmup_frac": warmup_frac, "weight_decay": weight_decay, "n_per_language": n_per_language,
        "parallel_frac": parallel_frac, "vocab_size": len(tok), "tokenizer": tokenizer, "seed": seed, "bf16": use_bf16,
        "device": str(dev), "init_from": str(init_from) if init_from else None, "final_mlm_loss": final_loss, "final_probe_p1": last_probe,
        "seconds": round(time.time() - t0, 1), "torch": torch.__version__, "platform": platform.platform(),
        "processor": cpu_description(),  # weights are bit-for-bit on one kind of CPU only (docs/synth-world.md)
        "save_every": save_every, "git_revision": _git_rev(),
        "corpus_sha256": corpus_sha256, "sequences_sha256": data_sha256, "n_sequences": len(seqs), "language_cards": {l: language_card(l, tuple(languages)) for l in languages},
    }
    provenance.update(extra_provenance or {})
    (out / "provenance.json").write_text(json.dumps(provenance, indent=1, sort_keys=True))
    say(f"saved {out} ({n_params / 1e6:.2f}M parameters, {provenance['seconds']}s)")
    return {"out_dir": str(out), "final_loss": final_loss, "probe": last_probe, "history": history,
            "seconds": provenance["seconds"], "n_parameters": n_params}


def _pack(docs, tok, max_len: int) -> list[list[int]]:
    """Token-id sequences: monolingual documents of one language packed greedily up to ``max_len``; parallel
    documents as ``<s> en </s></s> L </s>`` pairs (truncated)."""
    body = max_len - 2
    mono: dict[str, list[list[int]]] = {}
    out: list[list[int]] = []
    texts = [d[1] for d in docs]
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    for (lang, doc, pair), x in zip(docs, ids):
        if pair is not None:
            out.append(tok(doc, pair, truncation=True, max_length=max_len)["input_ids"])
            continue
        cur = mono.setdefault(lang, [[]])
        if len(cur[-1]) + len(x) > body and cur[-1]:
            cur.append([])
        cur[-1].extend(x[:body])
    for lang in sorted(mono):
        out.extend([tok.cls_token_id] + s + [tok.sep_token_id] for s in mono[lang] if s)
    random.Random(len(out)).shuffle(out)
    return out


def steps_for(minutes: float, steps_per_second: float) -> int:
    """Steps that fit a wall-clock budget (throughput measured on the target machine)."""
    return max(1, math.floor(minutes * 60 * steps_per_second))
