"""A draft continuation is checked, not regenerated, and the answer is always fresh greedy decoding's.

Random drafts (the greedy one, one token changed, too short, too long, random) are checked two ways:
by a forward of their own (`verify_draft`, used before methods that cannot check) and inside a one-pass
method's own forward (`DraftCheck`, then `continue_verdict` where it fails). Both must give
`greedy_continuation` exactly, stops included.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tiny_models import TinyTokenizer

from salience.attribution import Request, explain, get_method, parse_prompt
from salience.attribution.attempt import DraftCheck, Rejected, Scores, attempt
from salience.attribution.compute.memory import ladder
from salience.attribution.methods import AttributionInput, Hooks
from salience.attribution.targets import (
    continue_verdict,
    decision_margin,
    greedy_continuation,
    judge_draft,
    stop_ids,
    verify_draft,
    with_foil,
)

VOCAB = 64


class StopTokenizer(TinyTokenizer):
    """The tiny tokenizer with another end-of-turn token, so that greedy decoding stops early."""

    def __init__(self, eos: int) -> None:
        self.eos_token_id = eos


def with_stop(tiny, eos: int):
    model = tiny.model
    model.generation_config.eos_token_id = None  # the tokenizer's eos is the only stop
    return replace(tiny, tokenizer=StopTokenizer(eos))


@st.composite
def cases(draw):
    """(prompt, which token ends the turn, max_new_tokens, how the draft is made, random tokens for it, an index)."""
    prompt = draw(st.lists(st.integers(4, VOCAB - 1), min_size=2, max_size=12))
    return (
        prompt,
        draw(st.one_of(st.none(), st.integers(0, 7))),
        draw(st.integers(1, 8)),
        draw(st.sampled_from(["greedy", "changed", "short", "long", "random", "longer budget"])),
        draw(st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=10)),
        draw(st.integers(0, 9)),
    )


def stopping(tiny, prompt, stop):
    """The tiny model with a turn-ending token: often one its free continuation reaches (the stop branch)."""
    if stop is None:
        return with_stop(tiny, 0)  # unk: never predicted, so decoding runs to max_new_tokens
    free = greedy_continuation(with_stop(tiny, 0), prompt, 8)
    return with_stop(tiny, free[stop % len(free)]) if free else with_stop(tiny, 0)  # (unk can be its first token)


def make_draft(loaded, prompt, max_new, kind, noise, where):
    """A draft as a previous run might have left it: the right answer, or one the edit made wrong."""
    greedy = greedy_continuation(loaded, prompt, max_new)
    if kind == "greedy":
        return greedy
    if kind == "changed" and greedy:
        i = where % len(greedy)
        return greedy[:i] + [4 + (greedy[i] - 3) % (VOCAB - 4)] + greedy[i + 1 :]
    if kind == "short":
        return greedy[: where % (len(greedy) + 1)] or noise[:1]
    if kind == "long":
        return greedy + noise
    if kind == "longer budget":  # the draft of a run with a larger max_new_tokens
        return greedy_continuation(loaded, prompt, max_new + 3) or noise
    return noise


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases())
def test_a_checked_draft_gives_fresh_greedy_decoding(tiny, case):
    prompt, stop, max_new, kind, noise, where = case
    loaded = stopping(tiny, prompt, stop)
    draft = make_draft(loaded, prompt, max_new, kind, noise, where)
    greedy = greedy_continuation(loaded, prompt, max_new)
    found, origin = verify_draft(loaded, prompt, draft, max_new)
    assert found == greedy
    if origin == "draft verified":  # (a right draft may still be decoded again: a near tie on the tiny model)
        assert draft[:max_new] == greedy


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases(), st.sampled_from(["attnlrp", "input_x_gradient", "saliency"]))
def test_a_draft_checked_inside_the_method_gives_fresh_greedy_decoding(tiny, case, method):
    prompt, stop, max_new, kind, noise, where = case
    loaded = stopping(tiny, prompt, stop)
    draft = make_draft(loaded, prompt, max_new, kind, noise, where)[:max_new]
    assume(draft)  # an empty draft is no draft: the engine decodes
    greedy = greedy_continuation(loaded, prompt, max_new)
    inputs = AttributionInput(
        loaded,
        prompt,
        [(i, i + 1) for i in range(len(prompt))],
        with_foil(loaded, draft, "draft", None),
        hooks=Hooks(draft_check=DraftCheck(stop_ids(loaded), max_new, decision_margin(loaded.dtype))),
    )
    chosen = get_method(method)
    outcome = attempt(next(ladder(chosen, chosen.parse_params(None))), inputs)
    if isinstance(outcome, Rejected):
        assert draft != greedy or outcome.verdict.tie  # a right draft is refused only on a near tie
        assert outcome.cache is not None  # decoding resumes from the forward that checked the draft
        assert continue_verdict(loaded, prompt, outcome.verdict, max_new, cache=outcome.cache) == greedy
    else:
        assert isinstance(outcome, Scores) and draft == greedy and outcome.result.target_ids == greedy
        matrix = outcome.result.matrix
        assert len(matrix) == len(greedy) and all(len(row) == len(prompt) for row in matrix)


def test_the_verdict_names_the_first_failing_step_and_a_near_tie():
    import torch

    logits = torch.zeros(4, 8)
    logits[0, 5], logits[1, 6], logits[2, 7], logits[3, 2] = 1.0, 1.0, 1.0, 1.0
    assert judge_draft(logits, [5, 6, 7], {2}, 8, 1e-3).finished  # the step after the draft ends the turn
    wrong = judge_draft(logits, [5, 4, 7], {2}, 8, 1e-3)
    assert (wrong.ids, wrong.finished, wrong.step, wrong.tie) == ([5, 6], False, 1, False)
    assert judge_draft(logits, [5, 6], {2}, 2, 1e-3).finished  # as long as max_new_tokens: nothing to check after
    assert judge_draft(logits, [5, 6, 7, 9], {2}, 8, 1e-3).ids == [5, 6, 7]  # too long: the turn ends before its end
    logits[1, 4] = 1.0 - 1e-4  # too close to call from logits of another forward
    tie = judge_draft(logits, [5, 6, 7], {2}, 8, 1e-3)
    assert (tie.ids, tie.tie, tie.step) == ([5], True, 1)


@pytest.mark.embedded
@pytest.mark.parametrize("method", ["attnlrp", "attention"])
def test_edits_with_the_embedded_model_explain_what_fresh_decoding_explains(embedded, example, method):
    """An editor's sequence of edits, each run with the previous run's continuation as its draft."""
    text = example("door-codes.prompt")
    edits = [
        text,
        text.replace("4812", "4813"),
        text + " ",
        text.replace("red door?", "blue door?"),
        text.replace("red door is", "red door,"),
        text.replace("7733", "7737"),
        text.replace("The code for the red door is 7733.", ""),
    ]
    previous, origins = None, []
    for version in edits:
        doc = parse_prompt(version)
        fresh = explain(embedded, doc, Request(method=method))
        checked = explain(embedded, doc, Request(method=method, draft=previous))
        assert checked.target_ids == fresh.target_ids, version
        origins.append(checked.extras["target"])
        previous = checked.target_ids
    assert origins[0] == "generated" and origins[1] == "draft verified"
    assert any(o.startswith("draft rejected") for o in origins[2:]), origins
