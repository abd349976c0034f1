"""What `make install-user` installs: salience built as a wheel (not the editable clone), then run from it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel pip builds from a copy of the sources (the build writes beside them)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "salience", source / "salience", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), "."]
    subprocess.run(command, cwd=source, check=True, capture_output=True)
    return zipfile.ZipFile(next(out.glob("salience-*.whl")))


def test_the_wheel_holds_every_module_and_the_demo_prompt(wheel):
    names = set(wheel.namelist())
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "salience").rglob("*.py") if "__pycache__" not in p.parts}
    assert not modules - names
    assert "salience/examples/door-codes.prompt" in names  # what `salience demo` explains


def test_the_wheel_puts_the_salience_command_on_path(wheel):
    entry_points = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert "salience = salience.cli:main" in wheel.read(entry_points).decode()
