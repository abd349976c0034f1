"""The lock files agree with what they are made from: pyproject.toml's ranges and requirements/*.in."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[1]
LOCKS = ("dev.txt", "user.txt")


def lock_script():
    spec = importlib.util.spec_from_file_location("lock", ROOT / "requirements" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def locked(name: str) -> dict[str, Version]:
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    return {
        canonicalize_name(package): Version(version)
        for package, version in re.findall(r"^([A-Za-z0-9_.\-]+)==([^ \\\n;]+)", text, flags=re.M)
    }


def wanted(name: str) -> list[Requirement]:
    """What a lock must satisfy: pyproject's requirements (with [dev] for dev.txt) and its .in files'."""
    script = lock_script()
    extras, resolved, unresolved = script.LOCKS[name]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    lines += [line for extra in extras for line in project["optional-dependencies"][extra]]
    for path in resolved + unresolved:
        lines += script.requirement_lines(ROOT / "requirements" / path)
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("name", LOCKS)
def test_the_lock_was_made_from_todays_pyproject_and_in_files(name):
    header = (ROOT / "requirements" / name).read_text(encoding="utf-8").split("\n", 3)[2]
    assert header == f"# inputs: sha256:{lock_script().inputs_digest()}", (
        f"requirements/{name} was made from other requirements than pyproject.toml and requirements/*.in "
        "hold now: run `make lock`"
    )


@pytest.mark.parametrize("name", LOCKS)
def test_every_requirement_is_locked_at_a_version_it_allows(name):
    versions = locked(name)
    disagree = [
        f"{requirement} (locked: {versions.get(canonicalize_name(requirement.name), 'missing')})"
        for requirement in wanted(name)
        if requirement.name != "torch"  # installed apart, pinned in requirements/torch.in
        and versions.get(canonicalize_name(requirement.name)) not in requirement.specifier
    ]
    assert not disagree, f"requirements/{name} disagrees with its inputs, run `make lock`: {disagree}"


@pytest.mark.parametrize("name", LOCKS)
def test_every_locked_package_is_pinned_with_a_hash_and_torch_is_left_out(name):
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[3])
    assert entries and all("==" in e and "--hash=sha256:" in e for e in entries if not e.startswith("#"))
    assert "torch" not in locked(name) and not any(p.startswith(("nvidia-", "triton")) for p in locked(name))


def test_the_daily_install_runs_the_versions_the_tests_ran():
    dev, user = locked("dev.txt"), locked("user.txt")
    assert {package: version for package, version in user.items() if dev.get(package) != version} == {}
