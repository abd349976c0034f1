"""KernelSHAP: Shapley values as the weighted linear fit to random coalitions (Lundberg & Lee 2017).

Coalition sizes are drawn from the Shapley kernel, (P-1)/(k(P-k)), so every sampled coalition weighs
1; the empty and the full coalition weigh 1e6, which makes the fit (nearly) efficient: the values
sum to v(all) - v(none). As in Captum's `KernelShap`; `paired` (default on) adds each sample's
complement. Model-agnostic and forward-only; a sampling reference for TextGenSHAP.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from pydantic import Field

from salience.attribution.methods.base import AttributionInput, Method
from salience.attribution.methods.shapley.games import SurrogateParams, surrogate_scores
from salience.attribution.methods.shapley.surrogate import kernel_masks, kernel_weights


class KernelShapParams(SurrogateParams):
    paired: bool = Field(default=True, description="also evaluate each sampled coalition's complement")


class KernelShap(Method):
    name = "kernelshap"
    description = "Shapley values by a kernel-weighted fit to random word coalitions; forward-only"
    cost = "expensive"
    linear = True
    stochastic = True
    word_players = True
    needs_weights = False
    Params = KernelShapParams

    @torch.inference_mode()
    def scores(self, inputs: AttributionInput, params: KernelShapParams) -> tuple[torch.Tensor, dict[str, Any]]:
        sample = functools.partial(kernel_masks, paired=params.paired)
        return surrogate_scores(inputs, params, sample, kernel_weights, 0.0, "KernelSHAP")
