"""One result, every view: the terminal table, the HTML page, the hover, the summary and the code lens
read the same share, rank, run time and template share (from `views.presentation`)."""

from __future__ import annotations

import html
import io
import re
import subprocess
import sys

from rich.console import Console

from salience.attribution.result import AttributionResult, SourceToken
from salience.server.layers import heatmap
from salience.server.settings import Settings
from salience.views.html import html_page
from salience.views.reading import Reading, lens_title, percent, run_time, signed
from salience.views.terminal import terminal_report

TEXT = "Door 👩‍💻 code 日本語\r\nis 7733.\nend"
WORDS = ["Door", "👩‍💻", "code", "日本語", "is", "7733", ".", "end"]
SCORES = [0.05, -0.30, 0.01, 0.20, 0.10, 0.42, 0.02, 0.08]


def result() -> AttributionResult:
    source, cursor = [], 0
    for word in WORDS:
        start = TEXT.index(word, cursor)
        cursor = start + len(word)
        source.append(SourceToken(len(source), word, (start, cursor)))
    source.append(SourceToken(99, "<|im_end|>", None))  # a chat-template token: in the heatmap, not in the file
    aggregate = SCORES + [0.5]
    return AttributionResult(
        source,
        [5],
        [" 7733"],
        [aggregate],
        aggregate,
        " 7733",
        "attnlrp",
        {},
        "m",
        True,
        timings={"generate": 0.25, "attribute": 0.5, "cached": 1.0},
        extras={"target": "draft verified"},
    )


def terminal_text(res: AttributionResult) -> str:
    console = Console(file=io.StringIO(), record=True, width=160, color_system=None)
    console.print(terminal_report(TEXT, res))
    return console.export_text()


def test_every_view_reads_the_same_numbers():
    res = result()
    reading = Reading.of(res, TEXT)
    view = heatmap.View.of(TEXT, Settings(), "utf-16", res)
    top = reading.top(3)
    assert [reading.span_text(s) for s in top] == ["7733", "👩‍💻", "日本語"]
    share = percent(reading.share(top[0]))
    assert share == "25.0%"  # 0.42 of 1.68: template tokens count in the total the shares divide
    template = percent(reading.hidden_share)
    assert template == "29.8%"

    terminal = terminal_text(res)
    page = html.unescape(html_page(TEXT, res, "door"))
    offset = TEXT.index("7733") + 1
    hover = heatmap.hover(view, offset).contents.value
    summary = heatmap.summary_markdown(view)
    lens = heatmap.code_lenses(view, "file:///door.prompt")[0].command.title

    for span in top:  # rank, text, score and share of the top parts: the terminal table and the HTML table
        cells = [
            str(reading.rank(span)),
            repr(reading.span_text(span)),
            signed(span.score),
            percent(reading.share(span)),
        ]
        gap = r"[\s│]+"
        assert re.search(
            gap.join(map(re.escape, cells[:2])) + gap + r"\d+" + gap + gap.join(map(re.escape, cells[2:])), terminal
        ), cells
        assert re.search(
            r"</td><td>".join(map(re.escape, cells[:2]))
            + r"</td><td>\d+</td><td>"
            + r"</td><td>".join(map(re.escape, cells[2:])),
            page,
        ), cells
    words = len(reading.spans)
    assert f"relevance to ' 7733': {signed(top[0].score)} · {share} of the total · rank 1 of {words} words" in hover
    assert signed(top[0].score) in hover
    for shown in (terminal, page, summary):  # the run summary: the same line everywhere
        assert reading.summary_line() in " ".join(shown.split()) or reading.summary_line() in shown
        assert f"chat-template tokens hold {template}" in shown
        assert "0.75 s (cached)" in shown and "draft verified" in shown
    assert run_time(res) in hover and run_time(res) == "0.75 s (cached)"
    assert lens == lens_title(res) == "salience: '7733' · attnlrp"


def test_a_prompt_without_template_tokens_says_nothing_of_them():
    res = result()
    res.source, res.aggregate = res.source[:-1], res.aggregate[:-1]
    assert "chat-template" not in Reading.of(res, TEXT).summary_line()


def test_the_note_names_what_holds_the_share_outside_the_file():
    res = result()
    assert Reading.of(res, TEXT).hidden_note() == "chat-template tokens hold 29.8% (not shown in the file)"
    res.chat, res.extras["sink_tokens"] = False, 1
    note = Reading.of(res, TEXT).hidden_note()
    assert note == "the start token the model reads first holds 29.8% (attention sink; not in the file)"
    assert note in Reading.of(res, TEXT).summary_line()
    del res.extras["sink_tokens"]
    assert Reading.of(res, TEXT).hidden_note() == "tokens not in the file hold 29.8%"


def test_the_views_rank_a_shifted_span_as_the_editor_shows_it():
    res = result()
    view = heatmap.View.of(TEXT, Settings(), "utf-16", res)
    view.spans = view.spans[1:]  # an edit removed the first word's span: the rest keep their rank and share
    reading = view.reading
    assert [reading.rank(s) for s in reading.top(2)] == [1, 2]
    assert reading.share(reading.top(1)[0]) == Reading.of(res, TEXT).share(Reading.of(res, TEXT).top(1)[0])


def test_the_renderer_and_the_settings_import_without_torch():
    code = (
        "import sys; import salience.server.layers.heatmap, salience.server.settings, salience.views.terminal, "
        "salience.views.html, salience.attribution, salience.prompt.document, salience.prompt.sections, "
        "salience.prompt.words; "
        "assert not {'torch', 'transformers'} & set(sys.modules), sorted(m for m in sys.modules if 'torch' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
