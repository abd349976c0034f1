"""Running out of memory: retry with smaller batches, then a cheaper method, and say so.

A method's `memory_budget_mb` sizes its batches. When a run still does not fit (the budget is a
model of activation memory, and the device is shared), the same method runs again at a quarter of
the budget, down to `MIN_BUDGET_MB`; then `OOM_FALLBACK` (one forward and one backward) runs
instead, and the result carries a warning naming what happened. `ladder` lists these rungs; the
engine tries them in turn (`attempt`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from salience.attribution.methods import Method, MethodParams, get_method
from salience.attribution.progress import Progress

log = logging.getLogger(__name__)

MIN_BUDGET_MB = 16
OOM_FALLBACK = "saliency"
OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory")


@dataclass(frozen=True)
class Rung:
    """One try on the ladder: a method with its parameters (the memory budget set)."""

    method: Method
    params: MethodParams
    retries: int = 0
    """How many smaller budgets came before this one."""
    fallback_of: str | None = None
    """On the last rung: the method that ran out of memory, which `OOM_FALLBACK` stands in for."""

    def announce(self, progress: Progress) -> None:
        """Say why this rung runs (the first says nothing)."""
        if self.fallback_of is not None:
            progress(0.0, f"out of memory: running {self.method.name} instead")
        elif self.retries:
            log.warning(
                "%s ran out of memory: retrying with memory_budget_mb=%d",
                self.method.name,
                self.params.memory_budget_mb,
            )
            progress(0.0, f"out of memory: retrying {self.method.name} with smaller batches")

    def warning(self, device: torch.device) -> str | None:
        """What a result from this rung must say: that it is a stand-in (None: it is the method asked for)."""
        if self.fallback_of is None:
            return None
        return (
            f"{self.fallback_of} ran out of memory on {device} even with "
            f"memory_budget_mb={MIN_BUDGET_MB}: showing {self.method.name} instead"
        )


def ladder(method: Method, params: MethodParams) -> Iterator[Rung]:
    """The method at its budget, then at a quarter of it down to `MIN_BUDGET_MB`, then `OOM_FALLBACK`."""
    budget, retries = params.memory_budget_mb, 0
    yield Rung(method, params)
    while budget > MIN_BUDGET_MB:
        budget, retries = max(MIN_BUDGET_MB, budget // 4), retries + 1
        yield Rung(method, params.model_copy(update={"memory_budget_mb": budget}), retries)
    fallback = get_method(OOM_FALLBACK)
    yield Rung(fallback, fallback.parse_params({"memory_budget_mb": MIN_BUDGET_MB}), fallback_of=method.name)


def out_of_memory_error(device: torch.device) -> str:
    """The error when even the fallback does not fit."""
    return (
        f"out of memory on {device} even for {OOM_FALLBACK}: shorten the prompt (maxPromptTokens), "
        "or use a smaller model or another device"
    )


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
