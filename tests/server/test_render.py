"""Rendering is pure: results on texts with emoji, CJK, combining marks and CRLF, in every encoding."""

from __future__ import annotations

import pytest
from lsp_decode import decode_semantic_tokens
from lsprotocol import types

from salience.attribution.result import AttributionResult, SourceToken
from salience.server.layers import heatmap
from salience.server.positions import LineIndex, apply_changes
from salience.server.settings import Settings
from salience.views.spans import ScoredSpan, assign_levels, scored_spans, shift_spans

TEXT = "Hi 👩‍💻 and 日本語\r\ncafe\u0301 🇫🇷!\nend"
WORDS = ["Hi", "👩‍💻", "and", "日本語", "cafe\u0301", "🇫🇷", "!", "end"]
ENCODINGS = ["utf-16", "utf-8", "utf-32"]


def result_for(text: str, words: list[str], scores: list[float], extra_template: float = 0.0) -> AttributionResult:
    source, cursor = [], 0
    for word in words:
        start = text.index(word, cursor)
        cursor = start + len(word)
        source.append(SourceToken(len(source), word, (start, cursor)))
    source.append(SourceToken(99, "<|im_end|>", None))
    aggregate = list(scores) + [extra_template]
    return AttributionResult(
        source,
        [5],
        ["x"],
        [aggregate],
        aggregate,
        "x",
        "input_x_gradient",
        {},
        "m",
        True,  # a chat prompt: the last token is the template's
        timings={"generate": 0.2, "attribute": 0.3},
    )


@pytest.fixture
def view():
    scores = [0.05, -0.30, 0.01, 0.20, 0.10, 0.15, 0.02, 0.08]
    return lambda encoding="utf-16", **kw: heatmap.View.of(
        TEXT, Settings(**kw), encoding, result_for(TEXT, WORDS, scores, 0.5)
    )


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_semantic_tokens_land_on_the_words(view, encoding):
    decoded = decode_semantic_tokens(TEXT, heatmap.semantic_tokens(view(encoding)), encoding)
    highlighted = {token: (kind, modifiers) for _, _, token, kind, modifiers in decoded}
    assert set(highlighted) <= set(WORDS)
    assert highlighted["👩‍💻"] == (4, 1)  # largest |score|: level 5, negative
    assert highlighted["日本語"][0] > highlighted.get("!", (-1,))[0]
    assert "and" not in highlighted  # lowest scores get no token, syntax colours show through


def test_positions_count_code_units_of_the_negotiated_encoding():
    lines = LineIndex(TEXT, "utf-16")
    emoji = TEXT.index("👩")
    assert lines.position(emoji + len("👩‍💻")).character == 3 + 5
    assert LineIndex(TEXT, "utf-8").position(TEXT.index("and")).character == 3 + len("👩‍💻 ".encode())
    second = TEXT.index("cafe")
    assert lines.position(second) == types.Position(1, 0)  # CRLF is one line break
    for encoding in ENCODINGS:
        index = LineIndex(TEXT, encoding)
        for offset in range(len(TEXT) + 1):
            if TEXT[offset - 1 : offset + 1] != "\r\n":
                assert index.offset(index.position(offset)) == offset


def test_overlapping_tokens_merge_and_sum():
    result = result_for("abc", ["abc"], [0.2])
    result.source.insert(1, SourceToken(7, "c", (2, 3)))
    result.aggregate.insert(1, 0.3)
    spans = scored_spans(result)
    assert [(s.start, s.end, round(s.score, 6)) for s in spans] == [(0, 3, 0.5)]


def test_levels_quantile_and_fixed():
    spans = [ScoredSpan(i, i + 1, score) for i, score in enumerate([0.0, 0.01, 0.1, 0.2, 0.5, 1.0])]
    assert [s.level for s in assign_levels(spans, "quantile")] == [0, 0, 1, 2, 3, 5]
    fixed = assign_levels([ScoredSpan(0, 1, 0.01), ScoredSpan(1, 2, 0.3), ScoredSpan(2, 3, 1.0)], "fixed")
    assert [s.level for s in fixed] == [0, 4, 5]


def test_hover_shows_score_share_rank_and_footer(view):
    v = view()
    hover = heatmap.hover(v, TEXT.index("日本") + 1)
    assert "日本語" in hover.contents.value and "+0.2000" in hover.contents.value
    assert "rank 2 of 8" in hover.contents.value and "input_x_gradient" in hover.contents.value
    just_after = heatmap.hover(v, TEXT.index(" and"))  # a cursor right after a word hovers that word
    assert "rank 1 of 8" in just_after.contents.value
    assert heatmap.hover(heatmap.View.of(TEXT, Settings(), "utf-16", None), 0) is None


def test_the_hover_says_what_its_numbers_are(view):
    v = view()
    v.result.target_tokens, v.result.target_ids = [" 7", "3", "3"], [5, 6, 6]
    rows = [[0.01 * (i + 1) for i in range(9)], [-0.2] * 9, [0.05] * 9]
    v.result.matrix = rows
    value = heatmap.hover(v, TEXT.index("日本") + 1).contents.value
    assert "relevance to 'x': +0.2000 · " in value and "of the total · rank 2 of 8 words" in value
    total = sum(abs(x) for x in v.result.aggregate)
    assert f"moved most: `3` (2 of 3) {-0.2 / total:+.1%}, `3` (3 of 3) {0.05 / total:+.1%}, ` 7` (1 of 3)" in value
    assert heatmap.hover(v, TEXT.index(" and")) is not None  # right after a word: that word
    blank = result_for("a  \nb", ["a", "  ", "\n", "b"], [0.1, 0.2, 0.3, 0.1])
    spaced = heatmap.View.of("a  \nb", Settings(), "utf-16", blank)
    assert heatmap.hover(spaced, 0) is not None and heatmap.hover(spaced, 2) is None  # blanks get no hover
    assert "` b`" not in value and heatmap.hover(spaced, 5) is not None


def test_hover_on_front_matter_is_the_run_summary(view):
    v = view()
    v.body_start = 3
    summary = heatmap.hover(v, 0).contents.value
    assert "explains" in summary and "chat-template tokens hold" in summary


def warnings_of(result: AttributionResult) -> list[str]:
    view = heatmap.View.of(TEXT, Settings(), "utf-16", result)
    return [d.message for d in heatmap.diagnostics(view) if d.severity == types.DiagnosticSeverity.Warning]


@pytest.mark.parametrize("gap,warned", [(9.1, True), (0.01, False), (None, False)])
def test_a_large_completeness_gap_is_a_warning(gap, warned):
    result = result_for(TEXT, WORDS, [0.1] * len(WORDS))
    if gap is not None:
        result.extras["max_completeness_gap"] = gap
    messages = warnings_of(result)
    assert any("more `steps`" in m for m in messages) == warned


@pytest.mark.parametrize("converged,warned", [([True, False], True), ([True, True], False), (None, False)])
def test_an_unconverged_probing_run_is_a_warning(converged, warned):
    result = result_for(TEXT, WORDS, [0.1] * len(WORDS))
    result.target_tokens = [" a", " b"]
    if converged is not None:
        result.extras["converged"] = converged
    messages = warnings_of(result)
    assert any("not converged for 1 of 2 target tokens (' b')" in m for m in messages) == warned


def test_hover_lists_the_segment_and_word_values_with_their_errors():
    result = result_for(TEXT, WORDS, [0.1] * len(WORDS))
    result.method = "textgenshap"
    result.extras["players"] = [
        {
            "level": "segment",
            "tokens": [0, 1, 2, 3],
            "label": "Hi \ufffd\ufffd and 日本語",
            "value": 2.5,
            "stderr": 0.0,
            "exact": True,
            "parent": None,
        },
        {
            "level": "segment",
            "tokens": [4, 5, 6, 7],
            "label": "café 🇫🇷! end",
            "value": -0.75,
            "stderr": 0.0,
            "exact": True,
            "parent": None,
        },
        {"level": "word", "tokens": [3], "label": "日本語", "value": 1.25, "stderr": 0.125, "parent": 0},
    ]
    v = heatmap.View.of(TEXT, Settings(), "utf-16", result)
    hover = heatmap.hover(v, TEXT.index("日本")).contents.value
    assert "segment `Hi 👩‍💻 and 日本語`: value **+2.500** (exact)" in hover  # the file's text, not decoded pieces
    assert "word `日本語`: value **+1.250** ± 0.125" in hover and "café" not in hover
    v.body_start = 3
    summary = heatmap.hover(v, 0).contents.value
    assert "value **-0.750**" in summary and "日本語`: value **+1.250**" not in summary  # top level only


@pytest.mark.parametrize(
    "met,spent,warned", [(False, True, "max_forwards"), (False, False, "max_permutations"), (True, False, None)]
)
def test_an_unmet_sampling_tolerance_is_a_warning(met, spent, warned):
    result = result_for(TEXT, WORDS, [0.1] * len(WORDS))
    result.extras.update(tolerance_met=met, budget_spent=spent, max_stderr=0.4)
    messages = warnings_of(result)
    sampling = [m for m in messages if "standard error" in m]
    assert sampling == [] if warned is None else len(sampling) == 1 and warned in sampling[0] and "±0.4" in sampling[0]


@pytest.mark.parametrize("k", [0, 2, 5])
def test_inlay_hints_mark_the_top_k(view, k):
    hints = heatmap.inlay_hints(view(inlay_top_k=k))
    assert len(hints) == k
    labels = sorted(float(h.label) for h in hints)
    assert labels == sorted(sorted([0.05, -0.30, 0.01, 0.20, 0.10, 0.15, 0.02, 0.08], key=abs)[-k:]) if k else True


def test_diagnostics_fade_and_completion(view):
    found = heatmap.diagnostics(view(fade_threshold=0.1))
    assert any(d.severity == types.DiagnosticSeverity.Hint and not d.tags and "explains" in d.message for d in found)
    faded = [d for d in found if d.tags]
    assert len(faded) == 2 and all(d.severity == types.DiagnosticSeverity.Hint for d in faded)


def test_code_lens_offers_the_commands(view):
    lenses = heatmap.code_lenses(view(), "file:///a.prompt")
    assert [lens.command.command for lens in lenses if lens.command.command] == list(heatmap.COMMANDS)


def test_scores_payload_is_normalised(view):
    payload = heatmap.scores_payload(view(), "file:///a.prompt", 3)
    assert max(abs(s) for s in payload["scores"]) == 1.0 and len(payload["ranges"]) == len(WORDS)
    assert payload["method"] and payload["model"] and payload["seconds"] == 0.5 and payload["cached"] is False


def test_edits_shift_spans_and_drop_edited_ones():
    text = "one two three"
    spans = [ScoredSpan(0, 3, 1.0), ScoredSpan(4, 7, 2.0), ScoredSpan(8, 13, 3.0)]
    change = types.TextDocumentContentChangePartial(
        range=types.Range(types.Position(0, 5), types.Position(0, 6)), text="WXYZ"
    )
    new_text, edits = apply_changes(text, [change], "utf-16")
    assert new_text == "one tWXYZo three"
    for start, end, inserted in edits:
        spans = shift_spans(spans, start, end, inserted)
    assert [new_text[s.start : s.end] for s in spans] == ["one", "three"]


def test_truncated_prompts_get_a_warning(view):
    v = view()
    v.result.extras["truncated_tokens"] = 12
    warnings = [d for d in heatmap.diagnostics(v) if d.severity == types.DiagnosticSeverity.Warning]
    assert len(warnings) == 1 and "first 12 tokens" in warnings[0].message


def test_one_loud_word_does_not_flatten_the_rest():
    """Twenty words: noise, three that matter, and one artefact ten times louder than any of them."""
    noise = [0.01, 0.02, 0.015, 0.03, 0.01, 0.025, 0.02, 0.012, 0.018, 0.022, 0.03, 0.015, 0.01, 0.02, 0.016]
    scores = [*noise, 0.25, -0.3, 0.2, 0.01, 3.0]
    spans = assign_levels([ScoredSpan(i, i + 1, score) for i, score in enumerate(scores)])
    levels = {score: span.level for score, span in zip(scores, spans)}
    assert levels[3.0] == 5
    assert min(levels[0.25], levels[-0.3], levels[0.2]) >= 4  # by the max they would be in the lowest level
    assert all(levels[n] == 0 for n in noise)  # most of the text stays clean
    assert sum(1 for s in spans if s.level) <= len(spans) // 4
    strengths = [s.strength for s in spans]
    assert strengths[scores.index(-0.3)] < 0 and max(strengths) == 1.0
    cleared = assign_levels([ScoredSpan(i, i + 1, score) for i, score in enumerate(scores[:-1])])
    moved = [abs(a.level - b.level) for a, b in zip(cleared[:-1], spans[:-2])]
    assert max(moved) <= 1  # the artefact moves no other word by more than a level
