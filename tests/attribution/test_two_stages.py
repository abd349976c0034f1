"""The heatmap first, in one backward pass; the per-step rows after it, never delaying it.

The one-pass heatmap (the attribution of sum_t f_t) must equal the sum of the rows computed one by one,
and a newer request must be able to stop the run inside a pass and between the rows.
"""

from __future__ import annotations

import pytest

from salience.attribution import Request, explain, get_method, method_names, parse_prompt
from salience.attribution.errors import Cancelled
from salience.attribution.methods import AttributionInput, Hooks

ONE_PASS = [name for name in method_names() if get_method(name).one_pass]


def inputs(tiny, tiny_case, **kw) -> AttributionInput:
    source, target = tiny_case
    return AttributionInput(tiny, source, [(i, i + 1) for i in range(len(source))], target, hooks=Hooks(**kw))


def test_the_one_pass_methods_are_the_linear_gradient_ones():
    assert ONE_PASS == ["attnlrp", "input_x_gradient"]
    linear = [name for name in method_names() if get_method(name).linear]
    assert linear == [
        "attnlrp",
        "input_x_gradient",
        "integrated_gradients",
        "kernelshap",
        "lime",
        "occlusion",
        "sequential_integrated_gradients",
        "textgenshap",
    ]
    assert not get_method("saliency").linear  # a norm of the gradient: its heatmap needs every row


@pytest.mark.parametrize("name", ONE_PASS)
def test_the_one_pass_heatmap_is_the_sum_of_the_rows(tiny, tiny_case, name):
    first = []
    result = get_method(name).attribute(inputs(tiny, tiny_case, on_heatmap=first.append))
    (heatmap,) = first
    assert heatmap.rows_pending and heatmap.matrix == [] and not result.rows_pending
    assert heatmap.target_ids == result.target_ids and heatmap.method == result.method
    rows_sum = [sum(column) for column in zip(*result.matrix)]
    scale = max(abs(v) for v in rows_sum)
    assert max(abs(a - b) for a, b in zip(heatmap.aggregate, rows_sum)) <= 1e-5 * scale
    assert result.aggregate == heatmap.aggregate  # what is drawn does not change when the rows arrive
    assert {"attribute/forward", "attribute/backward", "attribute/rows"} <= set(result.timings)


@pytest.mark.parametrize("name", ONE_PASS)
def test_a_newer_request_stops_the_rows_after_the_heatmap(tiny, tiny_case, name):
    first = []
    with pytest.raises(Cancelled):
        get_method(name).attribute(inputs(tiny, tiny_case, on_heatmap=first.append, cancelled=lambda: bool(first)))
    assert len(first) == 1


@pytest.mark.parametrize("calls", [2, 4, 6, 7])
def test_a_pass_stops_inside_at_the_next_layer(tiny, tiny_case, calls):
    """Two layers: 4 checks in the forward (before and after each layer), 2 in the heatmap's backward
    (each layer's output gradient), then the same 2 in the rows' batched backward."""
    seen, first = [], []

    def stop() -> bool:
        seen.append(1)
        return len(seen) >= calls

    with pytest.raises(Cancelled):
        get_method("attnlrp").attribute(inputs(tiny, tiny_case, on_heatmap=first.append, stop=stop))
    assert len(seen) == calls  # stopped inside a pass, at the check that said so
    assert len(first) == (calls > 6)  # the heatmap came only where its pass was not stopped


@pytest.mark.embedded
def test_the_engine_shows_the_heatmap_before_the_rows(embedded, example):
    doc = parse_prompt(example("door-codes.prompt"))
    first = []
    result = explain(embedded, doc, Request(), on_heatmap=first.append)
    (heatmap,) = first
    assert heatmap.rows_pending and heatmap.explained_text == result.explained_text
    assert heatmap.timings["attribute"] < result.timings["attribute"]
    rows_sum = [sum(column) for column in zip(*result.matrix)]
    scale = max(abs(v) for v in rows_sum)
    assert max(abs(a - b) for a, b in zip(heatmap.aggregate, rows_sum)) <= 1e-4 * scale
