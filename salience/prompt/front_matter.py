"""The front matter: a leading `---` YAML block of per-file settings (method, target, model, sample values,
`expect:`, `sections:`), read into a typed `FrontMatter`; what is wrong in it is a `Problem` on its key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from salience.prompt.expect import Expect, SectionSpec

_FENCE = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)
_KEY_LINE = re.compile(r"^([^\s#:][^:\r\n]*?)[ \t]*:", re.MULTILINE)
MAX_KEY_PROBLEMS = 20


@dataclass(frozen=True)
class Problem:
    """A problem found in the file, with its file span; errors stop the CLI, the server shows them."""

    severity: Literal["error", "warning", "info"]
    message: str
    start: int
    end: int


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


def parse_front_matter(text: str, problems: list[Problem]) -> tuple[FrontMatter, int]:
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
