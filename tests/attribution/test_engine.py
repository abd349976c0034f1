"""explain() on the embedded model: targets, contrast, chat, placeholders and clear errors."""

from __future__ import annotations

import pytest

from salience.attribution import ParameterError, PromptError, Request, explain, parse_prompt
from salience.attribution.errors import Cancelled

pytestmark = pytest.mark.embedded


def test_greedy_target_stops_at_end_of_turn(embedded, example):
    result = explain(embedded, parse_prompt(example("chat.prompty")), Request(method="saliency"))
    assert "Madrid" in result.explained_text and result.chat and result.generated
    assert "<|im_end|>" not in result.explained_text


def test_forced_target_with_contrast(embedded, example):
    result = explain(embedded, parse_prompt(example("contrast.prompt")), Request(method="input_x_gradient"))
    assert result.explained_text == " Paris" and result.contrast == " Lyon" and not result.generated
    plain = explain(
        embedded,
        parse_prompt(example("contrast.prompt")),
        Request(method="input_x_gradient", contrast=" Paris", target=" Lyon"),
    )
    assert plain.matrix != result.matrix


def test_contrast_equal_to_target_is_refused(embedded):
    with pytest.raises(ParameterError, match="same as the target"):
        explain(embedded, parse_prompt("The capital of France is"), Request(target=" Paris", contrast=" Paris"))


def test_placeholder_tokens_score_on_the_placeholder(embedded, example):
    text = example("placeholders.prompt.md")
    result = explain(embedded, parse_prompt(text), Request(method="saliency", max_new_tokens=2))
    span = (text.index("{{product}}"), text.index("{{product}}") + len("{{product}}"))
    on_span = [t for t in result.source if t.range == span]
    assert len(on_span) >= 3  # "a solar-powered phone charger" is several tokens


def test_chat_asked_without_template_is_an_error(tiny):
    doc = parse_prompt("---\nchat: true\n---\nhi")
    with pytest.raises(PromptError, match="no chat template"):
        explain(tiny, doc)


def test_empty_prompt_is_an_error(embedded):
    with pytest.raises(ParameterError, match="empty"):
        explain(embedded, parse_prompt(""))


def test_cancel_during_generation(embedded):
    with pytest.raises(Cancelled):
        explain(embedded, parse_prompt("Count: 1, 2, 3,"), cancelled=lambda: True)


def test_progress_reaches_one_and_never_goes_back(embedded, example):
    seen: list[float] = []
    explain(
        embedded,
        parse_prompt(example("capital.prompt")),
        Request(method="occlusion", max_new_tokens=2),
        progress=lambda f, m="": seen.append(f),
    )
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)


def test_needle_is_found_by_occlusion(embedded, example):
    text = example("door-codes.prompt")
    result = explain(embedded, parse_prompt(text), Request(method="occlusion"))
    assert result.explained_text.strip().startswith("7733")
    needle = (text.index("7733"), text.index("7733") + 4)
    top = [result.source[i].range for i in result.top_tokens(5)]
    assert any(needle[0] <= r[0] < needle[1] for r in top)
