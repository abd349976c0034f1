"""What the terminal heatmap and the HTML pages share: the colour of a score, and a batch run's entry."""

from __future__ import annotations

from typing import Protocol

from salience.attribution import AttributionResult


def colour(strength: float) -> str:
    """Background colour of a colour strength in [-1, 1] (`ScoredSpan.strength`): red for positive, blue for
    negative, white for zero."""
    fade = int(255 - 200 * min(abs(strength), 1.0))
    return f"#ff{fade:02x}{fade:02x}" if strength >= 0 else f"#{fade:02x}{fade:02x}ff"


class BatchEntry(Protocol):
    """One prompt file of a batch run (`salience.batch.Outcome`)."""

    relative: str
    text: str | None
    result: AttributionResult | None
    error: str | None
    stored: bool
