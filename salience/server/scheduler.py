"""Per-document state and when to run: debounce, latest version only, cancellation, edit shifting.

All scheduling lives here. The event loop only parses, shifts and renders; attribution goes to the
one `ModelWorker`. A result is shown only for the version it was computed from; while a newer
version waits, the old spans are shifted through the edits so they stay on the right characters.
Talks to the client only through `Output`, so it can be tested without LSP.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from salience.attribution import (
    DEFAULT_ALIAS,
    DEFAULT_METHOD,
    AttributionResult,
    Cancelled,
    Request,
    SalienceError,
    get_method,
    parse_prompt,
)
from salience.evaluation.faithfulness import Faithfulness, faithfulness
from salience.server.documents import Document, Job, Output, unreadable
from salience.server.layers.compare import compared
from salience.server.layers.view import View
from salience.server.settings import ModelPolicy, Settings
from salience.server.work_done import progress_hook, progress_shown, report
from salience.server.worker import ModelWorker
from salience.views.spans import assign_levels, shift_spans, view_spans

ROWS_MESSAGE = "heatmap shown; computing each completion token's row for the hover"
"""What a two-stage run's progress says once its heatmap is shown (it said "generating" until the end)."""
log = logging.getLogger(__name__)


class Scheduler:
    """Open documents, their runs and their views."""

    def __init__(
        self,
        output: Output,
        settings: Settings | None = None,
        worker: ModelWorker | None = None,
        encoding: str = "utf-16",
        policy: ModelPolicy | None = None,
        client: str = "",
    ) -> None:
        self.output = output
        self.settings = settings or Settings()
        self.policy = policy or ModelPolicy.of(self.settings)
        self.owns_worker = worker is None
        """False on a shared server: other clients' runs use the same worker and model."""
        self.worker = worker or ModelWorker()
        self.client = client
        self.encoding = encoding
        self.documents: dict[str, Document] = {}
        self._tasks: set[asyncio.Task] = set()
        self._side_jobs: set[Job] = set()
        self._last_error: str | None = None
        self._preloading = False

    # --- document events -------------------------------------------------------------------------

    def open(self, uri: str, text: str, version: int | None) -> None:
        self.documents[uri] = Document(uri, text, version, parse_prompt(text))
        self.schedule(uri, delay=0.0)

    def change(self, uri: str, text: str, version: int | None, edits: list[tuple[int, int, int]] | None) -> None:
        """A new version: `edits` are (start, end, inserted length) in order, or None for a full replace."""
        doc = self.documents.pop(uri, None)
        if doc is None:
            return self.open(uri, text, version)
        self.documents[uri] = doc  # re-inserted last: `latest` is the document edited most recently
        for start, end, inserted in edits or []:
            doc.spans = shift_spans(doc.spans, start, end, inserted)
        if edits is None:
            doc.spans = []
        doc.text, doc.version, doc.parsed = text, version, parse_prompt(text)
        doc.edited = time.perf_counter()
        self._cancel_job(doc)
        self.output.published(uri, new_result=False)
        self.schedule(uri, delay=self.settings.debounce_ms / 1000)

    @property
    def latest(self) -> str | None:
        """The URI opened or edited most recently (what a command without arguments means)."""
        return next(reversed(self.documents), None)

    def close(self, uri: str) -> None:
        doc = self.documents.pop(uri, None)
        if doc is not None:
            self._cancel_job(doc)

    def file_changed_on_disk(self, uri: str) -> None:
        """Re-run an open file; forget the cached results of a closed one."""
        if uri in self.documents:
            self.schedule(uri, delay=0.0)
        else:
            self.worker.forget(uri)

    # --- commands --------------------------------------------------------------------------------

    def run_now(self, uri: str) -> None:
        self.schedule(uri, delay=0.0)

    def set_method(self, uri: str, method: str | None) -> None:
        if method is not None:
            get_method(method)  # raises UnknownMethodError naming the known ones
        self.documents[uri].method = method
        self.run_now(uri)

    def set_target(self, uri: str, target: str | None) -> None:
        self.documents[uri].target = target or None
        self.run_now(uri)

    def clear(self, uri: str) -> None:
        doc = self.documents[uri]
        self._cancel_job(doc)
        if doc.debounce:
            doc.debounce.cancel()
        doc.result, doc.spans, doc.error, doc.preview_of = None, [], None, None
        self.output.published(uri, new_result=True)

    def cancel_progress(self, token: str) -> None:
        """The user pressed cancel on a progress notification."""
        jobs = [doc.job for doc in self.documents.values() if doc.job] + list(self._side_jobs)
        for job in jobs:
            if job.id == token:
                job.by_user = True
                job.cancel.set()

    async def faithfulness(self, uri: str) -> Faithfulness:
        """Soft-NS/NC and MoRF/LeRF of the result shown for `uri` (on the worker, with progress)."""
        doc = self.documents[uri]
        result = doc.result
        if result is None or doc.result_version != doc.version:
            raise SalienceError("no up-to-date result for this document yet: wait for the heatmap, then ask again")
        job = Job(uri, doc.version, "salience: faithfulness")
        self._side_jobs.add(job)
        progress = progress_hook(self.output, job)
        try:
            with progress_shown(self.output, job):
                return await self.worker.with_model(
                    result.model_id,
                    lambda loaded: faithfulness(loaded, result, progress=progress, cancelled=job.cancel.is_set),
                    self.client,
                )
        finally:
            self._side_jobs.discard(job)

    async def preload(self) -> None:
        """Load the configured model while the editor opens its first file; a run meanwhile says it waits."""
        spec = self.settings.model_spec(None)
        try:
            self.policy.check(spec)
        except SalienceError:
            return  # the first run says why
        loop = asyncio.get_running_loop()
        self._preloading = True
        try:
            await self.worker.preload(
                self._model_key(spec), lambda message: loop.call_soon_threadsafe(self.output.notify, message)
            )
        finally:
            self._preloading = False

    def _model_key(self, spec: str | None) -> tuple:
        return (spec, self.settings.device, self.settings.dtype, self.settings.placement())

    def update_settings(self, settings: Settings, policy: ModelPolicy | None = None) -> None:
        """New settings (and which models may load): swap the model if it changed, then re-run every document."""
        old, self.settings = self.settings, settings
        self.policy = policy or ModelPolicy.of(settings)
        if (old.model, old.models, old.device, old.dtype, old.device_map, old.max_memory) != (
            settings.model,
            settings.models,
            settings.device,
            settings.dtype,
            settings.device_map,
            settings.max_memory,
        ) and self.owns_worker:
            self.worker.unload()  # free it now; a shared worker swaps when a run needs another model
        for uri in list(self.documents):
            self.schedule(uri, delay=0.0)

    async def explain_version(self, uri: str, text: str, title: str) -> AttributionResult:
        """Explain another version of an open document (a comparison's baseline) with its method and target, on
        the worker, with progress; raises SalienceError (or Cancelled) rather than showing anything."""
        doc = self.documents[uri]
        parsed = parse_prompt(text)
        if parsed.errors or parsed.is_blank:
            raise SalienceError(f"{title}: {parsed.errors[0].message if parsed.errors else 'the prompt is empty'}")
        method = doc.method or parsed.front_matter.method or self.settings.method
        request = Request(method=method, params=self.settings.method_params.get(method), target=doc.target)
        spec = self.settings.model_spec(parsed.front_matter.model)
        self.policy.check(spec)
        job = Job(uri, doc.version, title)
        self._side_jobs.add(job)
        loop = asyncio.get_running_loop()
        try:
            with progress_shown(self.output, job):
                return await self.worker.explain(
                    self._model_key(spec),
                    parsed,
                    request,
                    f"{uri}#{title}",
                    progress_hook(self.output, job),
                    job.cancel.is_set,
                    lambda message: loop.call_soon_threadsafe(self.output.notify, message),
                    self.client,
                )
        finally:
            self._side_jobs.discard(job)

    # --- views -----------------------------------------------------------------------------------

    def view(self, uri: str) -> View | None:
        doc = self.documents.get(uri)
        if doc is None:
            return None
        return compared(
            View(
                doc.text,
                self.settings,
                self.encoding,
                doc.result,
                doc.spans,
                doc.parsed.problems,
                doc.error,
                doc.parsed.body_start,
                pending=doc.job is not None or doc.debounce is not None,
                preview_of=doc.preview_of,
                computed_version=doc.result_version,
                timings=doc.timings,
                sections=doc.sections,
                expect=doc.parsed.front_matter.expect,
                baseline=doc.baseline,
            )
        )

    # --- running ---------------------------------------------------------------------------------

    def schedule(self, uri: str, delay: float) -> None:
        """(Re)start the document's debounce; the run after it explains the latest version."""
        doc = self.documents[uri]
        if doc.debounce is not None:
            doc.debounce.cancel()
        doc.debounce = self.spawn(self._debounced(doc, delay))

    def spawn(self, coro) -> asyncio.Task:
        """Start a task, keep a reference to it and log its exception, if any."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("salience task failed", exc_info=task.exception())

    async def _debounced(self, doc: Document, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        doc.debounce = None
        self._cancel_job(doc)
        await self._attribute(doc)

    def _cancel_job(self, doc: Document) -> None:
        if doc.job is not None:
            doc.job.cancel.set()

    def _request(self, doc: Document, method: str | None) -> Request:
        """The run's settings; the last result's continuation is the draft the engine checks, not regenerates."""
        draft = doc.result.target_ids if doc.result is not None and doc.result.generated else None
        return Request(
            method=method,
            params=self.settings.method_params.get(method),
            target=doc.target,
            max_source_tokens=self.settings.max_prompt_tokens,
            draft=draft,
        )

    async def _attribute(self, doc: Document) -> None:
        """Explain the current version; with a slow method, the default fast method first as a preview."""
        parsed, version = doc.parsed, doc.version
        chosen = doc.method or parsed.front_matter.method or self.settings.method  # None: the model's default
        method = chosen or DEFAULT_METHOD
        job = Job(doc.uri, version, f"salience: {method}", timings={"debounce": time.perf_counter() - doc.edited})
        doc.job = job
        refused = unreadable(doc.text)
        if refused or parsed.is_blank:  # nothing to run: an error, or the blank prompt's own note
            if refused:
                self._fail(doc, job, refused)
            else:
                doc.result, doc.spans, doc.error, doc.preview_of = None, [], None, None
                self.output.published(doc.uri, new_result=True)
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
        if not self.settings.progressive:
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
        spec = self.settings.model_spec(doc.parsed.front_matter.model)
        loop = asyncio.get_running_loop()
        progress = progress_hook(self.output, job)
        heatmap_shown = threading.Event()
        submitted = time.perf_counter()
        if self._preloading:
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

        def notify(message: str) -> None:  # model loading and conversion: a message and the progress text
            loop.call_soon_threadsafe(self.output.notify, message)
            loop.call_soon_threadsafe(report, self.output, job, 0.0, message)

        try:
            self.policy.check(spec)
            self.policy.check_params(request.params)
            return await self.worker.explain(
                self._model_key(spec),
                doc.parsed,
                request,
                doc.uri,
                progress,
                cancelled,
                notify,
                self.client,
                on_heatmap,
                started,
            )
        except Cancelled:
            return None
        except SalienceError as err:
            self._fail(doc, job, str(err))
        except Exception as err:  # an engine bug must not take the server down
            log.exception("attribution failed")
            self._fail(doc, job, f"internal error: {type(err).__name__}: {err}")
        return None

    def _show(self, doc: Document, job: Job, result: AttributionResult, preview_of: str | None = None) -> None:
        """Show a result only if the document is still at the version it was computed from."""
        if job.cancel.is_set() or job.version != doc.version or self.documents.get(doc.uri) is not doc:
            return
        if (
            doc.result is not None
            and doc.result.rows_pending
            and not result.rows_pending
            and doc.result_version == job.version
            and doc.result.method == result.method
        ):
            doc.result = result  # the rows behind the heatmap shown: hovers read them, nothing drawn changes
            return
        start = time.perf_counter()
        doc.result, doc.result_version, doc.preview_of, doc.error = result, job.version, preview_of, None
        spans = view_spans(result, doc.text, self.settings.granularity)
        doc.spans = assign_levels(spans, self.settings.bins, self.settings.thresholds)
        doc.timings = {**job.timings, **result.timings, "render": time.perf_counter() - start}
        self._last_error = None
        self.output.published(doc.uri, new_result=True)
        if result.rows_pending and preview_of is None and job.progress_shown:  # the progress says what is left
            self.output.report_progress(job, job.fraction, ROWS_MESSAGE)

    def _fail(self, doc: Document, job: Job, message: str) -> None:
        if job.cancel.is_set() or job.version != doc.version:
            return
        job.cancel.set()  # no second stage after a failed preview
        doc.result, doc.spans, doc.error, doc.preview_of = None, [], message, None
        self.output.published(doc.uri, new_result=True)
        if message != self._last_error:
            self._last_error = message
            self.output.show_error(f"salience: {message}")

    def shutdown(self) -> None:
        """Cancel every run (the worker stops at its next batch) and stop taking work; safe to call twice."""
        for doc in self.documents.values():
            self._cancel_job(doc)
        for job in self._side_jobs:
            job.cancel.set()
        for task in list(self._tasks):
            task.cancel()
        if self.owns_worker:
            self.worker.shutdown()
