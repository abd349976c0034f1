"""What the terminal heatmap and the HTML pages share: the colour of a score, and a batch run's entry."""

from __future__ import annotations

from typing import Protocol

from salience.attribution import AttributionResult


def colour(score: float, scale: float) -> str:
    """Background colour: red for positive, blue for negative, white for zero; `scale` maps to full."""
    level = 0.0 if scale <= 0 else min(abs(score) / scale, 1.0)
    fade = int(255 - 200 * level)
    return f"#ff{fade:02x}{fade:02x}" if score >= 0 else f"#{fade:02x}{fade:02x}ff"


class BatchEntry(Protocol):
    """One prompt file of a batch run (`salience.batch.Outcome`)."""

    relative: str
    text: str | None
    result: AttributionResult | None
    error: str | None
    stored: bool
