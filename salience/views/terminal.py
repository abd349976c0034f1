"""The terminal views (rich): the heatmap over the file text, the top parts, the players and a batch run."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from salience.attribution import AttributionResult
from salience.views.presentation import Reading, player_error, player_value
from salience.views.runs import BatchEntry, colour
from salience.views.spans import Granularity


def terminal_heatmap(reading: Reading, body_start: int = 0) -> Text:
    """The prompt body with each part's background coloured on the robust scale, then the completion."""
    out = Text()
    for start, end, span in reading.segments(body_start):
        coloured = span is not None and span.strength != 0.0
        out.append(reading.text[start:end], style=f"black on {colour(span.strength)}" if coloured else "")
    out.append(reading.result.explained_text, style="bold green")
    return out


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


def terminal_report(
    text: str, result: AttributionResult, body_start: int = 0, granularity: Granularity = "word"
) -> Group:
    """The heatmap, the summary line, the top parts and (for a perturbation method) its players."""
    reading = Reading.of(result, text, granularity)
    parts = [
        terminal_heatmap(reading, body_start),
        Text(""),
        Text(reading.summary_line(), style="dim"),
        top_table(reading),
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
