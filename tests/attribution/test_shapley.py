"""Shapley estimators on games whose values are known in closed form, the KernelSHAP sampler, and the
prompt's players (segments, sentences, words)."""

from __future__ import annotations

import pytest
import torch

from salience.attribution.methods.shapley.estimators import (
    antithetic_masks,
    exact_shapley,
    permutation_shapley,
)
from salience.attribution.methods.shapley.players import Boundaries, file_tokens
from salience.attribution.methods.shapley.surrogate import fit_linear, kernel_masks, kernel_weights
from salience.prompt.words import word_starts

WEIGHTS = torch.tensor([0.5, -1.0, 2.0, 0.0, 0.25, -0.75, 1.5, 0.1])
PAIR, TRIPLE = 3.0, -1.2


def closed_form_game(masks: torch.Tensor) -> torch.Tensor:
    """Additive part + a pair interaction (players 0, 1) + a triple (2, 3, 4), with two outputs (K = 2)."""
    x = masks.double()
    first = x @ WEIGHTS.double() + PAIR * x[:, 0] * x[:, 1] + TRIPLE * x[:, 2] * x[:, 3] * x[:, 4]
    return torch.stack([first, 2 * x[:, 7] - 1.0], dim=1)


def closed_form_values() -> torch.Tensor:
    """Shapley splits each interaction equally among its players; column 2 is additive in player 7."""
    phi = WEIGHTS.clone().double()
    phi[[0, 1]] += PAIR / 2
    phi[[2, 3, 4]] += TRIPLE / 3
    second = torch.zeros(8, dtype=torch.float64)
    second[7] = 2.0
    return torch.stack([phi, second], dim=1).float()


def test_exact_enumeration_gives_the_closed_form():
    estimate = exact_shapley(closed_form_game, 8)
    assert torch.allclose(estimate.values, closed_form_values(), atol=1e-5)
    assert estimate.exact and estimate.stderr.eq(0).all()


def test_antithetic_masks_grow_along_each_permutation():
    order = torch.tensor([[2, 0, 1], [1, 0, 2]])
    masks = antithetic_masks(order)
    assert masks.shape == (2, 4, 3)
    assert masks[0].tolist() == [[False, False, False], [False, False, True], [True, False, True], [True, True, True]]


def test_permutation_sampling_converges_to_the_closed_form_and_is_always_efficient(margin):
    truth = closed_form_values()
    errors = []
    for permutations in (8, 512):
        estimate = permutation_shapley(
            closed_form_game,
            8,
            torch.Generator().manual_seed(0),
            tolerance=0.0,
            max_permutations=permutations,
            pairs_per_round=4,
        )
        full = closed_form_game(torch.ones(1, 8, dtype=torch.bool)) - closed_form_game(
            torch.zeros(1, 8, dtype=torch.bool)
        )
        assert torch.allclose(estimate.values.sum(dim=0), full[0].float(), atol=1e-5)  # efficiency, any sample size
        assert estimate.permutations == permutations and not estimate.tolerance_met
        errors.append(float((estimate.values - truth).abs().max()))
    within = (estimate.values.sum(dim=1) - truth.sum(dim=1)).abs() <= 4 * estimate.stderr
    assert within.all(), (estimate.values, estimate.stderr)  # the standard errors hold at 512 permutations
    margin("permutation Shapley, error at 512 / error at 8 permutations", errors[1] / errors[0], below=1 / 3)
    margin("permutation Shapley, error at 512 permutations", errors[1], below=0.1)


def test_permutation_sampling_stops_at_the_tolerance_or_the_budget():
    estimate = permutation_shapley(
        closed_form_game, 8, torch.Generator().manual_seed(1), tolerance=0.05, max_permutations=10_000
    )
    mass = float(estimate.values.sum(dim=1).abs().sum())
    assert estimate.tolerance_met and estimate.permutations < 10_000 and estimate.stderr.max() <= 0.05 * mass
    calls = []
    spent = permutation_shapley(
        lambda m: calls.append(len(m)) or closed_form_game(m),
        8,
        torch.Generator().manual_seed(1),
        tolerance=0.0,
        max_permutations=10_000,
        exhausted=lambda: len(calls) >= 3,
    )
    assert len(calls) == 3 and not spent.tolerance_met


def test_kernel_shap_samples_follow_the_shapley_kernel():
    masks = kernel_masks(4000, 6, torch.Generator().manual_seed(0), paired=False)
    assert masks[0].all() and not masks[1].any()
    sizes = masks[2:].sum(dim=1)
    probs = torch.tensor([5 / (k * (6 - k)) for k in range(1, 6)])
    expected = probs / probs.sum()
    observed = torch.bincount(sizes, minlength=6)[1:].double() / len(sizes)
    assert torch.allclose(observed, expected.double(), atol=0.03), observed
    paired = kernel_masks(10, 6, torch.Generator().manual_seed(0), paired=True)
    assert torch.equal(paired[3], ~paired[2])
    assert kernel_weights(masks[:3]).tolist() == [1e6, 1e6, 1.0]


def test_kernel_fit_of_an_additive_game_recovers_its_weights():
    masks = kernel_masks(200, 8, torch.Generator().manual_seed(2), paired=True)
    values = closed_form_game(masks)
    coef, intercept = fit_linear(masks, values, kernel_weights(masks))
    assert torch.allclose(coef[:, 1], closed_form_values()[:, 1], atol=1e-4)
    assert intercept[1] == pytest.approx(-1.0, abs=1e-4)
    assert coef[:, 0].sum() == pytest.approx(float(values[0, 0] - values[1, 0]), abs=1e-3)  # efficiency


def boundaries_of(pieces: list[str], ranges: list[tuple[int, int] | None]) -> Boundaries:
    """The boundaries of pieces laid out contiguously (their text is the file)."""
    return Boundaries.of(pieces, ranges, word_starts("".join(pieces), ranges))


def _pieces(text_units: list[str]) -> tuple[list[str], list[tuple[int, int] | None]]:
    """Pieces with contiguous file ranges; None marks a template token."""
    ranges, at = [], 0
    for piece in text_units:
        if piece is None:
            ranges.append(None)
            continue
        ranges.append((at, at + len(piece)))
        at += len(piece)
    return [p or "" for p in text_units], ranges


def test_segments_sentences_and_words_of_a_rag_prompt():
    pieces, ranges = _pieces(
        [
            "Document",
            " 1",
            ":",
            " Paris",
            " is",
            " big",
            ".",
            "\n",
            "Document",
            " 2",
            ":",
            " Rome",
            ".",
            " It",
            " is",
            " old",
            ".",
            "\n\n",
            "Question",
            ":",
            " Which",
            "?",
        ]
    )
    boundaries = boundaries_of(pieces, ranges)
    tokens = file_tokens(ranges)
    segments = boundaries.split(tokens, "segment")
    assert [len(s) for s in segments] == [8, 10, 4]
    sentences = boundaries.split(segments[1], "sentence")
    assert [[pieces[i] for i in s] for s in sentences] == [
        ["Document", " 2", ":", " Rome", "."],
        [" It", " is", " old", ".", "\n\n"],
    ]
    assert len(boundaries.split(sentences[0], "word")) == 5


def test_chat_messages_are_segments_and_template_tokens_are_never_players():
    pieces, ranges = _pieces([None, "You", " are", " terse", ".", None, None, "Where", "?", None])
    boundaries = boundaries_of(pieces, ranges)
    tokens = file_tokens(ranges)
    assert boundaries.split(tokens, "segment") == [[1, 2, 3, 4], [7, 8]]


@pytest.mark.parametrize("units", [["第一句。", "第二句。"], ["Hi", " 👋🏽", ".", " Ok", "."]])
def test_sentences_of_cjk_and_emoji_text(units):
    pieces, ranges = _pieces(units)
    assert len(boundaries_of(pieces, ranges).split(file_tokens(ranges), "sentence")) == 2


def test_crlf_blank_lines_split_segments():
    pieces, ranges = _pieces(["One", ".", "\r\n", "\r\n", "Two", "."])
    assert len(boundaries_of(pieces, ranges).split(file_tokens(ranges), "segment")) == 2
