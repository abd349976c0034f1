"""LIME and KernelSHAP against Captum's `Lime` and `KernelShap`: on the tiny model's coalition game, the
same masks and kernel give the same coefficients; and the methods end to end (seeds, efficiency)."""

from __future__ import annotations

import pytest
import torch
from captum._utils.models.linear_model import SkLearnLinearRegression, SkLearnRidge
from captum.attr import KernelShap, Lime

from salience.attribution import get_method
from salience.attribution.methods import AttributionInput
from salience.attribution.methods.shapley.coalitions import AttentionCoalitions
from salience.attribution.methods.shapley.games import Game
from salience.attribution.methods.shapley.surrogate import fit_linear, kernel_weights, lime_weights
from salience.attribution.targets import Target

SOURCE = [3, 5, 17, 23, 8, 42, 11, 30, 7]
TARGET = Target([12, 33], [None, None], generated=False)
PLAYERS = [[1], [2, 3], [4], [5], [6, 7], [8]]


def inputs(loaded) -> AttributionInput:
    ranges = [None] + [(2 * i, 2 * i + 1) for i in range(1, len(SOURCE))]
    return AttributionInput(loaded, SOURCE, ranges, TARGET)


def captum_run(explainer_class, tiny, n_samples: int, **init):
    """Captum's explainer on the coalition game (inputs: all players present; baseline: none), and the
    masks it evaluated, in order."""
    game = Game(AttentionCoalitions(inputs(tiny), 2048), PLAYERS, "logprob")
    seen = []

    def forward(present: torch.Tensor) -> torch.Tensor:
        seen.append(present.bool())
        return game(present.bool()).sum(dim=1)

    torch.manual_seed(0)
    explainer = explainer_class(forward, **init)
    n = len(PLAYERS)
    coef = explainer.attribute(
        torch.ones(1, n), baselines=torch.zeros(1, n), feature_mask=torch.arange(n)[None], n_samples=n_samples
    )
    masks = torch.cat(seen)
    return coef[0], masks, game(masks).sum(dim=1, keepdim=True)


def test_kernel_shap_fit_equals_captums(tiny):
    coef, masks, values = captum_run(KernelShap, tiny, 80)
    ours, _ = fit_linear(masks, values, kernel_weights(masks))
    assert torch.allclose(ours[:, 0], coef.float(), atol=1e-4), (ours[:, 0], coef)
    assert float(ours.sum()) == pytest.approx(float(values[0] - values[1]), abs=1e-3)  # nearly efficient


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_lime_fit_equals_captums(tiny, alpha):
    model = SkLearnRidge(alpha=alpha) if alpha else SkLearnLinearRegression()
    coef, masks, values = captum_run(Lime, tiny, 60, interpretable_model=model)
    ours, _ = fit_linear(masks, values, lime_weights(masks, kernel_width=1.0), alpha=alpha)
    assert torch.allclose(ours[:, 0], coef.float(), atol=1e-4), (ours[:, 0], coef)


@pytest.mark.parametrize("name", ["lime", "kernelshap"])
def test_seeded_per_target_rows_on_word_players(tiny, name):
    method = get_method(name)
    first = method.attribute(inputs(tiny), {"seed": 1, "n_samples": 40})
    assert method.attribute(inputs(tiny), {"seed": 1, "n_samples": 40}).matrix == first.matrix
    assert method.attribute(inputs(tiny), {"seed": 2, "n_samples": 40}).matrix != first.matrix
    assert len(first.matrix) == 2 and first.matrix[0] != first.matrix[1]  # one fit per target step
    assert first.matrix[0][0] == 0.0  # the template token is never a player
    assert len(first.extras["players"]) == len(SOURCE) - 1 and first.extras["samples"] == 40


def test_kernel_shap_method_is_efficient(tiny):
    result = get_method("kernelshap").attribute(inputs(tiny), {"n_samples": 64, "level": "token"})
    game = Game(AttentionCoalitions(inputs(tiny), 2048), [[i] for i in range(1, len(SOURCE))], "logprob")
    ends = game(torch.tensor([[True] * 8, [False] * 8]))
    assert torch.allclose(torch.tensor(result.matrix).sum(dim=1), ends[0] - ends[1], atol=1e-3)
