"""Coalition games over the prompt's players, shared by LIME, KernelSHAP and TextGenSHAP.

A player is a group of source positions (a segment, sentence, word or token); a game maps present
players [M, P] to the value of each coalition, run by `coalitions.Coalitions`. Also here: the
parameters these methods share, the players' records in results, and the LIME / KernelSHAP fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field

from salience.attribution.errors import ParameterError
from salience.attribution.methods.base import AttributionInput, MethodParams
from salience.attribution.methods.shapley.coalitions import AttentionCoalitions, Coalitions, OnBatch
from salience.attribution.methods.shapley.players import Boundaries, Level, file_tokens, label
from salience.attribution.methods.shapley.replaced import ReplacedCoalitions
from salience.attribution.methods.shapley.surrogate import fit_linear

Value = Literal["logprob", "unchanged"]
Masking = Literal["auto", "attention", "baseline"]


class PerturbationParams(MethodParams):
    """Parameters every coalition method shares."""

    level: Level = Field(default="word", description="players: segment, sentence, word or token")
    value: Value = Field(
        default="logprob",
        description="logprob: f_t per target (summed for Shapley); "
        "unchanged: 1 if the greedy output stays the same, else 0",
    )
    seed: int = 0
    max_forwards: int = Field(default=2000, ge=2, description="coalitions evaluated at most (the budget)")
    masking: Masking = Field(
        default="auto",
        description="how a player is made absent: attention (its tokens are not attended; needs the weights), "
        "baseline (replaced by the baseline token; a served model too), auto (attention where the weights are)",
    )
    baseline: str | int = Field(default="unk", description="masking=baseline: unk, pad, eos, mask or a token id")


def coalitions_for(inputs: AttributionInput, params: PerturbationParams) -> tuple[Coalitions, str]:
    """The coalition runner `params.masking` asks for on this model, and the masking it plays."""
    served = inputs.loaded.served
    masking = ("baseline" if served else "attention") if params.masking == "auto" else params.masking
    if masking == "attention" and served:
        raise ParameterError(
            "masking 'attention' needs the model's weights; on a served model an absent word is replaced "
            "by a baseline token: use masking 'baseline' (or 'auto')"
        )
    if masking == "attention":
        return AttentionCoalitions(inputs, params.memory_budget_mb), masking
    return ReplacedCoalitions(inputs, params.memory_budget_mb, params.baseline), masking


class Game:
    """Players over the source positions of one Coalitions runner; present[M, P] → the game's value."""

    def __init__(self, coalitions: Coalitions, players: list[list[int]], value: Value) -> None:
        self.coalitions, self.players, self.kind = coalitions, players, value
        self.membership = torch.zeros((len(players), coalitions.n_source), dtype=torch.float32)
        for p, tokens in enumerate(players):
            self.membership[p, tokens] = 1.0

    @property
    def n_players(self) -> int:
        return len(self.players)

    def __call__(self, present: torch.Tensor, on_batch: OnBatch | None = None) -> torch.Tensor:
        """The value [M, K] of coalitions given as present players [M, P] (K = T targets, or 1)."""
        absent = ((~present.bool()).float() @ self.membership) > 0
        return self.coalitions.evaluate(absent, on_batch).value(self.kind)


def prompt_units(inputs: AttributionInput) -> tuple[list[str], Boundaries]:
    """The source tokens decoded (for labels) and where its segments, sentences and words begin."""
    tokenizer = inputs.loaded.tokenizer
    pieces = [tokenizer.decode([i]) for i in inputs.source_ids]
    return pieces, Boundaries.of(pieces, inputs.ranges, inputs.word_starts())


def spread(values: torch.Tensor, players: list[list[int]], scores: torch.Tensor) -> torch.Tensor:
    """Player values [P, K] written into token scores [T, L] (K = T, or 1 for every row): each token gets
    its player's value / size, so a row sums to the players' total and a whole part shows in one colour.
    Tokens in no player keep what `scores` held."""
    for p, tokens in enumerate(players):
        scores[:, tokens] = (values[p] / len(tokens)).unsqueeze(1)
    return scores


class SurrogateParams(PerturbationParams):
    """What LIME and KernelSHAP share: how many coalitions to sample."""

    n_samples: int = Field(default=200, ge=2, le=100_000)


Sampler = Callable[[int, int, torch.Generator], torch.Tensor]
"""(samples, players, generator) → present-player masks [samples, players]."""


def surrogate_scores(
    inputs: AttributionInput,
    params: SurrogateParams,
    sample: Sampler,
    weigh: Callable[[torch.Tensor], torch.Tensor],
    alpha: float,
    label: str,
) -> tuple[torch.Tensor, dict]:
    """LIME / KernelSHAP: seeded coalitions from `sample`, their values fitted by a linear model weighted by
    `weigh(masks)`, one fit per target step (the fit is linear in the values)."""
    pieces, boundaries = prompt_units(inputs)
    players = boundaries.split(file_tokens(inputs.ranges), params.level)
    if not players:  # nothing of the file reaches the model (a template-only prompt): nothing to attribute
        return torch.zeros((inputs.n_target, inputs.n_source)), {"players": [], "samples": 0}
    generator = torch.Generator().manual_seed(params.seed)
    masks = sample(min(params.n_samples, params.max_forwards), len(players), generator)
    weights = weigh(masks)
    coalitions, masking = coalitions_for(inputs, params)
    game = Game(coalitions, players, params.value)
    values = game(masks, lambda done, total: inputs.hooks.progress(done / total, f"{label}: {done} of {total} samples"))
    coef, intercept = fit_linear(masks, values, weights, alpha)
    scores = spread(coef, players, torch.zeros((inputs.n_target, inputs.n_source)))
    extras = {
        "players": player_records(players, pieces, params.level, coef.sum(dim=1)),
        "samples": len(masks),
        "intercept": intercept.sum().item(),
        "masking": masking,
        **cost_extras(coalitions),
    }
    return scores, extras


def player_records(
    players: list[list[int]],
    pieces: list[str],
    level: Level,
    values: torch.Tensor,
    stderr: torch.Tensor | None = None,
    parent: int | None = None,
    exact: bool = False,
) -> list[dict]:
    """JSON-ready players for results: level, tokens, a short label, value, and for Shapley estimates the
    standard error (`exact`: every coalition was enumerated) and the unit it refines (`parent`)."""
    return [
        {
            "level": level,
            "tokens": tokens,
            "label": label(pieces, tokens),
            "value": float(values[p]),
            "stderr": None if stderr is None else float(stderr[p]),
            "exact": exact,
            "parent": parent,
        }
        for p, tokens in enumerate(players)
    ]


def cost_extras(coalitions: Coalitions) -> dict[str, float]:
    """How much model work a run took: coalitions run, token forwards, and their full-forward equivalent."""
    return {
        "forwards": coalitions.forwards,
        "model_calls": coalitions.calls,
        "token_forwards": coalitions.token_forwards,
        "full_forward_equivalents": round(coalitions.token_forwards / len(coalitions.ids), 2),
    }
