"""Compare mode, drawn: the change of each word's relevance since another version (`compared`), as the
semantic tokens, hovers, diagnostics and code lenses of a `View`. Pure functions.
"""

from __future__ import annotations

from lsprotocol import types

from salience.attribution import parse_prompt
from salience.prompt.sections import find_sections
from salience.server.layers.view import SOURCE, View
from salience.server.open_documents import Baseline
from salience.views.comparison import Comparison, compare, share_text
from salience.views.reading import Reading
from salience.views.section_shares import section_reading
from salience.views.spans import LEVELS, Scale, ScoredSpan, span_at


def compared(view: View, baseline: Baseline) -> tuple[Comparison, list[ScoredSpan]]:
    """Compare mode for a view with a result: the comparison with `baseline`, and the spans drawn, which carry
    the change of each word's relevance (on a diverging robust scale)."""
    old = Reading.of(baseline.result, baseline.text)
    old_sections = section_reading(old, find_sections(parse_prompt(baseline.text)))
    comparison = compare(old, view.reading, old_sections, view.section_reading)
    changes = comparison.on_new()
    scale = Scale.of([w.change for w in comparison.words])
    drawn = []
    for span in view.spans:
        word = changes.get(id(span))
        if word is not None and (strength := scale.strength(word.change)):
            level = max(1, round(abs(strength) * LEVELS))
            drawn.append(ScoredSpan(span.start, span.end, word.change, span.tokens, level, strength, span.parts))
    return comparison, drawn


def hover(view: View, offset: int) -> types.Hover | None:
    """A word's relevance before and after, as signed shares of each version's heatmap."""
    comparison = view.comparison
    assert comparison is not None and view.baseline is not None
    span = span_at(view.spans, offset)
    word = comparison.on_new().get(id(span)) if span is not None else None
    if span is None or word is None:
        return None
    lines = [
        f"**salience** `{view.text[span.start : span.end]}` since {view.baseline.label}: {word.describe()}",
        comparison.answer_line(),
    ]
    return types.Hover(
        types.MarkupContent(types.MarkupKind.Markdown, "\n\n".join(lines)), view.lines.range(span.start, span.end)
    )


def diagnostics(view: View) -> list[types.Diagnostic]:
    """A warning on line 0 when the completion changed since the version compared with."""
    comparison = view.comparison
    if comparison is None or not comparison.answer_changed or view.baseline is None:
        return []
    message = f"since {view.baseline.label}, the {comparison.answer_line()}"
    first_line = view.lines.range(0, view.lines.ends[0])
    return [types.Diagnostic(first_line, message, severity=types.DiagnosticSeverity.Warning, source=SOURCE)]


def lenses(view: View, uri: str) -> list[types.CodeLens]:
    """Line 0: the comparison and the way back; or the commands that start one."""
    where = types.Range(types.Position(0, 0), types.Position(0, 0))
    if view.comparison is not None and view.baseline is not None:
        title = f"comparing with {view.baseline.label} · {view.comparison.answer_line()}"
        commands = [
            (title, "salience.compare", [uri, view.baseline.label]),
            ("back to heatmap", "salience.compare", [uri, "off"]),
        ]
    elif view.result is None:
        return []
    else:
        commands = [("compare…", "salience.compare", [uri]), ("pin", "salience.pin", [uri])]
    return [types.CodeLens(where, types.Command(t, c, arguments=a)) for t, c, a in commands]


def section_title(view: View, name: str, title: str) -> str:
    """A section lens in compare mode adds the section's share in the version compared with."""
    if view.comparison is None or view.baseline is None:
        return title
    change = next((s for s in view.comparison.sections if s.name == name), None)
    return title if change is None else f"{title} · was {share_text(change.old)} at {view.baseline.label}"
