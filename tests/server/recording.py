"""The server's features with a recording client instead of LSP: what the handlers call, and what a client
would have been sent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from salience.server.features import Features
from salience.server.open_documents import Job
from salience.server.settings import Settings


@dataclass
class Recorder:
    """The features' Output: what a client would have been sent; `texts` stands in for pygls' workspace."""

    features: Features | None = None
    texts: dict[str, str] = field(default_factory=dict)
    shown: list[tuple[str, int | None, str | None, str | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    progress: list[Job] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def published(self, uri: str, new_result: bool) -> None:
        view = self.features.view(uri)
        method = view.result.method if view and view.result else None
        self.shown.append((uri, view.computed_version if method else None, method, view.error))

    def begin_progress(self, job: Job) -> None:
        self.progress.append(job)

    def report_progress(self, job: Job, fraction: float, message: str) -> None:
        self.messages.append(message)

    def end_progress(self, job: Job) -> None: ...

    def show_error(self, message: str) -> None:
        self.errors.append(message)

    def notify(self, message: str) -> None: ...


class Server:
    """The features with a recording client: what the server's handlers call."""

    def __init__(self, model_dir) -> None:
        self.output = Recorder()
        self.features = self.output.features = Features(
            self.output, self.output.texts.__getitem__, settings=Settings(model=str(model_dir), debounce_ms=0)
        )

    def open(self, uri: str, text: str, version: int) -> None:
        self.output.texts[uri] = text  # as pygls' workspace has it
        self.features.opened(uri, version)


async def settled(server: Server, uri: str) -> None:
    for _ in range(400):
        if not server.features.runs.busy(uri):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the run did not end")
