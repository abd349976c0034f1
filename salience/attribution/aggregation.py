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
