"""Aggregators: small named functions over score matrices, separate from the methods."""

from __future__ import annotations

import torch


def normalise_rows(matrix: torch.Tensor) -> torch.Tensor:
    """Each target row divided by its sum of absolute values (zero rows stay zero)."""
    total = matrix.abs().sum(dim=-1, keepdim=True)
    return matrix / torch.where(total > 0, total, torch.ones_like(total))


def mean_of_normalised(matrix: torch.Tensor) -> torch.Tensor:
    """Per-source-token importance: mean over targets of the normalised rows."""
    return normalise_rows(matrix).mean(dim=0)


def heatmap_of(matrix: torch.Tensor) -> torch.Tensor:
    """The per-token heatmap every view shows (CLI, HTML, editor): the rows' sum (docs/AGGREGATE.md)."""
    return sum_of_rows(matrix)


def sum_of_rows(matrix: torch.Tensor) -> torch.Tensor:
    """Per-source-token attribution of the completion as a whole: the sum over target steps (as Captum
    sums a sequence's targets). For a method linear in f it is the attribution of sum_t f_t."""
    return matrix.sum(dim=0)


def l2_over_hidden(granular: torch.Tensor) -> torch.Tensor:
    """Collapse the embedding dimension with the L2 norm (saliency)."""
    return granular.norm(dim=-1)


def sum_over_hidden(granular: torch.Tensor) -> torch.Tensor:
    """Collapse the embedding dimension with a signed sum (input x gradient, IG)."""
    return granular.sum(dim=-1)


def word_starts(pieces: list[str], ranges: list[tuple[int, int] | None]) -> list[int]:
    """Indices of the tokens that begin a word: subword pieces that touch in the file and join letters
    or digits (or split one character, such as an emoji's bytes) belong to the word before them.

    `pieces` are the decoded tokens, `ranges` their file spans (None for template tokens, which are
    words of their own).
    """
    starts = []
    for i, (piece, span) in enumerate(zip(pieces, ranges)):
        previous = ranges[i - 1] if i else None
        if not (span and previous and span[0] <= previous[1] and _joins(pieces[i - 1], piece, span, previous)):
            starts.append(i)
    return starts


def _joins(before: str, piece: str, span: tuple[int, int], previous: tuple[int, int]) -> bool:
    if span[0] < previous[1]:
        return True  # one character split over tokens
    return bool(before) and bool(piece) and _wordish(before[-1]) and _wordish(piece[0])


def _wordish(char: str) -> bool:
    return char.isalnum() or char == "\ufffd"  # U+FFFD: part of a character split over tokens
