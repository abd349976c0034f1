"""The front matter's `expect:` block checked against a result: what `salience check` reports and what the
editor shows as warnings on the sections that fail. Pure functions over a result and its sections.
"""

from __future__ import annotations

from dataclasses import dataclass

from salience.attribution import AttributionResult, Expect, ShareBound
from salience.prompt.sections import Section, Sections
from salience.views.reading import percent
from salience.views.section_shares import SectionReading


@dataclass(frozen=True)
class Verdict:
    """One expectation: what was asked, whether it held, and what was found."""

    name: str
    passed: bool
    found: str
    section: Section | None = None


def missing_sections(expect: Expect, sections: Sections) -> dict[str, str]:
    """What `expect:` gets wrong before any run: each section name no section of the file has, with the error."""
    known = ", ".join(repr(name) for name in sections.names) or "none"
    return {
        name: f"expect: no section {name!r} in this file (its sections: {known})"
        for name in expect.sections
        if sections.named(name) is None
    }


def verdicts(expect: Expect, result: AttributionResult, shares: SectionReading) -> list[Verdict]:
    """Each expectation of `expect`, checked (a section `expect:` names but the file lacks fails)."""
    found: list[Verdict] = []
    if expect.answer is not None:
        found += _answer(expect, result.explained_text)
    for name, bound in expect.sections.items():
        found.append(_share(name, bound, shares))
    return found


def _answer(expect: Expect, answer: str) -> list[Verdict]:
    asked = expect.answer
    assert asked is not None
    got = f"the answer is {answer!r}"
    checks = []
    if asked.contains is not None:
        checks.append(Verdict(f"answer contains {asked.contains!r}", asked.contains in answer, got))
    if asked.not_contains is not None:
        checks.append(Verdict(f"answer does not contain {asked.not_contains!r}", asked.not_contains not in answer, got))
    if asked.equals is not None:
        checks.append(Verdict(f"answer is {asked.equals!r}", answer.strip() == asked.equals.strip(), got))
    return checks


def _share(name: str, bound: ShareBound, shares: SectionReading) -> Verdict:
    asked = " and ".join(
        part
        for part in (
            f"≥ {percent(bound.min_share)}" if bound.min_share is not None else "",
            f"≤ {percent(bound.max_share)}" if bound.max_share is not None else "",
        )
        if part
    )
    title = f"section {name!r}: share {asked}"
    row = shares.named(name)
    if row is None:
        return Verdict(title, False, "no such section")
    low = bound.min_share is not None and row.share < bound.min_share
    high = bound.max_share is not None and row.share > bound.max_share
    return Verdict(title, not (low or high), f"it holds {percent(row.share)}", row.section)
