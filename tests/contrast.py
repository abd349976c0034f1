"""How far apart two colours look: CIELAB ΔE (CIE76) and the WCAG contrast ratio, for the heatmap's levels.

The level colours of every client are checked with these against the themes they are drawn on
(tests/clients): a level must stand out from the background and from its neighbours, and the text on
it must stay readable.
"""

from __future__ import annotations

Rgb = tuple[int, int, int]
APART = 10.0
"""Two colours at least this ΔE apart are told apart at a glance (a just-noticeable difference is about 2.3)."""
READABLE = 4.5
"""WCAG AA contrast for text."""


def rgb(value: int | str) -> Rgb:
    """From 0xRRGGBB or '#rrggbb'."""
    number = int(value.lstrip("#"), 16) if isinstance(value, str) else value
    return (number >> 16) & 255, (number >> 8) & 255, number & 255


def over(colour: Rgb, alpha: float, background: Rgb) -> Rgb:
    """`colour` at opacity `alpha` drawn over `background`."""
    return tuple(round(alpha * c + (1 - alpha) * b) for c, b in zip(colour, background))  # type: ignore[return-value]


def delta_e(a: Rgb, b: Rgb) -> float:
    return sum((p - q) ** 2 for p, q in zip(_lab(a), _lab(b))) ** 0.5


def contrast(a: Rgb, b: Rgb) -> float:
    low, high = sorted((_luminance(a), _luminance(b)))
    return (high + 0.05) / (low + 0.05)


def ladder_problems(background: Rgb, text: Rgb, levels: list[Rgb], name: str) -> list[str]:
    """What makes a ladder of level colours hard to read on `background` with `text` drawn on it."""
    problems = []
    for i, level in enumerate(levels):
        below = levels[i - 1] if i else background
        if (gap := delta_e(below, level)) < APART:
            problems.append(f"{name} level {i + 1}: ΔE {gap:.1f} from {'level ' + str(i) if i else 'the background'}")
        if (ratio := contrast(text, level)) < READABLE:
            problems.append(f"{name} level {i + 1}: text contrast {ratio:.2f}")
    return problems


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _luminance(colour: Rgb) -> float:
    r, g, b = (_linear(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _lab(colour: Rgb) -> tuple[float, float, float]:
    r, g, b = (_linear(c) for c in colour)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)
