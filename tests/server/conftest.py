"""A real `salience serve` on the tiny model, driven by pytest-lsp as Neovim 0.11 and as VS Code."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
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
        self.versions[uri] = 1
        self.texts[(uri, 1)] = text
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=uri, language_id=language_id, version=1, text=text)
            )
        )
        return uri

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


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), params=CLIENTS)
async def client(request, lsp_client: LanguageClient, tiny_model_dir, tmp_path):
    """An initialised server using the tiny model, as each client profile."""
    lsp_client.session = Session(lsp_client, request.param, tmp_path)
    lsp_client.session_model = str(tiny_model_dir)
    lsp_client.set_configuration({"salience": settings_for(tiny_model_dir)})
    started = await lsp_client.initialize_session(start_params(request.param, settings_for(tiny_model_dir), tmp_path))
    lsp_client.session.encoding = str(started.capabilities.position_encoding or "utf-16")
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def session(client: LanguageClient) -> Session:
    return client.session
