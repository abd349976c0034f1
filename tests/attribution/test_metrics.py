"""The faithfulness metrics themselves, on the tiny model: an oracle beats random, random is ~random."""

from __future__ import annotations

import statistics

import pytest
import torch

from salience.attribution.result import AttributionResult, SourceToken
from salience.evaluation.faithfulness import (
    _Runner,
    faithfulness,
    fixed_masks,
    hellinger,
    removal_masks,
    soft_masks,
)

SOURCE = [5, 17, 23, 8, 42, 11, 30, 7, 19, 44, 9, 13, 27, 36, 21, 50, 6, 33, 14, 25]
TARGET = [12, 33, 4]


def result_with(scores: list[float]) -> AttributionResult:
    source = [SourceToken(i, f"t{i}", (k, k + 1)) for k, i in enumerate(SOURCE)]
    return AttributionResult(
        source,
        TARGET,
        [f"t{i}" for i in TARGET],
        [scores] * len(TARGET),
        scores,
        "x",
        "oracle",
        {},
        "tiny-llama",
        False,
        generated=False,
    )


@pytest.fixture(scope="module")
def oracle(tiny) -> list[float]:
    """Leave-one-out: how far zeroing each token alone moves the next-token distributions."""
    runner = _Runner(tiny, result_with([1.0] * len(SOURCE)), 512, lambda: False)
    with torch.inference_mode():
        full = runner.logprobs(torch.ones(1, len(SOURCE)))
        alone = runner.logprobs(1.0 - torch.eye(len(SOURCE)))
    return hellinger(alone, full).mean(dim=-1).tolist()


def test_an_oracle_beats_random(tiny, oracle, margin):
    scores = faithfulness(tiny, result_with(oracle), samples=32, points=10)
    assert scores.nc_log_ratio > 0.0 and scores.ns_log_ratio < 0.0
    margin("an oracle's area over random's", scores.area - scores.random_area, above=0.0)
    assert scores.fixed_nc_log_ratio > 0.0 and scores.fixed_ns_log_ratio < 0.0
    inverted = faithfulness(tiny, result_with([1.0 / (1e-3 + v) for v in oracle]), samples=32, points=10)
    assert inverted.area < scores.area and inverted.nc_log_ratio < scores.nc_log_ratio


def test_random_scores_land_near_zero_log_ratio(tiny, margin):
    ratios = []
    for seed in range(6):
        scores = torch.rand(len(SOURCE), generator=torch.Generator().manual_seed(100 + seed)).tolist()
        f = faithfulness(tiny, result_with(scores), samples=16, points=5, seed=seed)
        ratios += [f.nc_log_ratio, f.ns_log_ratio]
    margin("random scores, |mean log ratio|", abs(statistics.mean(ratios)), below=0.25)


def test_masks_are_reproducible_by_seed(tiny, oracle):
    importance = torch.tensor(oracle) / max(oracle)
    first = soft_masks(importance, 8, torch.Generator().manual_seed(3))
    again = soft_masks(importance, 8, torch.Generator().manual_seed(3))
    other = soft_masks(importance, 8, torch.Generator().manual_seed(4))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])
    assert faithfulness(tiny, result_with(oracle), seed=3) == faithfulness(tiny, result_with(oracle), seed=3)


def test_fixed_rate_masks_keep_the_same_number_for_any_scores():
    generator = torch.Generator().manual_seed(0)
    peaked = torch.tensor([1.0] + [0.0] * 19)
    flat = torch.ones(20)
    for importance in (peaked, flat):
        keep, drop = fixed_masks(importance, 64, generator, rate=0.2)
        assert keep.sum(dim=1).tolist() == [4.0] * 64 and torch.equal(keep + drop, torch.ones(64, 20))
    keep, _ = fixed_masks(peaked, 64, generator, rate=0.2)
    assert keep[:, 0].all()  # the one scored token is always drawn; the rest fill up the count


def test_removal_order():
    keep = removal_masks(torch.tensor([0.1, 0.9, 0.5, 0.3]), points=4, most_first=True)
    assert keep.tolist() == [[1, 1, 1, 1], [1, 0, 1, 1], [1, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]
    least = removal_masks(torch.tensor([0.1, 0.9, 0.5, 0.3]), points=4, most_first=False)
    assert least[1].tolist() == [0, 1, 1, 1]


def test_curves_are_normalised(tiny, oracle):
    f = faithfulness(tiny, result_with(oracle), points=4)
    assert f.morf[0] == pytest.approx(1.0) and f.morf[-1] == pytest.approx(0.0)
    assert f.lerf[0] == pytest.approx(1.0) and f.lerf[-1] == pytest.approx(0.0)
    assert "× random" in f.summary()
