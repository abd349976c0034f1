"""Front matter, role markers and placeholders, with file offsets kept exact."""

from __future__ import annotations

import pytest

from salience.attribution import PromptError, parse_prompt, read_prompt_file


def test_plain_body_is_kept_exactly():
    doc = parse_prompt("  The capital of France is \n")
    assert doc.body.text == "  The capital of France is \n" and doc.body_start == 0 and not doc.problems


def test_front_matter_sets_fields_and_body_start():
    text = '---\ntarget: " Paris"\nmax_new_tokens: 3\n---\nQ'
    doc = parse_prompt(text)
    assert doc.front_matter.target == " Paris" and doc.front_matter.max_new_tokens == 3
    assert text[doc.body_start :] == "Q" and not doc.problems


@pytest.mark.parametrize(
    "text,expected",
    [
        ("---\nmodel: [1\n---\nbody", "invalid YAML"),
        ("---\nmax_new_tokens: many\n---\nbody", "max_new_tokens"),
        ("---\nmax_new_tokens: 0\n---\nbody", "greater than or equal to 1"),
        ("---\n- a\n- b\n---\nbody", "must be a mapping"),
        ("---\nmodel: x\nbody without a closing fence", "no closing ---"),
        ("---\nchat: maybe\n---\nbody", "chat"),
    ],
)
def test_broken_front_matter_is_an_error_with_defaults_kept(text, expected):
    doc = parse_prompt(text)
    assert doc.errors and expected in doc.errors[0].message
    assert doc.front_matter.max_new_tokens == 8


def test_yaml_error_names_the_file_line():
    doc = parse_prompt('---\nmodel: ok\ntarget: "unterminated\n---\nbody')
    assert "line 3" in doc.errors[0].message or "line 4" in doc.errors[0].message


def test_unknown_key_is_a_warning_on_the_key():
    text = "---\ncolour: red\n---\nbody"
    doc = parse_prompt(text)
    (problem,) = doc.problems
    assert problem.severity == "warning" and text[problem.start : problem.end] == "colour"


def test_valid_fields_survive_an_invalid_one():
    doc = parse_prompt("---\ntarget: x\nmax_new_tokens: -3\n---\nbody")
    assert doc.front_matter.target == "x" and doc.errors


def test_role_markers_split_messages_with_file_spans():
    text = "---\nname: x\n---\nsystem:\nBe terse.\n\nuser:\r\nWhere?  \n"
    doc = parse_prompt(text)
    assert [m.role for m in doc.messages] == ["system", "user"]
    for message in doc.messages:
        (span,) = message.content.spans
        assert text[span.file_start : span.file_end] == message.content.text
    assert [m.content.text for m in doc.messages] == ["Be terse.", "Where?"]


def test_a_role_word_inside_a_line_is_not_a_marker():
    assert not parse_prompt("the user: said hi\nuser: also").messages


def test_placeholders_map_to_their_span():
    text = "---\nsample:\n  product: a solar charger\n---\nSell {{product}} now {{missing}}."
    doc = parse_prompt(text)
    assert doc.body.text == "Sell a solar charger now {{missing}}."
    at = doc.body.text.index("solar")
    start, end = doc.body.file_range(at, at + 5)
    assert text[start:end] == "{{product}}"
    assert doc.body.file_range(0, 4) == (text.index("Sell"), text.index("Sell") + 4)
    assert any("missing" in p.message for p in doc.problems)


def test_without_sample_placeholders_stay_literal():
    assert parse_prompt("Hi {{name}}").body.text == "Hi {{name}}"


@pytest.mark.parametrize(
    "content,message",
    [
        (b"\x00\x01binary", "binary"),
        (b"caf\xe9", "UTF-8"),
        (b"x" * 1_000_001, "too large"),
    ],
)
def test_unreadable_files_raise_prompt_errors(tmp_path, content, message):
    path = tmp_path / "bad.prompt"
    path.write_bytes(content)
    with pytest.raises(PromptError, match=message):
        read_prompt_file(path)


def test_crlf_is_kept(tmp_path):
    path = tmp_path / "w.prompt.txt"
    path.write_bytes(b"a\r\nb")
    assert read_prompt_file(path) == "a\r\nb"
