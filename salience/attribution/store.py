"""Results on disk, keyed by a hash of everything that decides them, so a batch run can stop and resume.

Each result is one JSON file written atomically (a temporary file renamed into place), so a run
killed mid-write leaves either the old state or the new one. An unreadable entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from salience import __version__
from salience.attribution.result import AttributionResult
from salience.attribution.sources import cache_root
from salience.attribution.tokens import ENCODING
from salience.prompt.words import WORD_RULE

log = logging.getLogger(__name__)


def result_key(content: bytes, **settings: Any) -> str:
    """A hash of a prompt file's bytes and the settings of its run (method, model, parameters …)."""
    digest = hashlib.sha256(content)
    stamp = {**settings, "salience": __version__, "encoding": ENCODING, "words": WORD_RULE}
    digest.update(json.dumps(stamp, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def model_stamp(spec: str | None) -> str:
    """A model spec with its files' modification time, so a replaced model is a new key."""
    if not spec:
        return "default"
    path = Path(spec).expanduser()
    try:
        return f"{path.resolve()}@{path.stat().st_mtime_ns}"
    except OSError:
        return spec


class ResultStore:
    """A directory of `<key>.json` results."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root() / "results"
        self.error: str | None = None
        """Set when a write failed: later writes are skipped (the run goes on, it just cannot resume)."""

    def get(self, key: str) -> AttributionResult | None:
        path = self.root / f"{key}.json"
        try:
            return AttributionResult.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("ignoring an unreadable stored result %s: %s", path, err)
            return None

    def put(self, key: str, result: AttributionResult) -> None:
        """Store a result; an unwritable directory sets `error` once and turns storing off."""
        if self.error:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle, scratch = tempfile.mkstemp(prefix=".writing-", suffix=".json", dir=self.root)
        except OSError as err:
            self.error = f"cannot store results in {self.root} ({err.strerror or err}); a later run cannot resume"
            return
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(result.to_json())
            os.replace(scratch, self.root / f"{key}.json")
        finally:
            Path(scratch).unlink(missing_ok=True)
