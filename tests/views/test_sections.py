"""Sections found from a prompt's text, their shares of a result, and `expect:` checked against them."""

from __future__ import annotations

import re

import pytest

from salience.attribution import parse_prompt
from salience.attribution.result import AttributionResult, SourceToken
from salience.prompt.sections import find_sections
from salience.views.reading import Reading
from salience.views.section_shares import section_lens_title, section_reading, sections_of
from salience.views.verdicts import missing_sections, verdicts


def names(text: str) -> list[tuple[int, str, str]]:
    """(depth, name, kind) of every section, parents first."""
    found = []

    def walk(section, depth):
        found.append((depth, section.name, section.kind))
        for child in section.children:
            walk(child, depth + 1)

    for section in find_sections(parse_prompt(text)).top:
        walk(section, 0)
    return found


def section_text(text: str, name: str) -> str:
    section = find_sections(parse_prompt(text)).named(name)
    assert section is not None, name
    return text[section.start : section.end]


MARKDOWN = (
    "# Door codes 🚪\r\nA title line.\r\n\r\n## Instructions\r\nAnswer with the code.\r\n\r\n"
    "## Documents\r\n<document>Red: 7733.</document>\r\n<document>Blue 日本語: 4812.</document>\r\n\r\n"
    "## Question\r\n```\r\n# not a heading\r\n```\r\nWhich code?"
)


def test_markdown_headings_under_a_title_with_xml_blocks_crlf_emoji_and_cjk():
    assert names(MARKDOWN) == [
        (0, "Door codes 🚪", "heading"),
        (0, "Instructions", "heading"),
        (0, "Documents", "heading"),
        (1, "document 1", "block"),
        (1, "document 2", "block"),
        (0, "Question", "heading"),
    ]
    assert section_text(MARKDOWN, "Document 2") == "<document>Blue 日本語: 4812.</document>"  # names: any case
    assert section_text(MARKDOWN, "question").endswith("Which code?")


def test_top_level_sections_partition_the_body():
    text = "---\nmax_new_tokens: 3\n---\n" + MARKDOWN
    doc = parse_prompt(text)
    top = find_sections(doc).top
    assert top[0].start == doc.body_start and top[-1].end == len(text)
    assert all(a.end == b.start for a, b in zip(top, top[1:]))


def test_chat_messages_by_role():
    text = (
        "system:\nBe terse. ☕\n\nuser:\n<context>Tom: Berlin.</context>\n<context>Maria: Madrid.</context>\n"
        "Where?\n\nassistant:\nMadrid.\n\nuser:\nAnd Tom?"
    )
    assert names(text) == [
        (0, "system", "message"),
        (0, "user 1", "message"),
        (1, "context 1", "block"),
        (1, "context 2", "block"),
        (0, "assistant", "message"),
        (0, "user 2", "message"),
    ]


def test_labelled_documents_then_the_question():
    text = "Document 1: Paris.\nDocument 2: 東京.\n\nQuestion: Which one?\nAnswer: It is"
    assert names(text) == [(0, "Document 1", "label"), (0, "Document 2", "label"), (0, "question", "question")]


def test_few_shot_examples_and_the_unanswered_question():
    text = "Answer in one word.\n\nQ: 2+2?\nA: Four.\n\nQ: Capital of France?\nA: Paris.\n\nQ: Colour of the sky?\nA:"
    assert names(text) == [
        (0, "text", "text"),
        (0, "example 1", "example"),
        (0, "example 2", "example"),
        (0, "question", "question"),
    ]
    assert section_text(text, "example 2") == "Q: Capital of France?\nA: Paris.\n\n"


def test_input_output_pairs_and_numbered_text_sections():
    text = "Intro.\n\nInput: a\nOutput: b.\n\nMiddle text.\n\nInput: c\nOutput: d."
    assert [n for _, n, _ in names(text)] == ["text", "example 1", "text 2", "example 2"]


def test_placeholder_values_are_sections_of_their_own():
    text = "---\nsample:\n  product: a lamp\n---\nDescribe {{product}} for {{ audience }}.\n"
    assert names(text) == [(0, "text", "text"), (1, "{{product}}", "placeholder")]


def test_front_matter_names_sections_by_lines_and_heading():
    text = (
        "---\nsections:\n  Setup: 7-8\n  Docs: {heading: Sources}\n  Gone: {lines: 90-99}\n---\n"
        "line 5\nline 6\nline 7\n## Sources\nS.\n"
    )
    sections = find_sections(parse_prompt(text))
    assert [(s.name, s.kind) for s in sections.top] == [("Setup", "explicit"), ("text", "text"), ("Docs", "explicit")]
    assert text[sections.top[0].start : sections.top[0].end] == "line 5\nline 6\n"
    assert [p.message for p in sections.problems] == ["section 'Gone': lines 90-99 are not in the body"]


@pytest.mark.parametrize(
    "block, error",
    [
        ("expect:\n  answer: {contains: x}\n  colour: red\n", "expect.colour: Extra inputs are not permitted"),
        ("expect:\n  sections:\n    A: {min_share: 0.5, max_share: 0.2}\n", "min_share 0.5 is above max_share 0.2"),
        ("expect:\n  sections:\n    A: {min_share: 1.5}\n", "less than or equal to 1"),
        ("expect:\n  sections:\n    A: {}\n", "give min_share, max_share or both"),
        ("sections:\n  A: {lines: 9-3}\n", "expected FIRST-LAST file lines"),
    ],
)
def test_a_bad_expect_or_sections_block_is_a_clear_error(block, error):
    doc = parse_prompt(f"---\n{block}---\nText.")
    assert any(error in p.message and p.severity == "error" for p in doc.problems), doc.problems


def test_shares_as_percent_text():
    doc = parse_prompt("---\nexpect:\n  sections:\n    text: {min_share: 10%}\n---\nText.")
    assert doc.front_matter.expect.sections["text"].min_share == pytest.approx(0.1)


def word_result(text: str, scores: dict[str, float], hidden: float = 0.0, **extras) -> AttributionResult:
    """A result with one token per word of `text` (score from `scores` by word, else 0.01) and a sink token."""
    source = [SourceToken(0, "<s>", None)]
    aggregate = [hidden]
    for match in re.finditer(r"\S+", text):
        source.append(SourceToken(len(source), match.group(), (match.start(), match.end())))
        aggregate.append(scores.get(match.group(), 0.01))
    return AttributionResult(source, [5], ["x"], [aggregate], aggregate, " x", "attnlrp", {}, "m", True, extras=extras)


def test_shares_add_up_with_the_hidden_tokens_and_name_the_child_that_holds_most():
    text = MARKDOWN
    result = word_result(text, {"<document>Red:": 2.0, "7733.</document>": 3.0, "Answer": -0.5}, hidden=1.0)
    reading = sections_of(Reading.of(result, text))
    assert sum(s.share for s in reading.top) + reading.hidden == pytest.approx(1.0)
    documents = reading.named("Documents")
    assert documents.share > 0.7 and documents.mostly().name == "document 1"
    title = section_lens_title(documents)
    assert title.startswith("§ Documents · ") and title.endswith("mostly document 1")
    assert reading.named("Instructions").score < 0


def test_segment_values_are_used_where_the_method_has_them():
    text = "Document 1: Paris is big.\nDocument 2: Rome is old.\n\nQuestion: Which is old?\nAnswer:"
    words = [m for m in re.finditer(r"\S+", text)]
    first_segment = [i + 1 for i, m in enumerate(words) if m.start() < text.index("Document 2")]
    rest = [i + 1 for i, m in enumerate(words) if m.start() >= text.index("Document 2")]
    players = [
        {"level": "segment", "tokens": first_segment, "value": 0.1, "parent": None},
        {"level": "segment", "tokens": rest, "value": 0.9, "parent": None},
    ]
    result = word_result(text, {}, players=players)
    reading = section_reading(Reading.of(result, text), find_sections(parse_prompt(text)))
    assert reading.source == "attnlrp segment values" and reading.hidden == 0.0
    assert reading.named("Document 1").share == pytest.approx(0.1)
    assert reading.named("Document 2").share + reading.named("question").share == pytest.approx(0.9)


def test_expectations_pass_fail_and_name_missing_sections():
    text = (
        "---\nexpect:\n  answer: {contains: '77', not_contains: '48'}\n  sections:\n    question: {min_share: 0.5}\n"
        "    Nowhere: {max_share: 0.1}\n---\nDocument 1: 7733.\n\nQuestion: code?\nAnswer:"
    )
    doc = parse_prompt(text)
    sections = find_sections(doc)
    assert list(missing_sections(doc.front_matter.expect, sections)) == ["Nowhere"]
    result = word_result(text, {"7733.": 5.0})
    found = verdicts(doc.front_matter.expect, result, section_reading(Reading.of(result, text), sections))
    assert [(v.name, v.passed) for v in found] == [
        ("answer contains '77'", False),
        ("answer does not contain '48'", True),
        ("section 'question': share ≥ 50.0%", False),
        ("section 'Nowhere': share ≤ 10.0%", False),
    ]
    assert found[0].found == "the answer is ' x'" and found[3].found == "no such section"
