"""Out of memory: the same method with smaller batches, then a cheaper one with a warning; never a crash."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from salience.attribution import Request, ResultCache, explain, parse_prompt
from salience.attribution import methods as registry
from salience.attribution.compute.memory import is_out_of_memory
from salience.attribution.errors import ParameterError
from salience.attribution.methods.saliency import Saliency

PROMPT = parse_prompt("The vault code is 7733. Repeat the vault code:")


class NeedsSmallBatches(Saliency):
    """Runs out of memory above a budget of 200 MB (what a busy GPU would do)."""

    name = "needs_small_batches"
    budgets: ClassVar[list[int]] = []

    def scores(self, inputs, params):
        type(self).budgets.append(params.memory_budget_mb)
        if params.memory_budget_mb > 200:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().scores(inputs, params)


class NeverFits(Saliency):
    name = "never_fits"
    budgets: ClassVar[list[int]] = []

    def scores(self, inputs, params):
        NeverFits.budgets.append(params.memory_budget_mb)
        raise RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)")


class Broken(Saliency):
    name = "broken"

    def scores(self, inputs, params):
        raise RuntimeError("index 12 is out of bounds")


@pytest.fixture
def loaded(tiny_model_dir):
    from salience.attribution import load_model

    return load_model(str(tiny_model_dir))


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    for cls in (NeedsSmallBatches, NeverFits, Broken):
        monkeypatch.setitem(registry._REGISTRY, cls.name, cls)
    NeedsSmallBatches.budgets = []
    NeverFits.budgets = []


def test_out_of_memory_retries_with_smaller_batches(loaded):
    result = explain(loaded, PROMPT, Request(method="needs_small_batches", max_new_tokens=2))
    assert NeedsSmallBatches.budgets == [2048, 512, 128]
    assert result.method == "needs_small_batches" and result.parameters["memory_budget_mb"] == 128
    assert result.extras["memory_retries"] == 2 and not result.warnings()


def test_then_a_cheaper_method_with_a_warning_that_is_not_cached(loaded):
    cache = ResultCache()
    result = explain(loaded, PROMPT, Request(method="never_fits", max_new_tokens=2), cache=cache)
    assert result.method == "saliency" and any(abs(s) > 0 for s in result.aggregate)
    assert any("never_fits ran out of memory" in w and "showing saliency" in w for w in result.warnings())
    assert len(cache) == 0


def test_a_draft_the_stand_in_rejects_is_decoded_on_there_not_run_again_from_the_top(loaded):
    """The fallback checks an editor's draft in its own forward; where it fails, decoding resumes and the
    fallback runs again on the continuation: the method that did not fit is not tried all over again."""
    fresh = explain(loaded, PROMPT, Request(method="saliency", max_new_tokens=3))
    wrong = [(fresh.target_ids[0] + 1) % 64, *fresh.target_ids[1:]]
    result = explain(loaded, PROMPT, Request(method="never_fits", max_new_tokens=3, draft=wrong))
    assert NeverFits.budgets == [2048, 512, 128, 32, 16]  # the ladder once
    assert result.method == "saliency" and result.target_ids == fresh.target_ids
    assert result.extras["target"] == "draft rejected at token 1" and result.warnings()


def test_out_of_memory_everywhere_is_a_clear_error(loaded, monkeypatch):
    monkeypatch.setattr(Saliency, "scores", NeverFits.scores)
    with pytest.raises(ParameterError, match="out of memory on cpu even for saliency: shorten the prompt"):
        explain(loaded, PROMPT, Request(method="never_fits", max_new_tokens=2))


def test_other_errors_are_not_taken_for_memory(loaded):
    assert not is_out_of_memory(RuntimeError("index 12 is out of bounds"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"))
    with pytest.raises(RuntimeError, match="out of bounds"):
        explain(loaded, PROMPT, Request(method="broken", max_new_tokens=2))
