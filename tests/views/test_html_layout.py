"""The HTML page fits a screen: in a real headless Chromium, the 1,029-token example stays within 1,400 px."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

from salience.attribution import parse_prompt
from salience.attribution.result import AttributionResult, SourceToken
from salience.views.html import html_page, index_page

ROOT = Path(__file__).parents[2]
VIEWPORT = 1400
MEASURE = "<script>document.body.dataset.width = document.documentElement.scrollWidth;</script></body>"


def word_result(text: str, targets: int = 6) -> AttributionResult:
    """A result over `text` cut at word boundaries, with seeded scores: the layout depends on the words only."""
    rng = random.Random(0)
    source = [SourceToken(0, "<|im_start|>", None)]
    source += [SourceToken(len(source), m.group(), m.span()) for m in re.finditer(r"\s*\S+", text)]
    matrix = [[rng.gauss(0, 1) ** 3 for _ in source] for _ in range(targets)]
    aggregate = [sum(column) for column in zip(*matrix)]
    tokens = [f" tok{t}" for t in range(targets)]
    return AttributionResult(
        source, list(range(targets)), tokens, matrix, aggregate, "".join(tokens), "attnlrp", {}, "m", False
    )


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Chromium not found: `make test` installs Debian's chromium (run as root, or apt-get install it)"
    return found


def rendered_width(page: str, tmp_path: Path) -> int:
    """The page's scroll width in a 1,400 px wide headless Chromium window, after its scripts ran."""
    path = tmp_path / "page.html"
    path.write_text(page.replace("</body>", MEASURE), encoding="utf-8")
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={VIEWPORT},900",
         "--virtual-time-budget=3000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    found = re.search(r'data-width="(\d+)"', done.stdout)
    assert found, done.stderr[-2000:]
    return int(found.group(1))


def test_the_long_example_fits_a_1400_pixel_window(tmp_path):
    text = (ROOT / "examples/long-rag.prompt.md").read_text(encoding="utf-8")
    text += "\nSource: https://example.org/" + "abcdefghij" * 40 + "\n"  # no break opportunity
    result = word_result(text, targets=12)
    page = html_page(text, result, "long-rag.prompt.md", parse_prompt(text).body_start)
    assert rendered_width(page, tmp_path) <= VIEWPORT
    assert 'class="scroll" id="matrix"' in page and page.count("<tr><th>") > 500  # rows grow down, in a box


def test_the_folder_report_previews_each_heatmap_and_links_both_ways(tmp_path):
    class Entry:
        relative, stored, error = "docs/long.prompt.md", False, None
        text = (ROOT / "examples/long-rag.prompt.md").read_text(encoding="utf-8")
        result = word_result(text)

    index = index_page("report", [(Entry(), "report/docs/long.prompt.md.html")])
    assert 'href="report/docs/long.prompt.md.html"' in index and "<div class=preview>" in index
    assert "background:" in index.split("<div class=preview>")[1].split("</div>")[0]  # coloured words
    assert rendered_width(index, tmp_path) <= VIEWPORT
    page = html_page(Entry.text, Entry.result, Entry.relative, back="../../report.html")
    assert '<a href="../../report.html">← all prompts</a>' in page
