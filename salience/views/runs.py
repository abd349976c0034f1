"""The file text cut into runs of characters covered by the same model tokens, and their colours.

Overlapping tokens (byte pieces of one emoji, the tokens of a filled placeholder) add up on a run.
Shared by the terminal heatmap and the HTML page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from salience.attribution import AttributionResult


@dataclass
class Run:
    start: int
    end: int
    tokens: tuple[int, ...]


def char_runs(text: str, result: AttributionResult, start: int = 0) -> list[Run]:
    """File text from `start` cut where the set of covering source tokens changes."""
    cover: list[list[int]] = [[] for _ in range(len(text))]
    for index, token in enumerate(result.source):
        if token.range:
            for c in range(max(token.range[0], start), min(token.range[1], len(text))):
                cover[c].append(index)
    runs: list[Run] = []
    for c in range(start, len(text)):
        key = tuple(cover[c])
        if runs and runs[-1].tokens == key and runs[-1].end == c:
            runs[-1].end = c + 1
        else:
            runs.append(Run(c, c + 1, key))
    return runs


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
