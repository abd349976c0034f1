"""Offsets (code points into the text) <-> LSP positions in the negotiated encoding.

LSP lines end at `\\n`, `\\r\\n` or `\\r`; columns count UTF-16 code units unless the client offered
UTF-8 (bytes) or UTF-32 (code points).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import numpy as np
from lsprotocol import types

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def units(text: str, encoding: str) -> int:
    """Length of `text` in code units of `encoding`."""
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


@dataclass
class LineIndex:
    """Line starts and ends of one text, for converting offsets and positions."""

    text: str
    encoding: str = types.PositionEncodingKind.Utf16

    def __post_init__(self) -> None:
        self.starts = [0]
        self.ends: list[int] = []
        for match in _LINE_BREAK.finditer(self.text):
            self.ends.append(match.start())
            self.starts.append(match.end())
        self.ends.append(len(self.text))
        self._extra: np.ndarray | None = None

    def _units_between(self, start: int, end: int) -> int:
        """Code units of text[start:end] in O(1): code points plus the extra units counted once per text
        (a long line would otherwise cost O(line) per position, O(n^2) for a heatmap)."""
        if self.encoding == types.PositionEncodingKind.Utf32 or self.text.isascii():
            return end - start
        if self._extra is None:
            points = np.frombuffer(self.text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            if self.encoding == types.PositionEncodingKind.Utf8:
                extra = (points > 0x7F).astype(np.int64) + (points > 0x7FF) + (points > 0xFFFF)
            else:
                extra = (points > 0xFFFF).astype(np.int64)
            self._extra = np.concatenate([[0], np.cumsum(extra)])
        return end - start + int(self._extra[end] - self._extra[start])

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) - 1

    def position(self, offset: int) -> types.Position:
        offset = max(0, min(offset, len(self.text)))
        line = self.line_of(offset)
        column = min(offset, self.ends[line])
        return types.Position(line, self._units_between(self.starts[line], column))

    def range(self, start: int, end: int) -> types.Range:
        return types.Range(self.position(start), self.position(end))

    def offset(self, position: types.Position) -> int:
        """The code-point offset of a position (clamped to the line, as LSP asks)."""
        if position.line >= len(self.starts):
            return len(self.text)
        start, end = self.starts[position.line], self.ends[position.line]
        if self.encoding == types.PositionEncodingKind.Utf32:
            return min(start + position.character, end)
        counted = 0
        for i in range(start, end):
            if counted >= position.character:
                return i
            counted += units(self.text[i], self.encoding)
        return end

    def line_pieces(self, start: int, end: int) -> list[tuple[int, int]]:
        """[start, end) split at line breaks, without the break characters; empty pieces dropped."""
        pieces = []
        for line in range(self.line_of(start), self.line_of(max(start, end - 1)) + 1):
            a, b = max(start, self.starts[line]), min(end, self.ends[line])
            if a < b:
                pieces.append((a, b))
        return pieces


Edit = tuple[int, int, int]


def apply_changes(text: str, changes: list, encoding: str) -> tuple[str, list[Edit] | None]:
    """Apply `didChange` content changes to `text`: the new text and the edits as (start, end, inserted).

    Edits are None when a change replaced the whole document (nothing can be shifted through it).
    """
    edits: list[Edit] | None = []
    for change in changes:
        if isinstance(change, types.TextDocumentContentChangePartial):
            lines = LineIndex(text, encoding)
            start, end = lines.offset(change.range.start), lines.offset(change.range.end)
            text = text[:start] + change.text + text[end:]
            if edits is not None:
                edits.append((start, end, len(change.text)))
        else:
            text, edits = change.text, None
    return text, edits


def encoding_name(kind: object) -> str:
    """A position encoding (lsprotocol's enum or its string) as its string: "utf-16", "utf-8" or "utf-32"."""
    return str(getattr(kind, "value", kind))
