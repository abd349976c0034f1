"""Saliency: the L2 norm of d f_t / d e_i over the embedding dimension (Simonyan et al. 2014)."""

from __future__ import annotations

from typing import Any

import torch

from salience.attribution.aggregation import l2_over_hidden
from salience.attribution.compute.gradients import target_gradients
from salience.attribution.methods.base import AttributionInput, Method, MethodParams


class Saliency(Method):
    name = "saliency"
    description = "gradient magnitude per token; unsigned"
    cost = "cheap"
    needs_gradients = True
    signed = False
    checks_draft = True

    def scores(self, inputs: AttributionInput, params: MethodParams) -> tuple[torch.Tensor, dict[str, Any]]:
        _, grads = target_gradients(inputs)
        return l2_over_hidden(grads[:, : inputs.n_source]), {}
