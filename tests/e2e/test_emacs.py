"""A real Emacs with lsp-mode (Debian's elpa-lsp-mode) and client-config/emacs shows the heatmap faces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_expected import expected_levels, expected_view

pytestmark = pytest.mark.embedded
ROOT = Path(__file__).parents[2]
EMACS = shutil.which("emacs")


def has_lsp_mode() -> bool:
    if EMACS is None:
        return False
    probe = subprocess.run(
        [EMACS, "--batch", "--eval", "(progn (package-initialize) (require 'lsp-mode))"],
        capture_output=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not has_lsp_mode(),
    reason="emacs with lsp-mode is not installed (.ci/run installs Debian's emacs-nox and elpa-lsp-mode)",
)
def test_emacs_lsp_mode_shows_the_heatmap(embedded, tmp_path):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    prompt = project / "door-codes.prompt"
    shutil.copy(ROOT / "examples/door-codes.prompt", prompt)
    out = tmp_path / "emacs.json"
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "SALIENCE_EL": str(ROOT / "client-config/emacs/salience.el"),
        "SALIENCE_PROMPT": str(prompt),
        "SALIENCE_EMACS_OUT": str(out),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        [EMACS, "--batch", "-l", str(Path(__file__).with_name("emacs_check.el"))],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert out.is_file(), done.stderr[-3000:]
    shown = json.loads(out.read_text(encoding="utf-8"))
    assert shown["mode"] == "salience-prompt-mode" and shown["semantic"] is True
    assert shown["cells"], f"no salience faces: {done.stderr[-3000:]}"
    faces = {int(offset): sorted(names) for offset, names in shown["cells"].items()}
    expected = {
        offset: sorted([f"salience-level-{level}"] + (["salience-negative"] if negative else []))
        for offset, (level, negative) in expected_levels(expected_view(prompt.read_text(), embedded)).items()
    }
    assert faces == expected
