"""Weighted linear surrogates of a coalition game: the fit LIME and KernelSHAP share, and their sampling.

`fit_linear` is weighted least squares with an intercept (and an optional ridge penalty on the
coefficients only), solved in float64 as scikit-learn's LinearRegression / Ridge solve it: centre
by the weighted means, then least squares (minimum-norm where a player never varies).
"""

from __future__ import annotations

import math

import torch

INFINITE_WEIGHT = 1e6
"""KernelSHAP's weight for the empty and the full coalition (theoretically infinite), as in Captum."""


def fit_linear(
    masks: torch.Tensor, values: torch.Tensor, weights: torch.Tensor, alpha: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients [P, K] and intercepts [K] of values [M, K] ≈ masks [M, P] · coef + intercept."""
    x, y, w = masks.double(), values.double(), weights.double()
    w = w / w.sum()
    x_mean, y_mean = (w[:, None] * x).sum(dim=0), (w[:, None] * y).sum(dim=0)
    root = w.sqrt()[:, None]
    a, b = root * (x - x_mean), root * (y - y_mean)
    if alpha > 0:
        n_players = x.shape[1]
        a = torch.cat([a, math.sqrt(alpha / float(weights.double().sum())) * torch.eye(n_players, dtype=a.dtype)])
        b = torch.cat([b, torch.zeros((n_players, b.shape[1]), dtype=b.dtype)])
    coef = torch.linalg.lstsq(a, b, driver="gelsd").solution
    return coef.float(), (y_mean - x_mean @ coef).float()


def lime_weights(masks: torch.Tensor, kernel_width: float) -> torch.Tensor:
    """exp(-d² / 2w²) with d the cosine distance between the full coalition and each mask (Captum's default)."""
    share = masks.float().sum(dim=1) / masks.shape[1]
    distance = 1.0 - share.sqrt()
    return torch.exp(-(distance**2) / (2 * kernel_width**2))


def bernoulli_masks(n_samples: int, n_players: int, generator: torch.Generator) -> torch.Tensor:
    """LIME's perturbations: each player present with probability 1/2."""
    return torch.rand((n_samples, n_players), generator=generator) < 0.5


def kernel_masks(n_samples: int, n_players: int, generator: torch.Generator, paired: bool) -> torch.Tensor:
    """KernelSHAP's samples: the full and empty coalitions, then coalition sizes k drawn with p(k) ∝
    (P-1)/(k(P-k)) and a uniform subset of that size (so the Shapley kernel is in the sampling and
    every other weight is 1). `paired` adds each sample's complement, which halves the variance."""
    masks = [torch.ones(n_players, dtype=torch.bool), torch.zeros(n_players, dtype=torch.bool)]
    if n_players > 1:
        sizes = torch.arange(1, n_players, dtype=torch.float64)
        probs = (n_players - 1) / (sizes * (n_players - sizes))
        while len(masks) < n_samples:
            k = int(torch.multinomial(probs, 1, generator=generator)) + 1
            mask = torch.zeros(n_players, dtype=torch.bool)
            mask[torch.randperm(n_players, generator=generator)[:k]] = True
            masks.append(mask)
            if paired and len(masks) < n_samples:
                masks.append(~mask)
    return torch.stack(masks[: max(n_samples, 2)])


def kernel_weights(masks: torch.Tensor) -> torch.Tensor:
    """1 for every sampled coalition, INFINITE_WEIGHT for the empty and the full one."""
    sizes = masks.sum(dim=1)
    ends = (sizes == 0) | (sizes == masks.shape[1])
    return torch.where(ends, torch.tensor(INFINITE_WEIGHT), torch.tensor(1.0))
