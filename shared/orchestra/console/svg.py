"""Charts drawn on the server as SVG: line series with a threshold line and shaded episodes, bars
and heatmaps, each with a text alternative (a :class:`~orchestra.console.views.Table` of the same
numbers).

Only presentation attributes are used (no ``style`` attributes, no script), so the console's
Content-Security-Policy holds; every text is escaped. Series differ by dash pattern and marker as
well as by colour, so a chart reads in greyscale.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from .views import BarChart, Heatmap, LineChart, Table, XValue

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 40
PALETTE = ("#1f5fbf", "#b3470e", "#2e7d32", "#6a1b9a", "#00796b", "#5d4037")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")


def _x(value: XValue) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def _label_x(value: XValue) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    return _number(value)


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.6g}"


def _span(low: float, high: float) -> tuple[float, float]:
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        return low - pad, high + pad
    return low, high


def _svg(title: str, body: list[str], ident: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{ident}-t"><title id="{ident}-t">{escape(title)}</title>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _axes(y_low: float, y_high: float, y_label: str) -> list[str]:
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    parts = [
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#555"/>',
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#555"/>',
        f'<text x="{x0 - 4}" y="{y0}" text-anchor="end" font-size="11">{escape(_number(y_low))}</text>',
        f'<text x="{x0 - 4}" y="{y1 + 8}" text-anchor="end" font-size="11">{escape(_number(y_high))}</text>',
    ]
    if y_label:
        parts.append(f'<text x="{x0}" y="{y1 - 10}" font-size="11">{escape(y_label)}</text>')
    return parts


def line_chart(chart: LineChart, ident: str = "chart") -> Markup:
    points = [(_x(x), y) for s in chart.series for x, y in s.points]
    xs = [p[0] for p in points] + [_x(e.start) for e in chart.episodes] + [_x(e.end) for e in chart.episodes]
    xs += [_x(m.at) for m in chart.markers]
    ys = [p[1] for p in points if math.isfinite(p[1])]
    if chart.threshold is not None:
        ys.append(chart.threshold)
    if not xs or not ys:
        return _svg(chart.title, ['<text x="20" y="40">no data</text>'], ident)
    x_low, x_high = _span(min(xs), max(xs))
    timed = any(isinstance(x, dt.datetime) for x, _ in _all(chart)) or any(
        isinstance(m.at, dt.datetime) for m in chart.markers
    )
    y_low, y_high = _span(min(0.0, min(ys)), max(ys))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(v: float) -> float:
        return round(LEFT + (v - x_low) / (x_high - x_low) * plot_w, 2)

    def sy(v: float) -> float:
        return round(HEIGHT - BOTTOM - (v - y_low) / (y_high - y_low) * plot_h, 2)

    body: list[str] = []
    for episode in chart.episodes:
        left, right = sx(_x(episode.start)), sx(_x(episode.end))
        body.append(
            f'<rect class="episode" x="{left}" y="{TOP}" width="{max(right - left, 1)}" height="{plot_h}" '
            f'fill="#f2b705" fill-opacity="0.25"><title>{escape(episode.label or "episode")}: '
            f"{escape(_label_x(episode.start))} – {escape(_label_x(episode.end))}</title></rect>"
        )
    body.extend(_axes(y_low, y_high, chart.y_label))
    body.extend(_x_ticks(x_low, x_high, sx, datetime_axis=timed))
    body.append(
        f'<text x="{LEFT}" y="{HEIGHT - BOTTOM + 16}" font-size="11">{escape(_axis_label(x_low, timed))}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - BOTTOM + 16}" font-size="11" text-anchor="end">'
        f"{escape(_axis_label(x_high, timed))}</text>"
    )
    if chart.threshold is not None:
        y = sy(chart.threshold)
        body.append(
            f'<line class="threshold" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#c62828" '
            f'stroke-dasharray="4 4"/><text x="{WIDTH - RIGHT}" y="{y - 4}" text-anchor="end" font-size="11" '
            f'fill="#c62828">{escape(chart.threshold_label)} {escape(_number(chart.threshold))}</text>'
        )
    for index, series in enumerate(chart.series):
        colour, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        coords = " ".join(f"{sx(_x(x))},{sy(y)}" for x, y in series.points if math.isfinite(y))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(
            f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2"{dash_attr} '
            f'points="{coords}"><title>{escape(series.name)}</title></polyline>'
        )
        legend_y = HEIGHT - 8
        legend_x = LEFT + index * 150
        body.append(
            f'<line x1="{legend_x}" y1="{legend_y - 4}" x2="{legend_x + 20}" y2="{legend_y - 4}" '
            f'stroke="{colour}" stroke-width="2"{dash_attr}/>'
            f'<text x="{legend_x + 24}" y="{legend_y}" font-size="11">{escape(series.name)}</text>'
        )
    for marker in chart.markers:
        x = sx(_x(marker.at))
        text = f"{marker.label or 'marker'}: {_label_x(marker.at)}"
        anchor = "end" if x > LEFT + plot_w / 2 else "start"
        offset = -4 if anchor == "end" else 4
        width = round(6.2 * len(marker.label or "marker") + 6, 1)
        body.append(
            f'<line class="marker" x1="{x}" y1="{TOP}" x2="{x}" y2="{HEIGHT - BOTTOM}" stroke="#222" '
            f'stroke-width="2" stroke-dasharray="6 2 1 2"><title>{escape(text)}</title></line>'
            f'<rect class="marker-badge" x="{round(x + offset - (width if anchor == "end" else 0), 2)}" '
            f'y="{TOP + 1}" width="{width}" height="15" fill="#fff" fill-opacity="0.9"/>'
            f'<text x="{round(x + offset + (-3 if anchor == "end" else 3), 2)}" y="{TOP + 12}" '
            f'text-anchor="{anchor}" font-size="11">{escape(marker.label or "marker")}</text>'
        )
    return _svg(chart.title, body, ident)


def _axis_label(value: float, timed: bool, short: bool = False) -> str:
    """An x axis position as text: a UTC date and time on a time axis, else the number."""
    if not timed:
        return _number(value)
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M")


def _all(chart: LineChart) -> list[tuple[XValue, float]]:
    return [p for s in chart.series for p in s.points]


def _x_ticks(x_low: float, x_high: float, sx: Callable[[float], float], *, datetime_axis: bool) -> list[str]:
    """Three faint vertical grid lines between the ends, labelled (dates as month-day and time)."""
    parts: list[str] = []
    for fraction in (0.25, 0.5, 0.75):
        value = x_low + (x_high - x_low) * fraction
        x = sx(value)
        label = _axis_label(value, datetime_axis, short=True)
        parts.append(
            f'<line class="grid" x1="{x}" y1="{TOP}" x2="{x}" y2="{HEIGHT - BOTTOM}" stroke="#ddd"/>'
            f'<text x="{x}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11">{escape(label)}</text>'
        )
    return parts


def bar_chart(chart: BarChart, ident: str = "chart") -> Markup:
    values = [b.value for b in chart.bars]
    y_low, y_high = _span(min(0.0, min(values)), max(0.0, max(values)))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / len(chart.bars)

    def sy(v: float) -> float:
        return round(HEIGHT - BOTTOM - (v - y_low) / (y_high - y_low) * plot_h, 2)

    body = _axes(y_low, y_high, chart.y_label)
    for index, bar in enumerate(chart.bars):
        x = round(LEFT + index * step + step * 0.15, 2)
        top, base = sy(max(bar.value, 0.0)), sy(min(bar.value, 0.0))
        body.append(
            f'<rect class="bar" x="{x}" y="{top}" width="{round(step * 0.7, 2)}" height="{round(base - top, 2)}" '
            f'fill="{PALETTE[0]}"><title>{escape(bar.label)}: {escape(_number(bar.value))}</title></rect>'
        )
        if len(chart.bars) <= 16:
            body.append(
                f'<text x="{round(x + step * 0.35, 2)}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                f'font-size="11">{escape(bar.label[:14])}</text>'
            )
    return _svg(chart.title, body, ident)


def heatmap(chart: Heatmap, ident: str = "chart") -> Markup:
    found = [v for row in chart.values for v in row if v is not None and math.isfinite(v)]
    low, high = _span(min(found), max(found)) if found else (0.0, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    cell_w, cell_h = plot_w / len(chart.columns), plot_h / len(chart.rows)
    body: list[str] = []
    for r, (name, row) in enumerate(zip(chart.rows, chart.values, strict=True)):
        y = round(TOP + r * cell_h, 2)
        body.append(
            f'<text x="{LEFT - 4}" y="{round(y + cell_h / 2 + 4, 2)}" text-anchor="end" font-size="11">'
            f"{escape(name[:10])}</text>"
        )
        for c, value in enumerate(row):
            x = round(LEFT + c * cell_w, 2)
            shade = 0.0 if value is None else round(0.1 + 0.9 * (value - low) / (high - low), 3)
            extra = chart.overlay[r][c] if chart.overlay is not None else None
            tip = f"{name}, {chart.columns[c]}: {_number(value)}"
            if chart.overlay is not None:
                tip += f"; {chart.overlay_label or 'overlay'}: {_number(extra)}"
            body.append(
                f'<rect class="cell" x="{x}" y="{y}" width="{round(cell_w, 2)}" height="{round(cell_h, 2)}" '
                f'fill="{PALETTE[0]}" fill-opacity="{shade}" stroke="#fff"><title>{escape(tip)}</title></rect>'
            )
            if extra is not None:
                body.append(_overlay_mark(x + cell_w / 2, y + cell_h / 2, extra, cell_w, cell_h))
    for c, column in enumerate(chart.columns):
        if len(chart.columns) <= 24 or c % max(1, len(chart.columns) // 12) == 0:
            body.append(
                f'<text x="{round(LEFT + (c + 0.5) * cell_w, 2)}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle" font-size="11">{escape(column[:6])}</text>'
            )
    if found:
        key = f"darker: more {chart.value_label or 'value'} ({_number(low)} – {_number(high)})"
        if chart.overlay is not None:
            key += f"; numbers: {chart.overlay_label or 'overlay'}"
        body.append(f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11">{escape(key)}</text>')
    return _svg(chart.title, body, ident)


def _overlay_mark(cx: float, cy: float, value: float, cell_w: float, cell_h: float) -> str:
    """A number on a light badge in the middle of a cell, readable over any shade."""
    text = _number(value)
    width = min(cell_w - 2, 6.5 * len(text) + 5)
    height = min(cell_h - 2, 14)
    return (
        f'<rect class="overlay-badge" x="{round(cx - width / 2, 2)}" y="{round(cy - height / 2, 2)}" '
        f'width="{round(width, 2)}" height="{round(height, 2)}" rx="3" fill="#fff" fill-opacity="0.85"/>'
        f'<text class="overlay" x="{round(cx, 2)}" y="{round(cy + 4, 2)}" text-anchor="middle" '
        f'font-size="11">{escape(text)}</text>'
    )


def text_alternative(chart: LineChart | BarChart | Heatmap) -> Table:
    """The chart's numbers as a table (shown under the chart, and all a screen reader needs)."""
    if isinstance(chart, LineChart):
        rows: list[list[str | float | None]] = [
            [series.name, _label_x(x), y] for series in chart.series for x, y in series.points
        ]
        rows += [
            [
                f"episode: {e.label}" if e.label else "episode",
                f"{_label_x(e.start)} – {_label_x(e.end)}",
                None,
            ]
            for e in chart.episodes
        ]
        rows += [[f"marker: {m.label}" if m.label else "marker", _label_x(m.at), None] for m in chart.markers]
        if chart.threshold is not None:
            rows.append([chart.threshold_label, "", chart.threshold])
        return Table(caption=chart.title, columns=["series", "x", chart.y_label or "value"], rows=list(rows))
    if isinstance(chart, BarChart):
        return Table(
            caption=chart.title,
            columns=["label", chart.y_label or "value"],
            rows=[[b.label, b.value] for b in chart.bars],
        )
    grid: Sequence[list[float | None]] = chart.values
    rows = [[name, *row] for name, row in zip(chart.rows, grid, strict=True)]
    if chart.overlay is not None:
        label = chart.overlay_label or "overlay"
        rows += [[f"{name}: {label}", *row] for name, row in zip(chart.rows, chart.overlay, strict=True)]
    return Table(caption=chart.title, columns=["", *chart.columns], rows=list(rows))


def draw(chart: LineChart | BarChart | Heatmap, ident: str = "chart") -> Markup:
    if isinstance(chart, LineChart):
        return line_chart(chart, ident)
    if isinstance(chart, BarChart):
        return bar_chart(chart, ident)
    return heatmap(chart, ident)
