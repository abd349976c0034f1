"""Pure rendering: a `View` (document text, result, settings) -> LSP structures. No server, no torch.

Every layer of ../specs/rendering.md comes from one `View`: semantic tokens, hover, inlay hints,
diagnostics, code lens and the `salience/scores` payload.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from salience.attribution import AttributionResult
from salience.server.layers import compare
from salience.server.layers.section_lenses import expectation_diagnostics, section_lenses, section_payload
from salience.server.layers.view import SOURCE, View
from salience.views.reading import (
    Reading,
    lens_title,
    one_line,
    percent,
    player_error,
    player_value,
    run_time,
    signed,
    truncation_note,
)
from salience.views.section_shares import section_lines
from salience.views.spans import span_at

TOKEN_TYPES = [f"salience{level}" for level in range(1, 6)]
TOKEN_MODIFIERS = ["negative"]
LEGEND = types.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS)
COMMANDS = (
    "salience.run",
    "salience.setMethod",
    "salience.setTarget",
    "salience.clear",
    "salience.faithfulness",
    "salience.compare",
    "salience.pin",
)


def semantic_tokens(view: View, start: int = 0, end: int | None = None) -> list[int]:
    """Delta-encoded semantic tokens for spans with a level, split per line, within [start, end)."""
    end = len(view.text) if end is None else end
    data: list[int] = []
    prev_line = prev_char = 0
    for span in view.shown:
        if span.level == 0 or span.end <= start or span.start >= end:
            continue
        signed = view.comparison is not None or (view.result is not None and _signed(view.result))
        modifiers = 1 if span.negative and signed else 0
        for a, b in view.lines.line_pieces(span.start, span.end):
            first, last = view.lines.position(a), view.lines.position(b)
            delta_char = first.character - prev_char if first.line == prev_line else first.character
            data += [first.line - prev_line, delta_char, last.character - first.character, span.level - 1, modifiers]
            prev_line, prev_char = first.line, first.character
    return data


def _signed(result: AttributionResult) -> bool:
    return any(score < 0 for score in result.aggregate)


def hover(view: View, offset: int) -> types.Hover | None:
    """The word (or token) under the cursor: its relevance, share and rank, its tokens, the completion tokens
    it moved most; on the front matter, the run summary; nothing on blank text."""
    if view.result is None:
        return None
    if offset < view.body_start:
        return types.Hover(_markup(summary_markdown(view)))
    if view.comparison is not None:
        return compare.hover(view, offset)
    span = span_at(view.spans, offset)
    if span is None:
        return None
    reading = view.reading
    text = reading.span_text(span)
    if not text.strip():
        return None
    lines = [f"**salience** `{_inline(text)}`", reading.relevance_line(span)]
    if pieces := reading.pieces(span):
        lines.append("tokens: " + ", ".join(f"`{_inline(t).replace(' ', '␣')}` {signed(v)}" for t, v in pieces))
    if view.result.rows_pending:
        lines.append("moved most: computing…")
    elif moved := reading.moved(span):
        count = len(view.result.target_tokens)
        lines.append("moved most: " + ", ".join(f"`{_inline(t)}` ({n} of {count}) {v:+.1%}" for n, t, v in moved))
    lines += [_player_line(reading, p) for p in view.result.players_of(span.tokens)]
    lines += ["---", _footer(view)]
    return types.Hover(_markup("\n\n".join(lines)), range=view.lines.range(span.start, span.end))


def _player_line(reading: Reading, player: dict) -> str:
    """A segment, sentence or word of a perturbation method: its file text, value and standard error."""
    error = player_error(player)
    error = " (exact)" if error == "exact" else f" ± {error}" if error else ""
    return f"{player['level']} `{_inline(reading.part_text(player))}`: value **{player_value(player)}**{error}"


def summary_markdown(view: View) -> str:
    """The whole run: completion, top tokens and the share of template tokens."""
    reading = view.reading
    top = ", ".join(
        f"`{_inline(reading.span_text(s))}` {signed(s.score)} ({percent(reading.share(s))})" for s in reading.top(5)
    )
    parts = [f"**salience** {_inline(reading.summary_line())}", *(_inline(n) for n in reading.result.notes())]
    parts.append(f"top {reading.granularity}s: {top or 'none'}")
    sections = view.section_reading
    if len(sections.top) > 1:
        parts.append(
            "sections (share of |relevance|): " + " · ".join(_inline(line) for line in section_lines(sections))
        )
    coarsest = [p for p in reading.result.extras.get("players", []) if p.get("parent") is None]
    parts += [_player_line(reading, p) for p in coarsest[:12]]
    if view.preview_of:
        parts += ["---", f"preview; {view.preview_of} is running"]
    return "\n\n".join(parts)


def _footer(view: View) -> str:
    result = view.result
    assert result is not None
    hidden = f" · {note}" if (note := view.reading.hidden_note()) else ""
    preview = f" · preview; {view.preview_of} is running" if view.preview_of else ""
    notes = "".join(f"\n\n{_inline(note)}" for note in result.notes())
    return f"{result.method} · {result.model_id} · {run_time(result)}{hidden}{preview}{notes}"


def _inline(text: str) -> str:
    return one_line(text).replace("`", "'")


def _markup(value: str) -> types.MarkupContent:
    return types.MarkupContent(kind=types.MarkupKind.Markdown, value=value)


def inlay_hints(view: View, start: int = 0, end: int | None = None) -> list[types.InlayHint]:
    """A short score label after each of the top-k words (or tokens) inside [start, end)."""
    end = len(view.text) if end is None else end
    k = view.settings.inlay_top_k
    if not k or view.result is None or view.comparison is not None:  # compare mode: the hover says was/now
        return []
    reading = view.reading
    top = [s for s in reading.top(k) if start <= s.end <= end]
    return [
        types.InlayHint(
            position=view.lines.position(s.end),
            label=f"{s.score:.2f}",
            kind=types.InlayHintKind.Parameter,
            padding_left=True,
            tooltip=f"salience rank {reading.rank(s)} · {percent(reading.share(s))} of the attribution",
        )
        for s in sorted(top, key=lambda s: s.start)
    ]


SEVERITIES = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}


def diagnostics(view: View) -> list[types.Diagnostic]:
    """File problems, the run error, the explained completion, truncation and faded spans."""
    found = [
        types.Diagnostic(view.lines.range(p.start, p.end), p.message, source=SOURCE, severity=SEVERITIES[p.severity])
        for p in view.problems
    ]
    first_line = view.lines.range(0, view.lines.ends[0])
    found += expectation_diagnostics(view) + compare.diagnostics(view)
    if view.error:
        found.append(types.Diagnostic(first_line, view.error, severity=types.DiagnosticSeverity.Error, source=SOURCE))
    if view.result is None:
        return found
    # A hint, not information: editors draw information as a squiggle under the whole line, over the heatmap.
    found.append(
        types.Diagnostic(
            first_line,
            f"explains {view.result.explained_text!r} ({view.result.method})",
            severity=types.DiagnosticSeverity.Hint,
            source=SOURCE,
        )
    )
    truncated = truncation_note(view.result)
    if truncated:
        found.append(types.Diagnostic(first_line, truncated, severity=types.DiagnosticSeverity.Warning, source=SOURCE))
    found += [
        types.Diagnostic(first_line, warning, severity=types.DiagnosticSeverity.Warning, source=SOURCE)
        for warning in view.result.warnings()
    ]
    return found + _faded(view)


def _faded(view: View) -> list[types.Diagnostic]:
    threshold = view.settings.fade_threshold
    if threshold is None or not view.spans:
        return []
    top = max(abs(s.score) for s in view.spans) or 1.0
    return [
        types.Diagnostic(
            view.lines.range(s.start, s.end),
            "low salience",
            source=SOURCE,
            severity=types.DiagnosticSeverity.Hint,
            tags=[types.DiagnosticTag.Unnecessary],
        )
        for s in view.spans
        if abs(s.score) < threshold * top
    ]


def code_lenses(view: View, uri: str) -> list[types.CodeLens]:
    """Line 0: what is explained and with which method, and the commands."""
    where = types.Range(types.Position(0, 0), types.Position(0, 0))
    if view.result is not None:
        title = lens_title(view.result)
    else:
        title = "salience: running…" if view.pending else "salience: run"
    lenses = [
        (title, "salience.run", [uri]),
        ("method…", "salience.setMethod", [uri]),
        ("target…", "salience.setTarget", [uri]),
        ("clear", "salience.clear", [uri]),
    ]
    if view.result is not None:
        lenses.append(("faithfulness", "salience.faithfulness", [uri]))
    drawn = [types.CodeLens(where, types.Command(t, c, arguments=args)) for t, c, args in lenses]
    return drawn + compare.lenses(view, uri) + section_lenses(view)


def scores_payload(view: View, uri: str, version: int | None) -> dict[str, Any]:
    """The `salience/scores` notification: ranges, each one's colour strength in [-1, 1] on the document's
    scale (`ScoredSpan.strength`: 0 for a word drawn plain), its level, and its relevance over the largest
    |relevance| (for clients that draw on a scale of their own)."""
    top = max((abs(s.score) for s in view.shown), default=0.0) or 1.0
    visible = [s for s in view.shown if view.lines.line_pieces(s.start, s.end)]  # not bare line breaks
    ranges = [
        [p.line, p.character, q.line, q.character]
        for s in visible
        for p, q in [(view.lines.position(s.start), view.lines.position(s.end))]
    ]
    result = view.result
    return {
        "uri": uri,
        "version": version,
        "computedVersion": view.computed_version,
        "ranges": ranges,
        "scores": [s.strength for s in visible],
        "relevance": [s.score / top for s in visible],
        "levels": [s.level for s in visible],
        "method": result.method if result else None,
        "previewOf": view.preview_of,
        "explained": result.explained_text if result else None,
        "model": result.model_id if result else None,
        "seconds": round(result.seconds, 3) if result else None,
        "cached": bool(result.timings.get("cached")) if result else False,
        "target": result.extras.get("target") if result else None,
        "timings": {k.rpartition("/")[2]: round(v, 4) for k, v in view.timings.items()} if result else {},
        "sections": section_payload(view) if result else [],
        "compare": view.baseline.label if view.comparison is not None and view.baseline else None,
        "notes": result.notes() if result else [],
    }
