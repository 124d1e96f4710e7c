"""The one error type users see: a single line that says what was wrong and what is valid."""

from __future__ import annotations

from collections.abc import Iterable


class XLTError(ValueError):
    """A user-facing error with a one-line message (raised before any work starts where possible)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def unknown(kind: str, name: object, valid: Iterable[object]) -> XLTError:
    """Build the standard 'unknown X' error naming the valid choices.

    Args:
        kind: what was looked up (e.g. "task", "format").
        name: the value given.
        valid: the valid values.

    Returns:
        An :class:`XLTError` (to be raised by the caller).
    """
    choices = ", ".join(sorted(str(v) for v in valid)) or "(none registered)"
    return XLTError(f"unknown {kind} {name!r}; valid: {choices}")
