"""TextGenSHAP and the shared coalition runner on the tiny model: absent players equal attention masking,
efficiency, convergence to exact Shapley values, the hierarchy, the budget, progress and cancellation;
and on the embedded model, the rag example's relevant document."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from salience.attribution import get_method
from salience.attribution.errors import Cancelled
from salience.attribution.methods import AttributionInput, Hooks
from salience.attribution.methods.shapley.coalitions import AttentionCoalitions
from salience.attribution.methods.shapley.games import Game
from salience.attribution.methods.shapley.replaced import ReplacedCoalitions
from salience.attribution.targets import Target

SOURCE = [3, 5, 17, 23, 8, 42, 11, 30, 7, 19, 25, 9]
TARGET = Target([12, 33, 4], [None, None, None], generated=False)


def case(loaded, ranges=None, target=TARGET):
    ranges = ranges or [None] + [(2 * i, 2 * i + 1) for i in range(1, len(SOURCE))]  # a template token, then words
    return AttributionInput(loaded, SOURCE, ranges, target)


def three_segments():
    """Source tokens 1-3, 5-7 and 9-11 as three messages between template tokens (0, 4 and 8)."""
    ranges = [(2 * i, 2 * i + 1) for i in range(len(SOURCE))]
    for i in (0, 4, 8):
        ranges[i] = None
    return ranges


def masked_oracle(inputs: AttributionInput, absent: torch.Tensor) -> torch.Tensor:
    """f_t by transformers' own attention mask over the whole sequence (absent keys masked), read where
    each y_t is predicted: y_1 at the last present source position."""
    ids = inputs.sequence_ids()
    mask = torch.ones_like(ids)
    mask[0, : inputs.n_source] = (~absent).long()
    read = [int((~absent).nonzero().max())] + list(range(inputs.n_source, ids.shape[1]))
    with torch.no_grad():
        logits = inputs.loaded.model(input_ids=ids, attention_mask=mask).logits[0, read].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(inputs.target.ids)[:, None])[:, 0]


def test_absent_tokens_equal_attention_masking_with_kv_prefix_and_any_batch(tiny):
    generator = torch.Generator().manual_seed(0)
    absent = torch.rand((12, len(SOURCE)), generator=generator) < 0.4
    absent[:, 0] = False  # the template token stays
    absent[3] = False
    absent[4, 6:] = True  # y_1 read from position 5
    for budget in (16, 2048):  # one row per batch, or all in one
        coalitions = AttentionCoalitions(case(tiny), budget)
        outcome = coalitions.evaluate(absent)
        for row, expected in zip(outcome.values, (masked_oracle(case(tiny), a) for a in absent)):
            assert torch.allclose(row, expected, atol=1e-5), (row, expected)
    assert coalitions.forwards <= 12  # repeated and full coalitions run once


def test_the_prefix_trie_shares_and_splits_without_changing_any_value(tiny, monkeypatch):
    """100 source tokens in ten blocks of ten: groups of coalitions share and split their prefixes; the values
    equal transformers' attention mask and the same runs with sharing and splitting turned off."""
    import salience.attribution.methods.shapley.coalitions as runner

    source = torch.randint(4, 64, (100,), generator=torch.Generator().manual_seed(3)).tolist()
    inputs = AttributionInput(tiny, source, [None] + [(i, i + 1) for i in range(1, 100)], TARGET)
    players = [list(range(max(1, 10 * p), 10 * p + 10)) for p in range(10)]
    present = torch.rand((40, 10), generator=torch.Generator().manual_seed(4)) < 0.6
    present[:8, 0], present[:8, 1:4] = False, True  # a group sharing a prefix the unperturbed cache lacks
    monkeypatch.setattr(runner, "MIN_SPLIT_TOKENS", 16)  # a short prompt: split where a long one would
    trie = AttentionCoalitions(inputs, 2048)
    calls = []  # per model call: True where it grew a group's shared prefix, False where it ran coalitions
    monkeypatch.setattr(
        trie,
        "_forward",
        lambda *a, **k: calls.append(k.get("keep_cache", False)) or AttentionCoalitions._forward(trie, *a, **k),
    )
    shared = Game(trie, players, "logprob")(present)
    assert calls.count(True) >= 1  # a prefix the unperturbed cache lacks was computed once for its group
    assert calls.count(False) > 3  # the coalitions ran in several groups, each on its own prefix
    monkeypatch.setattr(runner, "MIN_SHARED_TOKENS", 10**9)
    monkeypatch.setattr(runner, "MIN_SPLIT_TOKENS", 10**9)
    flat = AttentionCoalitions(inputs, 2048)
    assert torch.allclose(Game(flat, players, "logprob")(present), shared, atol=1e-5)
    assert flat.token_forwards > trie.token_forwards
    for row in range(0, 40, 7):
        absent = torch.zeros(100, dtype=torch.bool)
        for p in (~present[row]).nonzero()[:, 0].tolist():
            absent[players[p]] = True
        assert torch.allclose(shared[row], masked_oracle(inputs, absent), atol=1e-5), row


@pytest.mark.parametrize("family", ["llama", "qwen3", "gemma", "phi", "gpt2", "gemma2", "gemma3_text", "gpt_oss"])
def test_the_runner_reads_the_models_own_logits_in_every_family(family):
    """The runner applies the output head itself (hidden states gathered per row): the unperturbed values and
    a coalition's must equal the full model's, softcapping and final norms included."""
    from tiny_models import tiny_family

    loaded = tiny_family(family)
    inputs = case(loaded)
    coalitions = AttentionCoalitions(inputs, 2048)
    with torch.no_grad():
        logits = loaded.model(input_ids=inputs.sequence_ids()).logits[0, len(SOURCE) - 1 :].float()
    expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(TARGET.ids)[:, None])[:, 0]
    assert torch.allclose(coalitions.full.values[0], expected, atol=1e-5)
    absent = torch.zeros((1, len(SOURCE)), dtype=torch.bool)
    absent[0, 4:7] = True
    keep = torch.tensor([i for i in range(inputs.sequence_ids().shape[1]) if not 4 <= i < 7])
    with torch.no_grad():
        logits = (
            loaded.model(
                input_ids=inputs.sequence_ids()[:, keep],
                position_ids=keep[None],
                attention_mask=torch.ones((1, len(keep)), dtype=torch.long),
            )
            .logits[0, -3:]
            .float()
        )
    expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(TARGET.ids)[:, None])[:, 0]
    assert torch.allclose(coalitions.evaluate(absent).values[0], expected, atol=1e-5)


def test_no_source_token_reads_after_the_start_token(tiny):
    coalitions = AttentionCoalitions(case(tiny, ranges=[(i, i + 1) for i in range(len(SOURCE))]), 2048)
    outcome = coalitions.evaluate(torch.ones((1, len(SOURCE)), dtype=torch.bool))
    ids = torch.tensor([[tiny.tokenizer.bos_token_id] + TARGET.ids[:-1]])
    positions = torch.arange(len(SOURCE) - 1, len(SOURCE) + 2)[None]
    with torch.no_grad():
        logits = tiny.model(input_ids=ids, position_ids=positions, attention_mask=torch.ones_like(ids)).logits[0]
    expected = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(TARGET.ids)[:, None])[:, 0]
    assert torch.allclose(outcome.values[0], expected, atol=1e-5)


def test_replaced_coalitions_score_the_sequence_with_the_baseline_in_place(tiny):
    """The scoring boundary's game (what a served model plays): each coalition is x ++ y with its absent source
    tokens replaced by the baseline id, positions unchanged; f_t and 'still greedy' as the full model reads them."""
    inputs = case(tiny)
    absent = torch.rand((9, len(SOURCE)), generator=torch.Generator().manual_seed(1)) < 0.4
    absent[:, 0], absent[2] = False, False
    absent[5, 1:] = True
    outcome = ReplacedCoalitions(inputs, 2048, 2).evaluate(absent)
    for row, gone in enumerate(absent):
        ids = torch.tensor(SOURCE + TARGET.ids[:-1])
        ids[: len(SOURCE)][gone] = 2
        with torch.no_grad():
            logp = torch.log_softmax(tiny.model(input_ids=ids[None]).logits[0, len(SOURCE) - 1 :].float(), -1)
        expected = logp.gather(-1, torch.tensor(TARGET.ids)[:, None])[:, 0]
        assert torch.allclose(outcome.values[row], expected, atol=1e-5), row
        assert outcome.kept[row].tolist() == (logp.argmax(-1) == torch.tensor(TARGET.ids)).tolist()
    assert torch.equal(outcome.values[2], ReplacedCoalitions(inputs, 2048, 2).full.values[0])


@pytest.mark.parametrize("name", ["textgenshap", "lime", "kernelshap"])
def test_masking_is_chosen_and_reported(tiny, name):
    """auto: attention where the weights are; baseline on request, with a different game's values."""
    params = {"level": "segment"} if name == "textgenshap" else {"n_samples": 16}
    inputs = case(tiny, three_segments())
    auto = get_method(name).attribute(inputs, params)
    replaced = get_method(name).attribute(inputs, {**params, "masking": "baseline", "baseline": 2})
    assert auto.extras["masking"] == "attention" and replaced.extras["masking"] == "baseline"
    assert not torch.allclose(torch.tensor(auto.matrix), torch.tensor(replaced.matrix), atol=1e-3)


def shap(loaded, ranges=None, **params):
    return get_method("textgenshap").attribute(case(loaded, ranges), params)


def game_ends(loaded, players):
    game = Game(AttentionCoalitions(case(loaded, three_segments()), 2048), players, "logprob")
    values = game(torch.tensor([[True] * len(players), [False] * len(players)]))
    return values[0] - values[1]


def test_segment_values_are_efficient_per_target(tiny):
    result = shap(tiny, three_segments(), level="segment")
    players = result.extras["players"]
    assert [p["tokens"] for p in players] == [[1, 2, 3], [5, 6, 7], [9, 10, 11]]
    expected = game_ends(tiny, [p["tokens"] for p in players])
    assert sum(p["value"] for p in players) == pytest.approx(float(expected.sum()), abs=1e-4)
    rows = torch.tensor(result.matrix).sum(dim=1)  # density: each row sums to that step's v(all) - v(none)
    assert torch.allclose(rows, expected, atol=1e-4)
    assert all(p["stderr"] == 0 and p["exact"] for p in players)  # three players: enumerated exactly


def test_sampled_values_converge_to_the_exact_ones(tiny):
    exact = shap(tiny, level="token", hierarchical=False, exact_players=11, max_forwards=4096)
    assert all(p["stderr"] == 0 for p in exact.extras["players"]) and exact.extras["forwards"] == 2**11
    sampled = shap(tiny, level="token", hierarchical=False, exact_players=0, tolerance=1e-6, max_permutations=300)
    truth = torch.tensor([p["value"] for p in exact.extras["players"]])
    estimate = torch.tensor([p["value"] for p in sampled.extras["players"]])
    stderr = torch.tensor([p["stderr"] for p in sampled.extras["players"]])
    assert (estimate - truth).abs().max() <= max(4 * float(stderr.max()), 1e-3), (estimate, truth, stderr)
    assert float(estimate.sum()) == pytest.approx(float(truth.sum()), abs=1e-4)
    assert not sampled.extras["tolerance_met"] and "max_permutations" in sampled.sampling_warning()


def test_the_hierarchy_expands_the_units_that_matter(tiny):
    result = shap(tiny, three_segments(), level="token", expand_share=0.5)
    players = result.extras["players"]
    top = [p for p in players if p["parent"] is None]
    children = [p for p in players if p["parent"] is not None]
    assert len(top) == 3 and children
    biggest = max(range(3), key=lambda p: abs(top[p]["value"]))
    assert {c["parent"] for c in children if c["level"] != "segment"} >= {biggest}
    for index, child in enumerate(players):
        if child["parent"] is None or any(p["parent"] == index for p in players):
            continue  # only leaves: their tokens show their own value, spread over the part
        assert set(child["tokens"]) <= set(players[child["parent"]]["tokens"])
        column = sum(row[child["tokens"][0]] for row in result.matrix)
        assert column == pytest.approx(child["value"] / len(child["tokens"]), abs=1e-4)
    assert result.players_of([1])[0]["level"] == "segment"


def test_greedy_output_unchanged_is_a_zero_one_game(tiny):
    ids = list(SOURCE)
    with torch.no_grad():
        for _ in range(3):
            ids.append(int(tiny.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    greedy = Target(ids[len(SOURCE) :], [None] * 3, generated=True)
    result = get_method("textgenshap").attribute(
        case(tiny, three_segments(), greedy), {"level": "segment", "value": "unchanged"}
    )
    values = [p["value"] for p in result.extras["players"]]
    none = Game(
        AttentionCoalitions(case(tiny, three_segments(), greedy), 2048), [[1, 2, 3, 5, 6, 7, 9, 10, 11]], "unchanged"
    )(torch.tensor([[False]]))
    assert sum(values) == pytest.approx(1.0 - float(none), abs=1e-6)
    assert result.matrix[0] == result.matrix[2]  # one game for the whole output: every row alike


def test_budget_progress_and_cancel(tiny):
    result = shap(tiny, level="token", hierarchical=False, exact_players=0, max_forwards=30, tolerance=1e-9)
    assert result.extras["budget_spent"] or result.extras["forwards"] >= 30
    assert "max_forwards" in result.warnings()[0]
    seen = []
    inputs = replace(case(tiny), hooks=Hooks(progress=lambda fraction, message="": seen.append((fraction, message))))
    get_method("textgenshap").attribute(
        inputs, {"level": "token", "hierarchical": False, "exact_players": 0, "max_permutations": 8}
    )
    assert any("permutations" in m for _, m in seen) and seen[-1][0] == 1.0
    calls = []
    inputs = replace(inputs, hooks=Hooks(cancelled=lambda: (calls.append(1), len(calls) > 3)[1]))
    with pytest.raises(Cancelled):
        get_method("textgenshap").attribute(inputs, {"level": "token", "hierarchical": False, "exact_players": 0})


@pytest.mark.parametrize("name", ["textgenshap", "lime", "kernelshap"])
def test_a_prompt_without_file_tokens_gets_zero_scores(tiny, name):
    result = get_method(name).attribute(
        case(tiny, [None] * len(SOURCE)), {"n_samples": 8} if name != "textgenshap" else {}
    )
    assert result.extras["players"] == [] and not any(any(row) for row in result.matrix)


@pytest.mark.embedded
def test_rag_example_the_relevant_document_ranks_first(embedded, example):
    from salience.attribution.engine import Request, explain
    from salience.prompt.document import parse_prompt

    doc = parse_prompt(example("rag.prompt.md"))
    result = explain(embedded, doc, Request(method="textgenshap", params={"level": "segment"}))
    segments = [p for p in result.extras["players"] if p["level"] == "segment"]
    documents = [p for p in segments if p["label"].startswith("Document")]
    assert len(documents) == 4 and result.explained_text.strip().startswith("1886")
    assert max(documents, key=lambda p: p["value"])["label"].startswith("Document 3"), documents
    assert all(p["exact"] for p in segments)  # five segments: every coalition enumerated
