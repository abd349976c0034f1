"""Attention weights from the position that predicts y_t, averaged over heads: a cheap baseline.

Not a faithful explanation (attention is not attribution); shown for comparison. The model's
attention runs as usual (SDPA) while an attention function of ours, installed for this call only,
also computes the weights of the T rows that predict the targets: [heads, T, N] per layer where the
eager implementation's `output_attentions` keeps [heads, N, N] for every layer (69 GB for 8,000
tokens of the embedded model). Models that soft-cap attention logits keep the eager path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from salience.attribution.compute.patching import attention_implementation, changing
from salience.attribution.methods.base import AttributionInput, Method, MethodParams
from salience.attribution.methods.sig.chunked_attention import rows_mask

ROWS = "salience_attention_rows"


class AttentionParams(MethodParams):
    layers: Literal["last", "mean"] = "last"


class _Recording(threading.local):
    rows: range | None = None
    maps: list[torch.Tensor] | None = None


_recording = _Recording()


def rows_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attention_mask: torch.Tensor | None, **kwargs: Any) -> tuple[torch.Tensor, None]:  # fmt: skip
    """SDPA's output; the weights of the recorded query rows are kept aside ([B, H, rows, K] per layer)."""
    rows = _recording.rows
    if rows is not None and _recording.maps is not None:
        _recording.maps.append(
            row_weights(module, query, key, attention_mask, rows, kwargs.get("scaling"), kwargs.get("is_causal"))
        )
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def row_weights(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    rows: range,
    scaling: float | None,
    is_causal: bool | None = None,
) -> torch.Tensor:
    """softmax(q k^T * scaling + mask) for the query rows `rows` only, key heads repeated for grouped queries."""
    q_length, k_length = query.shape[2], key.shape[2]
    keys = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = (query[:, :, rows.start : rows.stop].float() @ keys.float().transpose(-1, -2)) * scale
    mask = rows_mask(module, attention_mask, rows, q_length, k_length, query.device, is_causal)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    return scores.softmax(dim=-1)


AttentionInterface.register(ROWS, rows_attention)
AttentionMaskInterface.register(ROWS, sdpa_mask)


@contextmanager
def recorded_rows(model: nn.Module, rows: range) -> Iterator[list[torch.Tensor]]:
    """Inside, each forward of `model` appends every layer's weights for the query rows `rows`."""
    maps: list[torch.Tensor] = []
    _recording.rows, _recording.maps = rows, maps
    try:
        with attention_implementation(model, ROWS):
            yield maps
    finally:
        _recording.rows, _recording.maps = None, None


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
        n, t = inputs.n_source, inputs.n_target
        maps = self.weights(inputs.loaded.model, inputs.sequence_ids(), range(n - 1, n - 1 + t))
        chosen = maps if params.layers == "mean" else maps[-1:]
        stacked = torch.stack([a[0].float() for a in chosen]).mean(dim=(0, 1))  # [T, N + T - 1]
        return stacked[:, :n], {}

    @staticmethod
    def weights(model: nn.Module, ids: torch.Tensor, rows: range) -> list[torch.Tensor]:
        """Every layer's attention weights [B, H, rows, N] of the query rows `rows`."""
        with torch.inference_mode():
            if getattr(model.config, "attn_logit_softcapping", None) is not None:
                with eager_attention(model):
                    out = model(input_ids=ids, output_attentions=True, logits_to_keep=1, use_cache=False)
                return [a[:, :, rows.start : rows.stop] for a in out.attentions]
            with recorded_rows(model, rows) as maps:
                model(input_ids=ids, logits_to_keep=1, use_cache=False)
            return maps
