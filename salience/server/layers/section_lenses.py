"""The editor's section layers: a code lens above each section, the sections in `salience/scores`, and the
front matter's `expect:` checked live as diagnostics. Pure functions of a `View`.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from salience.prompt.named_sections import key_span
from salience.server.layers.compare import section_title
from salience.server.layers.view import SOURCE, View
from salience.views.section_shares import section_lens_title
from salience.views.verdicts import missing_sections, verdicts


def section_lenses(view: View) -> list[types.CodeLens]:
    """Above each top-level section, its share of |relevance| (once there is a result and more than one)."""
    if view.result is None:
        return []
    sections = view.section_reading
    if len(sections.top) < 2:
        return []
    return [
        types.CodeLens(
            types.Range(view.lines.position(s.section.start), view.lines.position(s.section.start)),
            types.Command(section_title(view, s.name, section_lens_title(s)), ""),  # no command: the lens is a label
        )
        for s in sections.top
    ]


def section_payload(view: View) -> list[dict[str, Any]]:
    """Every section, parents before children: its name, depth, first line (0-based), share and net score."""
    return [
        {
            "name": s.name,
            "depth": depth,
            "line": view.lines.position(s.section.start).line,
            "share": round(s.share, 4),
            "score": round(s.score, 4),
        }
        for depth, s in view.section_reading.rows()
    ]


def expectation_diagnostics(view: View) -> list[types.Diagnostic]:
    """`expect:` checked live: a section it names that the file lacks is an error on the name; with a result,
    each expectation that fails is a warning on its section's first line (the answer's: line 0)."""
    if view.expect is None:
        return []
    missing = missing_sections(view.expect, view.found_sections())
    found = [
        types.Diagnostic(
            view.lines.range(*key_span(view.text, view.body_start, name)),
            message,
            severity=types.DiagnosticSeverity.Error,
            source=SOURCE,
        )
        for name, message in missing.items()
    ]
    if view.result is None or missing:
        return found
    for verdict in verdicts(view.expect, view.result, view.section_reading):
        if verdict.passed:
            continue
        at = verdict.section.start if verdict.section else 0
        line = view.lines.position(at).line
        where = view.lines.range(view.lines.starts[line], view.lines.ends[line])
        message = f"expect: {verdict.name} failed: {verdict.found}"
        found.append(types.Diagnostic(where, message, severity=types.DiagnosticSeverity.Warning, source=SOURCE))
    return found
