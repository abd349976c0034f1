"""Scores on file characters: model tokens merged into non-overlapping spans, grouped into words, binned into levels.

Several model tokens can land on the same characters (the bytes of one emoji, the tokens of a sample
value shown on its `{{placeholder}}`): their scores add up on one span. Pure functions, no LSP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from salience.attribution import AttributionResult
from salience.prompt.words import continues_word

Granularity = Literal["word", "token"]

LEVELS = 5
CAP_QUANTILE = 0.9
"""Where the robust scale's colour is full: the 90th percentile of |score| (`Scale`)."""
QUANTILES = (0.40, 0.60, 0.75, 0.88, 0.96)
"""Quantile bins: the lowest 40% of spans get no level, the top 4% get level 5."""


@dataclass
class ScoredSpan:
    """File characters [start, end) with the summed aggregate score of the tokens on them."""

    start: int
    end: int
    score: float
    tokens: list[int] = field(default_factory=list)
    level: int = 0
    strength: float = 0.0
    """Signed colour strength in [-1, 1] on the document's scale (0: drawn plain), set with `level`."""
    parts: list[ScoredSpan] = field(default_factory=list)
    """A word's token spans, in file order (empty at token granularity)."""

    @property
    def negative(self) -> bool:
        return self.score < 0


def scored_spans(result: AttributionResult) -> list[ScoredSpan]:
    """Non-overlapping spans in file order; overlapping token ranges merge."""
    located = sorted((t.range[0], t.range[1], i) for i, t in enumerate(result.source) if t.range)
    spans: list[ScoredSpan] = []
    for start, end, index in located:
        score = result.aggregate[index]
        if spans and start < spans[-1].end:
            last = spans[-1]
            last.end, last.score = max(last.end, end), last.score + score
            last.tokens.append(index)
        else:
            spans.append(ScoredSpan(start, end, score, [index]))
    return spans


def word_spans(spans: list[ScoredSpan], text: str) -> list[ScoredSpan]:
    """Token spans grouped into the file's words by the one word rule (`prompt.words.continues_word`):
    touching spans with no word break between them add up, and a token of spaces joins the word it precedes
    (as ' is' holds its space, ' ' + '7733' is one word). A word's range starts at its first visible
    character; its parts keep their tokens' ranges."""
    words: list[ScoredSpan] = []
    for span in spans:
        last = words[-1] if words else None
        if last and continues_word(text, (last.start, last.end), (span.start, span.end)):
            last.end, last.score = span.end, last.score + span.score
            last.tokens += span.tokens
            last.parts.append(span)
        else:
            words.append(ScoredSpan(span.start, span.end, span.score, list(span.tokens), parts=[span]))
    for word in words:  # a word is drawn from its first visible character: ' 7733' shows as '7733'
        blanks = len(text[word.start : word.end]) - len(text[word.start : word.end].lstrip())
        if word.start + blanks < word.end:
            word.start += blanks
    return words


def view_spans(result: AttributionResult, text: str, granularity: Granularity = "word") -> list[ScoredSpan]:
    """The spans every view shows: the file's words, or its tokens (`granularity`)."""
    spans = scored_spans(result)
    return word_spans(spans, text) if granularity == "word" else spans


@dataclass(frozen=True)
class Scale:
    """The colour scale that survives one loud word: from `floor` to `cap` of |score|.

    Colour is full from the cap, the 90th percentile of |score| (nearest rank): the one or few loudest words
    saturate instead of pushing every other word into the faintest level. A word is coloured only when its
    |score| reaches the floor, the mean |score| of the file's words with each counted at most at the cap:
    it holds more than an even share of the relevance, so most of the text stays clean.
    """

    floor: float
    cap: float

    @classmethod
    def of(cls, scores: list[float]) -> Scale:
        magnitudes = sorted(abs(s) for s in scores)
        if not magnitudes:
            return cls(0.0, 0.0)
        cap = magnitudes[int(CAP_QUANTILE * (len(magnitudes) - 1))]
        return cls(sum(min(m, cap) for m in magnitudes) / len(magnitudes), cap)

    def strength(self, score: float) -> float:
        """Signed colour strength: 0 below the floor, 1/LEVELS at it, 1 at the cap and above."""
        magnitude = abs(score)
        if magnitude <= 0.0 or magnitude < self.floor:
            return 0.0
        t = 1.0 if self.cap <= self.floor else min(1.0, (magnitude - self.floor) / (self.cap - self.floor))
        return math.copysign((1 + (LEVELS - 1) * t) / LEVELS, score)


def assign_levels(
    spans: list[ScoredSpan], bins: str = "robust", thresholds: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.35)
) -> list[ScoredSpan]:
    """Set each span's level 0..5 and colour strength from |score|: on the robust `Scale` (the default),
    by quantiles over the document, or at fixed fractions of the max."""
    if bins == "robust":
        scale = Scale.of([s.score for s in spans])
        for span in spans:
            span.strength = scale.strength(span.score)
            span.level = round(abs(span.strength) * LEVELS)
        return spans
    magnitudes = sorted(abs(s.score) for s in spans)
    top = magnitudes[-1] if magnitudes else 0.0
    if top <= 0.0:
        return spans
    if bins == "fixed":
        bounds = [t * top for t in thresholds]
    else:
        bounds = [_quantile(magnitudes, q) for q in QUANTILES]
    for span in spans:
        magnitude = abs(span.score)
        span.level = 0 if magnitude <= 0.0 else sum(1 for b in bounds if magnitude >= b > 0.0)
        if bins == "quantile" and magnitude == top:
            span.level = LEVELS
        span.strength = math.copysign(span.level / LEVELS, span.score)
    return spans


def _quantile(sorted_values: list[float], q: float) -> float:
    """The value below which a fraction q of the values lie (nearest rank, strictly above ties at 0)."""
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index]


def ranked(spans: list[ScoredSpan]) -> list[ScoredSpan]:
    """Spans by |score|, largest first."""
    return sorted(spans, key=lambda s: -abs(s.score))


def span_at(spans: list[ScoredSpan], offset: int) -> ScoredSpan | None:
    """The span covering `offset` (or ending right at it, so a cursor after a word finds the word)."""
    for span in spans:
        if span.start <= offset < span.end:
            return span
    for span in spans:
        if span.end == offset:
            return span
    return None


def shift_spans(spans: list[ScoredSpan], start: int, end: int, inserted: int) -> list[ScoredSpan]:
    """Spans after replacing text [start, end) with `inserted` characters: edited spans are dropped."""
    delta = inserted - (end - start)
    kept = []
    for span in spans:
        if span.end <= start:
            kept.append(span)
        elif span.start >= end:
            kept.append(_moved(span, delta))
    return kept


def _moved(span: ScoredSpan, delta: int) -> ScoredSpan:
    parts = [_moved(part, delta) for part in span.parts]
    return ScoredSpan(span.start + delta, span.end + delta, span.score, span.tokens, span.level, span.strength, parts)
