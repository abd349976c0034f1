"""The terminal heatmap in every colour depth: readable ramps in truecolor, 256 and 16 colours, and none."""

from __future__ import annotations

import io
import re

import pytest
from contrast import APART, READABLE, contrast, delta_e, rgb
from rich import _palettes
from rich.console import Console

from salience.attribution.result import AttributionResult, SourceToken
from salience.views.colours import colour
from salience.views.terminal import RAMPS, part_style, terminal_report

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
WORDS = ["The", " code", " is", " 7733", ".", " Repeat", " the", " code", ":", " one", " two", " three"]
SCORES = [0.01, 0.3, 0.02, 2.5, 0.01, -0.4, 0.02, 0.25, 0.01, 0.015, 0.012, -0.01]


def result() -> AttributionResult:
    source, at = [], 0
    for word in WORDS:
        source.append(SourceToken(len(source), word, (at, at + len(word))))
        at += len(word)
    return AttributionResult(source, [5], [" 7733"], [SCORES], SCORES, " 7733", "attnlrp", {}, "m", False)


def printed(system: str | None, width: int = 80) -> str:
    console = Console(file=io.StringIO(), force_terminal=system is not None, color_system=system, width=width)
    console.print(terminal_report("".join(WORDS), result()))
    return console.file.getvalue()


def ladder_problems(ladder: list[tuple[int, int, int]], name: str) -> list[str]:
    problems = [f"{name} {i + 1}: ΔE {delta_e(a, b):.1f}" for i, (a, b) in enumerate(zip([WHITE, *ladder], ladder))
                if delta_e(a, b) < APART]  # fmt: skip
    return problems + [f"{name} {i + 1}: text" for i, c in enumerate(ladder) if contrast(BLACK, c) < READABLE]


def test_truecolor_and_256_colour_ramps_have_five_readable_steps():
    problems = []
    for sign in (1, -1):
        problems += ladder_problems([rgb(colour(sign * level / 5)) for level in range(1, 6)], f"truecolor {sign}")
        eight_bit = [_palettes.EIGHT_BIT_PALETTE[int(n)] for n in RAMPS["256"][sign]]
        problems += ladder_problems([(c.red, c.green, c.blue) for c in eight_bit], f"256 {sign}")
    assert not problems, problems


@pytest.mark.parametrize("system", ["standard", None])
def test_few_colours_and_none_still_tell_three_steps_and_the_sign(system):
    styles = {sign: [part_style(sign * level / 5, level, system) for level in range(1, 6)] for sign in (1, -1)}
    assert all(len(set(ladder)) == 3 for ladder in styles.values())
    assert not set(styles[1]) & set(styles[-1])
    assert part_style(0.0, 0, system) == ""


@pytest.mark.parametrize(
    ("system", "background"),
    [("truecolor", r"48;2;\d+;\d+;\d+"), ("256", r"48;5;\d+"), ("standard", r"(?:4[1-7]|10[1-7])"), (None, None)],
)
def test_the_report_prints_in_the_terminals_colours(system, background):
    out = printed(system)
    if background is None:
        assert "\x1b[" not in out and "7733" in out  # not a terminal: plain text, the top table says it all
        return
    coloured = re.findall(rf"\x1b\[(?:[\d;]*;)?{background}(?:;[\d;]*)?m([^\x1b]+)", out)
    assert "7733" in "".join(coloured) and "Repeat" in "".join(coloured)
    assert not any(word.strip() in ("one", "two", "three") for word in coloured)  # below an even share: plain


def test_a_narrow_terminal_keeps_the_top_table_on_its_lines():
    out = printed(None, width=44)
    rows = [line for line in out.splitlines() if "│" in line]
    assert rows and all(len(line) <= 44 for line in out.splitlines())
    assert any("'7733'" in row for row in rows)
