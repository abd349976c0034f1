"""A version of a prompt file: a file on disk, or `REV:path` read from git with the real `git` command.

`git show REV:./NAME`, run in the file's folder, reads the path relative to that folder whatever the
current directory, so `HEAD:examples/a.prompt` works from anywhere inside the repository.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from salience.attribution import SalienceError, prompt_text, read_prompt_file

GIT_SECONDS = 30


@dataclass(frozen=True)
class Version:
    """A prompt's text and where it came from ('HEAD:a.prompt', 'a.prompt')."""

    label: str
    text: str


def is_revision(spec: str) -> bool:
    """`REV:path` rather than a file (a file that exists wins, so a name with a colon still reads as a file)."""
    rev, sep, path = spec.partition(":")
    return bool(sep and rev and path) and not Path(spec).exists()


def read_version(spec: str) -> Version:
    """The text of a file, or of `REV:path` from git."""
    if not is_revision(spec):
        return Version(spec, read_prompt_file(spec))
    rev, _, path = spec.partition(":")
    return Version(spec, git_text(rev, Path(path)))


def git_text(rev: str, path: Path) -> str:
    """The file at `path` as committed in `rev`; a clear error outside a repository or for a missing file."""
    git = shutil.which("git")
    if git is None:
        raise SalienceError("reading a git revision needs the `git` command, which is not installed")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SalienceError(f"{path}: no such folder {folder}")
    inside = _git(git, folder, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0:
        raise SalienceError(f"{folder.resolve()} is not in a git repository: compare two files instead")
    shown = _git(git, folder, "show", f"{rev}:./{path.name}")
    if shown.returncode != 0:
        reason = shown.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SalienceError(f"git cannot read {rev}:{path}: {reason[-1] if reason else 'unknown error'}")
    return prompt_text(shown.stdout, f"{rev}:{path}")


def _git(git: str, folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [git, "-C", str(folder), *args], capture_output=True, timeout=GIT_SECONDS, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as err:
        raise SalienceError(f"git took more than {GIT_SECONDS} s: {' '.join(args)}") from err


def sides(specs: list[str]) -> tuple[str, str]:
    """`diff OLD NEW`, or `diff PATH` (HEAD:PATH against the working file)."""
    if len(specs) == 1:
        if is_revision(specs[0]):
            raise SalienceError("with one argument, give the working file: `salience diff PATH` compares HEAD:PATH")
        return f"HEAD:{specs[0]}", specs[0]
    if len(specs) == 2:
        return specs[0], specs[1]
    raise SalienceError("salience diff takes OLD NEW, or one PATH (compared with HEAD:PATH)")
