"""Progress and cancellation hooks shared by every long step (the server and CLI pass their own)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from salience.attribution.errors import Cancelled


class Progress(Protocol):
    def __call__(self, fraction: float, message: str = "") -> None: ...


CancelCheck = Callable[[], bool]


def no_progress(fraction: float, message: str = "") -> None:
    """Default progress hook: ignore."""


def no_cancel() -> bool:
    """Default cancel check: never."""
    return False


def check_cancel(cancelled: CancelCheck) -> None:
    """Raise `Cancelled` when the caller asked to stop (called between batches)."""
    if cancelled():
        raise Cancelled("attribution cancelled")
