"""What the terminal heatmap and the HTML pages share: the colour of a score, and a batch run's entry."""

from __future__ import annotations

from typing import Protocol

from salience.attribution import AttributionResult

FULL = {1: (255, 40, 40), -1: (30, 130, 255)}
"""The colours of full strength, positive and negative: black text on them keeps WCAG contrast 5.6, and the
five levels between white and them are each at least 17 CIELAB ΔE apart (tests/views/test_terminal.py)."""


def colour(strength: float) -> str:
    """Background colour of a colour strength in [-1, 1] (`ScoredSpan.strength`): from white (0) to red for
    positive and blue for negative."""
    t = min(abs(strength), 1.0)
    full = FULL[1 if strength >= 0 else -1]
    return "#" + "".join(f"{round(255 + t * (c - 255)):02x}" for c in full)


class BatchEntry(Protocol):
    """One prompt file of a batch run (`salience.cli.batch.Outcome`)."""

    relative: str
    text: str | None
    result: AttributionResult | None
    error: str | None
    stored: bool
