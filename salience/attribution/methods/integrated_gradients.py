"""Integrated gradients on input embeddings (Sundararajan et al. 2017), alphas batched to a memory budget.

The whole input of step t (source and target prefix) moves from the baseline to its embedding, as
Captum and Inseq do; the matrix keeps the source columns. By causality, the interpolated sequence
x ++ y[:-1] at one alpha holds the interpolated input of every step t, so one forward per alpha serves
all targets and only the backward passes are per target (batched over that forward). The completeness gap
|sum_i S[t, i] - (f_t(e) - f_t(b))| is reported per target.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from salience.attribution.aggregation import sum_over_hidden
from salience.attribution.compute.gradients import (
    baseline_embedding,
    explained_quantity,
    gradient_batches,
    target_logits,
)
from salience.attribution.methods.base import AttributionInput, Method, MethodParams


class IGParams(MethodParams):
    steps: int = Field(default=32, ge=1, le=1024)
    rule: Literal["gausslegendre", "riemann_middle"] = "gausslegendre"
    baseline: str | int = Field(default="zero", description="zero, unk, pad, eos, mask or a token id")


def path_points(steps: int, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Alphas in (0, 1) and their quadrature weights (summing to 1)."""
    if rule == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(steps)
        return torch.tensor(0.5 * (x + 1)), torch.tensor(0.5 * w)
    alphas = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
    return alphas, torch.full((steps,), 1.0 / steps, dtype=torch.float64)


class IntegratedGradients(Method):
    name = "integrated_gradients"
    description = "path integral of gradients from a baseline; signed, complete, steps x cost"
    cost = "moderate"
    linear = True
    needs_gradients = True
    needs_baseline = True
    has_convergence_delta = True
    Params = IGParams

    def scores(self, inputs: AttributionInput, params: IGParams) -> tuple[torch.Tensor, dict[str, Any]]:
        embeds = inputs.embeddings()[0]
        base = baseline_embedding(inputs.loaded, params.baseline).expand_as(embeds)
        alphas, weights = path_points(params.steps, params.rule)
        alphas = alphas.to(embeds.device, embeds.dtype)
        diff = (embeds - base).float()
        weights = weights.float().to(embeds.device)
        total = torch.zeros((inputs.n_target, *embeds.shape), dtype=torch.float32, device=embeds.device)

        def embeds_for(items: range) -> torch.Tensor:
            return base + alphas[items.start : items.stop].view(-1, 1, 1) * (embeds - base)

        for items, grad in gradient_batches(inputs, params.steps, embeds_for, params.memory_budget_mb):
            total += torch.einsum("b,btnd->tnd", weights[items.start : items.stop], grad)
        attributions = sum_over_hidden(diff * total)
        gap = self._completeness_gap(inputs, embeds, base, attributions)
        return attributions[:, : inputs.n_source], {
            "completeness_gap": gap.tolist(),
            "max_completeness_gap": float(gap.max()),
        }

    @staticmethod
    def _completeness_gap(
        inputs: AttributionInput, embeds: torch.Tensor, base: torch.Tensor, attributions: torch.Tensor
    ) -> torch.Tensor:
        with torch.inference_mode():
            f = explained_quantity(
                target_logits(inputs.loaded, torch.stack([embeds, base]), inputs.n_target), inputs.target
            )
        return (attributions.sum(dim=1) - (f[0] - f[1])).abs()
