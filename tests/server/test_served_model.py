"""The editor explains a served model named in the user's settings; a file or a workspace cannot name one."""

from __future__ import annotations

import json

import pytest
import pytest_lsp
from conftest import SERVER, Session, start_params
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from served.stub import Stub, serve
from test_security import first_error

TEXT = "The vault code is 7733. Repeat the vault code:"
ON_THE_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
pytestmark = [pytest.mark.embedded, pytest.mark.slow]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def editor(lsp_client: LanguageClient, vllm_url, tmp_path_factory):
    """A server whose user settings name the run's vLLM server (no tokenizer: it is where vLLM loaded it)."""
    root = tmp_path_factory.mktemp("served")
    lsp_client.session = Session(lsp_client, "neovim@v0.11.0", root)
    options = {"model": vllm_url, "debounceMs": 30}
    lsp_client.set_configuration({"salience": options})
    await lsp_client.initialize_session(start_params("neovim@v0.11.0", options, root))
    yield
    await lsp_client.shutdown_session()


@ON_THE_MODULE_LOOP
async def test_the_url_in_user_settings_explains_the_served_model(editor):
    session = editor.session
    uri = session.open("vault.prompt", f"---\nmax_new_tokens: 2\n---\n{TEXT}")
    assert await first_error(session, uri) is None
    result = await session.result_for(uri)
    assert result["model"] == "smollm2" and result["method"] == "occlusion"


@ON_THE_MODULE_LOOP
async def test_a_url_in_front_matter_is_refused_with_a_diagnostic(editor, vllm_url):
    session = editor.session
    uri = session.open("leak.prompt", f"---\nmodel: {vllm_url}\n---\n{TEXT}")
    message = await first_error(session, uri)
    assert message and "the front matter names a server" in message


@ON_THE_MODULE_LOOP
async def test_a_url_in_workspace_settings_is_refused_even_where_workspace_models_are_allowed(editor):
    session = editor.session
    session.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"salience": {"model": "http://127.0.0.1:9/v1", "allowWorkspaceModels": True}}
        )
    )
    uri = session.open("workspace.prompt", TEXT)
    message = await first_error(session, uri)
    assert message and "sends your prompt only to servers in your user settings" in message


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def failing(lsp_client: LanguageClient, tiny_model_dir, tmp_path_factory):
    """A server whose user settings name a stub server that fails its first run's scoring with HTTP 500."""
    stub = Stub(healthy_calls=1, faults=[(500, json.dumps({"error": {"message": "boom"}}), 0.0)], repeat_last=False)
    httpd = serve(stub)
    root = tmp_path_factory.mktemp("failing")
    lsp_client.session = Session(lsp_client, "neovim@v0.11.0", root)
    options = {"model": stub.url, "tokenizer": str(tiny_model_dir), "debounceMs": 30}
    lsp_client.set_configuration({"salience": options})
    await lsp_client.initialize_session(start_params("neovim@v0.11.0", options, root))
    yield
    await lsp_client.shutdown_session()
    httpd.shutdown()


@ON_THE_MODULE_LOOP
async def test_a_server_fault_is_one_diagnostic_and_the_next_edit_runs_again(failing):
    session = failing.session
    uri = session.open("vault.prompt", TEXT)
    message = await first_error(session, uri)
    assert message and "answered HTTP 500: boom" in message and "\n" not in message
    end = types.Position(0, len(TEXT))
    version = session.edit(uri, end, end, " ", TEXT + " ")
    result = await session.result_for(uri, version)
    assert result["model"] == "stub"
