"""Independent decoders for LSP positions and semantic tokens (oracles for the server tests)."""

from __future__ import annotations

import re


def split_lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", text)


def column_to_text(line: str, column: int, encoding: str) -> str:
    """The prefix of `line` that `column` code units of `encoding` cover."""
    if encoding == "utf-8":
        return line.encode("utf-8", "surrogatepass")[:column].decode("utf-8", "surrogatepass")
    if encoding == "utf-32":
        return line[:column]
    return line.encode("utf-16-le", "surrogatepass")[: 2 * column].decode("utf-16-le", "surrogatepass")


def decode_semantic_tokens(text: str, data: list[int], encoding: str) -> list[tuple[int, int, str, int, int]]:
    """(line, column in code points, token text, type index, modifiers) for each encoded token."""
    lines = split_lines(text)
    out, line, char = [], 0, 0
    for i in range(0, len(data), 5):
        d_line, d_char, length, kind, modifiers = data[i : i + 5]
        line += d_line
        char = char + d_char if d_line == 0 else d_char
        prefix = column_to_text(lines[line], char, encoding)
        token = column_to_text(lines[line], char + length, encoding)[len(prefix) :]
        out.append((line, len(prefix), token, kind, modifiers))
    return out


def text_of_range(text: str, rng: list[int], encoding: str) -> str:
    """The characters of [startLine, startChar, endLine, endChar] (single-line ranges)."""
    lines = split_lines(text)
    line = lines[rng[0]]
    start = len(column_to_text(line, rng[1], encoding))
    end = len(column_to_text(line, rng[3], encoding)) if rng[2] == rng[0] else len(line)
    return line[start:end]
