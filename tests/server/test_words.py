"""Words, not token pieces: every view groups a word's tokens into one part whose score is their sum."""

from __future__ import annotations

import json
import re

import pytest
from lsp_decode import decode_semantic_tokens
from rich.console import Console

from salience.attribution.methods import AttributionInput
from salience.attribution.methods.shapley.players import Boundaries, file_tokens
from salience.attribution.methods.sig.sequential_integrated_gradients import SIGParams, path_items
from salience.attribution.result import AttributionResult, SourceToken
from salience.attribution.targets import Target
from salience.prompt.words import is_break, word_starts
from salience.server.layers import heatmap
from salience.server.settings import Settings
from salience.views.html import html_page
from salience.views.reading import Reading, word_view
from salience.views.spans import shift_spans, view_spans
from salience.views.terminal import terminal_report

# How a byte-level BPE cuts it: numbers digit by digit, rare words and emoji in pieces.
PIECES = [
    "Ü", "ber", " the", " door", " code", " is", " 7", "7", "3", "3", ".", " Call", " 1", ",", "8", "8", "9",
    " 3", ".", "5", " times", " at", " ", "1", "2", ":", "3", "0", ",", " don", "'t", " 👍", "🏽", " 👩", "\u200d",
    "💻", " 🇫", "🇷", "🎉", " 日", "本", "語", "\r\n", "nai", "\u0301", "ve", " E", "iffel", ".",
]  # fmt: skip
TEXT = "".join(PIECES)
WORDS = [
    "Über", "the", "door", "code", "is", "7733", ".", "Call", "1,889", "3.5", "times", "at", "12:30", ",",
    "don't", "👍🏽", "👩\u200d💻", "🇫🇷🎉", "日", "本", "語", "\r\n", "nai\u0301ve", "Eiffel", ".",
]  # fmt: skip


def result_of(scores: list[float]) -> AttributionResult:
    source, at = [SourceToken(0, "<|im_start|>", None)], 0
    for piece in PIECES:
        source.append(SourceToken(len(source), piece, (at, at + len(piece))))
        at += len(piece)
    aggregate = [0.01, *scores]
    return AttributionResult(
        source, [5], [" x"], [aggregate], aggregate, " x", "attnlrp", {}, "m", False, extras={"sink_tokens": 1}
    )


def scores() -> list[float]:
    """Small scores everywhere, the code's four digits large: as tokens each is below 'door', as a word on top."""
    values = [0.01] * len(PIECES)
    values[PIECES.index(" door")] = 0.30
    for i in range(6, 10):
        values[i] = 0.2
    return values


@pytest.fixture
def result() -> AttributionResult:
    return result_of(scores())


def test_the_text_decides_where_a_word_breaks():
    breaks = [p for p in range(len(TEXT) + 1) if is_break(TEXT, p)]
    cut = [TEXT[a:b] for a, b in zip(breaks, breaks[1:])]
    for word in WORDS:
        assert word in cut or word in ("\r\n",), word
    assert is_break("a\r\nb", 2) and is_break("a\r\nb", 1)  # CRLF is no part of a word
    assert is_break("😀\n\u0301d", 2) and is_break("a \u200db", 2)  # a mark or joiner never joins across a break
    assert not is_break("12:30", 2) and is_break("12: 30", 3) and is_break("code 7733.", 9)
    assert is_break("漢字", 1) and not is_break("한국어", 1)  # Han stands alone; Hangul words have spaces


def test_a_word_is_its_tokens_summed(result):
    words = view_spans(result, TEXT)
    assert [TEXT[s.start : s.end] for s in words] == WORDS
    code = words[WORDS.index("7733")]
    assert code.score == pytest.approx(0.8) and len(code.parts) == 4 and code.tokens == [7, 8, 9, 10]
    tokens = view_spans(result, TEXT, "token")
    assert [TEXT[s.start : s.end] for s in tokens] == PIECES and not tokens[0].parts


def test_the_engine_scores_the_words_the_views_show(result):
    """One word rule: SIG's words and the word players of LIME, KernelSHAP and TextGenSHAP are the words of
    every view (`don't`, `1,889`, `3.5`, emoji sequences, Han, a combining mark), the sink token alone."""
    ranges = [t.range for t in result.source]
    shown = [(s.tokens[0], s.tokens[-1] + 1) for s in view_spans(result, TEXT)]
    inputs = AttributionInput(None, [t.id for t in result.source], ranges, Target([5], [None], True), text=TEXT)
    starts = inputs.word_starts()
    assert starts == word_starts(TEXT, ranges)
    assert list(zip(starts, starts[1:] + [len(ranges)])) == [(0, 1), *shown]
    sig = path_items(inputs, SIGParams(granularity="word", steps=2))
    assert [(w.start, w.stop) for w in sig.words] == shown  # template tokens are no paths
    pieces = [t.text for t in result.source]
    players = Boundaries.of(pieces, ranges, starts).split(file_tokens(ranges), "word")
    visible = [(a, b) for a, b in shown if TEXT[ranges[a][0] : ranges[b - 1][1]].strip()]
    assert [(p[0], p[-1] + 1) for p in players if TEXT[ranges[p[0]][0] : ranges[p[-1]][1]].strip()] == [
        (a, b + (pieces[b : b + 1] == ["\r\n"]))
        for a, b in visible  # a line break belongs to the word before
    ]


def test_every_view_ranks_and_shows_words(result):
    reading = Reading.of(result, TEXT)
    assert reading.span_text(reading.top(1)[0]) == "7733"
    assert Reading.of(result, TEXT, "token").span_text(Reading.of(result, TEXT, "token").top(1)[0]) == " door"
    console = Console(width=80, record=True, color_system=None)
    console.print(terminal_report(TEXT, result))
    terminal = console.export_text()
    assert "top 10 words" in terminal and re.search(r"1\s+│\s+'7733'", terminal)
    assert "'7'" not in terminal and "'3'" not in terminal
    page = html_page(TEXT, result, "t")
    tokens = " ".join(f"&quot;{t}&quot;" for t in (" 7", "7", "3", "3"))
    word = rf'<span data-i="\d+" title="{tokens}: \+0\.8000" style="[^"]+">7733</span>'
    assert re.search(word, page) and "<h2>top words</h2>" in page
    token_page = html_page(TEXT, result, "t", granularity="token")
    assert (
        re.search(r'<span data-i="\d+" title="\+0\.2000"[^>]*> 7</span>', token_page)
        and "<h2>top tokens</h2>" in token_page
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
def test_the_editor_draws_hints_and_levels_on_whole_words(result, encoding):
    view = heatmap.View.of(TEXT, Settings(inlay_top_k=len(WORDS)), encoding, result)
    hints = heatmap.inlay_hints(view)
    offsets = [view.lines.offset(h.position) for h in hints]
    assert len(hints) == len(WORDS) and all(is_break(TEXT, p) for p in offsets)
    highlighted = {text for *_, text, _, _ in decode_semantic_tokens(TEXT, heatmap.semantic_tokens(view), encoding)}
    assert highlighted <= {w.replace("\r\n", "") for w in WORDS} and "7733" in highlighted
    payload = heatmap.scores_payload(view, "file:///p", 1)
    assert len(payload["ranges"]) == len(WORDS) - 1  # the bare line break is not drawn
    assert max(payload["scores"]) == payload["scores"][WORDS.index("7733")] == 1.0


def test_the_hover_on_a_word_lists_its_tokens(result):
    view = heatmap.View.of(TEXT, Settings(), "utf-16", result)
    hover = heatmap.hover(view, TEXT.index("7733") + 2)
    assert hover is not None
    value = hover.contents.value
    assert "`7733`" in value
    assert "tokens: `␣7` +0.2000, `7` +0.2000, `3` +0.2000, `3` +0.2000" in value  # a space shown as ␣
    assert view.lines.offset(hover.range.start) == TEXT.index("7733")
    single = heatmap.hover(view, TEXT.index("door"))
    assert single is not None and "tokens:" not in single.contents.value
    tokens = heatmap.View.of(TEXT, Settings(granularity="token"), "utf-16", result)
    assert "tokens:" not in heatmap.hover(tokens, TEXT.index("7733") + 2).contents.value


def test_an_edit_moves_a_word_with_its_tokens(result):
    words = view_spans(result, TEXT)
    moved = shift_spans(words, 0, 0, 3)  # three characters typed at the start: "Über" is edited, dropped
    code = next(s for s in moved if s.tokens == [7, 8, 9, 10])
    assert (code.start, code.end) == (TEXT.index("7733") + 3, TEXT.index("7733") + 7)
    assert [(p.start, p.end) for p in code.parts][0] == (code.start - 1, code.start + 1)  # the token ' 7'


def test_json_keeps_the_token_matrix_and_adds_the_words(result):
    document = json.loads(json.dumps({**result.to_dict(), "words": word_view(result, TEXT)}))
    assert [w["text"] for w in document["words"]] == WORDS
    assert len(document["matrix"][0]) == len(PIECES) + 1
    assert AttributionResult.from_dict(document) == result
