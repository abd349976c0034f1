"""AttnLRP's propagation rules (Achtibat et al. 2024) as modified gradients, on one model for one call.

Input x modified gradient of the target logit then gives relevance that is (nearly) conserved:
- element-wise non-linearities and RMSNorm: identity rule, forward f(x), backward x gradient f(x)/x
  (for RMSNorm that is exactly "treat the normaliser as a constant");
- LayerNorm: the normaliser 1/sigma is a constant, the mean subtraction stays linear;
- gated MLP products act(gate) * up: uniform rule, the gradient to each factor halved;
- attention: gradient into query and key divided by 4, into value by 2;
- linear layers, embeddings, residuals and rotary embeddings: plain gradient.
`attnlrp_rules(model)` installs them on that model instance only (wrapped forwards and an attention
function of its own) and restores everything on exit, whatever happens inside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from salience.attribution.compute.patching import (
    attention_implementation,
    checkpointed_layers,
    forward_replaced,
)
from salience.attribution.errors import ModelLoadError

SUPPORTED_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gpt2", "phi")
"""Model types whose modules the rules below cover (SmolLM is a Llama)."""
ACTIVATION_ATTRIBUTES = ("act_fn", "act", "activation_fn")
ATTENTION = "salience_attnlrp"


def scale_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x in the forward pass; the gradient that flows back through it is multiplied by `factor`."""
    return x.detach() + factor * (x - x.detach())


def linearised(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """y in the forward pass; backward, the gradient times y/x (0 where x is exactly 0)."""
    zero = x == 0
    ratio = torch.where(zero, torch.zeros_like(y), y / torch.where(zero, torch.ones_like(x), x))
    return y.detach() + ratio.detach() * (x - x.detach())


def attnlrp_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, **kwargs: Any) -> tuple[torch.Tensor, Any]:  # fmt: skip
    """Scaled dot-product attention with AttnLRP's gradient split over query, key and value."""
    return sdpa_attention_forward(
        module,
        scale_gradient(query, 0.25),
        scale_gradient(key, 0.25),
        scale_gradient(value, 0.5),
        attention_mask,
        **kwargs,
    )


AttentionInterface.register(ATTENTION, attnlrp_attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def supported(model: nn.Module) -> bool:
    """Whether the rules below cover `model`'s architecture."""
    return getattr(model.config, "model_type", None) in SUPPORTED_TYPES


def check_supported(model: nn.Module) -> None:
    if not supported(model):
        model_type = getattr(model.config, "model_type", None)
        raise ModelLoadError(
            f"attnlrp does not support model type {model_type!r}; supported: "
            f"{', '.join(SUPPORTED_TYPES)} (SmolLM is llama)"
        )


@contextmanager
def attnlrp_rules(model: nn.Module, checkpointing: bool = False) -> Iterator[None]:
    """Apply the rules to `model` (and optionally checkpoint each layer) inside the block only."""
    check_supported(model)
    with ExitStack() as stack:
        for module in model.modules():
            for forward in _rule_forwards(module):
                stack.enter_context(forward_replaced(*forward))
        if checkpointing:
            stack.enter_context(checkpointed_layers(model))
        stack.enter_context(attention_implementation(model, ATTENTION))
        stack.enter_context(_eval_mode(model))
        yield


def _rule_forwards(module: nn.Module) -> list[tuple[nn.Module, Callable[..., Any]]]:
    """(module, new forward) pairs for the rule that applies to `module`, if any."""
    name = type(module).__name__
    if isinstance(module, nn.LayerNorm):
        return [(module, _layer_norm(module))]
    if name.endswith("RMSNorm"):
        return [(module, _identity_rule(module.forward))]
    if not name.endswith("MLP"):
        return []
    activation = next((getattr(module, a) for a in ACTIVATION_ATTRIBUTES if hasattr(module, a)), None)
    if not isinstance(activation, nn.Module):
        raise ModelLoadError(f"attnlrp: {name} has no activation module it knows ({', '.join(ACTIVATION_ATTRIBUTES)})")
    forwards = [(activation, _identity_rule(activation.forward))]
    if all(hasattr(module, a) for a in ("gate_proj", "up_proj", "down_proj")):
        forwards.append((module, _gated_mlp(module, activation)))
    return forwards


def _identity_rule(forward: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def rule(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return linearised(forward(x, *args, **kwargs), x)

    return rule


def _layer_norm(module: nn.LayerNorm) -> Callable[[torch.Tensor], torch.Tensor]:
    def rule(x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(-1, keepdim=True)
        y = centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + module.eps).detach()
        if module.weight is not None:
            y = y * module.weight
        return y + module.bias if module.bias is not None else y

    return rule


def _gated_mlp(module: nn.Module, activation: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def rule(x: torch.Tensor) -> torch.Tensor:
        return module.down_proj(scale_gradient(activation(module.gate_proj(x)) * module.up_proj(x), 0.5))

    return rule


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Dropout off for the call."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
