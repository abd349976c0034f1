"""Never a silent downgrade: where AttnLRP does not cover a model, every view names the stand-in in one line;
and every view says how much of the explained logit AttnLRP's heatmap holds when that is far from all of it."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from tiny_models import save_tiny_model

from salience import cli
from salience.attribution import ParameterError, Request, explain, load_model, parse_prompt
from salience.attribution.result import AttributionResult, SourceToken
from salience.server.layers import heatmap
from salience.server.settings import Settings
from salience.views.html import html_page
from salience.views.terminal import terminal_report

TEXT = "The door code is 7733. Which code?"


@pytest.fixture(scope="module")
def neox_dir(tmp_path_factory):
    """A tiny GPT-NeoX, a family AttnLRP has no rules for, saved like a user's local model."""
    directory = tmp_path_factory.mktemp("tiny-neox")
    save_tiny_model(directory, "GPTNeoXConfig")
    return directory


def every_view(result: AttributionResult) -> dict[str, str]:
    """What each view shows of `result` on TEXT, as text."""
    console = Console(file=io.StringIO(), width=80, record=True)
    console.print(terminal_report(TEXT, result))
    view = heatmap.View.of(TEXT, Settings(), "utf-16", result)
    word = next(i for i, t in enumerate(result.source) if t.range)
    hover = heatmap.hover(view, result.source[word].range[0])
    return {
        "terminal": console.export_text(),
        "html": html_page(TEXT, result, "t"),
        "hover": hover.contents.value if hover else "",
        "summary": heatmap.summary_markdown(view),
        "scores": json.dumps(heatmap.scores_payload(view, "file:///t", 1)["notes"], ensure_ascii=False),
        "diagnostics": " ".join(d.message for d in heatmap.diagnostics(view)),
    }


def test_a_family_without_rules_gets_the_fallback_named_in_every_view(neox_dir):
    loaded = load_model(str(neox_dir))
    result = explain(loaded, parse_prompt(TEXT), Request(max_new_tokens=2))
    assert result.method == "input_x_gradient"
    line = result.extras["fallback"]
    assert line.startswith("attnlrp does not cover gpt_neox; showing input × gradient (weaker: ")
    for name, shown in every_view(result).items():
        assert line in shown.replace("&#x27;", "'").replace("\n", " ").replace("  ", " "), name


def test_the_cli_names_the_fallback_once(neox_dir, tmp_path, capsys):
    path = tmp_path / "door.prompt"
    path.write_text(TEXT)
    assert cli.main(["attribute", str(path), "--model", str(neox_dir), "--max-new-tokens", "2"]) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("attnlrp does not cover gpt_neox") == 1


def test_a_method_asked_for_by_name_is_no_fallback(neox_dir):
    result = explain(load_model(str(neox_dir)), parse_prompt(TEXT), Request(method="saliency", max_new_tokens=2))
    assert "fallback" not in result.extras and not result.notes()


def conserving(share: float, completion: float = 0.0) -> AttributionResult:
    """An AttnLRP-like result on TEXT explaining logits of 10 and 20 whose prompt relevance is `share` of them."""
    words = TEXT.split()
    source, cursor = [], 0
    for word in words:
        start = TEXT.index(word, cursor)
        cursor = start + len(word)
        source.append(SourceToken(len(source), word, (start, cursor)))
    row = [share * 10 / len(words)] * len(words)
    extras = {
        "explained": [10.0, 20.0],
        "prompt_relevance": [10 * share, 20 * share],
        "relevance_sum": [10 * share, 20 * (share + 1.5 * completion)],
    }
    matrix = [row, [2 * v for v in row]]
    aggregate = [3 * v for v in row]
    return AttributionResult(source, [5, 6], ["x", "y"], matrix, aggregate, "xy", "attnlrp", {}, "m", False,
                             timings={"attribute": 0.3}, extras=extras)  # fmt: skip


def test_the_share_of_the_logit_the_heatmap_holds_shows_where_it_is_far_from_all():
    assert conserving(1.0).conservation_note() is None and conserving(0.85).notes() == []
    note = conserving(0.4, completion=0.1).conservation_note()
    assert note == (
        "attnlrp: the prompt holds 40% of the explained logits, earlier completion tokens 10%; "
        "its rules absorbed 50% (attention's softmax, biases)"
    )
    for name, shown in every_view(conserving(0.4, completion=0.1)).items():
        if name != "diagnostics":  # a note, not a warning
            assert "the prompt holds 40% of the explained logits" in shown.replace("\n", " "), name


@pytest.mark.embedded
def test_the_embedded_models_attnlrp_reports_its_logits_and_their_share(embedded, example):
    result = explain(embedded, parse_prompt(example("door-codes.prompt")), Request(method="attnlrp", max_new_tokens=3))
    extras = result.extras
    assert len(extras["explained"]) == len(extras["prompt_relevance"]) == len(result.target_ids)
    for t, row in enumerate(result.matrix):
        assert sum(row) == pytest.approx(extras["prompt_relevance"][t], rel=1e-4, abs=1e-4)
    assert result.conservation_note() is None or "the prompt holds" in result.conservation_note()


def test_salience_methods_says_which_methods_explain_a_model(neox_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert cli.main(["methods", "--model", str(neox_dir)]) == 0
    rows = {
        line.split("│")[0].strip(): line.split("│")[2].strip()
        for line in capsys.readouterr().out.splitlines()
        if "│" in line
    }
    assert rows["attnlrp"] == "no: does not cover gpt_neox"
    assert rows["input_x_gradient"] == "default" and rows["occlusion"] == "yes"


def test_a_method_asked_for_by_name_that_cannot_explain_the_model_says_why(neox_dir):
    with pytest.raises(ParameterError, match=r"^attnlrp does not cover gpt_neox; use input_x_gradient"):
        explain(load_model(str(neox_dir)), parse_prompt(TEXT), Request(method="attnlrp", max_new_tokens=2))


@pytest.mark.parametrize(
    "family, why",
    [
        ("gemma2", "soft-caps its scores"),
        ("qwen3_moe", "grouped matmuls"),
        ("gpt_oss", "grouped matmuls"),
        ("llama", None),
    ],
)
def test_sig_names_the_models_it_cannot_differentiate(family, why):
    from tiny_models import tiny_family

    from salience.attribution import get_method

    gap = get_method("sequential_integrated_gradients").coverage_gap(tiny_family(family))
    assert gap is None if why is None else why in gap
