"""A line plot as inline SVG, drawn on the server: no script, nothing fetched by the browser."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

# Distinguishable on white and in grey print (Okabe–Ito)
PALETTE = ("#000000", "#0072B2", "#56B4E9", "#D55E00", "#E69F00", "#CC79A7", "#009E73", "#F0E442")


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 … a round number at or above `top`, in about `count` steps of 1, 2 or 5 × 10^k."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < top and len(ticks) < 50:  # bounded: step ≥ top / count
        ticks.append(ticks[-1] + step)
    return ticks


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def line_plot(
    years: Sequence[int], series: Sequence[tuple[str, Sequence[float | int | None]]], title: str,
    width: int = 860, height: int = 340,
) -> str:
    """An SVG plot of each series over the years (gaps where a value is missing); a point per value with its
    number as tooltip. With one year the points stand alone."""
    left, right, top, bottom = 64, 290, 28, 40  # the legend, bilingual, on the right
    inner_w, inner_h = width - left - right, height - top - bottom
    highest = max((float(v) for _, values in series for v in values if v is not None), default=0.0)
    ticks = nice_ticks(highest)
    y_max = ticks[-1] or 1.0

    def x_of(i: int) -> float:
        return left + (inner_w / 2 if len(years) == 1 else inner_w * i / (len(years) - 1))

    def y_of(v: float) -> float:
        return top + inner_h * (1 - float(v) / y_max)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-series="{len(series)}" data-years="{len(years)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" class="plot-title">{escape(title)}</text>',
    ]
    for tick in ticks:
        y = y_of(tick)
        out.append(f'<line x1="{left}" x2="{left + inner_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_number(tick)}</text>')
    for i, year in enumerate(years):
        out.append(f'<text x="{x_of(i):.1f}" y="{top + inner_h + 18}" text-anchor="middle" class="tick">{year}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + inner_h}" class="axis"/>')
    out.append(f'<line x1="{left}" x2="{left + inner_w}" y1="{top + inner_h}" y2="{top + inner_h}" class="axis"/>')
    for n, (label, values) in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        out.append(f'<g class="series" data-label="{escape(label)}">')
        run: list[str] = []
        for i, value in enumerate(list(values) + [None]):
            if value is None:
                if len(run) > 1:
                    out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
                run = []
                continue
            x, y = x_of(i), y_of(value)
            run.append(f"{x:.1f},{y:.1f}")
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                       f"<title>{escape(label)} {years[i]}: {_number(float(value))}</title></circle>")
        legend_y = top + 16 * n + 6
        out.append(f'<line x1="{width - right + 14}" x2="{width - right + 34}" y1="{legend_y}" y2="{legend_y}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{width - right + 40}" y="{legend_y + 4}" class="legend">{escape(label)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
