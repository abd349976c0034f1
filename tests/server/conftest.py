"""A real `salience serve` on the tiny model, driven by pytest-lsp as Neovim 0.11 and as VS Code."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

CLIENTS = ["neovim@v0.11.0", "visual-studio-code"]
SERVER = [sys.executable, "-m", "salience", "serve"]


def settings_for(model_dir: Path, **extra: Any) -> dict[str, Any]:
    return {"model": str(model_dir), "debounceMs": 30, **extra}


class Session:
    """A client with helpers: open documents, edit them, wait for `salience/scores`."""

    def __init__(self, client: LanguageClient, capabilities: str, root: Path) -> None:
        self.client, self.capabilities, self.root = client, capabilities, root
        self.base = root
        self.opened: list[str] = []
        self.scores: list[dict[str, Any]] = []
        self.texts: dict[tuple[str, int], str] = {}
        self._event = asyncio.Event()
        self.versions: dict[str, int] = {}

        self.refreshes: dict[str, int] = {}

        @client.feature("salience/scores")
        def on_scores(params: Any) -> None:
            self.scores.append(_plain(params))
            self._event.set()

        for method in (
            types.WORKSPACE_SEMANTIC_TOKENS_REFRESH,
            types.WORKSPACE_INLAY_HINT_REFRESH,
            types.WORKSPACE_CODE_LENS_REFRESH,
        ):
            client.feature(method)(self._counter(method))

        self.registrations: list[Any] = []
        self._arrived = asyncio.Event()
        handle = client.protocol.handle_message

        def handled(message: Any) -> None:  # every message from the server wakes `until`
            handle(message)
            self._arrived.set()

        client.protocol.handle_message = handled

        @client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def register(params: types.RegistrationParams) -> None:
            self.registrations.extend(params.registrations)

    def _counter(self, method: str) -> Callable[[Any], None]:
        def refreshed(params: Any) -> None:
            self.refreshes[method] = self.refreshes.get(method, 0) + 1

        return refreshed

    def open(self, name: str, text: str, language_id: str = "prompt") -> str:
        path = self.root / name
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        uri = path.as_uri()
        self.opened.append(uri)
        self.versions[uri] = 1
        self.texts[(uri, 1)] = text
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=uri, language_id=language_id, version=1, text=text)
            )
        )
        return uri

    def begin(self, name: str) -> None:
        """Start a test: its own folder (so its URIs are new to the server), no records of earlier tests."""
        self.root = self.base / re.sub(r"[^\w.-]+", "_", name)
        self.root.mkdir()
        self.scores.clear()
        self.opened.clear()
        self.client.messages.clear()
        self.client.progress_reports.clear()
        self.client.diagnostics.clear()

    async def end(self) -> None:
        """End a test: close its documents (their runs stop) and put the default settings back."""
        for uri in self.opened:
            self.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
        await self.configure()

    async def configure(self, **settings: Any) -> None:
        """Workspace settings: the defaults with `settings`, pushed, applied when this returns."""
        section = {"salience": settings_for(Path(self.client.session_model), **settings)}
        self.client.set_configuration(section)  # what a later pull reads
        self.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=section))
        await self.settled()

    async def settled(self) -> None:
        """Wait until the server has handled every message sent before: two round trips (a notification's
        handler may be a task that starts after a request read in the same chunk is answered)."""
        for _ in range(2):
            await self.client.workspace_execute_command_async(types.ExecuteCommandParams("salience.methods"))

    def edit(self, uri: str, start: types.Position, end: types.Position, new: str, text_after: str) -> int:
        version = self.versions[uri] + 1
        self.versions[uri] = version
        self.texts[(uri, version)] = text_after
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [types.TextDocumentContentChangePartial(range=types.Range(start, end), text=new)],
            )
        )
        return version

    async def until(self, predicate: Callable[[], Any], timeout: float = 30.0) -> None:
        """Wait until `predicate()` holds, checking it as each message from the server is handled."""

        async def check() -> None:
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(check(), timeout)

    async def wait_scores(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0, start: int = 0
    ) -> dict:
        """The first `salience/scores` payload from index `start` on that satisfies `predicate`."""

        async def scan() -> dict:
            seen = start
            while True:
                for payload in self.scores[seen:]:  # noqa: B023 (read while waiting)
                    if predicate(payload):
                        return payload
                seen = len(self.scores)
                self._event.clear()
                await self._event.wait()

        return await asyncio.wait_for(scan(), timeout)

    async def result_for(self, uri: str, version: int | None = None, method: str | None = None) -> dict:
        version = version or self.versions[uri]
        return await self.wait_scores(
            lambda p: (
                p["uri"] == uri
                and p["version"] == version
                and p["computedVersion"] == version
                and p["ranges"]
                and (method is None or p["method"] == method)
            )
        )


def _plain(params: Any) -> dict[str, Any]:
    """pygls hands custom notifications over as attribute objects; turn them into dicts."""
    if isinstance(params, dict):
        return params
    if isinstance(params, list):
        return [_plain(p) for p in params]  # type: ignore[return-value]
    if hasattr(params, "_asdict"):
        return {k: _plain(v) for k, v in params._asdict().items()}
    if hasattr(params, "__dict__"):
        return {k: _plain(v) for k, v in vars(params).items()}
    return params


def start_params(capabilities: str, options: dict[str, Any], root: Path) -> types.InitializeParams:
    return types.InitializeParams(
        capabilities=client_capabilities(capabilities),
        initialization_options=options,
        root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(root.as_uri(), "w")],
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), params=CLIENTS, scope="module")
async def client(request, lsp_client: LanguageClient, tiny_model_dir, tmp_path_factory):
    """One initialised server per test module and client profile, on the tiny model (`session` resets it
    between tests: a server start costs seconds of imports, a reset a round trip)."""
    root = tmp_path_factory.mktemp("workspace")
    lsp_client.session = Session(lsp_client, request.param, root)
    lsp_client.session_model = str(tiny_model_dir)
    lsp_client.set_configuration({"salience": settings_for(tiny_model_dir)})
    started = await lsp_client.initialize_session(start_params(request.param, settings_for(tiny_model_dir), root))
    lsp_client.session.encoding = str(started.capabilities.position_encoding or "utf-16")
    yield
    await lsp_client.shutdown_session()


@pytest_asyncio.fixture(loop_scope="module")
async def session(client: LanguageClient, request) -> AsyncIterator[Session]:
    """The module's server, as if fresh: a workspace folder of the test's own, documents closed after it,
    settings back to the defaults, the client's records cleared."""
    session = client.session
    session.begin(request.node.name)
    yield session
    await session.end()
