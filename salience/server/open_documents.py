"""Our state of each open prompt document (its text is pygls'), the result each shows, and what runs and
compare mode ask of the client side (`Output`).

A result is shown only for the version it was computed from; while a newer version waits, the old spans
are shifted through the edits so they stay on the right characters.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from salience.attribution import MAX_PROMPT_BYTES, AttributionResult, PromptDocument, parse_prompt
from salience.prompt.sections import Sections, find_sections
from salience.server.positions import Edit
from salience.server.settings import Settings
from salience.views.spans import ScoredSpan, assign_levels, shift_spans, view_spans


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
    """What the features ask of the client side (implemented over LSP by the server)."""

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
    """An open prompt file: its version and parse, what is shown and what is running."""

    uri: str
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
    job: Job | None = None
    edited: float = field(default_factory=time.perf_counter)
    """When the current version arrived (the start of its debounce)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Where the shown result's time went, from the edit to its levels (`salience/scores` carries it)."""
    _sections: tuple[PromptDocument, Sections] | None = None

    @property
    def sections(self) -> Sections:
        """The sections of the current text (found again only when the text was parsed again)."""
        if self._sections is None or self._sections[0] is not self.parsed:
            self._sections = (self.parsed, find_sections(self.parsed))
        return self._sections[1]


class Documents:
    """The open prompt documents, most recently edited last."""

    def __init__(self, output: Output, text_of: Callable[[str], str], settings: Callable[[], Settings]) -> None:
        self.output = output
        self.text_of = text_of
        """The current text of an open document (pygls' workspace keeps it)."""
        self.settings = settings
        self._open: dict[str, Document] = {}
        self._last_error: str | None = None

    def __contains__(self, uri: object) -> bool:
        return uri in self._open

    def __getitem__(self, uri: str) -> Document:
        return self._open[uri]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._open))

    def get(self, uri: str) -> Document | None:
        return self._open.get(uri)

    @property
    def latest(self) -> str | None:
        """The URI opened or edited most recently (what a command without arguments means)."""
        return next(reversed(self._open), None)

    def open(self, uri: str, version: int | None) -> Document:
        self._open[uri] = doc = Document(uri, version, parse_prompt(self.text_of(uri)))
        return doc

    def change(self, uri: str, version: int | None, edits: list[Edit] | None) -> Document | None:
        """A new version: `edits` are (start, end, inserted length) in order, or None for a full replace."""
        doc = self._open.pop(uri, None)
        if doc is None:
            return None
        self._open[uri] = doc  # re-inserted last: `latest` is the document edited most recently
        for start, end, inserted in edits or []:
            doc.spans = shift_spans(doc.spans, start, end, inserted)
        if edits is None:
            doc.spans = []
        doc.version, doc.parsed, doc.edited = version, parse_prompt(self.text_of(uri)), time.perf_counter()
        return doc

    def close(self, uri: str) -> Document | None:
        return self._open.pop(uri, None)

    def clear(self, doc: Document) -> None:
        """Show nothing (no result, no error)."""
        doc.result, doc.spans, doc.error, doc.preview_of = None, [], None, None
        self.output.published(doc.uri, new_result=True)

    def show(self, doc: Document, job: Job, result: AttributionResult, preview_of: str | None = None) -> bool:
        """Show a result if the document is still at the version it was computed from; whether it was."""
        if job.cancel.is_set() or job.version != doc.version or self._open.get(doc.uri) is not doc:
            return False
        if (
            doc.result is not None
            and doc.result.rows_pending
            and not result.rows_pending
            and doc.result_version == job.version
            and doc.result.method == result.method
        ):
            doc.result = result  # the rows behind the heatmap shown: hovers read them, nothing drawn changes
            return False
        start, settings = time.perf_counter(), self.settings()
        doc.result, doc.result_version, doc.preview_of, doc.error = result, job.version, preview_of, None
        spans = view_spans(result, self.text_of(doc.uri), settings.granularity)
        doc.spans = assign_levels(spans, settings.bins, settings.thresholds)
        doc.timings = {**job.timings, **result.timings, "render": time.perf_counter() - start}
        self._last_error = None
        self.output.published(doc.uri, new_result=True)
        return True

    def fail(self, doc: Document, job: Job, message: str) -> None:
        """Show a run's error on its document (once in a message, however many runs repeat it)."""
        if job.cancel.is_set() or job.version != doc.version:
            return
        job.cancel.set()  # no second stage after a failed preview
        doc.result, doc.spans, doc.error, doc.preview_of = None, [], message, None
        self.output.published(doc.uri, new_result=True)
        if message != self._last_error:
            self._last_error = message
            self.output.show_error(f"salience: {message}")
