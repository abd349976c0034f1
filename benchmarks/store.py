"""The suite's stored rows: one small JSON file per (prompt, method), written as each row finishes.

A row is found again by its key, a hash of everything that decides it (token ids, target, method and
parameters, metric settings, model): a run that stops for any reason resumes where it stopped, on
another day or another machine with the repository's rows, and a row whose inputs changed is
recomputed rather than reused. The report is written from the stored rows alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def row_key(**decided_by: Any) -> str:
    """A short stable hash of the inputs a row depends on."""
    blob = json.dumps(decided_by, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")


class RowStore:
    """Rows under `root`/<prompt>/<method>.json."""

    def __init__(self, root: Path = RESULTS) -> None:
        self.root = root

    def path(self, case: str, method: str) -> Path:
        return self.root / _safe(case) / f"{_safe(method)}.json"

    def get(self, case: str, method: str, key: str) -> dict[str, Any] | None:
        """The stored row for (case, method) if it was computed from the same inputs."""
        path = self.path(case, method)
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return row if row.get("key") == key else None

    def put(self, case: str, method: str, row: dict[str, Any]) -> Path:
        """Write a row whole or not at all (a run killed mid-write leaves the previous file)."""
        path = self.path(case, method)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".json.partial")
        temporary.write_text(json.dumps(row, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        return path
