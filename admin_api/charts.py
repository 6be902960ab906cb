"""Tiny server-side SVG charts (a line chart and a horizontal bar chart): no script, no CDN, every label escaped.

Each chart is one `<svg role="img">` with `<title>` and `<desc>` for screen readers; a point or bar with a link
is wrapped in `<a href>` so that a figure leads to the tickets behind it, without JavaScript.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#c8102e", "#1a5fb4", "#e66100", "#26a269", "#613583")  # civic red first, then colour-blind-safe-ish
NO_DATA = "Không có dữ liệu · No data"
MAX_X_LABELS = 8  # more would overlap on a 640-pixel chart; the others stay in each point's tooltip
MAX_LABEL_CHARS = 28  # a longer bar label is cut with "…"; the full text is in its tooltip
_ids = itertools.count(1)  # unique ids for aria-labelledby when several charts share a page


@dataclass(frozen=True)
class Series:
    """One line: a name for the legend, a value per x label (None: no data there) and optional links."""

    name: str
    values: Sequence[float | None]
    hrefs: Sequence[str | None] | None = None


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value and an optional link to what it counts."""

    label: str
    value: float
    href: str | None = None


def _e(text: object) -> str:
    """Escape text for SVG content and attribute values (quotes included)."""
    return escape(str(text), quote=True)


def fmt(value: float) -> str:
    """A number as a chart shows it: whole numbers without decimals, others with at most one."""
    if math.isclose(value, round(value), abs_tol=1e-9):
        return str(round(value))
    return f"{value:.1f}"


def nice_ticks(high: float, count: int = 4) -> list[float]:
    """Round axis ticks from 0 up to at least `high` (1-2-5 steps)."""
    if not math.isfinite(high) or high <= 0:
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    top = math.ceil(high / step - 1e-9) * step
    return [i * step for i in range(round(top / step) + 1)]


def _open(title: str, desc: str, width: int, height: int, css: str) -> list[str]:
    uid = f"chart{next(_ids)}"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css}" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-labelledby="{uid}-t {uid}-d">'
    )
    return [head, f'<title id="{uid}-t">{_e(title)}</title>', f'<desc id="{uid}-d">{_e(desc or title)}</desc>']


def _no_data(parts: list[str], width: int, height: int) -> str:
    parts.append(f'<rect class="chart-frame" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none"/>')
    parts.append(
        f'<text class="chart-empty" x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle">{_e(NO_DATA)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _link(inner: str, href: str | None, label: str) -> str:
    if not href:
        return inner
    return f'<a href="{_e(href)}" aria-label="{_e(label)}">{inner}</a>'


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    desc: str = "",
    unit: str = "",
    width: int = 640,
    height: int = 260,
) -> str:
    """A line chart over categorical x labels (dates), with axes, ticks, points, tooltips and a legend."""
    parts = _open(title, desc, width, height, "chart--line")
    finite = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if not labels or not finite:
        return _no_data(parts, width, height)
    left, right, top, bottom = 48, 12, 14 + 18 * (len(series) > 1), 40
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max(finite))
    y_max = ticks[-1]
    n = len(labels)

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y(v: float) -> float:
        return top + plot_h - plot_h * max(v, 0.0) / y_max

    parts.append('<g class="chart-axis">')
    for t in ticks:
        parts.append(f'<line class="chart-grid" x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>')
        parts.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{_e(fmt(t))}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    every = max(1, math.ceil(n / MAX_X_LABELS))
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_e(label)}</text>')
    if unit:
        parts.append(f'<text class="chart-unit" x="4" y="{height - 6}">{_e(unit)}</text>')
    parts.append("</g>")

    for k, line in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        hrefs = list(line.hrefs or [])
        path: list[str] = []
        pen_down = False
        dots: list[str] = []
        for i, value in enumerate(line.values[:n]):
            if value is None or not math.isfinite(value):
                pen_down = False  # a gap: no data for that label
                continue
            px, py = x(i), y(value)
            path.append(f"{'L' if pen_down else 'M'}{px:.1f} {py:.1f}")
            pen_down = True
            tip = f"{line.name} · {labels[i]}: {fmt(value)}{(' ' + unit) if unit else ''}"
            dot = f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}"><title>{_e(tip)}</title></circle>'
            dots.append(_link(dot, hrefs[i] if i < len(hrefs) else None, tip))
        if path:
            parts.append(
                f'<path class="chart-line" d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        parts.append(f'<g class="chart-points">{"".join(dots)}</g>')
        if len(series) > 1:
            lx = left + k * 160
            parts.append(
                f'<g class="chart-legend"><rect x="{lx}" y="4" width="12" height="12" fill="{colour}"/>'
                f'<text x="{lx + 16}" y="14">{_e(line.name)}</text></g>'
            )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    title: str,
    bars: Sequence[Bar],
    *,
    desc: str = "",
    unit: str = "",
    width: int = 640,
    bar_height: int = 22,
) -> str:
    """A horizontal bar chart (long Vietnamese labels read better on the left), value written after each bar."""
    rows = [b for b in bars if math.isfinite(b.value)]
    height = max(120, 24 + len(rows) * (bar_height + 8) + 22)
    parts = _open(title, desc, width, height, "chart--bar")
    if not rows:
        return _no_data(parts, width, height)
    left, right, top = 200, 56, 12
    plot_w = width - left - right
    ticks = nice_ticks(max(max(b.value for b in rows), 0.0))
    x_max = ticks[-1]
    axis_y = top + len(rows) * (bar_height + 8)
    parts.append('<g class="chart-axis">')
    for t in ticks:
        tx = left + plot_w * t / x_max
        parts.append(f'<line class="chart-grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{axis_y}"/>')
        parts.append(f'<text x="{tx:.1f}" y="{axis_y + 16}" text-anchor="middle">{_e(fmt(t))}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{axis_y}"/>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{axis_y}" y2="{axis_y}"/>')
    parts.append("</g>")
    for i, bar in enumerate(rows):
        by = top + 4 + i * (bar_height + 8)
        w = max(plot_w * max(bar.value, 0.0) / x_max, 1.0 if bar.value > 0 else 0.0)
        label = bar.label if len(bar.label) <= MAX_LABEL_CHARS else bar.label[: MAX_LABEL_CHARS - 1] + "…"
        tip = f"{bar.label}: {fmt(bar.value)}{(' ' + unit) if unit else ''}"
        colour = PALETTE[0]
        inner = (
            f'<g class="chart-bar"><title>{_e(tip)}</title>'
            f'<text class="chart-label" x="{left - 8}" y="{by + bar_height * 0.7:.1f}" text-anchor="end">'
            f"{_e(label)}</text>"
            f'<rect x="{left}" y="{by}" width="{w:.1f}" height="{bar_height}" fill="{colour}"/>'
            f'<text class="chart-value" x="{left + w + 6:.1f}" y="{by + bar_height * 0.7:.1f}">{_e(fmt(bar.value))}'
            f"</text></g>"
        )
        parts.append(_link(inner, bar.href, tip))
    parts.append("</svg>")
    return "".join(parts)
