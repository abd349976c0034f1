"""Every bad input opened in the real server: a clear diagnostic or a result, and the next request answered."""

from __future__ import annotations

import time

import pytest_lsp
from bad_corpus import bad_inputs, words
from conftest import SERVER, Session, settings_for, start_params
from lsp_decode import text_of_range
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def server(lsp_client: LanguageClient, tiny_model_dir, tmp_path):
    """One server for the whole corpus; front-matter model paths are allowed so they are tried."""
    lsp_client.session = Session(lsp_client, "visual-studio-code", tmp_path)
    options = settings_for(tiny_model_dir, allowWorkspaceModels=True, debounceMs=0)
    lsp_client.set_configuration({"salience": options})
    started = await lsp_client.initialize_session(start_params("visual-studio-code", options, tmp_path))
    lsp_client.session.encoding = str(started.capabilities.position_encoding or "utf-16")
    yield
    await lsp_client.shutdown_session()


def said(session: Session, uri: str, severity: str) -> list[str]:
    return [words(d.message) for d in session.client.diagnostics.get(uri, []) if d.severity == SEVERITY[severity]]


def met(session: Session, uri: str, expected: dict) -> bool:
    """Whether the server has said what the corpus expects of this document."""
    for severity in ("error", "info"):
        if severity in expected:
            return any(words(expected[severity]) in m for m in said(session, uri, severity))
    fresh = [p for p in session.scores if p["uri"] == uri and p["ranges"] and p["computedVersion"] == 1]
    return bool(fresh) and (
        not expected.get("warning") or any(words(expected["warning"]) in m for m in said(session, uri, "warning"))
    )


async def test_the_server_survives_the_corpus(server, tmp_path, margin):
    session: Session = server.session
    answered: list[float] = []
    for case in bad_inputs():
        text = case.editor_text(tmp_path)
        uri = session.open(case.name, text)
        await session.until(lambda: met(session, uri, case.server))  # noqa: B023 (waited for here)
        if "error" not in case.server and "info" not in case.server:
            assert not said(session, uri, "error"), (case.name, said(session, uri, "error"))
            ranges = next(p for p in session.scores if p["uri"] == uri and p["ranges"])["ranges"]
            assert all(text_of_range(text, r, session.encoding) for r in ranges), case.name  # real characters
        start = time.perf_counter()  # the next request is answered
        await session.client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(0, 0))
        )
        tokens = await session.client.text_document_semantic_tokens_full_async(
            types.SemanticTokensParams(types.TextDocumentIdentifier(uri))
        )
        answered.append(time.perf_counter() - start)
        assert tokens is not None and len(tokens.data) % 5 == 0
        session.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    messages = [m.message for m in session.client.messages]
    assert not any("internal error" in m for m in messages), messages
    margin("bad inputs, slowest hover + semantic tokens (s)", max(answered), below=5.0)
