"""Perturbation methods through a real vLLM server equal the same methods on the same weights here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from salience import cli
from salience.attribution import ParameterError, Request, explain, parse_prompt
from salience.attribution.targets import greedy_continuation

pytestmark = [pytest.mark.embedded, pytest.mark.slow]
ROOT = Path(__file__).parents[2]

SCORE_TOLERANCE = 2e-3
"""Largest |remote - local| occlusion score allowed (fp32 on both sides; measured: see the test's report)."""


def test_served_continuation_is_local_greedy_decoding(served, embedded, example):
    ids = embedded.tokenizer(example("door-codes.prompt"))["input_ids"][:40]
    assert greedy_continuation(served, ids, 12) == greedy_continuation(embedded, ids, 12)


def test_occlusion_through_vllm_equals_local(served, embedded, example, margin):
    doc = parse_prompt(example("door-codes.prompt"))
    request = Request(method="occlusion", max_new_tokens=8)
    remote = explain(served, doc, request)
    local = explain(embedded, doc, request)
    assert remote.target_ids == local.target_ids
    assert [t.id for t in remote.source] == [t.id for t in local.source]
    largest = max(abs(a - b) for ra, rb in zip(remote.matrix, local.matrix) for a, b in zip(ra, rb))
    margin("largest |remote - local| occlusion score", largest, below=SCORE_TOLERANCE)


@pytest.mark.parametrize("replacement", ["model", "uniform"])
def test_reagent_through_vllm_equals_local(served, embedded, example, margin, replacement):
    """The same chains: replacements drawn from the server's own top tokens (8 of its 20) or uniformly, with
    the same seed; a target token that a chain replaced is read from one more sequence."""
    doc = parse_prompt(example("door-codes.prompt"))
    params = {"probes": 2, "max_steps": 20, "candidates": 8, "replacement": replacement}
    request = Request(method="reagent", params=params, max_new_tokens=4)
    remote = explain(served, doc, request)
    local = explain(embedded, doc, request)
    assert remote.target_ids == local.target_ids
    assert remote.extras["chain_steps"] == local.extras["chain_steps"]
    largest = max(abs(a - b) for ra, rb in zip(remote.matrix, local.matrix) for a, b in zip(ra, rb))
    margin(f"largest |remote - local| ReAGent score ({replacement})", largest, below=SCORE_TOLERANCE)


COALITION_RUNS = {
    "lime": {"level": "sentence", "n_samples": 24},
    "kernelshap": {"level": "sentence", "n_samples": 24},
    "textgenshap": {"level": "sentence", "hierarchical": False, "exact_players": 0, "max_permutations": 4},
}


@pytest.mark.parametrize("name", sorted(COALITION_RUNS))
def test_coalition_methods_through_vllm_equal_local_baseline_masking(served, embedded, example, margin, name):
    """On a served model an absent sentence is replaced by the baseline token (it cannot be hidden from
    attention): the same game as `masking: baseline` here, so the same coalitions give the same scores."""
    doc = parse_prompt(example("door-codes.prompt"))
    params = {**COALITION_RUNS[name], "tolerance": 1e-9} if name == "textgenshap" else COALITION_RUNS[name]
    remote = explain(served, doc, Request(method=name, params=params, max_new_tokens=4))
    local = explain(embedded, doc, Request(method=name, params={**params, "masking": "baseline"}, max_new_tokens=4))
    assert remote.extras["masking"] == local.extras["masking"] == "baseline"
    assert remote.extras["forwards"] == local.extras["forwards"] > 8
    largest = max(abs(a - b) for ra, rb in zip(remote.matrix, local.matrix) for a, b in zip(ra, rb))
    margin(f"largest |remote - local| {name} score", largest, below=SCORE_TOLERANCE)


def test_attention_masking_on_a_served_model_says_what_works(served, example):
    doc = parse_prompt(example("door-codes.prompt"))
    with pytest.raises(ParameterError, match=r"masking 'attention' needs the model's weights.*'baseline'"):
        explain(served, doc, Request(method="lime", params={"masking": "attention"}, max_new_tokens=2))


def test_a_method_that_needs_weights_names_the_ones_that_work(served, example):
    doc = parse_prompt(example("door-codes.prompt"))
    with pytest.raises(ParameterError, match=r"attnlrp needs the model's weights.*use occlusion \(its default\)"):
        explain(served, doc, Request(method="attnlrp"))


def test_the_default_method_of_a_served_model_is_a_perturbation_method(served, example):
    doc = parse_prompt(example("door-codes.prompt"))
    assert explain(served, doc, Request(max_new_tokens=2)).method == "occlusion"


def top_words(path, capsys, *args) -> list[str]:
    """The five highest-scored words of `salience attribute --json`."""
    assert cli.main(["attribute", str(path), "--method", "occlusion", "--max-new-tokens", "8", *args]) == 0
    words = json.loads(capsys.readouterr().out)["words"]
    return [w["text"] for w in sorted(words, key=lambda w: -w["score"])[:5]]


def test_the_cli_explains_a_served_model_as_the_local_one(vllm_url, tmp_path, capsys):
    """As a user types it: only the URL (the tokenizer is found where the server loaded the model from)."""
    path = ROOT / "examples" / "door-codes.prompt"
    remote = top_words(path, capsys, "--model", vllm_url, "--json", "-")
    assert remote == top_words(path, capsys, "--model", "default", "--json", "-")


def test_faithfulness_on_a_served_model_says_why_it_cannot(served, example):
    from salience.evaluation.faithfulness import faithfulness

    result = explain(served, parse_prompt(example("door-codes.prompt")), Request(max_new_tokens=2))
    with pytest.raises(ParameterError, match="measure them on a local copy of the model"):
        faithfulness(served, result)
