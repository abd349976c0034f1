"""Players for perturbation methods: the prompt's file tokens grouped by segment, sentence, word or token.

Segments are chat messages, blank-line paragraphs and labelled blocks ("Document 3:", "[2]",
"Example 1:", Markdown headings). Each finer level only adds boundaries, so every sentence lies in
one segment, every word in one sentence: `split(tokens, level)` cuts any group at the next level.
Template-only tokens (no file range) are never players: they stay present in every coalition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Level = Literal["segment", "sentence", "word", "token"]
LEVELS: tuple[Level, ...] = ("segment", "sentence", "word", "token")
_BLOCK_LABEL = re.compile(
    r"[ \t]*(#{1,6}[ \t]|\[\d+\]|(document|doc|passage|source|context|article|chunk|result|example|shot)"
    r"[ \t]*#?\[?\d+\]?[ \t]*[:.)\]-])",
    re.IGNORECASE,
)
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n[ \t\r]*$")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_CJK_SENTENCE_END = re.compile(r"[。！？][」』”’）]*$")


@dataclass(frozen=True)
class Boundaries:
    """For each source token, the coarsest level at which a new unit starts there (index into LEVELS)."""

    starts: list[int]

    @classmethod
    def of(cls, pieces: list[str], ranges: list[tuple[int, int] | None], word_starts: list[int]) -> Boundaries:
        """`pieces` are the decoded tokens, `ranges` their file spans, `word_starts` the tokens that begin a
        word (`AttributionInput.word_starts`: the rule every view uses)."""
        words = set(word_starts)
        starts = []
        for i, piece in enumerate(pieces):
            before = "".join(pieces[max(0, i - 8) : i])
            if i == 0 or ranges[i - 1] is None or _BLANK_LINE.search(before) or _labelled_line(pieces, i, before):
                starts.append(0)
            elif not piece.strip() and (i + 1 == len(pieces) or i + 1 in words):
                starts.append(3)  # whitespace belongs to the unit before it, unless it leads into a word
            elif (
                before.endswith("\n")
                or _CJK_SENTENCE_END.search(before)
                or (_SENTENCE_END.search(before.rstrip(" \t")) and piece[:1].isspace())
            ):
                starts.append(1)
            elif i in words:
                starts.append(2)
            else:
                starts.append(3)
        return cls(starts)

    def split(self, tokens: list[int], level: Level) -> list[list[int]]:
        """`tokens` (ascending source indices) cut where a unit of `level` (or coarser) starts or a gap is."""
        depth = LEVELS.index(level)
        groups: list[list[int]] = []
        for i in tokens:
            if not groups or i != groups[-1][-1] + 1 or self.starts[i] <= depth:
                groups.append([i])
            else:
                groups[-1].append(i)
        return groups


def _labelled_line(pieces: list[str], i: int, before: str) -> bool:
    """Whether token i starts a line that opens a labelled block ("Document 2:", "[3]", "## Notes")."""
    if not before.endswith("\n"):
        return False
    line = ""
    for piece in pieces[i : i + 32]:  # enough of the line for its label, however finely it is tokenised
        line += piece
        if len(line) >= 24 or "\n" in piece:
            break
    return bool(_BLOCK_LABEL.match(line))


def file_tokens(ranges: list[tuple[int, int] | None]) -> list[int]:
    """Indices of the source tokens that come from the file (the only ones that can be players)."""
    return [i for i, r in enumerate(ranges) if r is not None]


def finer(level: Level) -> Level | None:
    depth = LEVELS.index(level)
    return LEVELS[depth + 1] if depth + 1 < len(LEVELS) else None


def label(pieces: list[str], tokens: list[int], width: int = 40) -> str:
    """A short one-line text for a unit (for hovers and reports)."""
    text = " ".join("".join(pieces[i] for i in tokens).split())
    return text if len(text) <= width else text[: width - 1] + "…"
