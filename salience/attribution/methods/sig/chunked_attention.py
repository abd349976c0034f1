"""Attention over blocks of query rows, so a long prompt never holds a [heads, N, N] score matrix.

The fused SDPA kernels keep attention's memory linear in the prompt, but forward-mode
differentiation has to run the math backend (`forward_mode`), which builds the scores, their softmax
and the tangents of both for every head at once: 2.3 GB each for 8,000 tokens and 9 heads. Here the
queries go through in blocks whose score matrix fits `BLOCK_BYTES`; each row's softmax is the same as
in one piece, so results are unchanged. Short prompts take one block (the plain call).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

CHUNKED = "salience_chunked"
"""Its name for `patching.attention_implementation`."""
BLOCK_BYTES = 64 << 20
"""Bytes of one block's score matrix (batch x heads x rows x keys)."""


def block_rows(query: torch.Tensor, key_length: int, block_bytes: int) -> int:
    """Query rows per block: at least one."""
    batch, heads, _, _ = query.shape
    return max(1, block_bytes // (batch * heads * key_length * query.element_size()))


def chunked_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, **kwargs: Any) -> tuple[torch.Tensor, None]:  # fmt: skip
    """SDPA on blocks of query rows, concatenated: the [B, Q, H, d] output of one call."""
    q_length, k_length = query.shape[2], key.shape[2]
    rows = block_rows(query, k_length, BLOCK_BYTES)
    if rows >= q_length:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    is_causal = kwargs.pop("is_causal", None)
    bias = kwargs.pop("position_bias", None)
    outputs = []
    for start in range(0, q_length, rows):
        stop = min(q_length, start + rows)
        mask = rows_mask(module, attention_mask, range(start, stop), q_length, k_length, query.device, is_causal)
        out, _ = sdpa_attention_forward(
            module,
            query[:, :, start:stop],
            key,
            value,
            mask,
            is_causal=False,
            position_bias=mask_rows(bias, start, stop),
            **kwargs,
        )
        outputs.append(out)
    return torch.cat(outputs, dim=1), None


def rows_mask(
    module: nn.Module,
    attention_mask: torch.Tensor | None,
    rows: range,
    q_length: int,
    k_length: int,
    device: torch.device,
    is_causal: bool | None = None,
) -> torch.Tensor | None:
    """The mask of query rows `rows`: the model's own, else causal rows for a causal module, else None."""
    if attention_mask is not None:
        return mask_rows(attention_mask, rows.start, rows.stop)
    if is_causal if is_causal is not None else getattr(module, "is_causal", True):
        return causal_rows(rows.start, rows.stop, q_length, k_length, device)
    return None


def mask_rows(mask: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    """Rows start:stop of a [B, H or 1, Q, K] mask or bias (one broadcast row stays as it is)."""
    if mask is None or mask.shape[-2] == 1:
        return mask
    return mask[..., start:stop, :]


def causal_rows(start: int, stop: int, q_length: int, k_length: int, device: torch.device) -> torch.Tensor:
    """[1, 1, rows, K] booleans: query i (after k_length - q_length cached keys) sees keys up to its own."""
    positions = torch.arange(start, stop, device=device) + (k_length - q_length)
    return (torch.arange(k_length, device=device) <= positions.unsqueeze(1)).view(1, 1, stop - start, k_length)


AttentionInterface.register(CHUNKED, chunked_attention)
AttentionMaskInterface.register(CHUNKED, sdpa_mask)
