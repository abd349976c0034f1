"""The HTML views: a self-contained heatmap page per result, and the index page of a batch run."""

from __future__ import annotations

import html
import json

from salience.attribution import AttributionResult
from salience.views.presentation import Reading, run_time
from salience.views.runs import BatchEntry
from salience.views.spans import Granularity, Scale


def html_page(
    text: str, result: AttributionResult, title: str, body_start: int = 0, granularity: Granularity = "word"
) -> str:
    """A self-contained page: the heatmap, a selector for each target's own row, the top parts and the matrix."""
    reading = Reading.of(result, text, granularity)
    index = {id(span): i for i, span in enumerate(reading.spans)}
    spans = []
    for start, end, span in reading.segments(body_start):
        attrs = f' data-i="{index[id(span)]}" data-t="{",".join(map(str, span.tokens))}"' if span else ""
        spans.append(f"<span{attrs}>{html.escape(text[start:end])}</span>")
    buttons = ['<button data-row="-1" class="on">all (sum)</button>'] + [
        f'<button data-row="{t}">{html.escape(repr(tok))}</button>' for t, tok in enumerate(result.target_tokens)
    ]
    data = {
        "aggregate": result.aggregate,
        "matrix": result.matrix,
        "tokens": [t.text for t in result.source],
        "shown": [t.range is not None for t in result.source],  # template and sink tokens: grey, not in the scale
        "targets": result.target_tokens,
        "strength": [strengths(reading, row) for row in [result.aggregate, *result.matrix]],
    }
    return _PAGE.format(
        title=html.escape(title),
        summary=html.escape(reading.summary_line()),
        body="".join(spans),
        completion=html.escape(result.explained_text),
        buttons="".join(buttons),
        part=reading.granularity,
        top=top_rows(reading),
        data=json.dumps(data).replace("</", "<\\/"),
    )


def strengths(reading: Reading, row: list[float]) -> list[float]:
    """Each part's colour strength for one row of scores (the heatmap, or one target's), on that row's
    robust scale: what the page paints when that row is chosen."""
    scores = [sum(row[i] for i in span.tokens) for span in reading.spans]
    scale = Scale.of(scores)
    return [round(scale.strength(score), 4) for score in scores]


def top_rows(reading: Reading, k: int = 10) -> str:
    """The table of top parts: the columns and cells the terminal's table shows."""
    head = "<tr>" + "".join(f"<th>{column}</th>" for column in reading.top_columns) + "</tr>"
    cells = ("".join(f"<td>{html.escape(cell)}</td>" for cell in row) for row in reading.top_rows(k))
    return "\n".join([head, *(f"<tr>{row}</tr>" for row in cells)])


def index_page(title: str, entries: list[tuple[BatchEntry, str | None]]) -> str:
    """A self-contained table of a batch run: each prompt's status, completion and top tokens, linked to its page."""
    rows = []
    for entry, link in entries:
        name = html.escape(entry.relative)
        cell = f'<a href="{html.escape(link, quote=True)}">{name}</a>' if link else name
        result = entry.result
        if result is None or entry.text is None:
            rows.append(f'<tr class="error"><td>{cell}</td><td colspan="5">{html.escape(entry.error or "")}</td></tr>')
            continue
        top = Reading.of(result, entry.text).top_words()
        rows.append(
            f"<tr><td>{cell}</td><td>{'stored' if entry.stored else 'explained'}</td>"
            f"<td>{html.escape(result.method)}</td><td>{html.escape(repr(result.explained_text))}</td>"
            f"<td>{html.escape(top)}</td><td>{html.escape(run_time(result))}</td></tr>"
        )
    failed = sum(entry.result is None for entry, _ in entries)
    return _INDEX.format(
        title=html.escape(title), rows="\n".join(rows), counts=f"{len(entries) - failed} explained, {failed} failed"
    )


_INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}}
td:nth-child(5){{font-family:ui-monospace,monospace}} tr.error td{{color:#a00}}
</style></head><body>
<h1>{title}</h1><p>{counts}</p>
<table><tr><th>prompt</th><th>status</th><th>method</th><th>explains</th><th>top 5 words</th><th>time</th></tr>
{rows}
</table></body></html>
"""


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>salience: {title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:60em}}
pre{{white-space:pre-wrap;font:15px/1.6 ui-monospace,monospace;border:1px solid #ddd;padding:1em}}
pre span[data-t]{{border-radius:2px;cursor:default}} .completion{{font-weight:bold;color:#060}}
button{{margin:0 .3em .3em 0;font-family:monospace}} button.on{{background:#333;color:#fff}}
table{{border-collapse:collapse;font:12px monospace}} td,th{{border:1px solid #eee;padding:2px 4px}}
</style></head><body>
<h1>{title}</h1><p>{summary}</p>
<div id="targets">target: {buttons}</div>
<pre id="heatmap">{body}<span class="completion">{completion}</span></pre>
<h2>top {part}s</h2>
<table id="top">
{top}
</table>
<h2>matrix [target × source]</h2><div id="matrix"></div>
<script>
const D = {data};
function colour(s, scale) {{
  const l = scale > 0 ? Math.min(Math.abs(s) / scale, 1) : 0, f = Math.round(255 - 200 * l);
  const h = f.toString(16).padStart(2, "0");
  return s >= 0 ? "#ff" + h + h : "#" + h + h + "ff";
}}
function show(row) {{
  const v = row < 0 ? D.aggregate : D.matrix[row], strength = D.strength[row + 1];
  const spans = [...document.querySelectorAll("#heatmap span[data-t]")];
  const score = sp => sp.dataset.t.split(",").reduce((a, i) => a + v[+i], 0);
  spans.forEach(sp => {{ const s = score(sp), k = strength[+sp.dataset.i];
    sp.style.background = k ? colour(k, 1) : "";
    sp.title = sp.dataset.t.split(",").map(i => JSON.stringify(D.tokens[+i])).join(" ") + ": " + s.toFixed(4); }});
  document.querySelectorAll("#targets button").forEach(b => b.classList.toggle("on", +b.dataset.row === row));
}}
document.querySelectorAll("#targets button").forEach(b => b.onclick = () => show(+b.dataset.row));
const t = document.createElement("table"), esc = s => s.replace(/[&<>]/g, c => "&#" + c.charCodeAt(0) + ";");
t.innerHTML = "<tr><th></th>" + D.tokens.map(x => "<th>" + esc(JSON.stringify(x)) + "</th>").join("") + "</tr>" +
  D.matrix.map((r, i) => {{ const sc = Math.max(...r.filter((_, j) => D.shown[j]).map(Math.abs), 0);
    return "<tr><th>" + esc(JSON.stringify(D.targets[i])) + "</th>" +
      r.map((s, j) => "<td style=\\"background:" + (D.shown[j] ? colour(s, sc) : "#e8e8e8") + "\\">" +
        s.toFixed(3) + "</td>").join("") + "</tr>"; }}).join("");
document.getElementById("matrix").appendChild(t);
show(-1);
</script></body></html>
"""
