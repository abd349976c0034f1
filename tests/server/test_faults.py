"""Faults around a run in the real server: the client leaving, a cancel storm, settings changed mid-run."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest
import pytest_lsp
from conftest import SERVER, Session, settings_for, start_params
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

LONG = "The vault code is 7733. Repeat the vault code: " * 22  # ~1,000 tokens: minutes of 1,024-step IG
ENDLESS = {
    "method": "integrated_gradients",
    "progressive": False,
    "debounceMs": 0,
    "methodParams": {"integrated_gradients": {"steps": 1024, "memory_budget_mb": 16}},
}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def busy(lsp_client: LanguageClient, tiny_model_dir, tmp_path):
    """A server whose runs take minutes (so a test can act while one is running)."""
    lsp_client.session = Session(lsp_client, "visual-studio-code", tmp_path)
    lsp_client.session_model = str(tiny_model_dir)
    shutil.copytree(tiny_model_dir, tmp_path / "other-model")  # a second model the user named
    options = settings_for(tiny_model_dir, models={"other": str(tmp_path / "other-model")}, **ENDLESS)
    lsp_client.set_configuration({"salience": options})
    await lsp_client.initialize_session(start_params("visual-studio-code", options, tmp_path))
    yield
    if lsp_client._server is not None and lsp_client._server.returncode is None:
        await lsp_client.shutdown_session()


async def running(session: Session) -> str:
    """Wait until a run reports progress; its token."""

    def tokens() -> list[str]:
        reports = session.client.progress_reports.items()
        return [t for t, r in reports if r and not isinstance(r[-1], types.WorkDoneProgressEnd)]

    await session.until(tokens)
    return tokens()[-1]


@pytest.mark.parametrize("leaving", ["pipe closed", "exit without shutdown"])
async def test_the_server_exits_when_the_client_leaves_mid_run(busy, leaving, margin):
    session: Session = busy.session
    session.open("long.prompt", LONG)
    await running(session)
    process = busy._server
    start = time.perf_counter()
    if leaving == "pipe closed":  # the editor crashed: stdin reaches EOF
        process.stdin.close()
    else:
        busy.exit(None)
    await asyncio.wait_for(process.wait(), timeout=30)
    # the run (minutes) was cancelled at its next batch, not awaited
    margin(f"server exit after the client left ({leaving}), s", time.perf_counter() - start, below=10)
    assert not any(p["ranges"] for p in session.scores)


async def test_a_cancel_storm_leaves_nothing_stale_and_the_server_answering(busy):
    session: Session = busy.session
    uri = session.open("storm.prompt", LONG)
    doc = types.TextDocumentIdentifier(uri)
    cancelled: set[str] = set()
    for round_ in range(6):  # every run and every request is cancelled as soon as it starts
        token = await running(session)
        for i in range(20):
            msg_id = f"storm-{round_}-{i}"
            busy.protocol.send_request(
                types.TEXT_DOCUMENT_HOVER, types.HoverParams(doc, types.Position(0, i)), msg_id=msg_id
            )
            busy.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
        session.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token))
        cancelled.add(token)
        await busy.workspace_execute_command_async(types.ExecuteCommandParams("salience.run", [uri]))
    assert not any(p["ranges"] for p in session.scores)  # no cancelled run ever published
    session.client.set_configuration(
        {"salience": {**settings_for(session.client.session_model), "debounceMs": 0, "method": "saliency"}}
    )
    session.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    result = await session.result_for(uri, method="saliency")
    assert result["ranges"]
    hover = await busy.text_document_hover_async(types.HoverParams(doc, types.Position(0, 500)))
    assert hover is not None and "relevance to " in hover.contents.value
    ends = [session.client.progress_reports[t][-1] for t in cancelled]
    assert all(isinstance(e, types.WorkDoneProgressEnd) and e.message == "cancelled" for e in ends)


async def test_settings_changed_mid_run_replace_the_run(busy, tiny_model_dir):
    session: Session = busy.session
    uri = session.open("swap.prompt", LONG)
    await running(session)
    options = settings_for(tiny_model_dir, debounceMs=0, model="other", method="saliency")
    session.client.set_configuration({"salience": options})
    session.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"salience": options})
    )
    result = await session.result_for(uri, method="saliency")
    assert result["model"] == "other-model"  # the model was swapped, and the document re-run with it
    assert not any(p["method"] == "integrated_gradients" and p["ranges"] for p in session.scores)
