"""Shapley values of a coalition game: exact enumeration for few players, permutation sampling otherwise.

A game is a function from present-player masks [M, P] (bool) to values [M, K] (K outputs, e.g. one
per target step; Shapley values are linear, so the K columns are K games played on the same
coalitions). Pure tensor code: the model only enters through the value function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

ValueFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ShapleyEstimate:
    """Values [P, K]; `stderr` [P] is the standard error of each player's value summed over K."""

    values: torch.Tensor
    stderr: torch.Tensor
    permutations: int
    exact: bool
    tolerance_met: bool


def exact_shapley(value_fn: ValueFn, n_players: int) -> ShapleyEstimate:
    """Every coalition once (2^P of them), weighted |S|!(P-|S|-1)!/P!."""
    codes = torch.arange(2**n_players)
    masks = (codes[:, None] >> torch.arange(n_players)) & 1 == 1
    values = value_fn(masks).double()
    sizes = masks.sum(dim=1)
    weights = torch.tensor(
        [
            math.factorial(s) * math.factorial(n_players - s - 1) / math.factorial(n_players) if s < n_players else 0.0
            for s in sizes.tolist()
        ],
        dtype=torch.float64,
    )
    phi = torch.zeros((n_players, values.shape[1]), dtype=torch.float64)
    for p in range(n_players):
        without = ~masks[:, p]
        with_p = codes[without] | (1 << p)
        phi[p] = (weights[without, None] * (values[with_p] - values[without])).sum(dim=0)
    return ShapleyEstimate(phi.float(), torch.zeros(n_players), 0, exact=True, tolerance_met=True)


def antithetic_masks(order: torch.Tensor) -> torch.Tensor:
    """The P+1 growing coalitions of each permutation in `order` [R, P]: [R, P+1, P] (bool)."""
    n_rows, n_players = order.shape
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n_players).expand(n_rows, -1))
    steps = torch.arange(n_players + 1)
    return rank[:, None, :] < steps[None, :, None]


def permutation_shapley(
    value_fn: ValueFn,
    n_players: int,
    generator: torch.Generator,
    tolerance: float,
    max_permutations: int,
    scale: float = 0.0,
    exhausted: Callable[[], bool] = lambda: False,
    pairs_per_round: int = 2,
    min_pairs: int = 2,
    on_round: Callable[[int, float, float], None] | None = None,
) -> ShapleyEstimate:
    """Permutation sampling with antithetic pairs (each permutation and its reverse).

    Every permutation's marginal contributions sum to v(all) - v(none), so the estimate is efficient
    at any sample size. Stops when every player's standard error (of its value summed over K) is at
    most `tolerance` × max(`scale`, Σ_p |value_p|): the values' total mass stays meaningful when
    positive and negative players cancel out. Or after `max_permutations`, or when `exhausted()` says
    the forward budget is spent. Rounds grow to the number of pairs the standard error asks for.
    `on_round(permutations, largest stderr, share done)` reports progress; the share done is what the
    standard error says: (threshold / stderr)², as the error falls with the square root of the samples.
    """
    samples: list[torch.Tensor] = []
    stderr = torch.full((n_players,), float("inf"))
    threshold = 0.0
    pairs = pairs_per_round
    while 2 * len(samples) < max_permutations and not exhausted():
        pairs = min(pairs, max(1, (max_permutations - 2 * len(samples)) // 2))
        order = torch.stack([torch.randperm(n_players, generator=generator) for _ in range(pairs)])
        order = torch.cat([order, order.flip(1)])  # antithetic partners: the reversed orders
        values = value_fn(antithetic_masks(order).reshape(-1, n_players)).double()
        gains = values.reshape(2 * pairs, n_players + 1, -1).diff(dim=1)  # [2R, P, K]: gain of the player added
        phi = torch.zeros_like(gains).scatter_(1, order[..., None].expand_as(gains), gains)
        samples.extend((phi[:pairs] + phi[pairs:]) / 2)
        totals = torch.stack(samples).sum(dim=-1)  # [pairs so far, P]
        threshold = tolerance * max(scale, float(totals.mean(dim=0).abs().sum()))
        if len(samples) >= min_pairs:
            stderr = totals.std(dim=0) / math.sqrt(len(samples))
        if on_round:
            worst = float(stderr.max())
            share = 1.0 if worst <= threshold else (threshold / worst) ** 2 if math.isfinite(worst) else 0.0
            on_round(2 * len(samples), worst, max(share, 2 * len(samples) / max_permutations))
        if float(stderr.max()) <= threshold:
            break
        pairs = _pairs_needed(len(samples), float(stderr.max()), threshold, pairs_per_round)
    if not samples:
        raise RuntimeError("the forward budget was spent before one permutation could be sampled")
    return ShapleyEstimate(
        torch.stack(samples).mean(dim=0).float(),
        stderr.float(),
        2 * len(samples),
        exact=False,
        tolerance_met=bool(float(stderr.max()) <= threshold),
    )


def _pairs_needed(done: int, stderr: float, threshold: float, least: int) -> int:
    """Pairs for the next round: as many as the standard error says are missing (it falls as 1/sqrt(n)),
    at most 4× those done; few large rounds share more prefix work than many small ones."""
    if not math.isfinite(stderr) or threshold <= 0:
        return max(least, done)
    wanted = math.ceil(done * (stderr / threshold) ** 2) - done
    return max(least, min(wanted, 4 * done))
