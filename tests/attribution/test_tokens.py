"""Property tests of the token -> file-range map on the embedded tokenizer (byte-level BPE)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salience.attribution import parse_prompt
from salience.attribution.tokens import encode_prompt, use_chat

pytestmark = pytest.mark.embedded

PIECES = [
    "a",
    "word",
    " ",
    "  ",
    "\n",
    "\r\n",
    "\t",
    "é",
    "e\u0301",
    "ñ",
    "日本の",
    "緑茶",
    "🍵",
    "👩‍💻",
    "🇫🇷",
    "→",
    "ß",
    "42",
    ".",
    '"',
    "{",
    "}",
    "x:",
    "user",
    "—",
]
texts = st.lists(st.sampled_from(PIECES), min_size=1, max_size=30).map("".join)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check_ranges(text: str, encoded, lo: int, hi: int) -> list[tuple[int, int]]:
    ranges = [r for r in encoded.ranges if r is not None]
    assert all(lo <= a < b <= hi for a, b in ranges)
    starts = [a for a, _ in ranges]
    assert starts == sorted(starts)
    return ranges


def covered(ranges) -> set[int]:
    return {c for a, b in ranges for c in range(a, b)}


@FAST
@given(body=texts, front=st.booleans())
def test_plain_tokens_cover_the_body_exactly(embedded, body, front):
    text = ("---\nmax_new_tokens: 2\n---\n" if front else "") + body
    doc = parse_prompt(text)
    encoded = encode_prompt(doc, embedded.tokenizer, chat=False)
    ranges = check_ranges(text, encoded, doc.body_start, len(text))
    assert covered(ranges) == set(range(doc.body_start, len(text)))
    for token_id, r in zip(encoded.input_ids, encoded.ranges):
        piece = embedded.tokenizer.decode([token_id])
        if r and "\ufffd" not in piece:
            assert text[r[0] : r[1]] == piece


@FAST
@given(system=texts, user=texts, newline=st.sampled_from(["\n", "\r\n"]))
def test_chat_tokens_map_into_message_contents(embedded, system, user, newline):
    text = f"---{newline}name: t{newline}---{newline}system:{newline}{system}{newline}user:{newline}{user}{newline}"
    doc = parse_prompt(text)
    assert use_chat(doc, embedded.has_chat_template)
    encoded = encode_prompt(doc, embedded.tokenizer, chat=True)
    ranges = check_ranges(text, encoded, doc.body_start, len(text))
    contents = set()
    for message in doc.messages:
        for span in message.content.spans:
            contents |= set(range(span.file_start, span.file_end))
    assert covered(ranges) == contents
    assert any(r is None for r in encoded.ranges)  # template tokens have no range


@FAST
@given(value=texts, before=texts)
def test_placeholder_tokens_map_to_the_placeholder(embedded, value, before):
    text = f"---\nsample:\n  thing: {value!r}\n---\n{before}{{{{thing}}}}!"
    doc = parse_prompt(text)
    if doc.errors:  # a sampled value YAML cannot hold as written
        return
    encoded = encode_prompt(doc, embedded.tokenizer, chat=False)
    ranges = check_ranges(text, encoded, doc.body_start, len(text))
    span = (text.index("{{thing}}"), text.index("{{thing}}") + len("{{thing}}"))
    assert set(range(*span)) <= covered(ranges)
    run_at = doc.body.text.index(doc.front_matter.sample["thing"], len(before)) if value.strip() else None
    if run_at is not None:
        assert doc.body.file_range(run_at, run_at + 1) == span


def test_example_chat_file_maps_every_content_word(embedded):
    from pathlib import Path

    text = Path(__file__).parents[2].joinpath("examples", "chat.prompty").read_text(encoding="utf-8")
    doc = parse_prompt(text)
    encoded = encode_prompt(doc, embedded.tokenizer, chat=True)
    mapped = "".join(text[r[0] : r[1]] for r in encoded.ranges if r)
    assert "Maria lives in Madrid" in mapped and "You are a terse assistant." in mapped
    assert "<|im_start|>" in encoded.text


def test_a_plain_prompt_starts_with_the_sink_token_and_a_chat_prompt_with_its_template(embedded, tiny_model_dir):
    from transformers import AutoTokenizer

    doc = parse_prompt("The code is 7733.")
    encoded = encode_prompt(doc, embedded.tokenizer, chat=False)
    assert encoded.sink == 1 and encoded.input_ids[0] == embedded.tokenizer.bos_token_id
    assert encoded.ranges[0] is None and encoded.ranges[1] == (0, 3)
    written = encode_prompt(doc, embedded.tokenizer, chat=False, sink=False)
    assert (written.input_ids, written.ranges, written.sink) == (encoded.input_ids[1:], encoded.ranges[1:], 0)
    said = parse_prompt("---\nsink: false\n---\nThe code is 7733.")
    assert encode_prompt(said, embedded.tokenizer, chat=False).input_ids == written.input_ids
    chat = encode_prompt(doc, embedded.tokenizer, chat=True)
    assert chat.sink == 0 and chat.input_ids[0] == embedded.tokenizer.convert_tokens_to_ids("<|im_start|>")

    adds_bos = AutoTokenizer.from_pretrained(tiny_model_dir)
    adds_bos.add_bos_token = True  # a tokenizer that puts its BOS first itself gets no second one
    assert adds_bos("x")["input_ids"][0] == adds_bos.bos_token_id
    own = encode_prompt(doc, adds_bos, chat=False)
    assert own.sink == 0 and own.input_ids.count(adds_bos.bos_token_id) == 1 and own.ranges[0] is None
