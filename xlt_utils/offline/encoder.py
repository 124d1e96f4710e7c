"""Load the converted multilingual-e5-small (``make setup`` builds it) and freeze its word embeddings.

The model is a ``BertModel`` (12 layers, 384 hidden, 250,037-row vocabulary) with an XLM-R tokenizer. e5 was
trained with ``"query: "``/``"passage: "`` prefixes and mean pooling; the reference retrieval numbers use
``"query: "`` on both sides. Its word embeddings hold 96M of its 117.5M parameters: freezing them
(:func:`freeze_word_embeddings`) roughly halves fine-tuning time and memory on CPU (offline-resources.md §5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xlt_utils.errors import XLTError
from xlt_utils.models import freeze_word_embeddings
from xlt_utils.offline.layout import ENCODER_FILES, cache_dir

__all__ = ["encoder_dir", "freeze_word_embeddings", "load_encoder"]


def encoder_dir() -> Path:
    """The converted checkpoint's folder (raises when it has not been built).

    Raises:
        XLTError: no converted encoder in the cache.
    """
    d = cache_dir() / "encoder"
    missing = [f for f in ENCODER_FILES if not (d / f).exists()]
    if missing:
        raise XLTError(f"the offline-real encoder is not built ({d} lacks {', '.join(missing)}); "
                       f"run `make setup` (python -m xlt_utils setup-assets)")
    return d


def load_encoder(model_class: Any = None, *, freeze_embeddings: bool = False, dtype: Any = None,
                 **kwargs: Any) -> tuple[Any, Any]:
    """Load the converted encoder and its tokenizer from the cache.

    Args:
        model_class: a ``transformers`` class (default ``BertModel`` without the pooler, which e5 lacks);
            e.g. ``AutoModelForSequenceClassification`` with ``num_labels=...`` for fine-tuning (its pooler and
            head start random, as for any encoder).
        freeze_embeddings: call :func:`freeze_word_embeddings` on the model.
        dtype: torch dtype of the weights (default float32, as stored).
        **kwargs: passed to ``from_pretrained``.

    Returns:
        ``(model, tokenizer)``; the model is in eval mode.
    """
    from transformers import AutoTokenizer, BertModel

    d = encoder_dir()
    if model_class is None:
        model_class = BertModel
        kwargs.setdefault("add_pooling_layer", False)
    if dtype is not None:
        kwargs["dtype"] = dtype
    model = model_class.from_pretrained(str(d), **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(str(d))
    if freeze_embeddings:
        freeze_word_embeddings(model)
    model.eval()
    return model, tokenizer
