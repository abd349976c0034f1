"""Sequential integrated gradients: Inseq's numbers, completeness, batching, words, progress, cancellation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_models import DENSE_SDPA_FAMILIES, tiny_family

from salience.attribution.errors import Cancelled
from salience.attribution.methods import AttributionInput, Hooks, get_method
from salience.attribution.methods.sig import sequential_integrated_gradients as sig
from salience.attribution.targets import Target
from salience.evaluation.reference import inseq_sig_rows

SIG = "sequential_integrated_gradients"
RAW = {"normalise": False}


def run(loaded, source, target, ranges=None, **params):
    ranges = ranges or [(2 * i, 2 * i + 1) for i in range(len(source))]  # one word per token
    return get_method(SIG).attribute(AttributionInput(loaded, source, ranges, target), params)


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]).double())[0, 1])


@pytest.mark.parametrize("contrast", [False, True])
@pytest.mark.parametrize(
    "params",
    [
        {"steps": 16, "rule": "gausslegendre", "baseline": "unk"},
        {"steps": 8, "rule": "riemann_middle", "baseline": "zero"},
    ],
)
def test_matches_inseq(tiny, tiny_case, params, contrast, margin):
    source, target = tiny_case
    if contrast:
        target = Target(target.ids, [9, None, 50], target.generated)
    ours = torch.tensor(run(tiny, source, target, granularity="token", **RAW, **params).matrix)
    expected = inseq_sig_rows(tiny, source, target, params["steps"], params["rule"], params["baseline"])
    assert ours.shape == expected.shape == (3, len(source))
    margin("SIG vs Inseq on the tiny model, largest difference", float((ours - expected).abs().max()), below=1e-4)
    assert pearson(ours, expected) >= 0.999
    assert expected.abs().max() > 1e-3


def test_a_token_path_integrates_to_occlusions_drop(tiny, tiny_case):
    """Per token, the scores integrate d f_t / d alpha: f_t(x) - f_t(x with the token at the baseline)."""
    source, target = tiny_case
    result = run(tiny, source, target, granularity="token", baseline="unk", **RAW)
    occlusion = get_method("occlusion").attribute(
        AttributionInput(tiny, source, [None] * len(source), target), {"baseline": "unk"}
    )
    assert torch.allclose(torch.tensor(result.matrix), torch.tensor(occlusion.matrix), atol=1e-5)
    assert result.extras["max_completeness_gap"] < 1e-5


def test_words_move_together_and_their_scores_sum_to_the_words_drop(tiny, tiny_case):
    source, target = tiny_case
    ranges = [(0, 2), (2, 4), (5, 7), (7, 9), (9, 11), (12, 14), (15, 17), (17, 19), (20, 22)]
    words = run(tiny, source, target, ranges, baseline="unk", **RAW)
    tokens = run(tiny, source, target, ranges, granularity="token", baseline="unk", **RAW)
    assert words.extras["paths"] == 5 and tokens.extras["paths"] == 9
    assert words.extras["max_completeness_gap"] < 1e-5
    got, single = torch.tensor(words.matrix), torch.tensor(tokens.matrix)
    assert torch.allclose(got[:, 5], single[:, 5], atol=1e-6)  # a one-token word: the same path
    assert (got[:, :2] - single[:, :2]).abs().max() > 1e-4  # in a two-token word, both tokens move


@pytest.mark.parametrize("budget_items", [1, 7, 40])
def test_batches_and_shared_prefixes_do_not_change_scores(tiny, tiny_case, monkeypatch, budget_items):
    source, target = tiny_case
    ranges = [(0, 2), (2, 4), (5, 7), (7, 9), (9, 11), (12, 14), (15, 17), (17, 19), (20, 22)]
    whole = torch.tensor(run(tiny, source, target, ranges, steps=6).matrix)
    monkeypatch.setattr(sig, "items_per_batch", lambda *a, **k: budget_items)
    batched = torch.tensor(run(tiny, source, target, ranges, steps=6).matrix)
    assert torch.allclose(whole, batched, atol=1e-5)


def test_template_tokens_cost_nothing_unless_asked(tiny, tiny_case):
    source, target = tiny_case
    ranges = [None, None, None] + [(2 * i, 2 * i + 1) for i in range(len(source) - 3)]
    skipped = run(tiny, source, target, ranges, steps=4, **RAW)
    included = run(tiny, source, target, ranges, steps=4, template_tokens=True, **RAW)
    assert skipped.extras["paths"] == 6 and included.extras["paths"] == 9
    assert torch.tensor(skipped.matrix)[:, :3].abs().max() == 0
    assert torch.allclose(torch.tensor(skipped.matrix)[:, 3:], torch.tensor(included.matrix)[:, 3:], atol=1e-6)


def test_rows_are_normalised_and_the_raw_rows_kept(tiny, tiny_case):
    source, target = tiny_case
    result = run(tiny, source, target, steps=4)
    matrix, raw = torch.tensor(result.matrix), torch.tensor(result.extras["raw_matrix"])
    assert torch.allclose(matrix.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(matrix * raw.norm(dim=1, keepdim=True), raw, atol=1e-6)
    assert result.extras["baseline"] == "unk"  # 'auto': the tiny tokenizer has no mask token


def test_progress_rises_and_cancel_stops_between_batches(tiny, tiny_case, monkeypatch):
    source, target = tiny_case
    monkeypatch.setattr(sig, "items_per_batch", lambda *a, **k: 10)
    seen: list[float] = []
    inputs = AttributionInput(
        tiny,
        source,
        [(i, i + 1) for i in range(len(source))],
        target,
        hooks=Hooks(progress=lambda fraction, message="": seen.append(fraction)),
    )
    get_method(SIG).attribute(inputs, {"steps": 4, "granularity": "token"})
    assert len(seen) > 3 and seen == sorted(seen) and seen[-1] == 1.0
    calls = []
    cancelling = AttributionInput(
        tiny,
        source,
        [None] * len(source),
        target,
        hooks=Hooks(cancelled=lambda: len(calls) > 1, progress=lambda fraction, message="": calls.append(fraction)),
    )
    with pytest.raises(Cancelled):
        get_method(SIG).attribute(cancelling, {"steps": 4, "template_tokens": True})
    assert len(calls) == 2


def test_the_whole_model_path_gives_the_same_scores(tiny, tiny_case, monkeypatch):
    """Where the flattened head would not reproduce the model's logits, the whole model runs instead."""
    source, target = tiny_case
    flat = torch.tensor(run(tiny, source, target, steps=4).matrix)
    monkeypatch.setattr(sig, "plain_head", lambda *args: False)
    whole = torch.tensor(run(tiny, source, target, steps=4).matrix)
    assert torch.allclose(flat, whole, atol=1e-5)


@pytest.mark.parametrize("family", DENSE_SDPA_FAMILIES)
def test_forward_mode_is_exact_on_every_family(family, tiny_case):
    """Forward-mode passes (patched linears, math attention, the flattened head) on each architecture."""
    loaded = tiny_family(family)
    source, target = tiny_case
    result = run(loaded, source, target, granularity="token", baseline="unk", **RAW)
    occlusion = get_method("occlusion").attribute(
        AttributionInput(loaded, source, [None] * len(source), target), {"baseline": "unk"}
    )
    assert torch.allclose(torch.tensor(result.matrix), torch.tensor(occlusion.matrix), atol=1e-5)


@pytest.mark.embedded
@pytest.mark.slow
def test_matches_inseq_on_the_embedded_model(embedded, margin):
    """Against Inseq's own SIG rows, stored by tests/data/reference/make.py."""
    from salience.attribution import parse_prompt
    from salience.attribution.tokens import encode_prompt

    oracle = json.loads((Path(__file__).parents[1] / "data/reference/sig_inseq.json").read_text(encoding="utf-8"))
    encoded = encode_prompt(parse_prompt(oracle["text"]), embedded.tokenizer, chat=False, sink=False)
    assert encoded.input_ids == oracle["source_ids"]
    # Inseq's greedy answer, forced: greedy decoding here could differ where two logits nearly tie
    target = Target(oracle["target_ids"], [None] * len(oracle["target_ids"]), generated=True)
    params = {"steps": oracle["steps"], "baseline": oracle["baseline"]}
    ours = run(embedded, encoded.input_ids, target, encoded.ranges, granularity="token", **params, **RAW)
    assert oracle["rule"] == "gausslegendre"  # our default quadrature
    agreement = pearson(torch.tensor(ours.matrix), torch.tensor(oracle["rows"]))
    margin("SIG vs Inseq on the embedded model, 1 - Pearson", 1 - agreement, below=0.01)
