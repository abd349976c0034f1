"""Our gradient methods and occlusion give Captum's numbers on the same embeddings (fp32, tiny Llama)."""

from __future__ import annotations

import pytest
import torch

from salience.attribution.methods import AttributionInput, get_method
from salience.attribution.targets import Target
from salience.evaluation.reference import captum_rows

TOLERANCE = 1e-4


CASES = [
    ("saliency", {}),
    ("input_x_gradient", {}),
    ("integrated_gradients", {"steps": 16, "rule": "gausslegendre", "baseline": "zero"}),
    ("integrated_gradients", {"steps": 8, "rule": "riemann_middle", "baseline": "unk"}),
    ("occlusion", {"window": 1, "baseline": "unk"}),
    ("occlusion", {"window": 1, "baseline": "zero"}),
]


@pytest.mark.parametrize("contrast", [False, True])
@pytest.mark.parametrize("method,params", CASES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(CASES)])
def test_matches_captum(tiny, tiny_case, method, params, contrast):
    source, target = tiny_case
    if contrast:
        target = Target(target.ids, [9, None, 50], target.generated)
    ours = get_method(method).attribute(AttributionInput(tiny, source, [None] * len(source), target), params)
    expected = captum_rows(tiny, source, target, method, **params)
    got = torch.tensor(ours.matrix)
    assert got.shape == expected.shape == (len(target.ids), len(source))
    assert (got - expected).abs().max().item() <= TOLERANCE
    assert expected.abs().max() > 1e-3  # the comparison is not between two zero matrices


def test_occlusion_window_matches_captum_first_step(tiny, tiny_case):
    """With no target prefix (step 0), windows cover the same tokens as Captum's sliding window."""
    source, target = tiny_case
    first = Target(target.ids[:1], [None], False)
    params = {"window": 3, "baseline": "pad"}
    ours = get_method("occlusion").attribute(AttributionInput(tiny, source, [None] * len(source), first), params)
    expected = captum_rows(tiny, source, first, "occlusion", **params)
    assert (torch.tensor(ours.matrix) - expected).abs().max().item() <= TOLERANCE


def test_integrated_gradients_completeness_gap_shrinks_with_steps(tiny, tiny_case):
    source, target = tiny_case
    gaps = []
    for steps in (2, 64):
        result = get_method("integrated_gradients").attribute(
            AttributionInput(tiny, source, [None] * len(source), target), {"steps": steps, "baseline": "unk"}
        )
        gaps.append(result.extras["max_completeness_gap"])
    assert gaps[1] < gaps[0]
    assert gaps[1] < 1e-3
