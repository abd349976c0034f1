"""The front matter's `sections:`, placed in the file: by line range (`Instructions: 5-9`) or by Markdown
heading (`Documents: {heading: "Sources"}`); one that cannot be placed, or that overlaps another, is a
problem shown on its key.
"""

from __future__ import annotations

import re

from salience.prompt.document import Problem, PromptDocument

HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*\r?$", re.MULTILINE)
"""A Markdown heading line: its level (`#`s) and its text."""


def heading_name(heading: re.Match[str]) -> str:
    return " ".join(heading.group(2).split())


def placed_sections(doc: PromptDocument, problems: list[Problem]) -> list[tuple[str, int, int]]:
    """The named sections as (name, start, end) in file order, overlaps cut; problems appended."""
    text, ends = doc.text, _line_starts(doc.text)
    headings = _every_heading(text, doc.body_start, len(text))
    placed: list[list] = []
    for name, spec in (doc.front_matter.sections or {}).items():
        where = key_span(text, doc.body_start, name)
        if spec.heading is not None:
            found = headings.get(" ".join(spec.heading.split()).casefold())
            if found is None:
                problems.append(Problem("warning", f"section {name!r}: no heading {spec.heading!r}", *where))
                continue
            placed.append([name, *found])
            continue
        first, last = spec.line_range() or (1, 1)
        if last > len(ends) - 1 or ends[last] <= doc.body_start:
            problems.append(Problem("warning", f"section {name!r}: lines {first}-{last} are not in the body", *where))
            continue
        placed.append([name, max(doc.body_start, ends[first - 1]), ends[last]])
    placed.sort(key=lambda s: s[1])
    for before, after in zip(placed, placed[1:]):
        if after[1] < before[2]:
            problems.append(Problem("warning", f"sections {before[0]!r} and {after[0]!r} overlap", 0, doc.body_start))
            after[1] = before[2]
    return [(name, start, end) for name, start, end in placed if start < end]


def _every_heading(text: str, start: int, end: int) -> dict[str, tuple[int, int]]:
    """Each heading's span by its casefolded text, at any level: up to the next heading as deep or shallower."""
    found = list(HEADING.finditer(text, start, end))
    spans: dict[str, tuple[int, int]] = {}
    for i, m in enumerate(found):
        depth = len(m.group(1))
        stop = next((n.start() for n in found[i + 1 :] if len(n.group(1)) <= depth), end)
        spans.setdefault(heading_name(m).casefold(), (m.start(), stop))
    return spans


def _line_starts(text: str) -> list[int]:
    """Offsets where each line starts, plus the text's end: line n (1-based) is [starts[n-1], starts[n])."""
    return [0] + [m.end() for m in re.finditer(r"\n", text)] + ([len(text)] if not text.endswith("\n") else [])


def key_span(text: str, limit: int, name: str) -> tuple[int, int]:
    """Where `name:` is written as an indented key in the front matter (else the whole front matter)."""
    found = re.search(rf"^[ \t]+[\"']?{re.escape(name)}[\"']?[ \t]*:", text[:limit], re.MULTILINE)
    return (found.start(), found.end()) if found else (0, limit)
