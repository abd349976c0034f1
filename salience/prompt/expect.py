"""The front matter's `expect:` and `sections:` blocks: what `salience check` asserts, and sections named
by hand. Schemas only: `salience.views.verdicts` evaluates them (for `salience check` and the editor), and
`salience.prompt.sections` places the sections.

    expect:
      answer: {contains: "7733"}
      sections:
        "Instructions": {min_share: 0.10}
        "Document 3": {max_share: 0.50}
    sections:
      Instructions: 5-9                # file lines, 1-based, inclusive
      Documents: {heading: "Sources"}  # the section of this Markdown heading, renamed
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_LINES = re.compile(r"^\s*(\d+)\s*(?:[-–]\s*(\d+))?\s*$")


def _share(value: object) -> object:
    """A share as 0.1, or as the text "10%"."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            return value
    return value


class ShareBound(BaseModel):
    """Bounds on a section's share of |relevance| (0..1; "10%" reads as 0.1)."""

    model_config = ConfigDict(extra="forbid")

    min_share: float | None = Field(default=None, ge=0.0, le=1.0)
    max_share: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("min_share", "max_share", mode="before")
    @classmethod
    def _as_fraction(cls, value: object) -> object:
        return _share(value)

    @model_validator(mode="after")
    def _some_bound(self) -> ShareBound:
        if self.min_share is None and self.max_share is None:
            raise ValueError("give min_share, max_share or both")
        if self.min_share is not None and self.max_share is not None and self.min_share > self.max_share:
            raise ValueError(f"min_share {self.min_share} is above max_share {self.max_share}")
        return self


class AnswerExpect(BaseModel):
    """What the explained completion must (not) contain or be."""

    model_config = ConfigDict(extra="forbid")

    contains: str | None = None
    not_contains: str | None = None
    equals: str | None = None

    @model_validator(mode="after")
    def _something(self) -> AnswerExpect:
        if self.contains is None and self.not_contains is None and self.equals is None:
            raise ValueError("give contains, not_contains or equals")
        return self


class Expect(BaseModel):
    """The `expect:` block of a prompt file."""

    model_config = ConfigDict(extra="forbid")

    answer: AnswerExpect | None = None
    sections: dict[str, ShareBound] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> Expect:
        if self.answer is None and not self.sections:
            raise ValueError("give answer, sections or both")
        return self


class SectionSpec(BaseModel):
    """A section named by hand: by file lines ("5-9", or 5 for one line) or by a Markdown heading's text."""

    model_config = ConfigDict(extra="forbid")

    lines: str | None = None
    heading: str | None = None

    @field_validator("lines", mode="before")
    @classmethod
    def _lines_as_text(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, list) and len(value) == 2:
            return f"{value[0]}-{value[1]}"
        return value

    @model_validator(mode="after")
    def _one_way(self) -> SectionSpec:
        if (self.lines is None) == (self.heading is None):
            raise ValueError("give lines (e.g. 5-9) or heading, not both")
        if self.lines is not None and not _valid_lines(self.lines):
            raise ValueError(f"lines {self.lines!r}: expected FIRST-LAST file lines, e.g. 5-9")
        return self

    def line_range(self) -> tuple[int, int] | None:
        """(first, last) file lines, 1-based and inclusive."""
        found = _LINES.match(self.lines or "")
        if not found:
            return None
        first = int(found.group(1))
        return first, int(found.group(2) or first)

    @classmethod
    def of(cls, value: object) -> object:
        """The short forms: "5-9" or 5 are lines."""
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return {"lines": value}
        if isinstance(value, list):
            return {"lines": value}
        return value


def _valid_lines(text: str) -> bool:
    found = _LINES.match(text)
    return bool(found) and 1 <= int(found.group(1)) <= int(found.group(2) or found.group(1))
