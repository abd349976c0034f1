"""When and how a document is explained: debounce, latest version only, a fast preview then the full run,
cancellation, and the bridge to the one model worker. The event loop only schedules; attribution runs on
the worker, and the results go to `Documents`, which shows them only for the version they explain.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from salience.attribution import (
    DEFAULT_ALIAS,
    DEFAULT_METHOD,
    AttributionResult,
    Cancelled,
    Progress,
    Request,
    SalienceError,
    get_method,
)
from salience.server.configuration import Configuration
from salience.server.debounce import Debounce, Tasks
from salience.server.open_documents import Document, Documents, Job, Output, unreadable
from salience.server.work_done import progress_hook, progress_shown, report
from salience.server.worker import ModelWorker

ROWS_MESSAGE = "heatmap shown; computing each completion token's row for the hover"
"""What a two-stage run's progress says once its heatmap is shown (it said "generating" until the end)."""
log = logging.getLogger(__name__)
T = TypeVar("T")


class RunManager:
    """Runs for the open documents, and side jobs (faithfulness, a comparison's baseline) with progress."""

    def __init__(
        self, documents: Documents, config: Configuration, worker: ModelWorker, output: Output, client: str = ""
    ) -> None:
        self.documents, self.config, self.worker, self.output, self.client = documents, config, worker, output, client
        self.tasks = Tasks()
        self.debounce = Debounce(self.tasks)
        self._side_jobs: set[Job] = set()

    def schedule(self, uri: str, delay: float) -> None:
        """(Re)start the document's debounce; the run after it explains the latest version."""
        self.debounce.schedule(uri, delay, lambda: self._debounced(uri))

    def busy(self, uri: str) -> bool:
        """Whether a run for `uri` waits or is under way."""
        doc = self.documents.get(uri)
        return self.debounce.pending(uri) or (doc is not None and doc.job is not None)

    def cancel(self, uri: str) -> None:
        """Stop the document's debounce and its run."""
        self.debounce.cancel(uri)
        self.cancel_job(uri)

    def cancel_job(self, uri: str) -> None:
        """Stop the document's run (the worker stops at its next batch)."""
        doc = self.documents.get(uri)
        if doc is not None and doc.job is not None:
            doc.job.cancel.set()

    def cancel_progress(self, token: str) -> None:
        """The user pressed cancel on a progress notification."""
        jobs = [self.documents[uri].job for uri in self.documents] + list(self._side_jobs)
        for job in jobs:
            if job is not None and job.id == token:
                job.by_user = True
                job.cancel.set()

    async def side_job(self, uri: str, title: str, work: Callable[[Job, Progress], Awaitable[T]]) -> T:
        """Run `work` (on the worker) for a document, not as its run: with progress, cancellable by the user."""
        job = Job(uri, self.documents[uri].version, title)
        self._side_jobs.add(job)
        try:
            with progress_shown(self.output, job):
                return await work(job, progress_hook(self.output, job))
        finally:
            self._side_jobs.discard(job)

    def notifier(self, job: Job | None = None) -> Callable[[str], None]:
        """A callback for the worker thread: model loading and conversion, shown as a message (and as the
        job's progress text)."""
        loop = asyncio.get_running_loop()

        def notify(message: str) -> None:
            loop.call_soon_threadsafe(self.output.notify, message)
            if job is not None:
                loop.call_soon_threadsafe(report, self.output, job, 0.0, message)

        return notify

    def shutdown(self) -> None:
        """Cancel every run and side job and stop taking work; safe to call twice."""
        for uri in self.documents:
            self.cancel(uri)
        for job in self._side_jobs:
            job.cancel.set()
        self.tasks.cancel_all()

    async def _debounced(self, uri: str) -> None:
        doc = self.documents.get(uri)
        if doc is not None:
            self.cancel_job(uri)
            await self._attribute(doc)

    def _request(self, doc: Document, method: str | None) -> Request:
        """The run's settings; the last result's continuation is the draft the engine checks, not regenerates."""
        draft = doc.result.target_ids if doc.result is not None and doc.result.generated else None
        settings = self.config.settings
        return Request(
            method=method,
            params=settings.method_params.get(method),
            target=doc.target,
            max_source_tokens=settings.max_prompt_tokens,
            draft=draft,
        )

    async def _attribute(self, doc: Document) -> None:
        """Explain the current version; with a slow method, the default fast method first as a preview."""
        parsed, version = doc.parsed, doc.version
        chosen = doc.method or parsed.front_matter.method or self.config.settings.method  # None: the default
        method = chosen or DEFAULT_METHOD
        job = Job(doc.uri, version, f"salience: {method}", timings={"debounce": time.perf_counter() - doc.edited})
        doc.job = job
        refused = unreadable(self.documents.text_of(doc.uri))
        if refused or parsed.is_blank:  # nothing to run: an error, or the blank prompt's own note
            if refused:
                self.documents.fail(doc, job, refused)
            else:
                self.documents.clear(doc)
            doc.job = None
            return
        self.output.published(doc.uri, new_result=False)
        try:
            with progress_shown(self.output, job):
                if self._wants_preview(method):  # its heatmap is enough: its rows are not computed
                    preview = await self._explain(doc, job, self._request(doc, DEFAULT_ALIAS), preview_of=method)
                    if preview is not None:
                        self._show(doc, job, preview, preview_of=method)
                result = await self._explain(doc, job, self._request(doc, chosen))
                if result is not None:
                    self._show(doc, job, result)
        finally:
            if doc.job is job:
                doc.job = None
                if job.by_user:
                    self.output.published(doc.uri, new_result=False)

    def _wants_preview(self, method: str) -> bool:
        if not self.config.settings.progressive:
            return False
        try:
            return get_method(method).cost != "cheap"
        except SalienceError:
            return False

    async def _explain(
        self, doc: Document, job: Job, request: Request, preview_of: str | None = None
    ) -> AttributionResult | None:
        """One engine call for `job`; errors become the document's error, never an exception here.

        A two-stage run shows its heatmap as soon as it comes; a preview stops there (None is returned).
        """
        loop = asyncio.get_running_loop()
        heatmap_shown = threading.Event()
        submitted = time.perf_counter()
        if self.config.preloading:
            job.message = "loading the model"

        def started(loading: float) -> None:  # on the worker thread
            job.timings.update(
                queue=time.perf_counter() - submitted - loading, **({"load": loading} if loading else {})
            )

        def on_heatmap(first: AttributionResult) -> None:  # on the worker thread
            if preview_of is not None:
                heatmap_shown.set()
            loop.call_soon_threadsafe(self._show, doc, job, first, preview_of)

        def cancelled() -> bool:
            return job.cancel.is_set() or heatmap_shown.is_set()

        try:
            key = self.config.allowed(doc.parsed.front_matter.model, request.params)
            return await self.worker.explain(
                key,
                doc.parsed,
                request,
                doc.uri,
                progress_hook(self.output, job),
                cancelled,
                self.notifier(job),
                self.client,
                on_heatmap,
                started,
            )
        except Cancelled:
            return None
        except SalienceError as err:
            self.documents.fail(doc, job, str(err))
        except Exception as err:  # an engine bug must not take the server down
            log.exception("attribution failed")
            self.documents.fail(doc, job, f"internal error: {type(err).__name__}: {err}")
        return None

    def _show(self, doc: Document, job: Job, result: AttributionResult, preview_of: str | None = None) -> None:
        shown = self.documents.show(doc, job, result, preview_of)
        if shown and result.rows_pending and preview_of is None and job.progress_shown:  # what is left
            self.output.report_progress(job, job.fraction, ROWS_MESSAGE)
