"""What one open document shows now (`View`): the text, the result on it, its problems and sections.

Every layer of the editor (`heatmap`, `section_lenses`, `compare`) is a pure function of a View.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types

from salience.attribution import AttributionResult, Expect, Problem, parse_prompt
from salience.prompt.sections import Sections, find_sections
from salience.server.open_documents import Baseline, Document
from salience.server.positions import LineIndex
from salience.server.settings import Settings
from salience.views.comparison import Comparison
from salience.views.reading import Reading
from salience.views.section_shares import SectionReading, section_reading
from salience.views.spans import ScoredSpan, assign_levels, view_spans

SOURCE = "salience"
"""The source of every diagnostic the server publishes."""


@dataclass
class View:
    """What one document shows now: its text, the result (ranges already in this text) and problems."""

    text: str
    settings: Settings
    encoding: str = types.PositionEncodingKind.Utf16
    result: AttributionResult | None = None
    spans: list[ScoredSpan] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    error: str | None = None
    body_start: int = 0
    """Where the front matter ends; hovering above it shows the run summary."""
    pending: bool = False
    preview_of: str | None = None
    """Set while a fast method's result stands in for the slow method named here."""
    computed_version: int | None = None
    """The document version the result was computed from (its spans may since have been shifted)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Where the result's time went, from the edit on (debounce, queue, the engine's parts, render)."""
    sections: Sections | None = None
    """The text's sections (found from the text when not given)."""
    baseline: Baseline | None = None
    """In compare mode, the version compared with: the heatmap shows the change of relevance since it."""
    comparison: Comparison | None = None
    """In compare mode, the comparison with `baseline` (`CompareFeature.drawn` sets it and `drawn`)."""
    drawn: list[ScoredSpan] | None = None
    """In compare mode, the spans drawn: each word's change of relevance on a diverging scale."""
    expect: Expect | None = None
    """The front matter's `expect:`, checked live: failures are warnings on their sections."""

    def __post_init__(self) -> None:
        self.lines = LineIndex(self.text, self.encoding)

    @classmethod
    def of(cls, text: str, settings: Settings, encoding: str, result: AttributionResult | None, **kwargs: Any) -> View:
        """A view whose spans come straight from `result` (whose ranges index `text`)."""
        spans = view_spans(result, text, settings.granularity) if result else []
        spans = assign_levels(spans, settings.bins, settings.thresholds)
        return cls(text, settings, encoding, result, spans, **kwargs)

    @property
    def reading(self) -> Reading:
        """The result as every view words it, over this text and these (possibly shifted) spans."""
        assert self.result is not None
        return Reading(self.result, self.text, self.spans, self.settings.granularity)

    @property
    def section_reading(self) -> SectionReading:
        """The sections of this text with their shares of the shown result."""
        return section_reading(self.reading, self.found_sections())

    def found_sections(self) -> Sections:
        """The text's sections (found here when the scheduler did not pass them)."""
        if self.sections is None:
            self.sections = find_sections(parse_prompt(self.text))
        return self.sections

    @property
    def shown(self) -> list[ScoredSpan]:
        """What the heatmap draws: the spans, or in compare mode each word's change of relevance."""
        return self.drawn if self.comparison is not None and self.drawn is not None else self.spans


def view_of(doc: Document, text: str, settings: Settings, encoding: str, pending: bool) -> View:
    """What an open document shows now (`text` is its current text)."""
    parsed = doc.parsed
    return View(
        text,
        settings,
        encoding,
        doc.result,
        doc.spans,
        parsed.problems,
        doc.error,
        parsed.body_start,
        pending=pending,
        preview_of=doc.preview_of,
        computed_version=doc.result_version,
        timings=doc.timings,
        sections=doc.sections,
        expect=parsed.front_matter.expect,
    )
