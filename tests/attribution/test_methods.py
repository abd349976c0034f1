"""Every registered method: the same contract, tested the moment it is registered."""

from __future__ import annotations

import math

import pytest

from salience.attribution import ParameterError, UnknownMethodError, get_method, method_names
from salience.attribution.errors import Cancelled
from salience.attribution.methods import AttributionInput, Hooks, Method, register
from salience.attribution.result import AttributionResult
from salience.attribution.targets import Target


def run(tiny, source, target, name, params=None, **kw) -> AttributionResult:
    ranges = [(i, i + 1) for i in range(len(source))]
    return get_method(name).attribute(AttributionInput(tiny, source, ranges, target, hooks=Hooks(**kw)), params)


@pytest.mark.parametrize("name", method_names())
def test_contract(tiny, tiny_case, name):
    source, target = tiny_case
    seen: list[float] = []
    result = run(tiny, source, target, name, progress=lambda f, m="": seen.append(f))
    assert len(result.matrix) == len(target.ids)
    assert all(len(row) == len(source) for row in result.matrix)
    assert all(math.isfinite(v) for row in result.matrix for v in row)
    assert len(result.aggregate) == len(source)
    heatmap = [sum(column) for column in zip(*result.matrix)]  # the heatmap is the rows' sum
    assert max(abs(a - b) for a, b in zip(heatmap, result.aggregate)) < 1e-5
    assert not result.rows_pending
    assert result.method == name and "attribute" in result.timings
    assert seen and seen[-1] == 1.0
    assert AttributionResult.from_json(result.to_json()) == result


@pytest.mark.parametrize("name", method_names())
def test_cancel_stops_the_run(tiny, tiny_case, name):
    source, target = tiny_case
    with pytest.raises(Cancelled):
        run(tiny, source, target, name, cancelled=lambda: True)


@pytest.mark.parametrize("name", method_names())
def test_unknown_parameter_is_refused(tiny, tiny_case, name):
    source, target = tiny_case
    with pytest.raises(ParameterError, match="no_such_parameter"):
        run(tiny, source, target, name, {"no_such_parameter": 1})


@pytest.mark.parametrize("name", method_names())
def test_the_description_fits_one_line_of_a_method_picker(name):
    """VS Code's picker cut descriptions of 87 characters and more, 86 fit (make test-vscode's screenshot)."""
    assert 10 <= len(get_method(name).description) <= 84


def test_unknown_method_lists_known_ones():
    with pytest.raises(UnknownMethodError, match="saliency"):
        get_method("nope")


def test_registry_refuses_a_second_method_with_the_same_name():
    class Impostor(Method):
        name = "saliency"
        description, cost = "x", "cheap"

        def scores(self, inputs, params):
            raise AssertionError

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)


def test_batching_to_a_small_budget_gives_the_same_scores(tiny, tiny_case):
    source, target = tiny_case
    params = {"steps": 6}
    big = run(tiny, source, target, "integrated_gradients", {**params, "memory_budget_mb": 4096})
    small = run(tiny, source, target, "integrated_gradients", {**params, "memory_budget_mb": 16})
    assert max(abs(a - b) for ra, rb in zip(big.matrix, small.matrix) for a, b in zip(ra, rb)) < 1e-5


def test_occlusion_prefix_reuse_equals_full_forwards(tiny, tiny_case, monkeypatch):
    """Batches that start from a cached prefix give the drops of plain full forwards."""
    import salience.attribution.scoring as scoring

    source, target = tiny_case
    monkeypatch.setattr(scoring, "items_per_batch", lambda *a, **k: 2)  # prefixes 0, 2, 4, 6, 8
    cached = run(tiny, source, target, "occlusion")
    monkeypatch.setattr(scoring, "items_per_batch", lambda *a, **k: 10**6)  # one batch, no prefix
    full = run(tiny, source, target, "occlusion")
    assert max(abs(a - b) for ra, rb in zip(cached.matrix, full.matrix) for a, b in zip(ra, rb)) < 1e-5


def test_contrast_changes_the_explained_quantity(tiny, tiny_case):
    source, target = tiny_case
    plain = run(tiny, source, target, "input_x_gradient")
    foil = run(tiny, source, Target(target.ids, [9, 9, 9], False), "input_x_gradient")
    assert plain.matrix != foil.matrix
