"""Prompt files: front matter, role markers and `{{placeholders}}`, with every span kept in file offsets.

Offsets are Python string indices (code points) into the whole file text. Nothing here tokenises;
`tokens.py` turns a `PromptDocument` into model tokens with file ranges.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from salience.attribution.errors import PromptError
from salience.prompt.expect import Expect, SectionSpec

ROLES = ("system", "user", "assistant")
PROMPT_SUFFIXES = (".prompt", ".prompt.md", ".prompt.txt", ".prompty")
MAX_PROMPT_BYTES = 1_000_000
_ROLE_LINE = re.compile(r"^(system|user|assistant):[ \t]*\r?$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
_FENCE = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_KEY_LINE = re.compile(r"^([^\s#:][^:\r\n]*?)[ \t]*:", re.MULTILINE)
MAX_KEY_PROBLEMS = 20


class FrontMatter(BaseModel):
    """Per-file settings from the YAML block; each overrides the editor or CLI setting."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    method: str | None = None
    target: str | None = None
    contrast: str | None = None
    max_new_tokens: int = Field(default=8, ge=1, le=512)
    chat: bool | None = None
    sink: bool = Field(default=True, description="a plain prompt starts with a sink token (attribution.tokens)")
    sample: dict[str, str] | None = None
    name: str | None = Field(default=None, description="informational (prompty)")
    description: str | None = Field(default=None, description="informational (prompty)")
    sections: dict[str, SectionSpec] | None = Field(default=None, description="sections named by hand")
    expect: Expect | None = Field(default=None, description="what `salience check` asserts")

    @field_validator("sections", mode="before")
    @classmethod
    def _section_short_forms(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        return {str(name): SectionSpec.of(spec) for name, spec in value.items()}

    @field_validator("sample", mode="before")
    @classmethod
    def _sample_values_as_text(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        nested = [str(k) for k, v in value.items() if isinstance(v, (dict, list, set, tuple))]
        if nested:
            raise ValueError(f"sample values must be text, not lists or mappings ({', '.join(nested[:5])})")
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    @property
    def unknown_keys(self) -> list[str]:
        return list(self.model_extra or {})  # in file order


@dataclass(frozen=True)
class Problem:
    """A problem found in the file, with its file span; errors stop the CLI, the server shows them."""

    severity: Literal["error", "warning", "info"]
    message: str
    start: int
    end: int


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
    front, body_start = _parse_front_matter(text, problems)
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


def _parse_front_matter(text: str, problems: list[Problem]) -> tuple[FrontMatter, int]:
    """Parse a leading `---` YAML block; a broken block is a problem and defaults apply."""
    opening = _FENCE.match(text)
    if not opening:
        return FrontMatter(), 0
    closing = _FENCE.search(text, opening.end())
    if not closing:
        problems.append(Problem("error", "front matter starts with --- but has no closing --- line", 0, opening.end()))
        return FrontMatter(), 0
    block_start, block_end = opening.end() + 1, closing.start()
    body_start = min(len(text), closing.end() + 1)
    block = text[block_start:block_end] if block_start <= block_end else ""
    first_line = text.count("\n", 0, block_start)
    try:
        data = yaml.safe_load(block) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = first_line + (mark.line if mark else 0) + 1
        reason = getattr(err, "problem", None) or str(err).splitlines()[0]
        problems.append(Problem("error", f"front matter line {line}: invalid YAML: {reason}", 0, body_start))
        return FrontMatter(), body_start
    except RecursionError:
        problems.append(Problem("error", "front matter is nested too deeply to read", 0, body_start))
        return FrontMatter(), body_start
    if not isinstance(data, dict):
        problems.append(Problem("error", "front matter must be a mapping of key: value lines", 0, body_start))
        return FrontMatter(), body_start
    spans = _key_spans(text, block_start, block_end)
    key_problems: list[Problem] = []
    try:
        front = FrontMatter.model_validate(data)
    except ValidationError as err:
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"])
            start, end = spans.get(key.split(".")[0], (0, block_start))
            key_problems.append(
                Problem(
                    "error",
                    f"front matter line {text.count(chr(10), 0, start) + 1}: "
                    f"{key}: {e['msg'].removeprefix('Value error, ')}",
                    start,
                    end,
                )
            )
        front = FrontMatter.model_validate({k: v for k, v in data.items() if k not in _bad_keys(err)})
    for key in front.unknown_keys:
        start, end = spans.get(key, (0, block_start))
        key_problems.append(Problem("warning", f"unknown front matter key {key!r} is ignored", start, end))
    problems.extend(key_problems[:MAX_KEY_PROBLEMS])
    if len(key_problems) > MAX_KEY_PROBLEMS:
        problems.append(
            Problem(
                "warning", f"{len(key_problems) - MAX_KEY_PROBLEMS} more front matter problems not shown", 0, body_start
            )
        )
    return front, body_start


def _bad_keys(err: ValidationError) -> set[str]:
    return {str(e["loc"][0]) for e in err.errors() if e["loc"]}


def _key_spans(text: str, start: int, end: int) -> dict[str, tuple[int, int]]:
    """File span of each top-level key of the front matter block (one pass, however many keys)."""
    spans: dict[str, tuple[int, int]] = {}
    for found in _KEY_LINE.finditer(text, start, end):
        key = found.group(1).strip("'\"")
        spans.setdefault(key, (found.start(), found.start() + len(found.group(1))))
    return spans


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
