"""The bad-input corpus of tests/data/bad: each file (or generated input) and what must be said of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BAD = Path(__file__).parent / "data" / "bad"


@dataclass(frozen=True)
class BadInput:
    name: str
    what: str
    cli: dict[str, Any]
    server: dict[str, Any]
    repeat: str | None = None
    size: int = 0

    def path(self, scratch: Path) -> Path:
        """The file on disk: the committed one, or generated into `scratch`."""
        if self.repeat is None:
            return BAD / self.name
        path = scratch / self.name
        if not path.exists():
            count = -(-self.size // len(self.repeat))
            path.write_text((self.repeat * count)[: self.size], encoding="utf-8")
        return path

    def editor_text(self, scratch: Path) -> str:
        """The text an editor shows for the file: UTF-16 by its byte order mark, else UTF-8 with U+FFFD."""
        data = self.path(scratch).read_bytes()
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        errors = self.server.get("decode", "replace")
        return data.decode("utf-8", errors).removeprefix("\ufeff")


def bad_inputs() -> list[BadInput]:
    expected = yaml.safe_load((BAD / "expected.yaml").read_text(encoding="utf-8"))
    files = [BadInput(name, case["what"], case["cli"], case["server"]) for name, case in expected["files"].items()]
    generated = [
        BadInput(name, case["what"], case["cli"], case["server"], case["repeat"], case["bytes"])
        for name, case in expected["generate"].items()
    ]
    return files + generated


def words(text: str) -> str:
    """Text with its whitespace collapsed (rich wraps long lines on stderr)."""
    return " ".join(text.split())
