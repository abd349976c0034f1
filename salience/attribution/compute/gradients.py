"""What a gradient method differentiates, and its gradients: the explained quantity f_t, one forward
with T backward passes batched over it, and the two-stage pass (heatmap first, then the rows)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch

from salience.attribution.compute import batching
from salience.attribution.compute.batching import chunks, items_per_batch, long_pass
from salience.attribution.compute.patching import interruptible_layers
from salience.attribution.errors import ParameterError
from salience.attribution.progress import check_cancel
from salience.attribution.scoring import ZERO_VECTOR
from salience.attribution.targets import Target

if TYPE_CHECKING:
    from salience.attribution.methods.base import AttributionInput
    from salience.attribution.model import LoadedModel


Quantity = Callable[[torch.Tensor, Target], torch.Tensor]
"""What a gradient method differentiates: logits [B, T, V] and the target to f [B, T]."""


def explained_quantity(logits: torch.Tensor, target: Target) -> torch.Tensor:
    """f_t = log p(y_t) (minus log p(foil_t) with a contrast) from logits [B, T, V], in fp32: [B, T]."""
    return _target_minus_foil(torch.log_softmax(logits.float(), dim=-1), target)


def explained_logit(logits: torch.Tensor, target: Target) -> torch.Tensor:
    """f_t = logit of y_t (minus the foil's logit with a contrast), in fp32: [B, T]; what LRP conserves."""
    return _target_minus_foil(logits.float(), target)


def _target_minus_foil(scores: torch.Tensor, target: Target) -> torch.Tensor:
    ids = torch.tensor(target.ids, device=scores.device)
    f = scores.gather(-1, ids.expand(scores.shape[0], -1).unsqueeze(-1)).squeeze(-1)
    if target.contrastive:
        foil = torch.tensor([x if x is not None else -1 for x in target.foil_ids], device=scores.device)
        has_foil = foil >= 0
        g = scores.gather(-1, foil.clamp(min=0).expand(scores.shape[0], -1).unsqueeze(-1)).squeeze(-1)
        f = f - torch.where(has_foil, g, torch.zeros_like(g))
    return f


def target_logits(loaded: LoadedModel, embeds: torch.Tensor, n_target: int, **kwargs: Any) -> torch.Tensor:
    """Logits at the last `n_target` positions only (the LM head is large next to a small model)."""
    return loaded.model(inputs_embeds=embeds, logits_to_keep=n_target, use_cache=False, **kwargs).logits


def gradient_batches(
    inputs: AttributionInput,
    n_items: int,
    embeds_for: Callable[[range], torch.Tensor],
    budget_mb: int,
    quantity: Quantity = explained_quantity,
) -> Iterator[tuple[range, torch.Tensor]]:
    """Yield (items, d f_t / d embeds for every target t) as fp32 [B, T, N, d], batched to the budget.

    Each item is one teacher-forced sequence; by causality its forward gives every f_t, and the T
    backward passes run batched over that one forward (`is_grads_batched`): T times fewer forwards
    than explaining each target step with its own sequence.
    """
    n_target = inputs.n_target
    seq_len = inputs.n_source + n_target - 1
    loaded = inputs.loaded
    checkpointing = seq_len >= batching.CHECKPOINT_TOKENS  # a long prompt: one layer's activations at a time
    held = 2 if checkpointing else None
    size = items_per_batch(loaded, seq_len, n_target, budget_mb, vjps=n_target, layers_held=held)
    batches = chunks(n_items, size)
    for done, items in enumerate(batches):
        check_cancel(inputs.hooks.cancelled)
        embeds = embeds_for(items).detach().requires_grad_(True)
        with torch.enable_grad(), long_pass(loaded.model, seq_len) if checkpointing else nullcontext():
            f = quantity(target_logits(inputs.loaded, embeds, n_target), inputs.target)  # [B, T]
            grad = step_gradients(f, embeds)
        inputs.hooks.progress((done + 1) / len(batches), "gradients")
        yield items, grad


def step_gradients(f: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
    """d f_t / d embeds for every step t of f [B, T], as fp32 [B, T, N, d]: T backward passes batched."""
    n_target = f.shape[1]
    selectors = torch.eye(n_target, device=f.device).unsqueeze(1).expand(-1, f.shape[0], -1)
    (grad,) = torch.autograd.grad(f, embeds, grad_outputs=selectors, is_grads_batched=True)
    return grad.float().transpose(0, 1)


Heatmap = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A linear method's scores from embeddings [N, d] and a gradient [N, d] of f: [N]."""


def target_gradients(
    inputs: AttributionInput, quantity: Quantity = explained_quantity, heatmap: Heatmap | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input embeddings [N, d] and d f_t / d e for every target step t: [T, N, d] (fp32), from one forward.

    The forward first checks a draft target (`inputs.hooks.draft_check`). With `heatmap` and a listener for
    the first stage (`inputs.hooks.deliver`), one backward pass of sum_t f_t gives the heatmap, handed over
    before the rows (one batched backward over the same graph). `inputs.hooks.stop` can end any of these
    passes at a decoder layer.
    """
    loaded, n_target, timings = inputs.loaded, inputs.n_target, inputs.hooks.timings
    embeds = inputs.embeddings().requires_grad_(True)  # [1, N, d]
    checkpointing = embeds.shape[1] >= batching.CHECKPOINT_TOKENS
    staged = heatmap is not None and inputs.hooks.deliver is not None
    with torch.enable_grad(), long_pass(loaded.model, embeds.shape[1]) if checkpointing else nullcontext():
        with interruptible_layers(
            loaded.model, inputs.hooks.stop or inputs.hooks.cancelled
        ):  # one pass: stop inside it
            start = time.perf_counter()
            checking = inputs.target.draft and inputs.hooks.draft_check is not None
            out = loaded.model(
                inputs_embeds=embeds,
                logits_to_keep=n_target + 1 if inputs.target.draft else n_target,
                use_cache=checking and not checkpointing,
            )  # a rejected draft decodes on from it
            if checking:
                inputs.hooks.draft_check(out.logits[0].detach(), inputs.target.ids, out.cache)
            f = quantity(out.logits[:, :n_target], inputs.target)  # [1, T]
            start = _timed(timings, "attribute/forward", start)
            if staged:
                (total,) = torch.autograd.grad(f.sum(), embeds, retain_graph=True)
            else:
                grads = step_gradients(f, embeds)[0]
            start = _timed(timings, "attribute/backward", start)
        if staged:
            inputs.hooks.deliver(heatmap(embeds[0].detach().float(), total[0].float())[: inputs.n_source])
            check_cancel(inputs.hooks.cancelled)
            grads = step_gradients(f, embeds)[0]  # the layers' gradient hooks still stop it inside
            _timed(timings, "attribute/rows", start)
    return embeds[0].detach().float(), grads


def _timed(timings: dict[str, float], name: str, start: float) -> float:
    """Record the seconds since `start` under `name`; returns now, the next part's start."""
    now = time.perf_counter()
    timings[name] = now - start
    return now


def baseline_embedding(loaded: LoadedModel, baseline: str | int) -> torch.Tensor:
    """The [d] embedding that stands for 'no token': zero, or the unk/pad/eos/mask/given token's."""
    if baseline == "zero":
        dim = loaded.model.get_input_embeddings().embedding_dim
        return torch.zeros(dim, device=loaded.device, dtype=loaded.dtype)
    return loaded.embed(torch.tensor([baseline_id(loaded, baseline)]))[0].detach()


def baseline_id(loaded: LoadedModel, baseline: str | int) -> int:
    """The token id of a baseline (unk, pad, eos, mask or an id), or `scoring.ZERO_VECTOR` for zero."""
    if baseline == "zero":
        return ZERO_VECTOR
    return baseline if isinstance(baseline, int) else _special_id(loaded, baseline)


def _special_id(loaded: LoadedModel, name: str) -> int:
    token_id = getattr(loaded.tokenizer, f"{name}_token_id", None)
    if not isinstance(token_id, int):
        raise ParameterError(f"baseline {name!r}: this tokenizer has no {name} token; use 'zero' or a token id")
    return token_id
