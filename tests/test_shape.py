"""The shape the README's layout section describes: one engine interface, no import cycles."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import salience.attribution as engine

ROOT = Path(__file__).parents[1]
OUTSIDE = [
    "salience/server",
    "salience/views",
    "salience/cli",
    "salience/revisions.py",
    "benchmarks",
]
"""Code that uses the engine: it imports `salience.attribution` (and `salience.evaluation`) only."""
MAX_LINES = 300


def python_files(*places: str) -> list[Path]:
    return [f for p in places for f in ([ROOT / p] if p.endswith(".py") else sorted((ROOT / p).rglob("*.py")))]


def imported_modules(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_users_of_the_engine_import_its_public_interface_only():
    private = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files(*OUTSIDE)
        for module in imported_modules(path)
        if module.startswith("salience.attribution.")
    }
    assert not private


def test_what_a_prompt_file_says_sits_below_the_engine():
    """`salience.prompt` is read by the engine and the views alike: it imports none of their modules (only
    the engine's typed errors, which import nothing)."""
    reached = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files("salience/prompt")
        for module in imported_modules(path)
        if module.startswith("salience") and not module.startswith("salience.prompt")
    }
    assert reached <= {f"salience/prompt/document.py: {m}" for m in ("salience.attribution.errors",)}


def test_every_public_name_loads_and_the_type_checking_imports_agree():
    for name in engine.__all__:
        assert getattr(engine, name) is not None
    tree = ast.parse(Path(engine.__file__).read_text(encoding="utf-8"))
    checking = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    declared = {
        alias.name: node.module.removeprefix("salience.attribution.")
        for node in checking.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert declared == engine._HOME


def test_no_module_imports_itself_back_at_load_time():
    graph = {}
    for path in python_files("salience"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[module] = {m for m in imported_modules(path, top_level_only=True) if m.startswith("salience")}

    def cycle_from(start: str, node: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for nxt in graph.get(node, ()):
            if nxt == start:
                return (*seen, nxt)
            if nxt not in seen and len(seen) < 12:
                found = cycle_from(start, nxt, (*seen, nxt))
                if found:
                    return found
        return None

    cycles = [c for m in graph if (c := cycle_from(m, m, (m,)))]
    assert not cycles


def test_each_module_imports_on_its_own():
    for path in python_files("salience"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if not module.endswith("__main__"):  # (that one runs the CLI)
            importlib.import_module(module)


def test_each_module_has_a_name_of_its_own_and_a_readable_length():
    """No two modules share a base name (one name per concept), and none is over MAX_LINES lines."""
    modules = [p for p in python_files("salience") if p.name not in {"__init__.py", "__main__.py"}]
    seen: dict[str, list[str]] = {}
    for path in modules:
        seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    twins = {name: paths for name, paths in seen.items() if len(paths) > 1}
    long = {
        str(p.relative_to(ROOT)): n
        for p in python_files("salience")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not twins and not long, (twins, long)


def test_the_readme_layout_names_every_module():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout") :].split("\n## ")[0]
    named = set(re.findall(r"[\w]+\.py|[\w]+/", layout))
    missing = {
        str(path.relative_to(ROOT))
        for path in python_files("salience")
        if path.name not in {"__init__.py", "__main__.py"} and path.name not in named
    }
    folders = {f"{p.name}/" for p in (ROOT / "salience").rglob("*") if p.is_dir() and p.name != "__pycache__"}
    assert not missing and folders <= named, (missing, folders - named)
