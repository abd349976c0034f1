"""The terminal views (rich): the heatmap over the file text, the top parts, the players and a batch run."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from salience.attribution import AttributionResult
from salience.views.colours import BatchEntry, colour
from salience.views.comparison import Comparison, share_text
from salience.views.reading import Reading, percent, player_error, player_value, shorten, signed
from salience.views.section_shares import SectionReading, sections_of
from salience.views.spans import LEVELS, Granularity, Scale

RAMPS: dict[str, dict[int, tuple[str, ...]]] = {
    "256": {1: ("224", "217", "210", "203", "196"), -1: ("189", "153", "117", "75", "33")},
    "standard": {
        1: ("black on bright_yellow",) * 2 + ("black on bright_red",) * 2 + ("bold white on red",),
        -1: ("black on bright_cyan",) * 2 + ("black on cyan",) * 2 + ("bold white on blue",),
    },
    "none": {
        1: ("underline",) * 2 + ("bold underline",) * 2 + ("bold reverse",),
        -1: ("italic underline",) * 2 + ("bold italic underline",) * 2 + ("bold italic reverse",),
    },
}
"""Levels 1..5 per sign for terminals of 256 colours (xterm numbers: neighbours at least 10 CIELAB ΔE apart,
black text readable on each), of 16 colours (three steps: that palette has no more that black or white text
reads on) and without colour (underline, bold, reverse). Truecolor terminals get `runs.colour`."""


def part_style(strength: float, level: int, system: str | None) -> str:
    """How a part of `level` 1..5 with colour `strength` is drawn in a terminal with colour `system`
    (rich's: 'truecolor', '256', 'standard', 'windows', or None)."""
    if not level:
        return ""
    sign = 1 if strength >= 0 else -1
    if system == "truecolor":
        return f"black on {colour(strength)}"
    if system == "256":
        return f"black on color({RAMPS['256'][sign][level - 1]})"
    return RAMPS["standard" if system in ("standard", "windows") else "none"][sign][level - 1]


class TerminalHeatmap:
    """The prompt body with each part drawn on the robust scale in the ramp the terminal can show, then
    the completion. Chosen when printed: the console knows its colour system."""

    def __init__(self, reading: Reading, body_start: int = 0) -> None:
        self.reading, self.body_start = reading, body_start

    def text(self, system: str | None) -> Text:
        reading, out = self.reading, Text()
        for start, end, span in reading.segments(self.body_start):
            style = part_style(span.strength, span.level, system) if span else ""
            out.append(reading.text[start:end], style=style)
        out.append(reading.result.explained_text, style="bold green")
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.text(console.color_system)


def top_table(reading: Reading, k: int = 10) -> Table:
    """The k parts of the file with the largest |score|, for terminals without colour too."""
    table = Table(title=f"top {k} {reading.granularity}s", show_edge=False)  # method, model: the summary above
    for column in reading.top_columns:
        table.add_column(column, justify="right" if column != reading.granularity else "left")
    for row in reading.top_rows(k):
        table.add_row(*row)
    return table


def players_table(reading: Reading, k: int = 16) -> Table | None:
    """Segments, sentences and words of a perturbation method, coarse first, with their standard errors."""
    players = reading.result.extras.get("players", [])
    if not players:
        return None
    table = Table(title="parts of the prompt: value, with its standard error", show_edge=False)
    for column in ("level", "part", "value", "± stderr"):
        table.add_column(column, justify="left" if column in ("level", "part") else "right")
    for player in players[:k]:
        table.add_row(player["level"], reading.part_text(player), player_value(player), player_error(player))
    if len(players) > k:
        table.caption = f"{len(players) - k} more in --json (extras.players)"
    return table


BAR = 20
"""The width of a section's share bar, in characters."""


def sections_table(sections: SectionReading) -> Table:
    """Each section (children indented under their parent) with its lines, share of |relevance| and net score."""
    title = "sections: share of |relevance|" + ("" if sections.source == "tokens" else f" ({sections.source})")
    table = Table(title=title, show_edge=False)
    table.add_column("section", overflow="fold")
    for column in ("line", "share", "net"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for depth, row in sections.rows():
        bar = "█" * round(BAR * row.share)
        style = "red" if row.score >= 0 else "blue"
        name = "  " * depth + shorten(row.name, 48)
        table.add_row(name, str(row.line), percent(row.share), signed(row.score), Text(bar, style=style))
    if sections.hidden:
        table.add_row("(not in the file)", "", percent(sections.hidden), "", "")
    return table


def terminal_report(
    text: str, result: AttributionResult, body_start: int = 0, granularity: Granularity = "word", by: str = "word"
) -> Group:
    """The heatmap, the summary line, the top parts (or, `by` section, the sections) and (for a perturbation
    method) its players."""
    reading = Reading.of(result, text, granularity)
    parts = [
        TerminalHeatmap(reading, body_start),
        Text(""),
        Text(reading.summary_line(), style="dim"),
        *(Text(note, style="yellow") for note in result.notes()),
        sections_table(sections_of(reading)) if by == "section" else top_table(reading),
    ]
    players = players_table(reading)
    return Group(*parts, *([players] if players else []))


def batch_table(entries: list[BatchEntry]) -> Table:
    """The batch run in the terminal: a row per prompt file."""
    table = Table(show_edge=False)
    for column in ("prompt", "status", "method", "explains", "top words"):
        table.add_column(column, overflow="fold", no_wrap=column in ("prompt", "status", "method"))
    for entry in entries:
        result = entry.result
        if result is None or entry.text is None:
            table.add_row(entry.relative, "[red]failed[/]", "", entry.error or "", "")
        else:
            table.add_row(
                entry.relative,
                "stored" if entry.stored else "explained",
                result.method,
                repr(result.explained_text),
                Reading.of(result, entry.text).top_words(),
            )
    return table


def change_strengths(comparison: Comparison) -> dict[int, float]:
    """Each new word's colour strength on a diverging scale of relevance change: + gained, - lost."""
    scale = Scale.of([w.change for w in comparison.words])
    return {key: scale.strength(w.change) for key, w in comparison.on_new().items()}


def diff_heatmap(comparison: Comparison, new: Reading, body_start: int, system: str | None) -> Text:
    """The new text coloured by how much each word's relevance changed, deleted words struck out where they were."""
    strengths, deleted, out = change_strengths(comparison), comparison.deleted_before(), Text()
    for start, end, span in new.segments(body_start):
        for gone in deleted.pop(span.start, []) if span is not None else []:
            if start and not new.text[start - 1].isspace():
                out.append(" ")
            out.append(_struck(gone, system))
            out.append(" ")
        strength = strengths.get(id(span), 0.0) if span is not None else 0.0
        level = round(abs(strength) * LEVELS)
        out.append(new.text[start:end], style=part_style(strength, level, system))
    for gone in (text for texts in deleted.values() for text in texts):
        out.append(" ")
        out.append(_struck(gone, system))
    return out


def _struck(text: str, system: str | None) -> Text:
    """Deleted text: struck out, or [-marked-] where the terminal shows no styles."""
    return Text(text, style="strike dim") if system else Text(f"[-{text}-]")


class DiffHeatmap:
    def __init__(self, comparison: Comparison, new: Reading, body_start: int) -> None:
        self.args = (comparison, new, body_start)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield diff_heatmap(*self.args, console.color_system)


def diff_report(comparison: Comparison, new: Reading, body_start: int, k: int = 10) -> Group:
    """The completion before and after, the new text coloured by change, the sections and the words that moved."""
    sections = Table(title="sections: share of |relevance|", show_edge=False)
    for column in ("section", "was", "now", "change"):
        sections.add_column(column, justify="left" if column == "section" else "right")
    for s in comparison.sections:
        sections.add_row(s.name, share_text(s.old), share_text(s.new), f"{100 * s.change:+.1f} pt")
    words = Table(title=f"the {k} words whose relevance changed most", show_edge=False)
    for column in ("word", "line", "change", "relevance"):
        words.add_column(column, justify="right" if column in ("line", "change") else "left")
    for w in comparison.largest(k):
        span = w.new_span or w.old_span
        line = str(new.line(w.new_span)) if w.new_span else "(old)"
        words.add_row(repr(shorten(w.text, 30)), line if span else "", f"{w.change:+.1%}", w.describe())
    legend = Text("blue: lost relevance · red: gained · ", style="dim") + Text("struck out", style="strike dim")
    answer = Text(comparison.answer_line(), style="bold red" if comparison.answer_changed else "bold")
    return Group(answer, Text(""), DiffHeatmap(comparison, new, body_start), Text(""), legend, sections, words)
