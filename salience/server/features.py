"""The features of one client connection, wired together: its settings, documents, runs, compare mode and
the faithfulness command, over a model worker that a shared host shares between connections (as gopls
keeps a session per connection over one cache). Handlers call these; each feature does one job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from salience.attribution import get_method
from salience.evaluation.faithfulness import Faithfulness
from salience.server.compare_mode import CompareFeature
from salience.server.configuration import Configuration
from salience.server.faithfulness_command import measure_faithfulness
from salience.server.layers.view import View, view_of
from salience.server.open_documents import Documents, Output
from salience.server.positions import Edit
from salience.server.runs import RunManager
from salience.server.settings import Settings
from salience.server.worker import ModelWorker


class Features:
    """One connection's features; `text_of(uri)` reads an open document's current text (pygls keeps it)."""

    def __init__(
        self,
        output: Output,
        text_of: Callable[[str], str],
        worker: ModelWorker | None = None,
        settings: Settings | None = None,
        client: str = "",
    ) -> None:
        self.output = output
        self.worker = worker or ModelWorker()
        self.encoding = "utf-16"
        """The position encoding negotiated with the client."""
        self.config = Configuration(self.worker, worker is None, settings)
        self.documents = Documents(output, text_of, lambda: self.config.settings)
        self.runs = RunManager(self.documents, self.config, self.worker, output, client)
        self.compare = CompareFeature(self.documents, self.runs, self.config, output)

    def view(self, uri: str) -> View | None:
        """What the document shows now (in compare mode, the change of relevance), or None if not open."""
        doc = self.documents.get(uri)
        if doc is None:
            return None
        text = self.documents.text_of(uri)
        return self.compare.drawn(uri, view_of(doc, text, self.config.settings, self.encoding, self.runs.busy(uri)))

    def opened(self, uri: str, version: int | None) -> None:
        self.documents.open(uri, version)
        self.runs.schedule(uri, 0.0)

    def edited(self, uri: str, version: int | None, edits: list[Edit] | None) -> None:
        """A new version: the shown spans move through `edits` (None: replaced) and a run is debounced."""
        if self.documents.change(uri, version, edits) is None:
            return
        self.runs.cancel_job(uri)
        self.output.published(uri, new_result=False)
        self.runs.schedule(uri, self.config.settings.debounce_ms / 1000)

    def closed(self, uri: str) -> None:
        self.runs.cancel(uri)
        self.documents.close(uri)
        self.compare.forget(uri)

    def file_changed_on_disk(self, uri: str) -> None:
        """Re-run an open file; forget the cached results of a closed one."""
        if uri in self.documents:
            self.runs.schedule(uri, 0.0)
        else:
            self.worker.forget(uri)

    def set_method(self, uri: str, method: str | None) -> None:
        if method is not None:
            get_method(method)  # raises UnknownMethodError naming the known ones
        self.documents[uri].method = method
        self.runs.schedule(uri, 0.0)

    def set_target(self, uri: str, target: str | None) -> None:
        self.documents[uri].target = target or None
        self.runs.schedule(uri, 0.0)

    def clear(self, uri: str) -> None:
        self.runs.cancel(uri)
        self.documents.clear(self.documents[uri])

    async def faithfulness(self, uri: str) -> Faithfulness:
        return await measure_faithfulness(self.documents, self.runs, uri)

    def apply_settings(self, user: dict[str, Any] | None, workspace: dict[str, Any] | None) -> list[str]:
        """Merge user and workspace settings; on a change, swap the model if needed and re-run every document.
        Returns the problems found in them."""
        settings, policy, problems = self.config.merged(user, workspace)
        if settings != self.config.settings or policy != self.config.policy:
            self.config.update(settings, policy)
            for uri in self.documents:
                self.runs.schedule(uri, 0.0)
        return problems

    def preload(self) -> None:
        """Load the configured model while the editor opens its first file."""
        self.runs.tasks.spawn(self.config.preload(self.output.notify))

    def shutdown(self) -> None:
        """Cancel every run (the worker stops at its next batch) and stop taking work; safe to call twice."""
        self.runs.shutdown()
        if self.config.owns_worker:
            self.worker.shutdown()
