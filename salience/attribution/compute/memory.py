"""Running out of memory: retry with smaller batches, then a cheaper method, and say so.

A method's `memory_budget_mb` sizes its batches. When a run still does not fit (the budget is a
model of activation memory, and the device is shared), the same method runs again at a quarter of
the budget, down to `MIN_BUDGET_MB`; then `OOM_FALLBACK` (one forward and one backward) runs
instead, and the result carries a warning naming what happened.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import torch

from salience.attribution.errors import ParameterError
from salience.attribution.methods import AttributionInput, Method, get_method
from salience.attribution.result import AttributionResult

log = logging.getLogger(__name__)

MIN_BUDGET_MB = 16
OOM_FALLBACK = "saliency"
OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the RuntimeError that MPS and the CPU allocator raise."""
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and any(marker in str(err).lower() for marker in OOM_MARKERS)
    )


def free_memory(device: torch.device) -> None:
    """Give cached blocks back after a failed allocation, so the retry starts from a clean pool."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def attribute_within_memory(
    method: Method, inputs: AttributionInput, params: dict[str, Any] | None
) -> AttributionResult:
    """`method.attribute`, retried with smaller batches and then replaced by `OOM_FALLBACK` when out of memory."""
    budget = method.parse_params(params).memory_budget_mb
    retries = 0
    while True:
        run_params = {**(params or {}), "memory_budget_mb": budget} if retries else params
        if (result := _attempt(method, inputs, run_params)) is not None:
            if retries:
                result.extras["memory_retries"] = retries
            return result
        free_memory(inputs.loaded.device)
        if budget <= MIN_BUDGET_MB:
            break
        budget, retries = max(MIN_BUDGET_MB, budget // 4), retries + 1
        log.warning("%s ran out of memory: retrying with memory_budget_mb=%d", method.name, budget)
        inputs.progress(0.0, f"out of memory: retrying {method.name} with smaller batches")
    return _fallback(method, inputs)


def _attempt(method: Method, inputs: AttributionInput, params: dict[str, Any] | None) -> AttributionResult | None:
    """One run, or None when it ran out of memory (the exception, and the tensors its frames hold, dropped)."""
    try:
        return method.attribute(inputs, params)
    except (torch.OutOfMemoryError, RuntimeError) as err:
        if not is_out_of_memory(err):
            raise
        return None


def _fallback(method: Method, inputs: AttributionInput) -> AttributionResult:
    fallback = get_method(OOM_FALLBACK)
    inputs.progress(0.0, f"out of memory: running {fallback.name} instead")
    result = _attempt(fallback, inputs, {"memory_budget_mb": MIN_BUDGET_MB})
    if result is None:
        raise ParameterError(
            f"out of memory on {inputs.loaded.device} even for {fallback.name}: shorten the prompt "
            "(maxPromptTokens), or use a smaller model or another device"
        )
    result.extras["out_of_memory"] = (
        f"{method.name} ran out of memory on {inputs.loaded.device} even with "
        f"memory_budget_mb={MIN_BUDGET_MB}: showing {fallback.name} instead"
    )
    return result
