"""The pygls server object, its protocol, and how it reaches the client (`LspOutput`); `start` starts it."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from salience import __version__
from salience.server.features import Features
from salience.server.layers import heatmap
from salience.server.open_documents import Job
from salience.server.positions import Edit, apply_changes, encoding_name
from salience.server.worker import ModelWorker

log = logging.getLogger(__name__)

SCORES_NOTIFICATION = "salience/scores"


class SalienceProtocol(LanguageServerProtocol):
    """pygls' protocol, which also notes where the changes of a `didChange` land in the text before them (pygls
    then applies them to its workspace), so that the heatmap shown moves with the text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.edits: dict[str, list[Edit] | None] = {}
        """Per URI, the last change's edits as (start, end, inserted length); None: the text was replaced."""

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Generator[Any, Any, None]:
        uri = params.text_document.uri
        before = self.workspace.get_text_document(uri).source
        encoding = encoding_name(self.workspace.position_encoding)
        self.edits[uri] = apply_changes(before, list(params.content_changes), encoding)[1]
        yield from super().lsp_text_document__did_change(params)


class SalienceServer(LanguageServer):
    """A language server over one connection: its `Features`; handlers are registered by
    `handlers.register_features`."""

    def __init__(
        self,
        worker: ModelWorker | None = None,
        client: str = "",
        protocol_cls: type[SalienceProtocol] = SalienceProtocol,
    ) -> None:
        super().__init__(
            "salience",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=protocol_cls,
        )
        self.output = LspOutput(self)
        self.features = Features(self.output, self.text_of, worker, client=client)
        self.initialization_options: dict[str, Any] | None = None

    def text_of(self, uri: str) -> str:
        """An open document's current text, as pygls' workspace keeps it."""
        return self.workspace.get_text_document(uri).source

    def shutdown(self) -> None:
        """The client left (exit, or its end of the pipe closed): stop the run at its next batch, then stop."""
        self.features.shutdown()
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
    """The features' `Output` over LSP: diagnostics, `salience/scores`, refreshes, progress, messages."""

    def __init__(self, server: SalienceServer) -> None:
        self.server = server
        self._ready: set[str] = set()

    def published(self, uri: str, new_result: bool) -> None:
        view = self.server.features.view(uri)
        if view is None:
            return
        version = self.server.features.documents[uri].version
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
            self.server.features.runs.tasks.spawn(self._begin(job))

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
