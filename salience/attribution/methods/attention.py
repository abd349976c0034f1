"""Attention weights from the position that predicts y_t, averaged over heads: a cheap baseline.

Not a faithful explanation (attention is not attribution); shown for comparison. Needs eager
attention, switched on for this call only and restored afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Literal

import torch

from salience.attribution.methods.base import AttributionInput, Method, MethodParams
from salience.attribution.patching import changing


class AttentionParams(MethodParams):
    layers: Literal["last", "mean"] = "last"


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Use the eager attention implementation (which returns weights) inside the block only."""
    previous = model.config._attn_implementation
    if previous == "eager":
        yield
        return
    model.set_attn_implementation("eager")
    try:
        with changing():
            yield
    finally:
        model.set_attn_implementation(previous)


class Attention(Method):
    name = "attention"
    description = "last-layer (or mean) attention, averaged over heads; a baseline, not faithful"
    cost = "cheap"
    signed = False
    Params = AttentionParams

    def scores(self, inputs: AttributionInput, params: AttentionParams) -> tuple[torch.Tensor, dict[str, Any]]:
        model = inputs.loaded.model
        with eager_attention(model), torch.inference_mode():
            out = model(input_ids=inputs.sequence_ids(), output_attentions=True, logits_to_keep=1, use_cache=False)
        maps = out.attentions if params.layers == "mean" else out.attentions[-1:]
        stacked = torch.stack([a[0].float() for a in maps]).mean(dim=(0, 1))  # [N, N]
        n, t = inputs.n_source, inputs.n_target
        rows = stacked[n - 1:n - 1 + t]
        return rows[:, :n], {}
