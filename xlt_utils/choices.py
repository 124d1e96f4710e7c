"""The named values a parameter may take, in a leaf module that imports nothing heavy.

:mod:`xlt_utils.config` validates a notebook's parameters against these before any work starts, and the modules
that implement them (:mod:`xlt_utils.models`, :mod:`xlt_utils.synth.pretrain`, :mod:`xlt_utils.efficiency`) import
them from here: so checking a cell's parameters costs no torch or transformers import (seconds per kernel), and a
cell that never touches a model (a majority baseline, a committed checkpoint) never pays for one.
"""

from __future__ import annotations

# synth encoder sizes (layers, hidden, heads, ffn): depth-at-fixed-width and width-at-fixed-depth pairs
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 64, 2, 256),
    "small": (4, 128, 4, 512),
    "deep": (8, 128, 4, 512),
    "medium": (4, 256, 4, 1024),
    "large": (6, 384, 6, 1536),
}

# how a sequence classifier summarises a sequence: its first token or the mean of its hidden states
CLASSIFIER_POOLINGS = ("cls", "mean")

# tokenizer models a synth encoder can be trained with: SentencePiece Unigram (as XLM-R) or word-level
TOKENIZER_MODELS = ("unigram", "word")

# formats whose batches can be packed into one row (padding-free training); MLM pretraining packs too
PACKABLE_FORMATS = ("classification", "pair_classification", "tagging")

# inference precisions of the efficiency budgets
DTYPES = ("float32", "bfloat16", "float16", "int8")
