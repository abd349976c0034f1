"""What the scheduler keeps per open document and per run, and what it asks of the client side."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from salience.attribution import MAX_PROMPT_BYTES, AttributionResult, PromptDocument
from salience.prompt.sections import Sections, find_sections
from salience.views.spans import ScoredSpan


@dataclass(eq=False)
class Job:
    """One run for one document version; `cancel` is read by the worker between batches."""

    uri: str
    version: int | None
    title: str
    id: str = field(default_factory=lambda: f"salience-{next(_job_ids)}")
    cancel: threading.Event = field(default_factory=threading.Event)
    by_user: bool = False
    progress_shown: bool = False
    last_report: float = 0.0
    fraction: float = 0.0
    """The run's progress so far (0..1), as the engine last reported it."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds before the engine's own parts: the debounce after the edit, the wait for the worker, a model load."""
    message: str = "starting"
    """What the progress says when it appears."""


_job_ids = itertools.count(1)


class Output(Protocol):
    """What the scheduler asks of the client side (implemented over LSP by the server)."""

    def published(self, uri: str, new_result: bool) -> None: ...
    def begin_progress(self, job: Job) -> None: ...
    def report_progress(self, job: Job, fraction: float, message: str) -> None: ...
    def end_progress(self, job: Job) -> None: ...
    def show_error(self, message: str) -> None: ...
    def notify(self, message: str) -> None: ...


def unreadable(text: str) -> str | None:
    """Why an editor's text is not attributed at all (too large, binary), or None."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        return f"{size} bytes is too large for a prompt (limit {MAX_PROMPT_BYTES}); not attributed"
    if "\x00" in text:
        return "the text contains NUL characters: a binary file, not a text prompt; not attributed"
    return None


@dataclass(frozen=True)
class Baseline:
    """Another version of a document and its result: what compare mode measures the current one against."""

    label: str
    """'HEAD', 'saved' or 'pinned'."""
    text: str
    result: AttributionResult


@dataclass
class Document:
    """An open prompt file: its text, the parse, what is shown and what is running."""

    uri: str
    text: str
    version: int | None
    parsed: PromptDocument
    result: AttributionResult | None = None
    result_version: int | None = None
    """The version the shown result was computed from (older when its spans were shifted through edits)."""
    spans: list[ScoredSpan] = field(default_factory=list)
    error: str | None = None
    preview_of: str | None = None
    method: str | None = None
    target: str | None = None
    debounce: asyncio.Task | None = None
    job: Job | None = None
    edited: float = field(default_factory=time.perf_counter)
    """When the current version arrived (the start of its debounce)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Where the shown result's time went, from the edit to its levels (`salience/scores` carries it)."""
    pinned: Baseline | None = None
    """The result kept by `salience.pin`, to compare later versions with."""
    baseline: Baseline | None = None
    """The version the heatmap is compared with (compare mode), or None for the plain heatmap."""
    _sections: tuple[PromptDocument, Sections] | None = None

    @property
    def sections(self) -> Sections:
        """The sections of the current text (found again only when the text was parsed again)."""
        if self._sections is None or self._sections[0] is not self.parsed:
            self._sections = (self.parsed, find_sections(self.parsed))
        return self._sections[1]
