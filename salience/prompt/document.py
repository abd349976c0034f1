"""Prompt files: front matter, role markers and `{{placeholders}}`, with every span kept in file offsets.

Offsets are Python string indices (code points) into the whole file text. Nothing here tokenises;
`tokens.py` turns a `PromptDocument` into model tokens with file ranges.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from salience.attribution.errors import PromptError
from salience.prompt.front_matter import MAX_KEY_PROBLEMS, FrontMatter, Problem, parse_front_matter

ROLES = ("system", "user", "assistant")
PROMPT_SUFFIXES = (".prompt", ".prompt.md", ".prompt.txt", ".prompty")
MAX_PROMPT_BYTES = 1_000_000
_ROLE_LINE = re.compile(r"^(system|user|assistant):[ \t]*\r?$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Span:
    """Run text [run_start, run_end) came from file text [file_start, file_end).

    Literal spans map character by character; substituted ones (a sample value) map as a whole
    to the placeholder's span in the file.
    """

    run_start: int
    run_end: int
    file_start: int
    file_end: int
    literal: bool

    def file_part(self, start: int, end: int) -> tuple[int, int]:
        """File range of run text [start, end), which must lie inside this span."""
        if not self.literal:
            return self.file_start, self.file_end
        return self.file_start + start - self.run_start, self.file_start + end - self.run_start


@dataclass
class Segment:
    """Text that goes to the model (placeholders filled) and where each part came from."""

    text: str
    spans: list[Span]

    def file_range(self, start: int, end: int) -> tuple[int, int] | None:
        """File range of run text [start, end), or None when it touches no file characters."""
        lo: int | None = None
        hi: int | None = None
        for span in self.spans:
            a, b = max(start, span.run_start), min(end, span.run_end)
            if a >= b:
                continue
            fa, fb = span.file_part(a, b)
            lo = fa if lo is None else min(lo, fa)
            hi = fb if hi is None else max(hi, fb)
        return None if lo is None else (lo, hi)

    def strip(self) -> Segment:
        """The same segment without leading and trailing whitespace (as chat templates expect)."""
        stripped = self.text.strip()
        if not stripped:
            return Segment("", [])
        lead = len(self.text) - len(self.text.lstrip())
        return self.slice(lead, lead + len(stripped))

    def slice(self, start: int, end: int) -> Segment:
        spans = []
        for s in self.spans:
            a, b = max(start, s.run_start), min(end, s.run_end)
            if a >= b:
                continue
            fa, fb = s.file_part(a, b)
            spans.append(Span(a - start, b - start, fa, fb, s.literal))
        return Segment(self.text[start:end], spans)


@dataclass
class Message:
    role: str
    content: Segment
    marker_start: int


@dataclass
class PromptDocument:
    """A parsed prompt file."""

    text: str
    front_matter: FrontMatter
    body_start: int
    body: Segment
    messages: list[Message]
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def has_roles(self) -> bool:
        return bool(self.messages)

    @property
    def is_blank(self) -> bool:
        """No text to explain: an empty body, whitespace only, or chat messages without content."""
        if self.messages:
            return not any(m.content.text.strip() for m in self.messages)
        return not self.body.text.strip()


def read_prompt_file(path: str | Path) -> str:
    """Read a prompt file exactly (CRLF kept), refusing binary, non-UTF-8 and huge files."""
    path = Path(path)
    if not path.is_file():
        raise PromptError(f"{path}: no such file")
    return prompt_text(path.read_bytes(), str(path))


def prompt_text(data: bytes, path: str) -> str:
    """A prompt file's bytes as text (CRLF kept), refusing binary, non-UTF-8 and huge files."""
    if len(data) > MAX_PROMPT_BYTES:
        raise PromptError(f"{path}: {len(data)} bytes is too large for a prompt (limit {MAX_PROMPT_BYTES})")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PromptError(f"{path}: UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8")
    if b"\x00" in data:
        raise PromptError(f"{path}: binary file (contains NUL bytes), not a text prompt")
    try:
        return data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
    except UnicodeDecodeError as err:
        raise PromptError(f"{path}: not valid UTF-8 (byte {err.start}); save it as UTF-8") from err


def parse_prompt(text: str) -> PromptDocument:
    """Split a prompt file into front matter, body, chat messages and placeholder spans."""
    problems: list[Problem] = []
    text = _without_lone_surrogates(text, problems)
    front, body_start = parse_front_matter(text, problems)
    body = _substitute(text, body_start, len(text), front.sample, problems)
    messages = _split_messages(text, body_start, front.sample, problems)
    doc = PromptDocument(text, front, body_start, body, messages, problems)
    if doc.is_blank:
        problems.append(Problem("info", "empty prompt: write some text to explain", body_start, len(text)))
    return doc


def _without_lone_surrogates(text: str, problems: list[Problem]) -> str:
    """Unpaired UTF-16 surrogates (an editor may send them) become U+FFFD: same length, so offsets hold."""
    found = [m.start() for m in _LONE_SURROGATE.finditer(text)]
    if not found:
        return text
    problems.append(
        Problem(
            "warning",
            f"{len(found)} unpaired UTF-16 surrogate(s) (not valid Unicode) are read as U+FFFD",
            found[0],
            found[0] + 1,
        )
    )
    return _LONE_SURROGATE.sub("\ufffd", text)


def _substitute(text: str, start: int, end: int, sample: dict[str, str] | None, problems: list[Problem]) -> Segment:
    """Fill `{{name}}` from `sample` over file text [start, end), keeping the span map."""
    pieces: list[str] = []
    spans: list[Span] = []
    cursor, run = start, 0

    def add(piece: str, fs: int, fe: int, literal: bool) -> None:
        nonlocal run
        if piece:
            pieces.append(piece)
            spans.append(Span(run, run + len(piece), fs, fe, literal))
            run += len(piece)

    if not sample:
        _literal_placeholders(text, start, end, problems)
    for match in _PLACEHOLDER.finditer(text, start, end) if sample else ():
        name = match.group(1)
        if name not in sample:
            problems.append(
                Problem(
                    "warning",
                    f"placeholder {{{{{name}}}}} has no value in sample; kept as text",
                    match.start(),
                    match.end(),
                )
            )
            continue
        add(text[cursor : match.start()], cursor, match.start(), True)
        add(sample[name], match.start(), match.end(), False)
        cursor = match.end()
    add(text[cursor:end], cursor, end, True)
    return Segment("".join(pieces), spans)


def _literal_placeholders(text: str, start: int, end: int, problems: list[Problem]) -> None:
    """Placeholders with no `sample:` at all are explained as written: say so on each (a few at most)."""
    for match in itertools.islice(_PLACEHOLDER.finditer(text, start, end), MAX_KEY_PROBLEMS):
        problems.append(
            Problem(
                "warning",
                f"placeholder {match.group(0)} has no value: add `sample:` to the front "
                "matter to fill it; explained as literal text",
                match.start(),
                match.end(),
            )
        )


def _split_messages(
    text: str, body_start: int, sample: dict[str, str] | None, problems: list[Problem]
) -> list[Message]:
    """Chat messages from `role:` marker lines; content is stripped of surrounding whitespace."""
    markers = list(_ROLE_LINE.finditer(text, body_start))
    if not markers:
        return []
    if text[body_start : markers[0].start()].strip():
        problems.append(
            Problem(
                "warning",
                "text before the first role marker is not part of any chat message",
                body_start,
                markers[0].start(),
            )
        )
    messages = []
    for i, marker in enumerate(markers):
        content_start = min(len(text), marker.end() + 1)
        content_end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
        content = _substitute(text, content_start, max(content_start, content_end), sample, [])
        messages.append(Message(marker.group(1), content.strip(), marker.start()))
    return messages


def is_prompt_path(path: str | Path) -> bool:
    return str(path).endswith(PROMPT_SUFFIXES)
