"""Workspace models: a model path from a repository's settings or front matter loads only if the user allowed it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_lsp
from conftest import SERVER, Session, settings_for, start_params
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from salience.attribution.errors import ModelLoadError
from salience.server.settings import ModelPolicy, Settings

TEXT = "The vault code is 7733. Repeat it:"
ON_THE_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the module's servers (conftest)


def test_policy_trusts_the_user_models_and_the_embedded_default(tmp_path):
    mine = tmp_path / "mine"
    policy = ModelPolicy.of(Settings(model=str(mine), models={"big": str(tmp_path / "big.gguf")}))
    for spec in (None, "default", "SmolLM2", str(mine), str(tmp_path / "big.gguf"), f"{tmp_path}/./mine"):
        policy.check(spec)
    with pytest.raises(ModelLoadError, match="allowWorkspaceModels: true"):
        policy.check(str(tmp_path / "repo" / "model"))
    ModelPolicy.of(Settings(allow_workspace_models=True)).check(str(tmp_path / "repo" / "model"))


def test_a_masked_lm_path_follows_the_same_rule(tmp_path):
    user = ModelPolicy.of(Settings(method_params={"reagent": {"mlm_path": str(tmp_path / "bert")}}))
    user.check_params({"replacement": "mlm", "mlm_path": str(tmp_path / "bert")})
    user.check_params({"steps": 3})
    with pytest.raises(ModelLoadError, match="mlm_path '/repo/bert' is named by this workspace"):
        user.check_params({"mlm_path": "/repo/bert"})


async def first_error(session: Session, uri: str) -> str | None:
    """The document's error diagnostic once it has one, or its scores' method once it has a result."""

    def errors() -> list[str]:
        diagnostics = session.client.diagnostics.get(uri, [])
        return [d.message for d in diagnostics if d.severity == types.DiagnosticSeverity.Error]

    def scored() -> bool:
        return any(p["uri"] == uri and p["ranges"] for p in session.scores)

    await session.until(lambda: errors() or scored())
    return errors()[0] if errors() else None


def repo_model(tiny_model_dir: Path, root: Path) -> Path:
    copy = root / "repo-model"
    if not copy.exists():
        shutil.copytree(tiny_model_dir, copy)
    return copy


@ON_THE_MODULE_LOOP
async def test_a_repository_cannot_name_the_model(session, tiny_model_dir):
    repo = repo_model(tiny_model_dir, session.root)
    front = session.open("front.prompt", f"---\nmodel: {repo}\n---\n{TEXT}")
    message = await first_error(session, front)
    assert message and str(repo) in message and "allowWorkspaceModels" in message
    # The workspace's settings cannot name it nor allow it either: only initializationOptions can.
    session.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"salience": {"model": str(repo), "allowWorkspaceModels": True, "debounceMs": 30}}
        )
    )
    plain = session.open("plain.prompt", TEXT)
    message = await first_error(session, plain)
    assert message and str(repo) in message and "allowWorkspaceModels" in message
    # The user's own model, by path or by the name of the user's `models`, loads.
    user = session.open("user.prompt", f"---\nmodel: {tiny_model_dir}\n---\n{TEXT}")
    assert await first_error(session, user) is None


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def trusting(lsp_client: LanguageClient, tiny_model_dir, tmp_path_factory):
    """A server whose user settings allow workspace models."""
    tmp_path = tmp_path_factory.mktemp("trusting")
    lsp_client.session = Session(lsp_client, "neovim@v0.11.0", tmp_path)
    options = settings_for(tiny_model_dir, allowWorkspaceModels=True)
    lsp_client.set_configuration({"salience": settings_for(tiny_model_dir)})
    await lsp_client.initialize_session(start_params("neovim@v0.11.0", options, tmp_path))
    yield
    await lsp_client.shutdown_session()


@ON_THE_MODULE_LOOP
async def test_allowed_workspace_models_load(trusting, tiny_model_dir):
    session = trusting.session
    repo = repo_model(tiny_model_dir, session.root)
    uri = session.open("front.prompt", f"---\nmodel: {repo}\n---\n{TEXT}")
    assert await first_error(session, uri) is None
    assert (await session.result_for(uri))["model"] == "repo-model"
