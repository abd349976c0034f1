"""Forward-mode differentiation of a causal LM: directional derivatives of every f_t in one pass.

A method that needs d f_t / d alpha along one direction of the input (for every target step t)
gets it from one forward pass on dual tensors (primal + tangent), at about twice the cost of a plain
forward, whatever the number of targets, where reverse mode needs one backward per target.
Two things make PyTorch's forward AD slow on a transformers model; `dual_forward` avoids both, for
this model and this call only:
- a dual `F.linear` runs three matrix products (the primal twice); `DualLinear` runs two;
- the LM head on a 3-D dual input broadcasts the [V, d] weight over the batch (a copy per row):
  the head runs here on the flattened last positions instead.
The fused SDPA kernels have no forward derivative, so attention runs the math backend, over blocks of
query rows (`chunked_attention`) so that a long prompt's scores are never all held at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from salience.attribution.compute.gradients import Quantity, explained_quantity
from salience.attribution.compute.patching import attention_implementation, forward_replaced
from salience.attribution.methods.sig.chunked_attention import CHUNKED
from salience.attribution.model import LoadedModel
from salience.attribution.targets import Target


class DualLinear(torch.autograd.Function):
    """`F.linear` whose forward derivative is one product (the weight is a constant here)."""

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.weight = inputs[1]

    @staticmethod
    def jvp(ctx: Any, x_t: torch.Tensor, weight_t: Any, bias_t: Any) -> torch.Tensor:
        return F.linear(x_t, ctx.weight)


def _dual_linear(module: nn.Linear):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return DualLinear.apply(x, module.weight, module.bias)

    return forward


@contextmanager
def dual_mode(model: nn.Module) -> Iterator[None]:
    """Inside: dual tensors flow through `model` cheaply; no autograd graph is built."""
    with ExitStack() as stack:
        for module in model.modules():
            if type(module) is nn.Linear:
                stack.enter_context(forward_replaced(module, _dual_linear(module)))
        stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        stack.enter_context(attention_implementation(model, CHUNKED))
        stack.enter_context(torch.no_grad())
        stack.enter_context(fwAD.dual_level())
        yield


def dual_quantity(
    loaded: LoadedModel,
    embeds: torch.Tensor,
    tangent: torch.Tensor,
    target: Target,
    quantity: Quantity = explained_quantity,
    plain: bool = True,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """f_t [B, T] of the embeddings and its derivative along `tangent` (both [B, T]).

    Call inside `dual_mode(loaded.model)`; `kwargs` go to the model (e.g. cache). With
    `plain` the LM head runs on the flattened last positions (see `plain_head`), else the whole model runs.
    """
    dual, n_target = fwAD.make_dual(embeds, tangent), len(target.ids)
    if plain:
        logits = _flat_head_logits(loaded, dual, n_target, **kwargs)
    else:
        logits = loaded.model(inputs_embeds=dual, logits_to_keep=n_target, **kwargs).logits
    f, df = fwAD.unpack_dual(quantity(logits, target))
    return f, df


def _flat_head_logits(loaded: LoadedModel, embeds: torch.Tensor, n_target: int, **kwargs: Any) -> torch.Tensor:
    """Logits [B, T, V] of the last `n_target` positions: the output embeddings on the base model's states."""
    model = loaded.model
    last = model.base_model(inputs_embeds=embeds, **kwargs).last_hidden_state[:, -n_target:]
    return model.get_output_embeddings()(last.reshape(-1, last.shape[-1])).view(*last.shape[:2], -1)


def plain_head(loaded: LoadedModel, embeds: torch.Tensor, target: Target, expected: torch.Tensor) -> bool:
    """Whether the output embeddings applied to the base model's states give `expected`, the model's f_t.

    True for most causal LMs; False where the model scales or soft-caps its logits (Gemma 2, Cohere).
    """
    with torch.no_grad():
        ours = explained_quantity(_flat_head_logits(loaded, embeds, len(target.ids), use_cache=False), target)
    return torch.allclose(ours, expected, rtol=1e-4, atol=1e-4)
