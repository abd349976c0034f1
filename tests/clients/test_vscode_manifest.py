"""The VS Code extension's manifest matches the server: every setting, command, language and token type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from salience.attribution import method_names
from salience.prompt.document import PROMPT_SUFFIXES
from salience.server.handlers import create_server
from salience.server.layers import heatmap
from salience.server.settings import Settings

MANIFEST = json.loads((Path(__file__).parents[2] / "client-config/vscode/package.json").read_text(encoding="utf-8"))
CONTRIBUTES = MANIFEST["contributes"]
CLIENT_SETTINGS = {"serverCommand", "heatmap.enabled", "heatmap.maxOpacity", "trace.server"}
INTERNAL_COMMANDS = {"salience.methods"}  # the method picker's data, not a user command


def schema() -> dict[str, dict]:
    return {key.removeprefix("salience."): value for key, value in CONTRIBUTES["configuration"]["properties"].items()}


def test_every_server_setting_has_a_schema_entry_and_nothing_else():
    server_keys = {field.alias or name for name, field in Settings.model_fields.items()}
    assert set(schema()) - CLIENT_SETTINGS == server_keys


@pytest.mark.parametrize("key", sorted(Settings().model_dump(by_alias=True)))
def test_schema_defaults_are_the_server_defaults(key):
    default = Settings().model_dump(by_alias=True, mode="json")[key]
    assert schema()[key]["default"] == default


def test_schema_defaults_validate_on_the_server():
    defaults = {k: v["default"] for k, v in schema().items() if k not in CLIENT_SETTINGS}
    assert Settings.model_validate(defaults) == Settings()


def test_method_choices_are_the_registered_methods():
    assert set(schema()["method"]["enum"]) == {None, *method_names()}


def test_every_server_command_is_contributed():
    registered = set(create_server().protocol.fm.commands) - INTERNAL_COMMANDS
    contributed = {c["command"] for c in CONTRIBUTES["commands"]}
    assert registered <= contributed
    assert set(heatmap.COMMANDS) <= contributed


def test_languages_cover_every_prompt_suffix():
    language = next(lang for lang in CONTRIBUTES["languages"] if lang["id"] == "prompt")
    handled = {*language["extensions"], *(p.removeprefix("*") for p in language["filenamePatterns"])}
    assert handled == set(PROMPT_SUFFIXES)


def test_semantic_token_legend_is_contributed():
    assert [t["id"] for t in CONTRIBUTES["semanticTokenTypes"]] == heatmap.TOKEN_TYPES
    assert [m["id"] for m in CONTRIBUTES["semanticTokenModifiers"]] == heatmap.TOKEN_MODIFIERS
