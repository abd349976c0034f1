"""What an editor should show: the engine's own result, binned as the server bins it."""

from __future__ import annotations

from salience.attribution import Request, explain, parse_prompt
from salience.server.layers.heatmap import View
from salience.server.settings import Settings


def expected_view(text: str, embedded) -> View:
    result = explain(embedded, parse_prompt(text), Request(max_source_tokens=Settings().max_prompt_tokens))
    return View.of(text, Settings(), "utf-8", result)


def expected_levels(view: View) -> dict[int, tuple[int, bool]]:
    """Character offset -> (level, negative) for every visible highlighted character (not line breaks)."""
    signed = view.result is not None and any(score < 0 for score in view.result.aggregate)
    levels: dict[int, tuple[int, bool]] = {}
    for span in view.spans:
        if span.level:
            for start, end in view.lines.line_pieces(span.start, span.end):
                levels.update({offset: (span.level, signed and span.score < 0) for offset in range(start, end)})
    return levels
