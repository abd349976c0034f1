"""What a run is asked to explain, after merging settings: cheap to import (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Request:
    """Run settings after merging (CLI flags or editor settings < front matter < explicit overrides)."""

    method: str | None = None
    params: dict[str, Any] | None = None
    target: str | None = None
    contrast: str | None = None
    max_new_tokens: int | None = None
    max_source_tokens: int | None = None
    """Longer prompts keep only their last N tokens (the server's setting); None: refuse above the limit."""
    draft: list[int] | None = None
    """A previous greedy continuation of this prompt (the editor's last result): checked by one forward
    instead of decoding again; the explained target is the same as without it."""
