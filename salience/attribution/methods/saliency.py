"""Saliency: the L2 norm of d f_t / d e_i over the embedding dimension (Simonyan et al. 2014)."""

from __future__ import annotations

from typing import Any

import torch

from salience.attribution.aggregation import l2_over_hidden
from salience.attribution.methods.base import (AttributionInput, Method, MethodParams, Quantity, explained_quantity,
                                              gradient_batches)


def target_gradients(inputs: AttributionInput, params: MethodParams,
                     quantity: Quantity = explained_quantity) -> tuple[torch.Tensor, torch.Tensor]:
    """Input embeddings [N, d] and d f_t / d e for every target step t: [T, N, d] (fp32)."""
    embeds = inputs.embeddings()
    ((_, grads),) = gradient_batches(inputs, 1, lambda items: embeds, params.memory_budget_mb, quantity)
    return embeds[0].float(), grads[0]


class Saliency(Method):
    name = "saliency"
    description = "gradient magnitude per token; unsigned"
    cost = "cheap"
    needs_gradients = True
    signed = False

    def scores(self, inputs: AttributionInput, params: MethodParams) -> tuple[torch.Tensor, dict[str, Any]]:
        _, grads = target_gradients(inputs, params)
        return l2_over_hidden(grads[:, :inputs.n_source]), {}
