"""The parts a writer thinks in: a prompt's sections, found from its text.

Top-level sections partition the body, so their shares add up to the file's whole: the front matter's
`sections:` where given, else chat messages (by role), else the shallowest Markdown headings, else
labelled blocks ("Document 3:", "[2]", `<document>…</document>`) and question/answer pairs (few-shot
examples "example 1", "example 2" and the unanswered "question"), with the text between them as
"text" sections. Inside a top-level section, the same detectors (deeper headings, then blocks) find its
children, and each `{{placeholder}}` filled from `sample` is a child of its own. Offsets are code points
into the whole file text, as everywhere in the views. Pure functions, no result needed: the editor and
`salience check` know the sections before a run ends.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from salience.prompt.document import Problem, PromptDocument
from salience.prompt.named_sections import HEADING, heading_name, placed_sections

_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.MULTILINE)
_LABEL = re.compile(
    r"^[ \t]*(?:\*\*)?((?:document|doc|passage|source|context|article|chunk|snippet|review|example|shot)"
    r"[ \t]*#?[ \t]*\d+|\[\d+\])(?:\*\*)?[ \t]*[:.)\]-]?",
    re.IGNORECASE | re.MULTILINE,
)
_QUESTION = re.compile(r"^[ \t]*(?:q|question|input|query|human)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_ANSWER = re.compile(r"^[ \t]*(?:a|answer|output|response|ai)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_OPEN_TAG = re.compile(r"<([A-Za-z][\w.-]*)(?:\s[^<>]*)?>")
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
MAX_DEPTH = 3


@dataclass
class Section:
    """File text [start, end) that a writer calls by `name`; `kind` says how it was found."""

    name: str
    kind: str
    start: int
    end: int
    children: list[Section] = field(default_factory=list)

    def walk(self):
        """This section, then its children."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Sections:
    """A document's sections: the top level partitions the body; problems come from `sections:`."""

    top: list[Section]
    problems: list[Problem] = field(default_factory=list)

    def all(self) -> list[Section]:
        return [s for top in self.top for s in top.walk()]

    def named(self, name: str) -> Section | None:
        """The section called `name` (case and surrounding blanks ignored), top level first."""
        wanted = " ".join(name.split()).casefold()
        return next((s for s in self.all() if s.name.casefold() == wanted), None)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.all()]


def find_sections(doc: PromptDocument) -> Sections:
    """The sections of a parsed prompt file."""
    text, start, end = doc.text, doc.body_start, len(doc.text)
    problems: list[Problem] = []
    if doc.front_matter.sections:
        top = [Section(name, "explicit", start, end) for name, start, end in placed_sections(doc, problems)]
    elif doc.messages:
        top = _messages(doc)
    else:
        top = _headings(text, start, end) or _blocks(text, start, end)
    top = _with_gaps(text, start, end, top)
    for section in top:
        if section.kind != "text":
            _nest(text, section, depth=1)
        if doc.front_matter.sample:
            section.children += _placeholders(text, section, doc.front_matter.sample)
    _unique(top)
    return Sections(top, problems)


def _nest(text: str, section: Section, depth: int) -> None:
    """Fill in children, and theirs, down to MAX_DEPTH."""
    section.children = _children(text, section) if depth < MAX_DEPTH else []
    for child in section.children:
        _nest(text, child, depth + 1)


def _children(text: str, parent: Section) -> list[Section]:
    """Deeper headings, else blocks, inside `parent` below its own heading line; a lone child that is the
    parent again is dropped."""
    inner = parent.start
    if parent.kind in ("heading", "message"):
        inner = min(parent.end, text.find("\n", parent.start) + 1 or parent.end)
    found = _headings(text, inner, parent.end) or _blocks(text, inner, parent.end)
    body = text[inner : parent.end]
    first, last = inner + len(body) - len(body.lstrip()), inner + len(body.rstrip())
    if len(found) == 1 and found[0].start <= first and found[0].end >= last:
        return []
    return found


def _messages(doc: PromptDocument) -> list[Section]:
    counts = Counter(m.role for m in doc.messages)
    seen: Counter[str] = Counter()
    sections = []
    for i, message in enumerate(doc.messages):
        seen[message.role] += 1
        name = message.role if counts[message.role] == 1 else f"{message.role} {seen[message.role]}"
        end = doc.messages[i + 1].marker_start if i + 1 < len(doc.messages) else len(doc.text)
        sections.append(Section(name, "message", message.marker_start, end))
    return sections


def _headings(text: str, start: int, end: int) -> list[Section]:
    """A section per heading of the shallowest level in [start, end), up to the next one (code fences skipped)."""
    fenced = _fenced(text, start, end)
    found = [m for m in HEADING.finditer(text, start, end) if not any(a <= m.start() < b for a, b in fenced)]
    if not found:
        return []
    levels = sorted({len(m.group(1)) for m in found})
    heads = [m for m in found if len(m.group(1)) == levels[0]]
    if len(heads) == 1 and len(levels) > 1 and not text[start : heads[0].start()].strip():
        # One title over deeper headings: the deeper ones are the sections, the title names the text before them.
        deeper = [m for m in found if len(m.group(1)) == levels[1]]
        title = Section(heading_name(heads[0]), "heading", heads[0].start(), deeper[0].start())
        return ([title] if text[heads[0].end() : deeper[0].start()].strip() else []) + _cut(deeper, end)
    return _cut(heads, end)


def _cut(heads: list[re.Match[str]], end: int) -> list[Section]:
    """A section from each heading to the next."""
    return [
        Section(heading_name(m), "heading", m.start(), heads[i + 1].start() if i + 1 < len(heads) else end)
        for i, m in enumerate(heads)
    ]


def _fenced(text: str, start: int, end: int) -> list[tuple[int, int]]:
    marks = [m.start() for m in _FENCE.finditer(text, start, end)]
    return [(marks[i], marks[i + 1] if i + 1 < len(marks) else end) for i in range(0, len(marks), 2)]


def _blocks(text: str, start: int, end: int) -> list[Section]:
    """XML-style blocks, labelled blocks and question/answer pairs in [start, end), outermost, in file order."""
    tags = _tags(text, start, end)
    covered = [(s.start, s.end) for s in tags]
    openers = sorted(
        [(m.start(), "label", m.group(1)) for m in _LABEL.finditer(text, start, end)]
        + [(m.start(), "question", "") for m in _QUESTION.finditer(text, start, end)]
    )
    openers = [o for o in openers if not any(a <= o[0] < b for a, b in covered)]
    blocks: list[Section] = []
    for i, (at, kind, label) in enumerate(openers):
        stop = min([openers[i + 1][0]] if i + 1 < len(openers) else [end])
        stop = min([stop] + [a for a, _ in covered if a > at])
        if kind == "question" or i + 1 == len(openers) or stop != openers[i + 1][0]:
            stop = _paragraph_end(text, at, stop, kind == "question")
        blocks.append(Section(" ".join(label.split()), kind, at, stop))
    _name_pairs(text, [b for b in blocks if b.kind == "question"], end)
    return sorted(tags + blocks, key=lambda s: s.start)


def _tags(text: str, start: int, end: int) -> list[Section]:
    """Outermost `<tag …>…</tag>` blocks in [start, end); a repeated tag is numbered ("document 3")."""
    found: list[Section] = []
    at = start
    while (opening := _OPEN_TAG.search(text, at, end)) is not None:
        tag = opening.group(1)
        closing = text.find(f"</{tag}>", opening.end(), end)
        if closing < 0:
            at = opening.end()
            continue
        stop = closing + len(tag) + 3
        found.append(Section(tag, "block", opening.start(), stop))
        at = stop
    counts = Counter(s.name for s in found)
    seen: Counter[str] = Counter()
    for section in found:
        seen[section.name] += 1
        if counts[section.name] > 1:
            section.name = f"{section.name} {seen[section.name]}"
    return found


def _paragraph_end(text: str, at: int, stop: int, pair: bool) -> int:
    """Where the last block of a run ends: its paragraph's end (after the answer line for a pair)."""
    search_from = at
    if pair and (answer := _ANSWER.search(text, at, stop)):
        search_from = answer.start()
    blank = _BLANK_LINE.search(text, search_from, stop)
    return blank.start() + 1 if blank else stop


def _name_pairs(text: str, pairs: list[Section], end: int) -> None:
    """Question/answer pairs are few-shot examples; the last one, when the text ends in it with its answer
    not written or not finished, is the question the model answers."""
    for n, pair in enumerate(pairs, 1):
        pair.kind, pair.name = "example", f"example {n}"
    if pairs and not text[pairs[-1].end : end].strip():
        last = pairs[-1]
        answer = _ANSWER.search(text, last.start, last.end)
        written = text[text.find(":", answer.start()) + 1 : last.end].strip() if answer else ""
        if not written.endswith((".", "!", "?", "。")):
            last.kind, last.name = "question", "question"


def _with_gaps(text: str, start: int, end: int, sections: list[Section]) -> list[Section]:
    """`sections` with the text between them as "text" sections, so the top level covers [start, end)."""
    out: list[Section] = []
    at = start
    for section in sorted(sections, key=lambda s: s.start):
        if section.start > at and text[at : section.start].strip():
            out.append(Section("text", "text", at, section.start))
        elif out and section.start > at:
            out[-1].end = section.start  # blank lines join the section before them
        elif not out and section.start > at:
            section.start = at
        out.append(section)
        at = max(at, section.end)
    if at < end:
        if text[at:end].strip() or not out:
            out.append(Section("text", "text", at, end))
        else:
            out[-1].end = end
    return out


def _placeholders(text: str, parent: Section, sample: dict[str, str]) -> list[Section]:
    return [
        Section(f"{{{{{m.group(1)}}}}}", "placeholder", m.start(), m.end())
        for m in _PLACEHOLDER.finditer(text, parent.start, parent.end)
        if m.group(1) in sample
    ]


def _unique(top: list[Section]) -> None:
    """Number repeated names ("text", "text 2"), so each section can be named in `expect:`."""
    seen: Counter[str] = Counter()
    for section in (s for t in top for s in t.walk()):
        key = section.name.casefold()
        seen[key] += 1
        if seen[key] > 1:
            section.name = f"{section.name} {seen[key]}"
