"""Random incremental edits against a reference text: positions in every encoding, `didChange` batches and
the shifting of stale highlight spans, on text with emoji, CJK, combining marks and every line ending."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types

from salience.server.positions import LineIndex, apply_changes
from salience.views.spans import ScoredSpan, shift_spans

ENCODINGS = [types.PositionEncodingKind.Utf16, types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf32]
PIECES = ["a", "Z", " ", "é", "e\u0301", "日本", "語", "😀", "👩\u200d💻", "🇫🇷", "\n", "\r\n", "\r", "\t", "x y"]
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


def reference_position(text: str, offset: int, encoding: str) -> types.Position:
    """Line and column of a code-point offset, counted from scratch (not with LineIndex)."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    line = max(i for i, s in enumerate(starts) if s <= offset)
    prefix = text[starts[line] : offset]
    if encoding == types.PositionEncodingKind.Utf8:
        width = len(prefix.encode("utf-8"))
    elif encoding == types.PositionEncodingKind.Utf16:
        width = len(prefix.encode("utf-16-le")) // 2
    else:
        width = len(prefix)
    return types.Position(line, width)


def valid_offsets(text: str) -> list[int]:
    """Offsets an editor can place a cursor at: never between the \\r and \\n of a CRLF."""
    return [i for i in range(len(text) + 1) if not (0 < i < len(text) and text[i - 1] == "\r" and text[i] == "\n")]


@settings(max_examples=200, deadline=None)
@given(texts, st.sampled_from(ENCODINGS))
def test_positions_match_a_reference_and_round_trip(text, encoding):
    lines = LineIndex(text, encoding)
    for offset in valid_offsets(text):
        position = lines.position(offset)
        assert position == reference_position(text, offset, encoding)
        assert lines.offset(position) == offset


@settings(max_examples=200, deadline=None)
@given(texts, st.sampled_from(ENCODINGS), st.data())
def test_random_edit_batches_equal_the_reference_and_keep_untouched_spans_on_their_text(text, encoding, data):
    spans = [ScoredSpan(m.start(), m.end(), 1.0, [k]) for k, m in enumerate(re.finditer(r"[^\s]+", text))]
    words = [text[s.start : s.end] for s in spans]
    expected, changes, edits = text, [], []
    for _ in range(data.draw(st.integers(1, 4))):
        offsets = valid_offsets(expected)
        start = data.draw(st.sampled_from(offsets))
        end = data.draw(st.sampled_from([o for o in offsets if o >= start]))
        inserted = data.draw(texts)
        lines = LineIndex(expected, encoding)
        changes.append(
            types.TextDocumentContentChangePartial(
                range=types.Range(
                    reference_position(expected, start, encoding), reference_position(expected, end, encoding)
                ),
                text=inserted,
            )
        )
        expected = expected[:start] + inserted + expected[end:]
        edits.append((start, end, len(inserted)))
        assert lines.offset(reference_position(lines.text, start, encoding)) == start
    result, applied = apply_changes(text, changes, encoding)
    assert result == expected and applied == edits
    for start, end, inserted in applied:
        spans = shift_spans(spans, start, end, inserted)
    for span in spans:  # a highlight that survives the edits still covers its own word
        assert result[span.start : span.end] == words[span.tokens[0]]
    whole, none = apply_changes(text, [types.TextDocumentContentChangeWholeDocument(text="new")], encoding)
    assert whole == "new" and none is None
