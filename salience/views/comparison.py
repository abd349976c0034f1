"""What an edit changed: two versions of a prompt, each with its result, compared word by word and section by
section.

The two texts are aligned on their words (difflib over the words' text, body only): a word both versions
share compares its relevance before and after; a word only the new version has is inserted, one only the
old has is deleted. Relevance is the heatmap's per-word score (each completion token's row normalised to
a total |score| of 1, so two runs compare), sections compare by name on their shares. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Literal

from salience.views.reading import Reading, percent
from salience.views.section_shares import SectionReading
from salience.views.spans import ScoredSpan

Status = Literal["kept", "inserted", "deleted"]


@dataclass(frozen=True)
class WordChange:
    """A word of either version: its signed share of the heatmap before and after (its score over the total
    |score| of that version's heatmap, so two runs compare; None where that version lacks the word)."""

    text: str
    status: Status
    old: float | None
    new: float | None
    old_span: ScoredSpan | None = None
    new_span: ScoredSpan | None = None

    @property
    def change(self) -> float:
        return (self.new or 0.0) - (self.old or 0.0)

    def describe(self) -> str:
        """'was +2.0%, now +11.0%', 'inserted, now +1.1%', 'deleted, was +0.5%'."""
        if self.status == "inserted":
            return f"inserted, now {self.new or 0.0:+.1%}"
        if self.status == "deleted":
            return f"deleted, was {self.old or 0.0:+.1%}"
        return f"was {self.old or 0.0:+.1%}, now {self.new or 0.0:+.1%}"


@dataclass(frozen=True)
class SectionChange:
    """A section by name: its share before and after (None where that version has no such section)."""

    name: str
    old: float | None
    new: float | None

    @property
    def change(self) -> float:
        return (self.new or 0.0) - (self.old or 0.0)


@dataclass
class Comparison:
    """Two versions' results compared: the completions, every word, every section."""

    old_answer: str
    new_answer: str
    words: list[WordChange]
    sections: list[SectionChange]
    old_text: str = ""

    @property
    def answer_changed(self) -> bool:
        return self.old_answer != self.new_answer

    def answer_line(self) -> str:
        if self.answer_changed:
            return f"completion changed: {self.old_answer!r} → {self.new_answer!r}"
        return f"completion unchanged: {self.new_answer!r}"

    def largest(self, k: int = 10) -> list[WordChange]:
        """The k words whose relevance changed most (inserted and deleted words count their whole score)."""
        return sorted((w for w in self.words if w.change), key=lambda w: -abs(w.change))[:k]

    def on_new(self) -> dict[int, WordChange]:
        """The new version's words by id of their span: what the new text's heatmap draws."""
        return {id(w.new_span): w for w in self.words if w.new_span is not None}

    def deleted_before(self) -> dict[int, list[str]]:
        """Deleted text by the new text offset of the word that follows it (where a view shows it struck out;
        after the last word: under -1): each run of deleted words as the old text wrote it, on one line."""
        anchors: dict[int, list[str]] = {}
        run: list[WordChange] = []
        for word in [*self.words, None]:
            if word is not None and word.status == "deleted":
                run.append(word)
                continue
            if run and (word is None or word.new_span is not None):
                start, end = run[0].old_span, run[-1].old_span
                text = " ".join(self.old_text[start.start : end.end].split()) if start and end else ""
                anchors.setdefault(word.new_span.start if word is not None else -1, []).append(text)
                run = []
        return anchors


def compare(old: Reading, new: Reading, old_sections: SectionReading, new_sections: SectionReading) -> Comparison:
    """Align the two versions' words and sections and compare their relevance."""
    a, b = _shown(old), _shown(new)
    matcher = SequenceMatcher(None, [old.span_text(s) for s in a], [new.span_text(s) for s in b], autojunk=False)
    words: list[WordChange] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs = zip(a[i1:i2], b[j1:j2])
            words += [WordChange(new.span_text(y), "kept", _signed(old, x), _signed(new, y), x, y) for x, y in pairs]
            continue
        words += [WordChange(old.span_text(x), "deleted", _signed(old, x), None, old_span=x) for x in a[i1:i2]]
        words += [WordChange(new.span_text(y), "inserted", None, _signed(new, y), new_span=y) for y in b[j1:j2]]
    answers = old.result.explained_text, new.result.explained_text
    return Comparison(*answers, words, _sections(old_sections, new_sections), old.text)


def _signed(reading: Reading, span: ScoredSpan) -> float:
    """The span's signed share of its heatmap's total |score|."""
    return span.score / reading.total


def _shown(reading: Reading) -> list[ScoredSpan]:
    """The visible words of the reading (blank spans carry no word to align)."""
    return [s for s in reading.spans if reading.span_text(s).strip()]


def _sections(old: SectionReading, new: SectionReading) -> list[SectionChange]:
    before = {s.name.casefold(): s for _, s in old.rows()}
    after = {s.name.casefold(): s for _, s in new.rows()}
    names = [s.name for _, s in new.rows()] + [s.name for _, s in old.rows() if s.name.casefold() not in after]
    return [
        SectionChange(
            name,
            before[name.casefold()].share if name.casefold() in before else None,
            after[name.casefold()].share if name.casefold() in after else None,
        )
        for name in names
    ]


def share_text(share: float | None) -> str:
    return "—" if share is None else percent(share)


def comparison_view(comparison: Comparison) -> dict[str, Any]:
    """The comparison as `salience diff --json` writes it."""
    return {
        "completion": {
            "old": comparison.old_answer,
            "new": comparison.new_answer,
            "changed": comparison.answer_changed,
        },
        "sections": [{"name": s.name, "old": s.old, "new": s.new, "change": s.change} for s in comparison.sections],
        "words": [
            {
                "text": w.text,
                "status": w.status,
                "old": w.old,
                "new": w.new,
                "change": w.change,
                "old_start": w.old_span.start if w.old_span else None,
                "new_start": w.new_span.start if w.new_span else None,
            }
            for w in comparison.words
        ],
    }
