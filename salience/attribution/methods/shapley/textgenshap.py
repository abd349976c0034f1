"""TextGenSHAP (Enouen et al. 2023) for decoder-only models: Shapley values over a hierarchy of prompt parts.

Players are segments first (chat messages, paragraphs, "Document N:" blocks); the segments holding
`expand_share` of the total |value| are then explained by their sentences (with the rest of the prompt
present), and the top sentences by their words, down to `level`. A long prompt thus costs a few
segment-level coalitions plus small games inside what matters, not one game over every token.

Value of a coalition: Σ_t log p(y_t) with the absent players masked out (per target step, so each row
of the matrix is that step's Shapley values), or `unchanged`: 1 if greedy decoding still gives the
explained output. Few players: exact enumeration; more: permutation sampling with antithetic pairs
until every standard error is below `tolerance` × the larger of |v(all) - v(none)| (every file token
present against none) and the game's Σ|value|, or the budget is spent.

Each token's score is its finest player's value divided by the player's size (without expansion a
row sums to v(all) - v(none)). A child game sums to what removing its parent costs, not to the
parent's Shapley value (they differ by the parent's interactions), so children are reported as
their own game under their parent; `extras.players` holds every player's value and standard error.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from salience.attribution.methods.base import AttributionInput, Method
from salience.attribution.methods.shapley.estimators import (
    ShapleyEstimate,
    exact_shapley,
    permutation_shapley,
)
from salience.attribution.methods.shapley.games import (
    Game,
    PerturbationParams,
    coalitions_for,
    cost_extras,
    player_records,
    prompt_units,
    spread,
)
from salience.attribution.methods.shapley.players import LEVELS, Level, file_tokens, finer


class TextGenShapParams(PerturbationParams):
    hierarchical: bool = Field(default=True, description="segments first, then expand the ones that matter")
    expand_share: float = Field(default=0.9, gt=0, le=1, description="expand the top units holding this share")
    tolerance: float = Field(
        default=0.05,
        gt=0,
        description="target standard error, relative to the larger of |v(all) - v(none)| and the game's Σ|value|",
    )
    max_permutations: int = Field(default=64, ge=2, description="permutations per game at most")
    exact_players: int = Field(default=6, ge=0, le=12, description="enumerate every coalition up to this many")


class TextGenShap(Method):
    name = "textgenshap"
    description = "Shapley values of segments, then of sentences and words in them; forward-only"
    cost = "expensive"
    linear = True
    stochastic = True
    word_players = True
    needs_weights = False
    Params = TextGenShapParams

    @torch.inference_mode()
    def scores(self, inputs: AttributionInput, params: TextGenShapParams) -> tuple[torch.Tensor, dict[str, Any]]:
        run = _Run(inputs, params)
        run.explain()
        return run.matrix, run.extras()


class _Run:
    """One hierarchical explanation: a queue of games, each over the children of a unit that mattered."""

    def __init__(self, inputs: AttributionInput, params: TextGenShapParams) -> None:
        self.inputs, self.params = inputs, params
        self.coalitions, self.masking = coalitions_for(inputs, params)
        self.pieces, self.boundaries = prompt_units(inputs)
        self.generator = torch.Generator().manual_seed(params.seed)
        self.matrix = torch.zeros((inputs.n_target, inputs.n_source), dtype=torch.float32)
        self.records: list[dict[str, Any]] = []
        self.estimates: list[ShapleyEstimate] = []
        self.budget_spent = False
        self.scale = 0.0

    def explain(self) -> None:
        start = "segment" if self.params.hierarchical else self.params.level
        every = file_tokens(self.inputs.ranges)
        queue = [(None, *self._units(every, start))]
        whole = Game(self.coalitions, [every], self.params.value)(torch.tensor([[False], [True]]))
        self.scale = float((whole[1] - whole[0]).sum().abs())
        while queue:
            parent, groups, level = queue.pop(0)
            if not groups:
                continue
            if self._exhausted():
                self.budget_spent = True
                break
            values = self._play(groups, level, parent)
            if self.params.hierarchical and LEVELS.index(level) < LEVELS.index(self.params.level):
                first = len(self.records) - len(groups)
                for p in _to_expand(values, self.params.expand_share):
                    children, child_level = self._units(groups[p], finer(level))
                    if len(children) > 1:
                        queue.append((first + p, children, child_level))

    def _units(self, tokens: list[int], level: Level | None) -> tuple[list[list[int]], Level]:
        """`tokens` split at `level`, going finer (up to params.level) while that leaves one unit."""
        level = level or self.params.level
        groups = self.boundaries.split(tokens, level)
        while len(groups) == 1 and LEVELS.index(level) < LEVELS.index(self.params.level):
            level = finer(level) or level
            groups = self.boundaries.split(tokens, level)
        return groups, level

    def _play(self, groups: list[list[int]], level: Level, parent: int | None) -> torch.Tensor:
        """Shapley values of one game; its players' token scores overwrite coarser ones. Returns Σ_t values [P]."""
        game = Game(self.coalitions, groups, self.params.value)
        estimate = self._estimate(game, level)
        self.estimates.append(estimate)
        self.budget_spent |= not estimate.tolerance_met and self._exhausted()
        totals = estimate.values.sum(dim=1)
        self.records += player_records(groups, self.pieces, level, totals, estimate.stderr, parent, estimate.exact)
        spread(estimate.values, groups, self.matrix)
        return totals

    def _estimate(self, game: Game, level: Level) -> ShapleyEstimate:
        n, params = game.n_players, self.params
        room = params.max_forwards - self.coalitions.forwards
        if n <= params.exact_players and 2**n <= room:
            return exact_shapley(game, n)

        def report(permutations: int, stderr: float, share: float) -> None:
            done = min(0.99, max(share, self.coalitions.forwards / params.max_forwards))
            self.inputs.hooks.progress(done, f"TextGenSHAP {level}s: {permutations} permutations, ±{stderr:.3g}")

        # Rounds of at least ~64 coalitions: a round's coalitions share their prefixes' keys and values.
        pairs = max(2, -(-32 // (n + 1)))
        return permutation_shapley(
            game,
            n,
            self.generator,
            params.tolerance,
            params.max_permutations,
            scale=self.scale,
            exhausted=self._exhausted,
            pairs_per_round=pairs,
            on_round=report,
        )

    def _exhausted(self) -> bool:
        return self.coalitions.forwards >= self.params.max_forwards

    def extras(self) -> dict[str, Any]:
        stderr = [r["stderr"] for r in self.records if r["stderr"] is not None]
        met = all(e.tolerance_met for e in self.estimates) and not self.budget_spent
        return {
            "players": self.records,
            "value": self.params.value,
            "masking": self.masking,
            "tolerance_met": met,
            "max_stderr": max(stderr, default=0.0),
            "budget_spent": self.budget_spent,
            "games": len(self.estimates),
            "permutations": sum(e.permutations for e in self.estimates),
            "full_value": float(self.coalitions.full.value(self.params.value).sum()),
            **cost_extras(self.coalitions),
        }


def _to_expand(values: torch.Tensor, share: float) -> list[int]:
    """The players with the largest |value| that together hold `share` of the game's total |value|."""
    magnitude = values.abs()
    total = float(magnitude.sum())
    chosen: list[int] = []
    held = 0.0
    for p in torch.argsort(magnitude, descending=True).tolist():
        if total <= 0 or held >= share * total:
            break
        chosen.append(p)
        held += float(magnitude[p])
    return chosen
