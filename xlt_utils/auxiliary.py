"""An auxiliary multilingual objective during intermediate training, weighted and interleaved with the task loss.

X-STILTs' alternative to plain English intermediate training (Phang et al. 2020 continue multilingual MLM beside the
task): every ``aux_every``-th optimizer step also backpropagates ``aux_weight`` x an auxiliary loss on a batch of
``aux_batch_size`` multilingual examples, so that step's gradient is grad(task) + w * grad(aux) and every other
step's is grad(task) alone. Two objectives, one per kind of encoder:

``mlm``
    Masked-language modelling for encoders that come with an MLM head (the synth encoders, whose phase 00 trains
    one; XLM-R from the Hub). The masking is the synth pretraining's (``DataCollatorForLanguageModeling``, 15%,
    80/10/10), seeded per step. The text: the synth multilingual corpus (:func:`xlt_utils.synth.corpus.mlm_corpus`,
    every language but English by default, drawn with its own seed so it is not the pretraining text), or for
    ``xtreme`` Wikipedia (``wikimedia/wikipedia``, the dump and revision of
    :data:`xlt_utils.xtreme.catalog.MLM_CORPUS`). The head is loaded from the upstream encoder, trained with the aux
    loss, and dropped with the task head when the encoder is saved (``encoder/`` never holds a head).
``contrastive``
    For a sentence encoder without an MLM head (multilingual-e5-small): in-batch InfoNCE on (English, translation)
    pairs, mean-pooled last layer and the encoder's own ``"query: "`` prefix as e5 embeds, temperature
    ``aux_temperature``, symmetric (both directions averaged), every batch one language (so no English sentence is a
    false negative of its own translation into another language). The pairs come from catalogs held out of every
    retrieval task (:mod:`xlt_utils.offline.auxpairs`); their languages are recorded, and a descendant's retrieval
    score in one of them is reported as not zero-shot (:func:`not_zero_shot`, the results table's ``zero_shot``).

The objective is an ``nn.Module`` attached to the task model (:data:`ATTR`), so its parameters (the MLM head) are
trained, checkpointed and restored with the model by the one training loop (:mod:`xlt_utils.train`), which calls
:meth:`Auxiliary.loss` at the steps :meth:`Auxiliary.due` names. An aux batch is a pure function of (seed, step),
so a resumed run draws the same batches. Off by default (``aux_objective="none"``): the parameters are id-neutral
there (:data:`xlt_utils.runs.ID_NEUTRAL_DEFAULTS`), so no run made before them changes its id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from xlt_utils.errors import XLTError, unknown

OBJECTIVES = ("none", "mlm", "contrastive")
# The objectives each world's encoders support (mlm: an MLM head; contrastive: the held-out offline catalogs).
OBJECTIVES_BY_WORLD = {"synth": ("none", "mlm"), "xtreme": ("none", "mlm"), "offline-real": ("none", "contrastive"),
                       "local": ("none",)}
# The notebook defaults of the aux parameters: off, and id-neutral at these values (xlt_utils.runs).
DEFAULTS: dict[str, Any] = {"aux_objective": "none", "aux_weight": 1.0, "aux_every": 1, "aux_batch_size": 16,
                            "aux_languages": None, "aux_per_language": 1000, "aux_temperature": 0.05}
MLM_PROBABILITY = 0.15  # as the synth pretraining (xlt_utils.synth.pretrain)
ATTR = "xlt_aux"  # the task model's attribute that holds the objective
# The synth aux corpus is drawn with this seed: the committed encoders were pretrained on seed 0's corpus, and the
# continued MLM should read new text of the same languages, not the first documents of the pretraining corpus.
SYNTH_CORPUS_SEED = 40_002


# ---------------------------------------------------------------------------------------------- parameters


def languages_for(world: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(valid, default)`` auxiliary languages of a world."""
    if world == "synth":
        from xlt_utils.synth.languages import LANGUAGE_IDS

        return tuple(LANGUAGE_IDS), tuple(lang for lang in LANGUAGE_IDS if lang != "en")
    if world == "xtreme":
        from xlt_utils.xtreme.languages import XTREME_LANGUAGES, XTREME_R_LANGUAGES

        return tuple(XTREME_R_LANGUAGES), tuple(lang for lang in XTREME_LANGUAGES if lang != "en")
    if world == "offline-real":
        from xlt_utils.offline.auxpairs import LANGUAGES

        return tuple(LANGUAGES), tuple(LANGUAGES)
    return (), ()


def check(cfg: Any) -> None:
    """Validate an intermediate config's ``aux_*`` parameters (one-line errors naming what is valid).

    Raises:
        XLTError: an unknown objective, one the world's encoder cannot train (mlm without an MLM head: use
            contrastive, and vice versa), an aux parameter set while the objective is ``none``, a value out of range,
            an unknown language, or a combination the loop does not run (several processes).
    """
    obj = cfg.aux_objective
    if obj not in OBJECTIVES:
        raise unknown("aux_objective", obj, OBJECTIVES)
    if obj == "none":
        for name, default in DEFAULTS.items():
            if getattr(cfg, name) != default:
                raise XLTError(f"{name} applies to an auxiliary objective; with aux_objective 'none' leave it at "
                               f"{default!r} (valid aux_objective: {', '.join(OBJECTIVES)})")
        return
    valid = OBJECTIVES_BY_WORLD.get(cfg.world, ("none",))
    if obj not in valid:
        if obj == "mlm" and "contrastive" in valid:
            raise XLTError(f"aux_objective 'mlm' needs an encoder with an MLM head; {cfg.model} ({cfg.world}) has "
                           f"none: use 'contrastive' (valid for {cfg.world}: {', '.join(valid)})")
        if obj == "contrastive" and "mlm" in valid:
            raise XLTError(f"aux_objective 'contrastive' trains on the offline-real world's held-out parallel "
                           f"catalogs; {cfg.model} ({cfg.world}) has an MLM head: use 'mlm' (valid for {cfg.world}: "
                           f"{', '.join(valid)})")
        raise XLTError(f"world {cfg.world} has no auxiliary objective; valid aux_objective: {', '.join(valid)}")
    if obj == "mlm" and cfg.world == "synth" and cfg.upstream is None:
        raise XLTError("aux_objective 'mlm' needs the MLM head of a pretrained synth encoder: set upstream to a "
                       "pretrain run (the random initialisation upstream None has no head)")
    for name in ("aux_weight", "aux_temperature"):
        if not getattr(cfg, name) > 0:
            raise XLTError(f"parameter {name} must be > 0, got {getattr(cfg, name)!r}")
    least = {"aux_every": 1, "aux_batch_size": 2 if obj == "contrastive" else 1, "aux_per_language": 1}
    for name, low in least.items():
        if getattr(cfg, name) < low:
            why = " (in-batch negatives need two pairs)" if name == "aux_batch_size" and low == 2 else ""
            raise XLTError(f"parameter {name} must be >= {low}{why}, got {getattr(cfg, name)!r}")
    if obj != "contrastive" and cfg.aux_temperature != DEFAULTS["aux_temperature"]:
        raise XLTError(f"aux_temperature applies to aux_objective 'contrastive'; with {obj!r} leave it at "
                       f"{DEFAULTS['aux_temperature']!r}")
    if cfg.aux_languages is not None:
        valid_langs, _ = languages_for(cfg.world)
        if not cfg.aux_languages:
            raise XLTError("parameter aux_languages must be None (the default languages) or a non-empty list")
        for lang in cfg.aux_languages:
            if lang not in valid_langs:
                raise unknown(f"aux language of world {cfg.world}:", lang, valid_langs)
    if cfg.num_processes > 1:
        raise XLTError(f"an auxiliary objective trains in one process; set num_processes 1 (got "
                       f"{cfg.num_processes}) or aux_objective 'none'")


# ---------------------------------------------------------------------------------------------- objectives


def _encoder(model: nn.Module) -> nn.Module:
    from xlt_utils.models import encoder_of

    return encoder_of(model)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the hidden states over the attention mask (special tokens included, as e5 and the retrieval
    evaluation pool)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def info_nce(x: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric in-batch InfoNCE of paired rows: ``x[i]``'s positive is ``y[i]``, every other ``y[j]`` a negative
    (and the other way round); cosine similarity over ``temperature``, the two directions' cross-entropies averaged."""
    x = nn.functional.normalize(x.float(), dim=-1)
    y = nn.functional.normalize(y.float(), dim=-1)
    scores = x @ y.T / temperature
    gold = torch.arange(len(x), device=x.device)
    return (nn.functional.cross_entropy(scores, gold) + nn.functional.cross_entropy(scores.T, gold)) / 2


def _permutation(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


class Auxiliary(nn.Module):
    """An auxiliary objective: which steps it joins (:meth:`due`), its weight, and its loss at a step.

    Subclasses build their epoch's batches (:meth:`epoch_batches`, lists of item indices, a pure function of the
    seed and the epoch) and the loss of one batch (:meth:`batch_loss`)."""

    kind = "none"

    def __init__(self, weight: float, every: int, batch_size: int, seed: int):
        super().__init__()
        self.weight, self.every, self.batch_size, self.seed = float(weight), int(every), int(batch_size), int(seed)
        self.record: dict[str, Any] = {}  # filled during training (run.resolved["aux"] holds the same dict)
        self._epoch: tuple[int, list[list[int]]] | None = None

    def due(self, step: int) -> bool:
        """Whether optimizer step ``step`` (1-based) takes an aux batch: every ``every``-th step."""
        return step % self.every == 0

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        raise NotImplementedError

    def batch_at(self, step: int) -> list[int]:
        """The items of the aux batch at step ``step``: the n-th batch (n = step / every) of consecutive epochs."""
        n = step // self.every - 1
        if self._epoch is None or not self._epoch[0] <= n < self._epoch[0] + len(self._epoch[1]):
            start, epoch = 0, 0
            while True:
                batches = self.epoch_batches(epoch)
                if not batches:
                    raise XLTError(f"auxiliary {self.kind}: no batches (empty corpus)")
                if n < start + len(batches):
                    break
                start, epoch = start + len(batches), epoch + 1
            self._epoch = (start, batches)
        start, batches = self._epoch
        return batches[n - start]

    def batch_loss(self, model: nn.Module, items: list[int], step: int) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, model: nn.Module, step: int) -> torch.Tensor:
        """The aux loss of step ``step`` through ``model``'s encoder (unweighted; the loop multiplies by
        :attr:`weight`)."""
        value = self.batch_loss(model, self.batch_at(step), step)
        v = float(value.detach())
        rec = self.record
        rec.setdefault("first_loss", round(v, 4))
        rec["last_loss"] = round(v, 4)
        rec["last_step"] = step
        rec["aux_steps"] = step // self.every
        return value


class MLMObjective(Auxiliary):
    """Masked-language modelling on token sequences, through an XLM-R-style LM head (dense, GELU, LayerNorm, then
    the word embeddings transposed, plus a bias) on the task model's encoder.

    Args:
        head: the ``lm_head`` of the encoder's ``...ForMaskedLM`` (``dense``, ``layer_norm``, ``bias``;
            ``decoder`` used only when the embeddings are not tied to it).
        tied: whether the output projection is the input embedding matrix (XLM-R: yes).
        sequences: token-id sequences (special tokens included), at most the model's length.
        tokenizer: with a mask and a pad token.
    """

    kind = "mlm"

    def __init__(self, head: nn.Module, tied: bool, sequences: Sequence[Sequence[int]], tokenizer: Any, *,
                 weight: float, every: int, batch_size: int, seed: int):
        super().__init__(weight, every, batch_size, seed)
        for name in ("dense", "layer_norm", "bias"):
            if not hasattr(head, name):
                raise XLTError(f"aux_objective 'mlm' supports XLM-R-style LM heads (dense, layer_norm, bias); "
                               f"{type(head).__name__} has no {name}")
        self.dense, self.layer_norm, self.bias = head.dense, head.layer_norm, head.bias
        self.decoder = None if tied else head.decoder
        self.sequences = [list(s) for s in sequences]
        from transformers import DataCollatorForLanguageModeling

        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=MLM_PROBABILITY)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = _permutation(len(self.sequences), self.seed, epoch)
        return [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]

    def masked(self, items: Sequence[int], step: int) -> dict[str, torch.Tensor]:
        """The masked batch of these sequences at this step (the masking seeded by (seed, step); the global RNG, and
        with it dropout, is left as it was)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1_000_003 + step)
            return self.collator([{"input_ids": self.sequences[i]} for i in items])

    def logits(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of hidden states (as ``XLMRobertaForMaskedLM``'s head)."""
        from transformers.activations import gelu

        x = self.layer_norm(gelu(self.dense(hidden)))
        if self.decoder is not None:
            return self.decoder(x)
        return nn.functional.linear(x, _encoder(model).get_input_embeddings().weight, self.bias)

    def batch_loss(self, model: nn.Module, items: list[int], step: int) -> torch.Tensor:
        enc = _encoder(model)
        dev = next(enc.parameters()).device
        batch = self.masked(items, step)
        ids, labels = batch["input_ids"].to(dev), batch["labels"].to(dev)
        mask = batch.get("attention_mask")
        mask = (ids != self.collator.tokenizer.pad_token_id).long() if mask is None else mask.to(dev)
        hidden = enc(input_ids=ids, attention_mask=mask).last_hidden_state
        chosen = labels != -100
        if not bool(chosen.any()):  # nothing masked in a tiny batch: a zero loss that still reaches every weight
            return hidden.sum() * 0.0
        # only the masked positions go through the vocabulary projection (the loss is their mean, as the MLM head's)
        return nn.functional.cross_entropy(self.logits(model, hidden[chosen]).float(), labels[chosen])


class ContrastiveObjective(Auxiliary):
    """In-batch InfoNCE on (English, translation) pairs, embedded as e5 embeds (prefix, mean-pooled last layer).

    Args:
        pairs: ``{"lang", "en", "xx"}`` records.
        tokenizer: the encoder's tokenizer.
        prefix: prepended to both sides (e5: ``"query: "``, the encoder config's ``xlt_embedding_prefix``).
        temperature: the softmax temperature of the cosine similarities.
        max_length: truncation length in tokens.
    """

    kind = "contrastive"

    def __init__(self, pairs: Sequence[Mapping[str, str]], tokenizer: Any, *, prefix: str, temperature: float,
                 max_length: int, weight: float, every: int, batch_size: int, seed: int):
        super().__init__(weight, every, batch_size, seed)
        self.pairs = [dict(p) for p in pairs]
        self.tokenizer, self.prefix, self.temperature, self.max_length = tokenizer, prefix, temperature, max_length

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Batches of one language each (its English sides are unique, so no in-batch negative is a positive), a
        language's last batch kept when it has two pairs or more; the batches shuffled."""
        by_lang: dict[str, list[int]] = {}
        for i, p in enumerate(self.pairs):
            by_lang.setdefault(p["lang"], []).append(i)
        batches = []
        for k, lang in enumerate(sorted(by_lang)):
            idx = by_lang[lang]
            order = [idx[j] for j in _permutation(len(idx), self.seed + 7919 * (k + 1), epoch)]
            cut = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
            batches += [b for b in cut if len(b) > 1]
        return [batches[j] for j in _permutation(len(batches), self.seed, epoch)]

    def embed(self, model: nn.Module, texts: Sequence[str]) -> torch.Tensor:
        enc = _encoder(model)
        dev = next(enc.parameters()).device
        b = self.tokenizer([self.prefix + t for t in texts], padding=True, truncation=True,
                           max_length=self.max_length, return_tensors="pt")
        mask = b["attention_mask"].to(dev)
        return mean_pool(enc(input_ids=b["input_ids"].to(dev), attention_mask=mask).last_hidden_state, mask)

    def batch_loss(self, model: nn.Module, items: list[int], step: int) -> torch.Tensor:
        pairs = [self.pairs[i] for i in items]
        both = self.embed(model, [p["xx"] for p in pairs] + [p["en"] for p in pairs])  # one forward pass
        return info_nce(both[: len(pairs)], both[len(pairs) :], self.temperature)


def attached(model: nn.Module) -> Auxiliary | None:
    """The objective attached to ``model`` (None when there is none)."""
    aux = getattr(model, ATTR, None)
    return aux if isinstance(aux, Auxiliary) else None


# ---------------------------------------------------------------------------------------------- data and set-up


def mlm_head(encoder: str) -> tuple[nn.Module, bool]:
    """The trained MLM head of an encoder directory or Hub id, and whether its output projection is tied to the
    word embeddings.

    Raises:
        XLTError: the checkpoint has no MLM head weights (use aux_objective 'contrastive').
    """
    from transformers import AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a missing head is reported below, in one line
    try:
        mlm, info = AutoModelForMaskedLM.from_pretrained(str(encoder), output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    head = getattr(mlm, "lm_head", None)
    missing = [k for k in info.get("missing_keys", ()) if k.startswith("lm_head.") and ".decoder." not in k]
    if head is None or missing:
        raise XLTError(f"encoder {encoder} has no trained MLM head ({missing[0] if missing else 'no lm_head'} "
                       f"missing): aux_objective 'mlm' needs one; use 'contrastive' for an encoder without it")
    return head, bool(getattr(mlm.config, "tie_word_embeddings", True))


def pack_texts(texts_by_lang: Mapping[str, Sequence[str]], tokenizer: Any, max_len: int) -> list[list[int]]:
    """Token sequences of at most ``max_len`` (``<s> ... </s>``): each language's documents packed back to back, as
    the synth pretraining packs them (:func:`xlt_utils.synth.pretrain._pack`)."""
    from xlt_utils.synth.pretrain import _pack

    docs = [(lang, text, None) for lang in sorted(texts_by_lang) for text in texts_by_lang[lang]]
    return _pack(docs, tokenizer, max_len)


def synth_texts(languages: Sequence[str], per_language: int) -> dict[str, list[str]]:
    """``per_language`` documents (4 sentences each) of each synth language, from the multilingual MLM corpus."""
    from xlt_utils.synth.corpus import mlm_corpus

    out: dict[str, list[str]] = {lang: [] for lang in languages}
    for lang, text, _ in mlm_corpus(list(languages), per_language, seed=SYNTH_CORPUS_SEED):
        out[lang].append(text)
    return out


def xtreme_texts(languages: Sequence[str], per_language: int, max_chars: int) -> dict[str, list[str]]:
    """The first ``per_language`` Wikipedia articles of each language (cut to ``max_chars``: an article fills a
    sequence or more). A local copy in the Hub layout is read as every xtreme table is
    (:func:`xlt_utils.worlds.xtreme.load_mlm_text`); from the Hub the dump is streamed at the catalog's revision,
    so only the first articles are downloaded, not the language's whole dump."""
    from xlt_utils.worlds.xtreme import load_mlm_text
    from xlt_utils.xtreme import catalog, source

    part = catalog.MLM_CORPUS
    out: dict[str, list[str]] = {}
    for lang in languages:
        config = part["config"].format(lang=lang)
        if source.local_files(part["hub_id"], config, "train"):
            texts = load_mlm_text(lang, max_docs=per_language)
        else:
            import datasets

            rev = source.revision_for(part["hub_id"], part["revision"], "hub")
            try:
                stream = datasets.load_dataset(part["hub_id"], config, split="train", revision=rev, streaming=True)
                texts = []
                for row in stream:
                    if row["text"] and row["text"].strip():
                        texts.append(row["text"])
                        if len(texts) >= per_language:
                            break
            except Exception as e:  # noqa: BLE001 - one line naming the dataset
                raise XLTError(f"aux mlm: cannot stream {part['hub_id']} {config} (revision {rev}): "
                               f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        out[lang] = [t[:max_chars] for t in texts]
    return out


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def build(cfg: Any, encoder: str, tokenizer: Any) -> tuple[Auxiliary, dict[str, Any]]:
    """The objective an intermediate config asks for, and what it trains on (for the run's ``resolved``).

    Args:
        cfg: an intermediate config with ``aux_objective`` ``mlm`` or ``contrastive``.
        encoder: the encoder the task model was built from (its MLM head, its config's embedding prefix).
        tokenizer: its tokenizer.
    """
    _, default = languages_for(cfg.world)
    langs = list(cfg.aux_languages) if cfg.aux_languages is not None else list(default)
    common = {"weight": cfg.aux_weight, "every": cfg.aux_every, "batch_size": cfg.aux_batch_size, "seed": cfg.seed}
    info: dict[str, Any] = {"objective": cfg.aux_objective, "weight": cfg.aux_weight, "every": cfg.aux_every,
                            "batch_size": cfg.aux_batch_size, "languages": langs}
    if cfg.aux_objective == "mlm":
        head, tied = mlm_head(encoder)
        if cfg.world == "synth":
            texts = synth_texts(langs, cfg.aux_per_language)
            corpus = {"source": "xlt_utils.synth.corpus.mlm_corpus", "seed": SYNTH_CORPUS_SEED,
                      "documents_per_language": cfg.aux_per_language}
        else:
            from xlt_utils.xtreme import catalog, source

            part = catalog.MLM_CORPUS
            texts = xtreme_texts(langs, cfg.aux_per_language, max_chars=cfg.max_seq_length * 16)
            corpus = {"source": part["hub_id"], "config": part["config"],
                      "revision": source.revision_for(part["hub_id"], part["revision"], "hub"),
                      "articles_per_language": cfg.aux_per_language}
        seqs = pack_texts(texts, tokenizer, cfg.max_seq_length)
        aux: Auxiliary = MLMObjective(head, tied, seqs, tokenizer, **common)
        info.update(corpus=corpus, n_sequences=len(seqs), sequences_sha256=_sha(seqs),
                    mlm_probability=MLM_PROBABILITY, head="loaded from the encoder; trained, then dropped with the "
                    "task head (encoder/ holds no head)")
    else:
        from transformers import AutoConfig

        from xlt_utils.offline.auxpairs import pair_set

        pairs, prov = pair_set(langs, cfg.aux_per_language)
        prefix = str(getattr(AutoConfig.from_pretrained(encoder), "xlt_embedding_prefix", "") or "")
        aux = ContrastiveObjective(pairs, tokenizer, prefix=prefix, temperature=cfg.aux_temperature,
                                   max_length=cfg.max_seq_length, **common)
        info.update(temperature=cfg.aux_temperature, prefix=prefix, pooling="mean (last layer)",
                    pairs={k: prov[k] for k in ("source", "artefact", "artefact_sha256", "license", "hash", "path",
                                                "sha256", "n_pairs", "pairs_per_language", "dropped_overlap",
                                                "retrieval_tasks", "not_zero_shot")},
                    not_zero_shot_languages=sorted({lang for v in prov["not_zero_shot"].values() for lang in v}))
    return aux, info


def attach(run: Any, model: nn.Module, data: Any) -> Auxiliary | None:
    """Attach the run's auxiliary objective to the task model (the ``01_intermediate`` cell before training), and
    record what it trains on in the run's ``resolved`` (``aux``); None when ``aux_objective`` is ``none``."""
    cfg = run.config
    if getattr(cfg, "aux_objective", "none") == "none":
        return None
    with run.timer("aux_data"):
        aux, info = build(cfg, data.encoder, data.tokenizer)
    device = next(model.parameters()).device
    setattr(model, ATTR, aux.to(device))
    aux.record.update(info)
    run.resolved["aux"] = aux.record  # the loss figures the training adds arrive in params.json at finish
    n = len(info.get("languages", []))
    print(f"auxiliary {aux.kind}: weight {aux.weight}, every {aux.every} step(s), batches of {aux.batch_size}, "
          f"{n} language(s)")
    return aux


def not_zero_shot(lineage: Mapping[str, Any]) -> set[str]:
    """The languages whose parallel pairs trained an ancestor of a run (its intermediate run's contrastive
    objective): a retrieval score of the run in one of them is not zero-shot."""
    from xlt_utils import runs

    rid = lineage.get("runs", {}).get("intermediate")
    if not rid or not runs.is_done(rid):
        return set()
    aux = runs.read_params(rid).get("resolved", {}).get("aux") or {}
    return set(aux.get("not_zero_shot_languages", []))
