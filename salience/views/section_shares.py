"""Relevance per section: each section's share of the heatmap's |relevance| and its net sign.

A section holds the tokens whose first visible character lies in it (through the reading's word spans,
so the editor's shifted spans count where they now are). Its share is the sum of its tokens' |score|
over the heatmap's total, the same total as a word's share, so the top level's shares and the hidden
tokens' (a chat template's, the sink token) add up to 100 %. A method with its own values for whole
segments (TextGenSHAP's segment players) is read at that level instead: each segment's Shapley value is
given to the sections its tokens lie in, in proportion to the method's finer token scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from salience.attribution import PromptDocument, parse_prompt
from salience.prompt.sections import Section, Sections, find_sections
from salience.views.reading import Reading, percent, shorten, signed

MOSTLY = 0.5
"""A child holding at least this much of its parent's share is what the parent's code lens names."""


@dataclass
class SectionShare:
    """A section with its net score, its share of the total |relevance| and its children's."""

    section: Section
    score: float
    share: float
    line: int
    children: list[SectionShare] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.section.name

    def walk(self, depth: int = 0):
        """(depth, section share) for this one and, below it, its children's."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)

    def mostly(self) -> SectionShare | None:
        """The child that holds most of this section's share, when it holds at least half."""
        best = max(self.children, key=lambda c: c.share, default=None)
        return best if best is not None and self.share > 0 and best.share >= MOSTLY * self.share else None


@dataclass
class SectionReading:
    """A reading's sections with their shares, and which values they come from."""

    top: list[SectionShare]
    source: str
    """"tokens" (the heatmap's token scores) or the method whose segment values they are."""
    hidden: float
    """The share of tokens outside the file (a chat template's, the sink token): top shares + hidden = 1."""

    def rows(self) -> list[tuple[int, SectionShare]]:
        return [row for top in self.top for row in top.walk()]

    def named(self, name: str) -> SectionShare | None:
        wanted = " ".join(name.split()).casefold()
        return next((s for _, s in self.rows() if s.name.casefold() == wanted), None)


def section_reading(reading: Reading, sections: Sections) -> SectionReading:
    """Each section's share and net score, from the method's segment values where it has them."""
    values, masses, total, source = _token_values(reading)
    placed = _positions(reading)

    def share_of(section: Section) -> SectionShare:
        inside = [i for i, at in placed.items() if section.start <= at < section.end]
        return SectionShare(
            section,
            sum(values[i] for i in inside),
            sum(masses[i] for i in inside) / total,
            reading.text.count("\n", 0, section.start) + 1,
            [share_of(child) for child in section.children],
        )

    top = [share_of(section) for section in sections.top]
    hidden = 0.0 if source != "tokens" else reading.hidden_share
    return SectionReading(top, source, hidden)


def sections_of(reading: Reading, doc: PromptDocument | None = None) -> SectionReading:
    """The sections of the reading's text (parsed again unless `doc` is given), with their shares."""
    return section_reading(reading, find_sections(doc or parse_prompt(reading.text)))


def _positions(reading: Reading) -> dict[int, int]:
    """Each file token's position: the first visible character of the span it is drawn in."""
    placed: dict[int, int] = {}
    for span in reading.spans:
        shown = reading.text[span.start : span.end]
        at = span.start + len(shown) - len(shown.lstrip()) if shown.strip() else span.start
        for i in span.tokens:
            placed[i] = at
    return placed


def _token_values(reading: Reading) -> tuple[list[float], list[float], float, str]:
    """(signed value, |mass| per source token, the total mass, source): the heatmap's scores, or a method's
    segment values spread over each segment's tokens by their |score|."""
    result = reading.result
    scores = list(result.aggregate)
    segments = [p for p in result.extras.get("players", []) if p.get("level") == "segment"]
    if not segments:
        return scores, [abs(v) for v in scores], reading.total, "tokens"
    values = [0.0] * len(scores)
    for player in segments:
        weights = [abs(scores[i]) for i in player["tokens"]]
        whole = sum(weights) or float(len(weights))
        for i, w in zip(player["tokens"], weights):
            values[i] += player["value"] * ((w if sum(weights) else 1.0) / whole)
    masses = [abs(v) for v in values]
    return values, masses, sum(masses) or 1.0, f"{result.method} segment values"


def section_lens_title(share: SectionShare) -> str:
    """A section's code lens: `§ Documents · 61.0% · net +0.42 · mostly document 3`."""
    title = f"§ {shorten(share.name, 40)} · {percent(share.share)} · net {signed(share.score)}"
    if (child := share.mostly()) is not None:
        title += f" · mostly {shorten(child.name, 30)}"
    return title


def section_lines(sections: SectionReading) -> list[str]:
    """One line per top-level section, for a hover or a summary."""
    lines = [
        f"{s.name}: {percent(s.share)} · net {signed(s.score)}"
        + (f" · mostly {child.name}" if (child := s.mostly()) else "")
        for s in sections.top
    ]
    if sections.hidden:
        lines.append(f"not in the file: {percent(sections.hidden)}")
    return lines


def section_view(sections: SectionReading, text: str) -> dict[str, Any]:
    """The sections as `--json` and `salience/scores` carry them."""

    def one(share: SectionShare) -> dict[str, Any]:
        s = share.section
        return {
            "name": s.name,
            "kind": s.kind,
            "start": s.start,
            "end": s.end,
            "line": share.line,
            "lastLine": text.count("\n", 0, max(s.start, s.end - 1)) + 1,
            "score": share.score,
            "share": share.share,
            "children": [one(c) for c in share.children],
        }

    return {"source": sections.source, "hidden": sections.hidden, "sections": [one(s) for s in sections.top]}
