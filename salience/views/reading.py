"""What a user reads about a result, worded and computed once for every view.

The terminal report, the HTML page, the hover, the run summary and the code lens all take their
numbers and phrases from here, so one result reads the same everywhere: its parts are the file's words
(a word's score is the sum of its tokens'), or its tokens on demand (`granularity`); a part's share
of the heatmap's total |score| (template tokens included, so the file's shares and the template's add
up to 100 %), its rank among the file's parts, the run time, the share of the tokens the file does not
show (a chat template's, or the attention-sink token a plain prompt starts with), a perturbation
method's parts and the one-line summary. Pure functions: no torch, no LSP, no rich.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from salience.attribution import AttributionResult
from salience.views.spans import Granularity, ScoredSpan, assign_levels, ranked, view_spans

PART_WIDTH = 40
"""The longest file text a table cell or a code lens shows for one part, on one line."""


@dataclass
class Reading:
    """A result as the views present it: its spans on the file text, with their share and rank.

    `spans` are `view_spans(result, text, granularity)`, or those spans shifted by edits made since the run
    (the editor).
    """

    result: AttributionResult
    text: str
    spans: list[ScoredSpan] = field(default_factory=list)
    granularity: Granularity = "word"

    @classmethod
    def of(cls, result: AttributionResult, text: str, granularity: Granularity = "word") -> Reading:
        """The result's words (or tokens) on `text`, with their levels and colour on the robust scale."""
        return cls(result, text, assign_levels(view_spans(result, text, granularity)), granularity)

    @property
    def top_columns(self) -> tuple[str, ...]:
        """The columns of a table of top parts (`top_rows`), in the terminal and on the HTML page."""
        return ("rank", self.granularity, "line", "score", "share")

    @cached_property
    def total(self) -> float:
        """The heatmap's total |score|, over every model token (the file's and the template's)."""
        return sum(abs(v) for v in self.result.aggregate) or 1.0

    @cached_property
    def order(self) -> list[ScoredSpan]:
        """The file's spans by |score|, largest first."""
        return ranked(self.spans)

    def share(self, span: ScoredSpan) -> float:
        """The span's share of the heatmap's total |score| (0..1)."""
        return abs(span.score) / self.total

    def rank(self, span: ScoredSpan) -> int:
        """1 for the span with the largest |score|."""
        return next(i for i, s in enumerate(self.order) if s is span) + 1

    def top(self, k: int) -> list[ScoredSpan]:
        return self.order[:k]

    def span_text(self, span: ScoredSpan) -> str:
        return self.text[span.start : span.end]

    def relevance_line(self, span: ScoredSpan) -> str:
        """What a part's number is, in words: its relevance to the explained text, share and rank."""
        return (
            f"relevance to {self.result.explained_text!r}: {signed(span.score)} · {percent(self.share(span))} "
            f"of the total · rank {self.rank(span)} of {len(self.order)} {self.granularity}s"
        )

    def moved(self, span: ScoredSpan, k: int = 3) -> list[tuple[int, str, float]]:
        """The k completion tokens this part moved most: (position in the completion from 1, token, signed
        share), the share on the same scale as the part's own (its row value over the heatmap's total)."""
        values = [
            (t + 1, token, sum(row[i] for i in span.tokens) / self.total)
            for t, (token, row) in enumerate(zip(self.result.target_tokens, self.result.matrix))
        ]
        return sorted(values, key=lambda item: -abs(item[2]))[:k]

    def pieces(self, span: ScoredSpan) -> list[tuple[str, float]]:
        """A word's tokens, as file text with their scores (empty for a word of one token, or a token)."""
        if len(span.parts) < 2:
            return []
        return [(self.text[part.start : part.end], part.score) for part in span.parts]

    def segments(self, start: int = 0) -> list[tuple[int, int, ScoredSpan | None]]:
        """The text from `start` cut into its parts and the gaps between them (None), in file order."""
        cuts: list[tuple[int, int, ScoredSpan | None]] = []
        at = start
        for span in self.spans:
            if span.end <= at:
                continue
            if span.start > at:
                cuts.append((at, span.start, None))
            cuts.append((max(span.start, at), span.end, span))
            at = span.end
        if at < len(self.text):
            cuts.append((at, len(self.text), None))
        return cuts

    def line(self, span: ScoredSpan) -> int:
        """The 1-based line the span starts on."""
        return self.text.count("\n", 0, span.start) + 1

    @property
    def hidden_share(self) -> float:
        """The share of the heatmap on tokens the file does not show: a chat template's, or the sink token a
        plain prompt starts with (0..1)."""
        source = self.result.source
        return sum(abs(v) for v, t in zip(self.result.aggregate, source) if t.range is None) / self.total

    def hidden_note(self) -> str | None:
        """What the heatmap holds outside the file, said in every view (None when every token is the file's).

        A plain prompt's sink token takes the first position's attention, and so its relevance, away from the
        file's first word: the note says so rather than letting its share vanish (`attribution.tokens`)."""
        if all(t.range is not None for t in self.result.source):
            return None
        share = percent(self.hidden_share)
        if self.result.chat:
            return f"chat-template tokens hold {share} (not shown in the file)"
        if self.result.extras.get("sink_tokens"):
            return f"the start token the model reads first holds {share} (attention sink; not in the file)"
        return f"tokens not in the file hold {share}"

    def summary_line(self) -> str:
        """The run in one line: what is explained, how the answer was found, by what, how long, and the
        share of the tokens the file does not show (where the model read any)."""
        result = self.result
        foil = f" rather than {result.contrast!r}" if result.contrast else ""
        origin = result.extras.get("target") or ("generated" if result.generated else "forced")
        count = len(result.target_ids)
        hidden = f" · {note}" if (note := self.hidden_note()) else ""
        return (
            f"explains {result.explained_text!r}{foil} ({origin}, {count} token{'s' * (count != 1)}) · "
            f"{result.method} · {result.model_id} · {run_time(result)}{hidden}"
        )

    def part_text(self, player: dict[str, Any], width: int = PART_WIDTH) -> str:
        """A player's file text on one line, shortened (its decoded label where its tokens have no range)."""
        ranges = [self.result.source[i].range for i in player["tokens"] if self.result.source[i].range]
        if not ranges:
            return player["label"]
        return shorten(self.text[min(a for a, _ in ranges) : max(b for _, b in ranges)], width)

    def top_rows(self, k: int) -> list[tuple[str, ...]]:
        """The k top parts as every table shows them, one cell per `top_columns` entry."""
        return [
            (str(self.rank(s)), repr(self.span_text(s)), str(self.line(s)), signed(s.score), percent(self.share(s)))
            for s in self.top(k)
        ]

    def top_words(self, k: int = 5) -> str:
        """The file text of the k parts with the largest |score|, quoted, on one line (a batch run's summary)."""
        return ", ".join(repr(self.span_text(s)) for s in self.top(k))


def word_view(result: AttributionResult, text: str) -> list[dict[str, Any]]:
    """The file's words as `--json` adds them beside the token matrix: [start, end) in code points, the text,
    the score (the sum of the word's tokens' aggregate scores) and the source token indices."""
    return [
        {"start": s.start, "end": s.end, "text": text[s.start : s.end], "score": s.score, "tokens": s.tokens}
        for s in view_spans(result, text, "word")
    ]


def percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def signed(score: float) -> str:
    """A score as every view prints it."""
    return f"{score:+.4f}"


def run_time(result: AttributionResult) -> str:
    """The run's wall time, and whether it came from the cache rather than the model."""
    cached = " (cached)" if result.timings.get("cached") else ""
    return f"{result.seconds:.2f} s{cached}"


def player_value(player: dict[str, Any]) -> str:
    """A segment's, sentence's or word's value (a Shapley value or a surrogate's weight)."""
    return f"{player['value']:+.3f}"


def player_error(player: dict[str, Any]) -> str:
    """Its standard error: "exact" when enumerated, "" when the method has none."""
    stderr = player.get("stderr")
    return "exact" if player.get("exact") else "" if stderr is None else f"{stderr:.3f}"


def truncation_note(result: AttributionResult) -> str | None:
    """What a prompt over maxPromptTokens lost, if anything."""
    dropped = result.extras.get("truncated_tokens")
    return f"prompt longer than maxPromptTokens: the first {dropped} tokens are not attributed" if dropped else None


def lens_title(result: AttributionResult) -> str:
    """The code lens over line 0: what is explained, by which method."""
    return f"salience: {shorten(result.explained_text.strip(), PART_WIDTH)!r} · {result.method}"


def one_line(text: str) -> str:
    """Text on one line: line breaks shown as \\r and \\n."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def shorten(text: str, width: int) -> str:
    """Text with its whitespace runs collapsed, cut to `width` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
