"""Scoped changes to one model instance, undone on exit: what the methods install for one call.

`patched()` says whether any change is in place: a shared server lets another run use the model
between batches only when none is (another method would otherwise run on this one's rules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from salience.attribution.progress import check_cancel

_active = [0]


def patched() -> bool:
    """Whether a method's change to a model is in place now."""
    return _active[0] > 0


@contextmanager
def changing() -> Iterator[None]:
    """Mark a block that changes a model (so the model is not lent to another run inside it)."""
    _active[0] += 1
    try:
        yield
    finally:
        _active[0] -= 1


@contextmanager
def forward_replaced(module: nn.Module, forward: Callable[..., Any]) -> Iterator[None]:
    """An instance-level forward (restoring any the instance had, e.g. an accelerate hook).

    A module placed by accelerate keeps its hook around the new forward: the hook brings offloaded
    weights in (and moves inputs to the module's device) before it, and takes them out after.
    """
    had, previous = "forward" in module.__dict__, module.__dict__.get("forward")
    module.forward = _hooked(module, forward)
    try:
        with changing():
            yield
    finally:
        if had:
            module.forward = previous
        else:
            del module.forward


def _hooked(module: nn.Module, forward: Callable[..., Any]) -> Callable[..., Any]:
    hook = getattr(module, "_hf_hook", None)
    if hook is None:
        return forward

    def placed_forward(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = hook.pre_forward(module, *args, **kwargs)
        return hook.post_forward(module, forward(*args, **kwargs))

    placed_forward.checkpointed = getattr(forward, "checkpointed", False)  # type: ignore[attr-defined]
    return placed_forward


@contextmanager
def checkpointed_layers(model: nn.Module) -> Iterator[None]:
    """Recompute each decoder layer in the backward pass instead of keeping its activations.

    The graph then holds one layer's activations at a time (plus every layer's input): what lets a
    backward pass through a long prompt fit a memory budget, for one extra forward.
    """
    from torch.utils.checkpoint import checkpoint
    from transformers.modeling_layers import GradientCheckpointingLayer

    def checkpointed(forward: Callable[..., Any]) -> Callable[..., Any]:
        def layer(*args: Any, **kwargs: Any) -> Any:
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)

        layer.checkpointed = True  # type: ignore[attr-defined]
        return layer

    with ExitStack() as stack:
        for module in model.modules():
            if isinstance(module, GradientCheckpointingLayer) and not _is_checkpointed(module):
                stack.enter_context(forward_replaced(module, checkpointed(module.forward)))
        yield


@contextmanager
def interruptible_layers(model: nn.Module, stop: Callable[[], bool]) -> Iterator[None]:
    """Raise `Cancelled` inside a pass, at the next decoder layer, forward or backward, once `stop()` is true.

    A pass over a long prompt, or a one-pass heatmap, is a single batch: without this a newer edit would
    wait for it to end. Only hooks are added (on this model, for the block); nothing is given way to.
    """
    from transformers.modeling_layers import GradientCheckpointingLayer

    def check(*_: Any) -> None:
        check_cancel(stop)

    def watch_gradient(module: nn.Module, args: Any, output: Any) -> None:
        check_cancel(stop)
        hidden = output[0] if isinstance(output, tuple) else output
        if isinstance(hidden, torch.Tensor) and hidden.requires_grad:
            hidden.register_hook(check)

    handles = [
        hook
        for module in model.modules()
        if isinstance(module, GradientCheckpointingLayer)
        for hook in (module.register_forward_pre_hook(check), module.register_forward_hook(watch_gradient))
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _is_checkpointed(module: nn.Module) -> bool:
    """Whether a layer is checkpointed already (AttnLRP's option inside a long prompt's backward)."""
    forward = module.__dict__.get("forward")
    return bool(getattr(forward, "checkpointed", False))


@contextmanager
def attention_implementation(model: nn.Module, implementation: str) -> Iterator[None]:
    """Every config of `model` names `implementation` (a registered attention function) inside the block."""
    configs = [c for c in _configs(model) if hasattr(c, "_attn_implementation")]
    previous = [c._attn_implementation for c in configs]
    for config in configs:
        config._attn_implementation = implementation
    try:
        with changing():
            yield
    finally:
        for config, value in zip(configs, previous):
            config._attn_implementation = value


def _configs(model: nn.Module) -> list[Any]:
    seen: dict[int, Any] = {}
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None:
            seen.setdefault(id(config), config)
    return list(seen.values())
