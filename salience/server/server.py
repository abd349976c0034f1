"""The pygls server object and how it reaches the client (`LspOutput`); `start` starts it."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from salience import __version__
from salience.server.documents import Job
from salience.server.layers import heatmap
from salience.server.scheduler import Scheduler
from salience.server.settings import Settings
from salience.server.worker import ModelWorker

log = logging.getLogger(__name__)

SCORES_NOTIFICATION = "salience/scores"


class SalienceServer(LanguageServer):
    """A language server with one scheduler; features are registered by `handlers.register_features`."""

    def __init__(
        self,
        worker: ModelWorker | None = None,
        client: str = "",
        protocol_cls: type[LanguageServerProtocol] = LanguageServerProtocol,
    ) -> None:
        super().__init__(
            "salience",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=protocol_cls,
        )
        self.output = LspOutput(self)
        self.scheduler = Scheduler(self.output, Settings(), worker=worker, client=client)
        self.initialization_options: dict[str, Any] | None = None

    def shutdown(self) -> None:
        """The client left (exit, or its end of the pipe closed): stop the run at its next batch, then stop."""
        self.scheduler.shutdown()
        super().shutdown()

    @property
    def client(self) -> types.ClientCapabilities:
        return self.protocol.client_capabilities

    def supports(self, *path: str) -> bool:
        """Whether a nested client capability (e.g. 'workspace', 'semantic_tokens', 'refresh_support') is set."""
        node: Any = self.client
        for name in path:
            node = getattr(node, name, None)
            if node is None:
                return False
        return bool(node)


class LspOutput:
    """The scheduler's `Output` over LSP: diagnostics, `salience/scores`, refreshes, progress, messages."""

    def __init__(self, server: SalienceServer) -> None:
        self.server = server
        self._ready: set[str] = set()

    def published(self, uri: str, new_result: bool) -> None:
        view = self.server.scheduler.view(uri)
        if view is None:
            return
        version = self.server.scheduler.documents[uri].version
        self.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri, heatmap.diagnostics(view), version=version)
        )
        self.server.protocol.notify(SCORES_NOTIFICATION, heatmap.scores_payload(view, uri, version))
        if new_result:
            self._refresh()

    def _refresh(self) -> None:
        server = self.server
        if server.supports("workspace", "semantic_tokens", "refresh_support"):
            server.workspace_semantic_tokens_refresh(None)
        if server.supports("workspace", "inlay_hint", "refresh_support"):
            server.workspace_inlay_hint_refresh(None)
        if server.supports("workspace", "code_lens", "refresh_support"):
            server.workspace_code_lens_refresh(None)

    def begin_progress(self, job: Job) -> None:
        if self.server.supports("window", "work_done_progress"):
            self.server.scheduler.spawn(self._begin(job))

    async def _begin(self, job: Job) -> None:
        try:
            await self.server.work_done_progress.create_async(job.id)
        except Exception as err:  # the client refused: run without progress
            log.info("progress not created: %s", err)
            return
        self.server.work_done_progress.begin(
            job.id, types.WorkDoneProgressBegin(title=job.title, cancellable=True, message=job.message, percentage=0)
        )
        self._ready.add(job.id)
        if not job.progress_shown or job.cancel.is_set():
            self.end_progress(job)

    def report_progress(self, job: Job, fraction: float, message: str) -> None:
        if job.id in self._ready:
            self.server.work_done_progress.report(
                job.id,
                types.WorkDoneProgressReport(message=message or None, percentage=int(100 * fraction), cancellable=True),
            )

    def end_progress(self, job: Job) -> None:
        job.progress_shown = False
        if job.id in self._ready:
            self._ready.discard(job.id)
            self.server.work_done_progress.tokens.pop(job.id, None)
            self.server.work_done_progress.end(
                job.id, types.WorkDoneProgressEnd(message="cancelled" if job.cancel.is_set() else "done")
            )

    def show_error(self, message: str) -> None:
        self.server.window_show_message(types.ShowMessageParams(types.MessageType.Error, message))

    def notify(self, message: str) -> None:
        self.server.window_show_message(types.ShowMessageParams(types.MessageType.Info, f"salience: {message}"))
