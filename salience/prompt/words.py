"""Where a writer's words begin: the word breaks of the file text that the views group tokens by.

A model splits a number, a rare word or an emoji into several tokens; a writer reads one word. The
views show words (`spans.word_spans`), so the text decides, not the tokenizer: two touching tokens
belong to one word unless the file has a word break between them. The rules are a small part of
Unicode's word boundaries (UAX #29): letters, digits and combining marks join; `1,889`, `12:30` and
`3.5` are one number and `don't` one word; an emoji with its modifiers, joiners and the emoji next to
it is one sequence; each Han or kana character stands alone (those scripts put no spaces between
words, and a run of them is a phrase); blanks on one line lead into the word after them. Pure functions
on a str.

This is the one word rule: the views group a result's spans by it (`views.spans.word_spans`) and the
engine its players by it (`word_starts`: SIG's words, the word players of LIME, KernelSHAP and
TextGenSHAP), so the word a method scores is the word the hover shows. `WORD_RULE` names its version:
stored results whose players it decides are keyed on it.
"""

from __future__ import annotations

import unicodedata

WORD_RULE = 2
"""Version of the rule; 1 was the engine's own (letters and digits only), which split don't and 1,889."""
ZWJ = "\u200d"
NUMBER_JOINERS = frozenset(".,:")
"""Between two digits, these keep a number whole: 1,889 · 3.5 · 12:30."""
WORD_JOINERS = frozenset("'’")
"""Between two letters, these keep a word whole: don't."""


def is_break(text: str, p: int) -> bool:
    """Whether a word break lies between text[p - 1] and text[p] (always at the ends of the text)."""
    if p <= 0 or p >= len(text):
        return True
    before, after = text[p - 1], text[p]
    if _space(before) or _space(after):
        return True  # a mark after a line break belongs to no word across it
    if _extends(after) or before == ZWJ:
        return False
    if _emoji(before) and _emoji(after):
        return False
    if _solo(before) or _solo(after):
        return True
    if _letter_or_digit(before) and _letter_or_digit(after):
        return False
    return not (_joined_across(text, p - 1) or _joined_across(text, p))


def _joined_across(text: str, i: int) -> bool:
    """Whether text[i] is a joiner with the characters on both sides of the kind it joins (1,889; don't)."""
    if i <= 0 or i + 1 >= len(text):
        return False
    left, mid, right = text[i - 1], text[i], text[i + 1]
    if mid in NUMBER_JOINERS:
        return left.isdigit() and right.isdigit()
    return mid in WORD_JOINERS and left.isalpha() and right.isalpha()


def _space(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Cc"


def _letter_or_digit(char: str) -> bool:
    return char.isalnum() or unicodedata.category(char).startswith("M")


def _extends(char: str) -> bool:
    """Characters that belong to the one before: combining marks, joiners, variation selectors, skin tones."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char == ZWJ
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _emoji(char: str) -> bool:
    """Pictographs and regional indicators (flags are pairs of these)."""
    code = ord(char)
    return 0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF or 0x1F1E6 <= code <= 0x1F1FF


def _solo(char: str) -> bool:
    """Han ideographs and kana: a word each."""
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2FA1F
        or 0xF900 <= code <= 0xFAFF
        or 0x3040 <= code <= 0x30FF
    )


BLANKS = " \t\u00a0\u3000"
"""Blanks on one line: a token of these leads into the word after it (' ' + '7733' is one word)."""


def continues_word(text: str, word: tuple[int, int], span: tuple[int, int]) -> bool:
    """Whether a token on `span` belongs to the word on `word` (the characters of that word so far): it lies
    on the word's characters (one character split over tokens, a placeholder's sample value), or it touches
    them with no word break between, or the word so far is blanks on one line leading into it."""
    start, end = span
    if word[0] <= start < word[1]:
        return True
    if start != word[1]:
        return False
    return not is_break(text, start) or (_blanks(text[word[0] : word[1]]) and not text[start : start + 1].isspace())


def word_starts(text: str, ranges: list[tuple[int, int] | None]) -> list[int]:
    """Indices of the tokens that begin a word, for tokens on `ranges` of `text` in file order; a token with
    no range (a template token) is a word of its own. The views group spans by the same rule."""
    starts: list[int] = []
    word: tuple[int, int] | None = None
    for i, span in enumerate(ranges):
        if span is not None and word is not None and continues_word(text, word, span):
            word = (word[0], max(word[1], span[1]))
        else:
            starts.append(i)
            word = span
    return starts


def _blanks(chars: str) -> bool:
    return chars != "" and chars.strip(BLANKS) == ""
