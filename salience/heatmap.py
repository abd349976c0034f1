"""Heatmaps of a result over the file text: a terminal view (rich) and a self-contained HTML page.

Both start from `char_runs()`: the file text cut into runs of characters covered by the same source
tokens, so overlapping tokens (byte pieces of one emoji, the tokens of a filled placeholder) add up.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Protocol

from rich.console import Group
from rich.table import Table
from rich.text import Text

from salience.attribution.result import AttributionResult


@dataclass
class Run:
    start: int
    end: int
    tokens: tuple[int, ...]


def char_runs(text: str, result: AttributionResult, start: int = 0) -> list[Run]:
    """File text from `start` cut where the set of covering source tokens changes."""
    cover: list[list[int]] = [[] for _ in range(len(text))]
    for index, token in enumerate(result.source):
        if token.range:
            for c in range(max(token.range[0], start), min(token.range[1], len(text))):
                cover[c].append(index)
    runs: list[Run] = []
    for c in range(start, len(text)):
        key = tuple(cover[c])
        if runs and runs[-1].tokens == key and runs[-1].end == c:
            runs[-1].end = c + 1
        else:
            runs.append(Run(c, c + 1, key))
    return runs


def colour(score: float, scale: float) -> str:
    """Background colour: red for positive, blue for negative, white for zero; `scale` maps to full."""
    level = 0.0 if scale <= 0 else min(abs(score) / scale, 1.0)
    fade = int(255 - 200 * level)
    return f"#ff{fade:02x}{fade:02x}" if score >= 0 else f"#{fade:02x}{fade:02x}ff"


def _scale(values: list[float]) -> float:
    return max((abs(v) for v in values), default=0.0)


def terminal_heatmap(text: str, result: AttributionResult, body_start: int = 0) -> Text:
    """The prompt body with each token's background coloured by its aggregate score, then the completion."""
    scores = result.aggregate
    scale = _scale([scores[i] for i, t in enumerate(result.source) if t.range])
    out = Text()
    for run in char_runs(text, result, body_start):
        score = sum(scores[i] for i in run.tokens)
        style = f"black on {colour(score, scale)}" if run.tokens else ""
        out.append(text[run.start:run.end], style=style)
    out.append(result.explained_text, style="bold green")
    return out


def top_table(text: str, result: AttributionResult, k: int = 10) -> Table:
    """The k most important file tokens, for terminals without colour too."""
    table = Table(title=f"top {k} tokens ({result.method}, {result.model_id})", show_edge=False)
    for column in ("rank", "token", "line", "score", "share"):
        table.add_column(column, justify="right" if column != "token" else "left")
    for rank, i in enumerate(result.top_tokens(k), 1):
        start, end = result.source[i].range
        line = text.count("\n", 0, start) + 1
        table.add_row(str(rank), repr(text[start:end]), str(line), f"{result.aggregate[i]:+.4f}",
                      f"{100 * result.share(i):.1f}%")
    return table


def players_table(text: str, result: AttributionResult, k: int = 16) -> Table | None:
    """Segments, sentences and words of a perturbation method, coarse first, with their standard errors."""
    players = result.extras.get("players", [])
    if not players:
        return None
    table = Table(title="parts of the prompt: value, with its standard error", show_edge=False)
    for column in ("level", "part", "value", "± stderr"):
        table.add_column(column, justify="left" if column in ("level", "part") else "right")
    for player in players[:k]:
        stderr = player.get("stderr")
        error = "exact" if player.get("exact") else "" if stderr is None else f"{stderr:.3f}"
        table.add_row(player["level"], result.part_text(player, text), f"{player['value']:+.3f}", error)
    if len(players) > k:
        table.caption = f"{len(players) - k} more in --json (extras.players)"
    return table


def summary(result: AttributionResult) -> str:
    kind = "generated" if result.generated else "forced target"
    foil = f" rather than {result.contrast!r}" if result.contrast else ""
    return (f"explains {result.explained_text!r}{foil} ({kind}, {len(result.target_ids)} tokens) · "
            f"{result.method} · {result.model_id} · {result.seconds:.2f} s · template tokens hold {100 * result.template_share:.1f}%")


def terminal_report(text: str, result: AttributionResult, body_start: int = 0) -> Group:
    parts = [terminal_heatmap(text, result, body_start), Text(""), Text(summary(result), style="dim"),
             top_table(text, result)]
    players = players_table(text, result)
    return Group(*parts, *([players] if players else []))


def html_page(text: str, result: AttributionResult, title: str, body_start: int = 0) -> str:
    """A self-contained page: the heatmap, a selector for each target's own row, and the matrix."""
    spans = []
    for run in char_runs(text, result, body_start):
        attrs = f' data-t="{",".join(map(str, run.tokens))}"' if run.tokens else ""
        spans.append(f"<span{attrs}>{html.escape(text[run.start:run.end])}</span>")
    buttons = ['<button data-row="-1" class="on">all (mean)</button>'] + [
        f'<button data-row="{t}">{html.escape(repr(tok))}</button>' for t, tok in enumerate(result.target_tokens)]
    data = {"aggregate": result.aggregate, "matrix": result.matrix,
            "tokens": [t.text for t in result.source], "targets": result.target_tokens}
    return _PAGE.format(title=html.escape(title), summary=html.escape(summary(result)), body="".join(spans),
                        completion=html.escape(result.explained_text), buttons="".join(buttons),
                        data=json.dumps(data).replace("</", "<\\/"))


class BatchEntry(Protocol):
    """One prompt file of a batch run (`salience.batch.Outcome`)."""

    relative: str
    text: str | None
    result: AttributionResult | None
    error: str | None
    stored: bool


def top_words(entry: BatchEntry, k: int = 5) -> str:
    """The file text of the k most important tokens, for one-line summaries."""
    if entry.result is None or entry.text is None:
        return ""
    return ", ".join(repr(entry.text[slice(*entry.result.source[i].range)]) for i in entry.result.top_tokens(k))


def batch_table(entries: list[BatchEntry]) -> Table:
    """The batch run in the terminal: a row per prompt file."""
    table = Table(show_edge=False)
    for column in ("prompt", "status", "method", "explains", "top tokens"):
        table.add_column(column, overflow="fold", no_wrap=column in ("prompt", "status", "method"))
    for entry in entries:
        result = entry.result
        if result is None:
            table.add_row(entry.relative, "[red]failed[/]", "", entry.error or "", "")
        else:
            table.add_row(entry.relative, "stored" if entry.stored else "explained", result.method,
                          repr(result.explained_text), top_words(entry))
    return table


def index_page(title: str, entries: list[tuple[BatchEntry, str | None]]) -> str:
    """A self-contained table of a batch run: each prompt's status, completion and top tokens, linked to its page."""
    rows = []
    for entry, link in entries:
        name = html.escape(entry.relative)
        cell = f'<a href="{html.escape(link, quote=True)}">{name}</a>' if link else name
        result = entry.result
        if result is None:
            rows.append(f'<tr class="error"><td>{cell}</td><td colspan="5">{html.escape(entry.error or "")}</td></tr>')
            continue
        rows.append(f"<tr><td>{cell}</td><td>{'stored' if entry.stored else 'explained'}</td>"
                    f"<td>{html.escape(result.method)}</td><td>{html.escape(repr(result.explained_text))}</td>"
                    f"<td>{html.escape(top_words(entry))}</td><td>{result.seconds:.2f}</td></tr>")
    failed = sum(entry.result is None for entry, _ in entries)
    return _INDEX.format(title=html.escape(title), rows="\n".join(rows),
                         counts=f"{len(entries) - failed} explained, {failed} failed")


_INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}}
td:nth-child(5){{font-family:ui-monospace,monospace}} tr.error td{{color:#a00}}
</style></head><body>
<h1>{title}</h1><p>{counts}</p>
<table><tr><th>prompt</th><th>status</th><th>method</th><th>explains</th><th>top 5 tokens</th><th>s</th></tr>
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
<h2>matrix [target × source]</h2><div id="matrix"></div>
<script>
const D = {data};
function colour(s, scale) {{
  const l = scale > 0 ? Math.min(Math.abs(s) / scale, 1) : 0, f = Math.round(255 - 200 * l);
  const h = f.toString(16).padStart(2, "0");
  return s >= 0 ? "#ff" + h + h : "#" + h + h + "ff";
}}
function show(row) {{
  const v = row < 0 ? D.aggregate : D.matrix[row];
  const spans = [...document.querySelectorAll("#heatmap span[data-t]")];
  const score = sp => sp.dataset.t.split(",").reduce((a, i) => a + v[+i], 0);
  const scale = Math.max(...spans.map(sp => Math.abs(score(sp))), 0);
  spans.forEach(sp => {{ const s = score(sp); sp.style.background = colour(s, scale);
    sp.title = sp.dataset.t.split(",").map(i => JSON.stringify(D.tokens[+i])).join(" ") + ": " + s.toFixed(4); }});
  document.querySelectorAll("#targets button").forEach(b => b.classList.toggle("on", +b.dataset.row === row));
}}
document.querySelectorAll("#targets button").forEach(b => b.onclick = () => show(+b.dataset.row));
const t = document.createElement("table"), esc = s => s.replace(/[&<>]/g, c => "&#" + c.charCodeAt(0) + ";");
t.innerHTML = "<tr><th></th>" + D.tokens.map(x => "<th>" + esc(JSON.stringify(x)) + "</th>").join("") + "</tr>" +
  D.matrix.map((r, i) => {{ const sc = Math.max(...r.map(Math.abs));
    return "<tr><th>" + esc(JSON.stringify(D.targets[i])) + "</th>" +
      r.map(s => "<td style=\\"background:" + colour(s, sc) + "\\">" + s.toFixed(3) + "</td>").join("") + "</tr>"; }}).join("");
document.getElementById("matrix").appendChild(t);
show(-1);
</script></body></html>
"""
