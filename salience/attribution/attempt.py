"""One try of a method on one rung of the memory ladder, as a value: scores, a rejected draft, or out of memory.

A draft target (the editor's last continuation) is checked inside the method's first forward
(`DraftCheck`, a hook the method calls with that forward's logits). Where the draft is not the greedy
continuation, the check ends the method there and `attempt` returns the verdict with the forward's
KV cache, so decoding resumes from it and no forward is wasted. Running out of memory is the other
way a try ends early. This module is the one place where either is caught; the engine sees values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from salience.attribution.compute.memory import Rung, free_memory, is_out_of_memory
from salience.attribution.methods import AttributionInput
from salience.attribution.result import AttributionResult
from salience.attribution.targets import DraftVerdict, judge_draft


@dataclass(frozen=True)
class Scores:
    """The method ran to the end."""

    result: AttributionResult


@dataclass(frozen=True)
class Rejected:
    """The draft is not the greedy continuation: what its forward established, and that forward's KV cache
    over prompt ++ draft (detached; None where it had none)."""

    verdict: DraftVerdict
    cache: Any | None


@dataclass(frozen=True)
class OutOfMemory:
    """The method ran out of memory (its tensors are freed)."""


Outcome = Scores | Rejected | OutOfMemory


class _Stop(Exception):
    """Carries a rejected draft from the method's forward back to `attempt`, and no further."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__("the draft continuation is not the greedy one")
        self.rejected = rejected


@dataclass(frozen=True)
class DraftCheck:
    """Checks a draft target on the logits of a forward over x ++ y (one more step than the target)."""

    stops: set[int]
    max_new_tokens: int
    margin: float

    def __call__(self, logits: torch.Tensor, draft: list[int], cache: Any | None = None) -> None:
        """Return if `draft` is the greedy continuation; else end the method (`attempt` returns `Rejected`)."""
        verdict = judge_draft(logits, draft, self.stops, self.max_new_tokens, self.margin)
        if not (verdict.finished and verdict.ids == draft):
            raise _Stop(Rejected(verdict, _detached(cache)))


def attempt(rung: Rung, inputs: AttributionInput) -> Outcome:
    """Run the rung's method on `inputs`; a rejected draft and out of memory come back as values."""
    try:
        return Scores(rung.method.attribute(inputs, rung.params))
    except _Stop as stop:
        return stop.rejected
    except (torch.OutOfMemoryError, RuntimeError) as err:
        if not is_out_of_memory(err):
            raise
    free_memory(inputs.loaded.device)  # outside the handler: the exception and its frames' tensors are gone
    return OutOfMemory()


def _detached(cache: Any | None) -> Any | None:
    """A KV cache from a forward with gradients, cut from its graph (None where its layers are not known)."""
    try:
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys.detach(), layer.values.detach()
    except AttributeError:
        return None
    return cache
