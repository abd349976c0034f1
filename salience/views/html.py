"""The HTML views: a self-contained heatmap page per result, and the index page of a batch run.

A page fits a screen: the prompt with its heatmap and a legend on top, the top parts, then the matrix
with the file's words as rows (growing down) inside a scrolling box. Colours come from the robust scale
(`spans.Scale`), the same as the terminal's and the editor's; dark mode follows `prefers-color-scheme`.
"""

from __future__ import annotations

import html
import json
from itertools import islice

from salience.attribution import AttributionResult, parse_prompt
from salience.views.colours import BatchEntry, colour
from salience.views.comparison import Comparison, share_text
from salience.views.page_templates import DIFF, INDEX, PAGE
from salience.views.reading import Reading, percent, run_time, shorten, signed
from salience.views.section_shares import SectionReading, sections_of
from salience.views.spans import LEVELS, Granularity, Scale

PREVIEW = 240
"""How many characters of a prompt's body the index page previews."""


def html_page(
    text: str,
    result: AttributionResult,
    title: str,
    body_start: int = 0,
    granularity: Granularity = "word",
    back: str | None = None,
) -> str:
    """A self-contained page: the heatmap with a legend and a selector for each target's own row, the top
    parts, and the [word × target] matrix; `back` links to the index of a batch run."""
    reading = Reading.of(result, text, granularity)
    rows = [result.aggregate, *result.matrix]
    values = [[sum(row[i] for i in span.tokens) for span in reading.spans] for row in rows]
    buttons = ['<button data-row="-1" class="on">all (sum)</button>'] + [
        f'<button data-row="{t}">{html.escape(repr(tok))}</button>' for t, tok in enumerate(result.target_tokens)
    ]
    data = {
        "scores": [[round(v, 4) for v in row] for row in values],
        "colours": [[colour(k) if k else "" for k in strengths(row)] for row in values],
    }
    return PAGE.format(
        title=html.escape(title),
        back=f'<p><a href="{html.escape(back, quote=True)}">← all prompts</a></p>' if back else "",
        summary="<br>".join(html.escape(line) for line in [reading.summary_line(), *result.notes()]),
        legend=legend(reading.granularity),
        sections=section_bar(sections_of(reading)),
        body=heatmap_body(reading, body_start),
        completion=html.escape(result.explained_text),
        buttons="".join(buttons),
        part=reading.granularity,
        top=top_rows(reading),
        matrix=matrix_table(reading, values[1:]),
        data=json.dumps(data).replace("</", "<\\/"),
    )


def section_bar(sections: SectionReading) -> str:
    """The top-level sections as one bar above the text, each as wide as its share of |relevance| and coloured
    by its net sign (deeper for a larger share); nothing for a prompt of one section."""
    if len(sections.top) < 2:
        return ""
    largest = max(s.share for s in sections.top) or 1.0
    cells = []
    for row in sections.top:
        strength = (1 if row.score >= 0 else -1) * max(0.2, row.share / largest)
        tip = html.escape(f"{row.name} (line {row.line}): {percent(row.share)} · net {signed(row.score)}", quote=True)
        cells.append(
            f'<div style="flex:{row.share:.4f};background:{colour(strength)}" title="{tip}">'
            f"{html.escape(shorten(row.name, 24))} {percent(row.share)}</div>"
        )
    if sections.hidden:
        hidden = percent(sections.hidden)
        cells.append(
            f'<div class="hidden" style="flex:{sections.hidden:.4f}" title="not in the file: {hidden}">'
            f"not in the file {hidden}</div>"
        )
    caption = '<p class="legend">share of |relevance| by section (hover for the net score):</p>'
    return f'{caption}<div id="sections" aria-label="share of |relevance| per section">{"".join(cells)}</div>'


def diff_page(comparison: Comparison, new: Reading, body_start: int, title: str) -> str:
    """The new text coloured by the change of each word's relevance (blue lost, red gained), deleted words
    struck out where they were, each word's "was, now" on hover; the sections before and after."""
    changes, deleted, pieces = comparison.on_new(), comparison.deleted_before(), []
    scale = Scale.of([w.change for w in comparison.words])
    for start, stop, span in new.segments(body_start):
        if span is not None:
            pieces += [f"<del>{html.escape(gone)}</del> " for gone in deleted.pop(span.start, [])]
        shown = html.escape(new.text[start:stop])
        word = changes.get(id(span)) if span is not None else None
        if word is None:
            pieces.append(shown)
            continue
        strength = scale.strength(word.change)
        style = f' style="background:{colour(strength)}"' if strength else ""
        pieces.append(f'<span title="{html.escape(word.describe(), quote=True)}"{style}>{shown}</span>')
    pieces += [f" <del>{html.escape(gone)}</del>" for texts in deleted.values() for gone in texts]
    rows = "\n".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{share_text(s.old)}</td><td>{share_text(s.new)}</td>"
        f"<td>{100 * s.change:+.1f} pt</td></tr>"
        for s in comparison.sections
    )
    return DIFF.format(
        title=html.escape(title),
        answer=html.escape(comparison.answer_line()),
        changed=" changed" if comparison.answer_changed else "",
        body="".join(pieces),
        rows=rows,
    )


def strengths(scores: list[float]) -> list[float]:
    """Colour strengths of one row of part scores (the heatmap, or one target's) on that row's robust scale."""
    scale = Scale.of(scores)
    return [scale.strength(score) for score in scores]


def heatmap_body(reading: Reading, body_start: int = 0, limit: int | None = None) -> str:
    """The text from `body_start` (at most `limit` characters) with each part coloured for the heatmap."""
    index = {id(span): i for i, span in enumerate(reading.spans)}
    end = len(reading.text) if limit is None else min(len(reading.text), body_start + limit)
    pieces = []
    for start, stop, span in reading.segments(body_start):
        if start >= end:
            break
        shown = html.escape(reading.text[start : min(stop, end)])
        if span is None:
            pieces.append(shown)
            continue
        tokens = " ".join(json.dumps(reading.text[p.start : p.end]) for p in span.parts)
        style = f' style="background:{colour(span.strength)}"' if span.level else ""
        title = html.escape(f"{tokens}: {span.score:+.4f}" if tokens else f"{span.score:+.4f}", quote=True)
        pieces.append(f'<span data-i="{index[id(span)]}" title="{title}"{style}>{shown}</span>')
    return "".join(pieces) + ("…" if end < len(reading.text) else "")


def legend(part: str) -> str:
    """The colour key: what the two hues and their strength mean, and what a plain part means."""
    swatches = "".join(
        f'<span class="sw" style="background:{colour(sign * level / LEVELS)}"></span>'
        for sign in (-1, 1)
        for level in (range(LEVELS, 0, -1) if sign < 0 else range(1, LEVELS + 1))
    )
    return (
        f'<p class="legend">lowers the answer {swatches} raises it · plain: a {part} holding less than an even '
        "share of the relevance · full colour from the 90th percentile of |score|</p>"
    )


def top_rows(reading: Reading, k: int = 10) -> str:
    """The table of top parts: the columns and cells the terminal's table shows."""
    head = "<tr>" + "".join(f"<th>{column}</th>" for column in reading.top_columns) + "</tr>"
    cells = ("".join(f"<td>{html.escape(cell)}</td>" for cell in row) for row in reading.top_rows(k))
    return "\n".join([head, *(f"<tr>{row}</tr>" for row in cells)])


def matrix_table(reading: Reading, columns: list[list[float]]) -> str:
    """The file's parts as rows, the completion's tokens as columns, coloured on one scale over every cell."""
    scale = Scale.of([v for column in columns for v in column])
    targets = reading.result.target_tokens
    head = f"<tr><th>{reading.granularity}</th><th>line</th>" + "".join(
        f"<th>{t + 1}: {html.escape(repr(token))}</th>" for t, token in enumerate(targets)
    )
    rows = [head + "</tr>"]
    for i, span in enumerate(reading.spans):
        if not reading.span_text(span).strip():
            continue
        cells = "".join(
            f'<td style="background:{colour(scale.strength(column[i]))}">{column[i]:+.3f}</td>'
            if scale.strength(column[i])
            else f"<td>{column[i]:+.3f}</td>"
            for column in columns
        )
        word = html.escape(repr(reading.span_text(span)))
        rows.append(f"<tr><th>{word}</th><td>{reading.line(span)}</td>{cells}</tr>")
    return "\n".join(rows)


def index_page(title: str, entries: list[tuple[BatchEntry, str | None]]) -> str:
    """A self-contained table of a batch run: each prompt with a preview of its heatmap, its status, completion
    and top words, linked to its page."""
    rows = []
    for entry, link in entries:
        name = html.escape(entry.relative)
        cell = f'<a href="{html.escape(link, quote=True)}">{name}</a>' if link else name
        result = entry.result
        if result is None or entry.text is None:
            rows.append(f'<tr class="error"><td>{cell}</td><td colspan="5">{html.escape(entry.error or "")}</td></tr>')
            continue
        reading = Reading.of(result, entry.text)
        preview = heatmap_body(reading, parse_prompt(entry.text).body_start, PREVIEW)
        top = ", ".join(repr(shorten(reading.span_text(s), 24)) for s in islice(reading.order, 5))
        rows.append(
            f"<tr><td>{cell}</td><td><div class=preview>{preview}</div></td>"
            f"<td>{'stored' if entry.stored else 'explained'} · {html.escape(result.method)} · "
            f"{html.escape(run_time(result))}</td><td>{html.escape(repr(result.explained_text))}</td>"
            f"<td>{html.escape(top)}</td></tr>"
        )
    failed = sum(entry.result is None for entry, _ in entries)
    return INDEX.format(
        title=html.escape(title),
        rows="\n".join(rows),
        counts=f"{len(entries) - failed} explained, {failed} failed",
        legend=legend("word"),
    )
