"""Input x gradient: sum over d of e_i,d * d f_t / d e_i,d; signed (Shrikumar et al. 2016)."""

from __future__ import annotations

from typing import Any

import torch

from salience.attribution.aggregation import sum_over_hidden
from salience.attribution.compute.gradients import target_gradients
from salience.attribution.methods.base import AttributionInput, Method, MethodParams


def input_x_gradient(embeds: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """e . d f / d e per position: [..., N]."""
    return sum_over_hidden(embeds * grads)


class InputXGradient(Method):
    name = "input_x_gradient"
    description = "embedding times gradient per token; signed, one forward and backward"
    cost = "cheap"
    needs_gradients = True
    linear = one_pass = checks_draft = True

    def scores(self, inputs: AttributionInput, params: MethodParams) -> tuple[torch.Tensor, dict[str, Any]]:
        embeds, grads = target_gradients(inputs, heatmap=input_x_gradient)
        n = inputs.n_source
        return input_x_gradient(embeds[:n], grads[:, :n]), {}
