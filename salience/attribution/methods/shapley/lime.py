"""LIME: random coalitions of players (words by default), weighted by closeness to the full prompt,
fitted by a linear model whose coefficients are the scores.

Samples keep each player with probability 1/2; a sample's weight is exp(-d²/2w²) with d the cosine
distance between it and the full coalition, as in Captum's `Lime`. The fit is weighted least squares
(Captum defaults to a Lasso; `alpha` adds a ridge penalty). Model-agnostic and forward-only; a cheap
sampling reference, not a default.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from salience.attribution.methods.base import AttributionInput, Method
from salience.attribution.methods.shapley.games import SurrogateParams, surrogate_scores
from salience.attribution.methods.shapley.surrogate import bernoulli_masks, lime_weights


class LimeParams(SurrogateParams):
    kernel_width: float = Field(default=1.0, gt=0)
    alpha: float = Field(default=0.0, ge=0, description="ridge penalty on the coefficients")


class Lime(Method):
    name = "lime"
    description = "a weighted linear fit to random word coalitions (Captum's Lime); forward-only"
    cost = "expensive"
    linear = True
    stochastic = True
    word_players = True
    needs_weights = False
    Params = LimeParams

    @torch.inference_mode()
    def scores(self, inputs: AttributionInput, params: LimeParams) -> tuple[torch.Tensor, dict[str, Any]]:
        return surrogate_scores(
            inputs,
            params,
            bernoulli_masks,
            lambda masks: lime_weights(masks, params.kernel_width),
            params.alpha,
            "LIME",
        )
