"""The HTML of salience's pages, as `str.format` templates: one heatmap page, a comparison, a batch index.
Self-contained (inline style and script), light and dark."""

STYLE = """
body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222;background:#fff}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}}
span[data-i]{{border-radius:2px}} span[data-i][style]{{color:#000}} td[style]{{color:#000}}
.legend{{font-size:13px}} .sw{{display:inline-block;width:1.1em;height:1em;vertical-align:middle}}
a{{color:#0b5cad}}
@media (prefers-color-scheme: dark){{
 body{{color:#ddd;background:#1b1b1b}} td,th{{border-color:#444}} a{{color:#7ab8ff}}
 pre,.scroll{{border-color:#444}} button{{background:#333;color:#ddd;border:1px solid #555}}
 button.on{{background:#ddd;color:#111}}
}}
"""

INDEX = (
    """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>"""
    + STYLE
    + """
.preview{{font:12px/1.5 ui-monospace,monospace;white-space:pre-wrap;overflow-wrap:anywhere;max-width:36em}}
td:nth-child(5){{font-family:ui-monospace,monospace;font-size:13px}} tr.error td{{color:#c33}}
</style></head><body>
<h1>{title}</h1><p>{counts}</p>{legend}
<table><tr><th>prompt</th><th>heatmap (start)</th><th>run</th><th>explains</th><th>top 5 words</th></tr>
{rows}
</table></body></html>
"""
)

PAGE = (
    """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>salience: {title}</title>
<style>"""
    + STYLE
    + """
pre{{white-space:pre-wrap;overflow-wrap:anywhere;font:15px/1.6 ui-monospace,monospace;border:1px solid #ddd;
 padding:1em}}
.completion{{font-weight:bold;color:#080}} #targets{{display:flex;flex-wrap:wrap;gap:.3em;align-items:center}}
button{{font-family:monospace}} button.on{{background:#333;color:#fff}}
#top,#matrix table{{font:12px ui-monospace,monospace}}
.scroll{{max-height:30em;overflow:auto;border:1px solid #ddd;max-width:100%}}
#sections{{display:flex;font:12px ui-monospace,monospace;margin:.5em 0;border:1px solid #ddd}}
#sections div{{overflow:hidden;white-space:nowrap;text-overflow:ellipsis;padding:3px 4px;color:#000;min-width:0}}
#sections div.hidden{{background:repeating-linear-gradient(45deg,#ccc 0 4px,#eee 4px 8px)}}
#matrix th{{position:sticky;left:0;background:inherit}} #matrix tr:first-child th{{position:sticky;top:0}}
</style></head><body>
{back}<h1>{title}</h1><p>{summary}</p>
{legend}
{sections}
<div id="targets">target: {buttons}</div>
<pre id="heatmap">{body}<span class="completion">{completion}</span></pre>
<h2>top {part}s</h2>
<table id="top">
{top}
</table>
<h2>matrix [{part} × completion token]</h2>
<p class="legend">Each cell: the {part}'s relevance to that token of the completion. Colour: one robust scale over
the whole matrix (plain below the mean |value|, full from its 90th percentile).</p>
<div class="scroll" id="matrix"><table>
{matrix}
</table></div>
<script>
const D = {data};
function show(row) {{
  const colours = D.colours[row + 1], scores = D.scores[row + 1];
  document.querySelectorAll("#heatmap span[data-i]").forEach(sp => {{
    const i = +sp.dataset.i;
    sp.style.background = colours[i];
    sp.title = sp.title.replace(/[-+][\\d.]+$/, (scores[i] >= 0 ? "+" : "") + scores[i].toFixed(4)); }});
  document.querySelectorAll("#targets button").forEach(b => b.classList.toggle("on", +b.dataset.row === row));
}}
document.querySelectorAll("#targets button").forEach(b => b.onclick = () => show(+b.dataset.row));
</script></body></html>
"""
)

DIFF = (
    """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>salience diff: {title}</title>
<style>"""
    + STYLE
    + """
pre{{white-space:pre-wrap;overflow-wrap:anywhere;font:15px/1.6 ui-monospace,monospace;border:1px solid #ddd;
 padding:1em}}
pre span[style]{{color:#000;border-radius:2px}} del{{color:#888}} .changed{{color:#c33;font-weight:bold}}
</style></head><body>
<h1>{title}</h1><p class="answer{changed}">{answer}</p>
<p class="legend">blue: the word lost relevance · red: it gained · <del>struck out</del>: deleted ·
hover a word for its relevance before and after</p>
<pre>{body}</pre>
<h2>sections: share of |relevance|</h2>
<table><tr><th>section</th><th>was</th><th>now</th><th>change</th></tr>
{rows}
</table></body></html>
"""
)
