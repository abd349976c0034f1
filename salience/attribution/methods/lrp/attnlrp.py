"""AttnLRP (Achtibat et al. 2024): LRP for transformers as input x modified gradient of the target logit.

One forward and one backward pass, like input x gradient, with the rules of `lrp_rules` installed for
this call only. Relevance is conserved except where a rule absorbs some by design (attention's softmax; biases):
per target step, `explained` is the logit (minus the foil's), `relevance_sum` its relevance over every position
of the sequence and `prompt_relevance` over the prompt alone, what the heatmap shows (benchmarks/conservation.py
finds where the rest goes, layer by layer).
LRP is patented (Fraunhofer); the reference library LXT is licensed for personal and research use.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from salience.attribution.compute.gradients import explained_logit, target_gradients
from salience.attribution.methods.base import AttributionInput, Method, MethodParams
from salience.attribution.methods.input_x_gradient import input_x_gradient
from salience.attribution.methods.lrp.architectures import attnlrp_rules, coverage_gap
from salience.attribution.model import LoadedModel
from salience.attribution.targets import Target


class AttnLRPParams(MethodParams):
    checkpointing: bool = Field(
        default=False,
        description="recompute each layer in the backward pass: less memory for long prompts, one more forward",
    )


class AttnLRP(Method):
    name = "attnlrp"
    description = "layer-wise relevance (AttnLRP) from the target logit; signed, one forward + backward"
    cost = "cheap"
    needs_gradients = True
    linear = one_pass = checks_draft = True
    Params = AttnLRPParams

    def coverage_gap(self, loaded: LoadedModel) -> str | None:
        return coverage_gap(loaded.model)

    def scores(self, inputs: AttributionInput, params: AttnLRPParams) -> tuple[torch.Tensor, dict[str, Any]]:
        explained: list[float] = []

        def logit(logits: torch.Tensor, target: Target) -> torch.Tensor:
            f = explained_logit(logits, target)
            explained[:] = f[0].tolist()
            return f

        with attnlrp_rules(inputs.loaded.model, checkpointing=params.checkpointing):
            embeds, grads = target_gradients(inputs, quantity=logit, heatmap=input_x_gradient)
        relevance = input_x_gradient(embeds, grads)  # [T, N]: every position, target prefix included
        prompt = relevance[:, : inputs.n_source]
        return prompt, {
            "explained": explained,
            "relevance_sum": relevance.sum(dim=1).tolist(),
            "prompt_relevance": prompt.sum(dim=1).tolist(),
        }
