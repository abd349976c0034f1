"""AttnLRP's propagation rules (Achtibat et al. 2024) as modified gradients, one per kind of operation.

Input x modified gradient of the target logit then gives relevance that is (nearly) conserved:
- element-wise non-linearities, RMSNorm (q/k norms too), soft-capping and clamps: identity rule, forward
  f(x), backward x gradient f(x)/x (for RMSNorm that is exactly "treat the normaliser as a constant");
- LayerNorm: the normaliser 1/sigma is a constant, the mean subtraction stays linear;
- gated products act(gate) * up (separate, fused or per expert): uniform rule, each factor's gradient halved;
- attention: gradient into query and key divided by 4, into value by 2; a soft-cap on its logits is
  linearised and learned sink logits are constants;
- a mixture of experts: the routing weights are constants, relevance flows through the chosen experts;
- linear layers, embeddings, residuals, multipliers and rotary embeddings: plain gradient.
A rule takes a module and returns the scoped changes (context managers) that install it on that instance;
`architectures.py` maps each architecture's module classes to these rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from salience.attribution.compute.patching import forward_replaced

ATTENTION = "salience_attnlrp"
Rule = Callable[[nn.Module], list[AbstractContextManager[Any]]]
"""The changes that install one rule on one module instance."""


def scale_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x in the forward pass; the gradient that flows back through it is multiplied by `factor`."""
    return x.detach() + factor * (x - x.detach())


def linearised(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """y in the forward pass; backward, the gradient times y/x (0 where x is exactly 0)."""
    zero = x == 0
    ratio = torch.where(zero, torch.zeros_like(y), y / torch.where(zero, torch.ones_like(x), x))
    return y.detach() + ratio.detach() * (x - x.detach())


def soft_cap(x: torch.Tensor, cap: float) -> torch.Tensor:
    """cap * tanh(x / cap) (Gemma 2's logits and attention scores), linearised: the identity rule."""
    return linearised(cap * torch.tanh(x / cap), x)


def attnlrp_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, **kwargs: Any) -> tuple[torch.Tensor, Any]:  # fmt: skip
    """Scaled dot-product attention with AttnLRP's gradient split over query, key and value."""
    query, key, value = scale_gradient(query, 0.25), scale_gradient(key, 0.25), scale_gradient(value, 0.5)
    softcap, sinks = kwargs.pop("softcap", None), getattr(module, "sinks", None)
    if softcap is None and sinks is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    return _explicit_attention(module, query, key, value, attention_mask, kwargs.get("scaling"), softcap, sinks)


def _explicit_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                        mask: torch.Tensor | None, scaling: float | None, softcap: float | None,
                        sinks: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Attention written out, for what SDPA cannot do: soft-capped scores (the identity rule) and learned
    sink logits (gpt-oss: a constant column in the softmax, dropped after it)."""
    groups = query.shape[1] // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    scores = query @ key.transpose(2, 3) * (scaling if scaling is not None else query.shape[-1] ** -0.5)
    if softcap is not None:
        scores = soft_cap(scores, softcap)
    if mask is None:
        q, k = scores.shape[-2:]
        mask = torch.ones((q, k), dtype=torch.bool, device=scores.device).tril(k - q)
    if mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    else:
        scores = scores + mask[..., : key.shape[-2]]
    if sinks is not None:
        column = sinks.detach().reshape(1, -1, 1, 1).expand(*scores.shape[:-1], 1).to(scores.dtype)
        scores = torch.cat([scores, column], dim=-1)
    weights = torch.softmax(scores.float(), dim=-1).to(query.dtype)
    weights = weights[..., :-1] if sinks is not None else weights
    return (weights @ value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION, attnlrp_attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def identity(module: nn.Module) -> list[AbstractContextManager[Any]]:
    """Element-wise non-linearities and RMSNorm: forward f(x), backward gradient x f(x)/x."""
    forward = module.forward

    def rule(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return linearised(forward(x, *args, **kwargs), x)

    return [forward_replaced(module, rule)]


def layer_norm(module: nn.Module) -> list[AbstractContextManager[Any]]:
    """LayerNorm with its normaliser held constant."""

    def rule(x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(-1, keepdim=True)
        y = centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + module.eps).detach()
        if module.weight is not None:
            y = y * module.weight
        return y + module.bias if module.bias is not None else y

    return [forward_replaced(module, rule)]


def gated_mlp(module: nn.Module) -> list[AbstractContextManager[Any]]:
    """down(act(gate(x)) * up(x)) with the product's gradient halved (the activation has its own rule)."""

    def rule(x: torch.Tensor) -> torch.Tensor:
        return module.down_proj(scale_gradient(module.act_fn(module.gate_proj(x)) * module.up_proj(x), 0.5))

    return [forward_replaced(module, rule)]


def fused_gated_mlp(module: nn.Module) -> list[AbstractContextManager[Any]]:
    """Phi-3's MLP: gate and up from one fused projection, then as `gated_mlp`."""

    def rule(x: torch.Tensor) -> torch.Tensor:
        gate, up = module.gate_up_proj(x).chunk(2, dim=-1)
        return module.down_proj(scale_gradient(up * module.activation_fn(gate), 0.5))

    return [forward_replaced(module, rule)]


def fused_experts(module: nn.Module) -> list[AbstractContextManager[Any]]:
    """Experts stored as [E, 2I, d] gate-up and [E, d, I] down tensors (Qwen3-MoE, Mixtral, OLMoE): each chosen
    expert is a gated MLP (`gated_mlp`'s rule), weighted by its routing weight held constant."""

    def rule(hidden: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(hidden)
        weights = top_k_weights.detach()
        for expert in top_k_index.unique().tolist():
            if expert >= module.num_experts:
                continue
            token, slot = torch.where(top_k_index == expert)
            gate, up = nn.functional.linear(hidden[token], module.gate_up_proj[expert]).chunk(2, dim=-1)
            gated = scale_gradient(module.act_fn(gate) * up, 0.5)
            expert_out = nn.functional.linear(gated, module.down_proj[expert]) * weights[token, slot, None]
            out = out.index_add(0, token, expert_out.to(out.dtype))
        return out

    return [forward_replaced(module, rule)]


def interleaved_experts(module: nn.Module) -> list[AbstractContextManager[Any]]:
    """gpt-oss's experts: gate and up interleaved in one [E, d, 2I] tensor with biases, both clamped, and
    (up + 1) * gate * sigmoid(alpha * gate). Clamps and the gate's activation take the identity rule; of
    (up + 1) * glu = up * glu + glu, the product takes the uniform rule and glu passes as it is, so the
    expert conserves what its biases do not absorb. Routing weights are constants, as in `fused_experts`."""

    def rule(hidden: torch.Tensor, router_indices: torch.Tensor, routing_weights: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(hidden)
        weights = routing_weights.detach()
        for expert in router_indices.unique().tolist():
            token, slot = torch.where(router_indices == expert)
            gate_up = hidden[token] @ module.gate_up_proj[expert] + module.gate_up_proj_bias[expert]
            gate, up = gate_up[..., ::2], gate_up[..., 1::2]
            gate = linearised(gate.clamp(max=module.limit), gate)
            up = linearised(up.clamp(min=-module.limit, max=module.limit), up)
            glu = linearised(gate * torch.sigmoid(gate * module.alpha), gate)
            gated = scale_gradient(up * glu, 0.5) + glu
            expert_out = (gated @ module.down_proj[expert] + module.down_proj_bias[expert]) * weights[token, slot, None]
            out = out.index_add(0, token, expert_out.to(out.dtype))
        return out

    return [forward_replaced(module, rule)]


def constant_router(module: nn.Module) -> list[AbstractContextManager[Any]]:
    """A mixture's router: its routing weights are constants (no relevance flows into the routing)."""
    forward = module.forward

    def rule(*args: Any, **kwargs: Any) -> Any:
        return tuple(out.detach() if isinstance(out, torch.Tensor) else out for out in forward(*args, **kwargs))

    return [forward_replaced(module, rule)]


def soft_capped_head(module: nn.Module) -> list[AbstractContextManager[Any]]:
    """A model whose logits are soft-capped (Gemma 2 and 3): the cap moves into the head, linearised."""
    cap = getattr(module.config, "final_logit_softcapping", None)
    if cap is None:
        return []
    head = module.get_output_embeddings()
    forward = head.forward
    return [
        _config_value(module.config, "final_logit_softcapping", None),
        forward_replaced(head, lambda x: soft_cap(forward(x), cap)),
    ]


@contextmanager
def _config_value(config: Any, name: str, value: Any) -> Iterator[None]:
    """`config.name` set to `value` inside the block."""
    previous = getattr(config, name)
    setattr(config, name, value)
    try:
        yield
    finally:
        setattr(config, name, previous)
