"""Inference batches: which examples share a batch when a model predicts (:mod:`xlt_utils.evaluate`) or embeds
(:mod:`xlt_utils.retrieval`).

Pure Python, no torch. Training batches (shuffled, length-grouped, token budgets) are made by the training loop,
:func:`xlt_utils.train.length_grouped_batches`.
"""

from __future__ import annotations

from collections.abc import Sequence


def sorted_batches(lengths: Sequence[int], batch_size: int, min_fill: float = 0.8) -> list[list[int]]:
    """Batches of indices sorted by length (longest first), so each batch pads little.

    A batch holds at most ``batch_size`` items and is also closed before an item shorter than ``min_fill`` of its
    longest (first) item: a batch larger than the set it evaluates (128 for 120 examples of a language) would
    otherwise pad every example to the longest one (e5 on eight Debian languages of 120 examples: 25.5-28.2 s in
    one padded batch each, 9.7-10.7 s with these cuts, the same predictions). An item is padded to at most
    1 / ``min_fill`` of its length; a large evaluation set still fills its batches (many items per length band).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if not batches or len(batches[-1]) == batch_size or lengths[i] < min_fill * lengths[batches[-1][0]]:
            batches.append([])
        batches[-1].append(i)
    return batches
