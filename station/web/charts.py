"""Charts drawn on the server as SVG, so that a line PC without the internet shows them with no script at all.

Each chart is an image to assistive technology (``role="img"``, a ``<title>`` and an ``aria-label`` that says
what it shows) and carries its numbers as text: every bar has its value in a ``<title>`` and, where there is
room, written above it, so that the figures can be read, and tested, from the SVG itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from ..production import Failure, Hour

WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 44, 48, 26, 58  # room for the axis labels
VALUES_UP_TO = 48  # bars beyond this many are too narrow for their value above them (it stays in their <title>)


def _frame(title: str, summary: str, body: list[str], css: str) -> Markup:
    return Markup(
        f'<svg class="chart {css}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(summary)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}</svg>')


def _scale(top: int) -> int:
    """A round top of the axis at or above ``top`` (1, 2, 5, 10, 20, 50, ...)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= top:
                return step * factor
        step *= 10


def _axis(top: int, inner_h: float, shares: bool = False) -> list[str]:
    """The value axis: zero, the middle and the top, with light grid lines (``shares``: 0-100 % on the right)."""
    parts = []
    for value, share in ((0, "0%"), (top / 2, "50%"), (top, "100%")):
        y = TOP + inner_h - inner_h * value / top
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>')
        if shares:
            parts.append(f'<text class="axis" x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}">{share}</text>')
    if shares:
        parts.append(f'<text class="axis" x="{WIDTH - 4}" y="{TOP - 10}" text-anchor="end">cumulative</text>')
    return parts


def hourly(hours: Sequence[Hour], zone: str) -> Markup:
    """Units passed in each hour of the station's clock, one bar per hour."""
    total = sum(hour.passed for hour in hours)
    best = max(hours, key=lambda hour: hour.passed, default=None)
    summary = (f"Bar chart of units passed per hour ({zone}): {total} in {len(hours)} hours"
               + (f", most at {best.label} with {best.passed}" if best and best.passed else ""))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _scale(max((hour.passed for hour in hours), default=0) or 1)
    body = _axis(top, inner_h)
    step = inner_w / max(len(hours), 1)
    every = 24 if len(hours) > VALUES_UP_TO else max(1, round(len(hours) / 12))  # days: each midnight; else a dozen
    for i, hour in enumerate(hours):
        x = LEFT + i * step
        h = inner_h * hour.passed / top
        y = TOP + inner_h - h
        body.append(f'<g class="bar"><title>{escape(hour.label)}: {hour.passed} passed</title>'
                    f'<rect x="{x + step * 0.12:.1f}" y="{y:.1f}" width="{step * 0.76:.1f}" height="{h:.1f}"/>')
        if hour.passed and len(hours) <= VALUES_UP_TO:
            body.append(f'<text class="value" x="{x + step / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{hour.passed}</text>')
        body.append("</g>")
        if i % every == 0:
            body.append(f'<text class="axis" x="{x + step / 2:.1f}" y="{TOP + inner_h + 18}" '
                        f'text-anchor="middle">{escape(hour.label)}</text>')
    body.append(f'<text class="axis" x="{LEFT + inner_w / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">'
                f'hour ({escape(zone)})</text>')
    return _frame("Units passed per hour", summary, body, "hourly")


def pareto(failures: Sequence[Failure]) -> Markup:
    """FAILs by step and reason, most first, with the cumulative share as a line (a Pareto chart)."""
    total = sum(failure.failures for failure in failures)
    summary = (f"Pareto chart of {total} failures by step and reason: "
               + "; ".join(f"{f.step}: {f.reason} {f.failures} ({f.cumulative:.0%} cumulative)" for f in failures)
               if failures else "Pareto chart of failures: none in this span")
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _scale(max((failure.failures for failure in failures), default=0) or 1)
    body = _axis(top, inner_h, shares=True)
    step = inner_w / max(len(failures), 1)
    points = []
    for i, failure in enumerate(failures):
        x = LEFT + i * step
        h = inner_h * failure.failures / top
        y = TOP + inner_h - h
        name = f"{failure.step}: {failure.reason}" if failure.reason else failure.step
        body.append(f'<g class="bar"><title>{escape(name)}: {failure.failures} failures, {failure.cumulative:.0%} '
                    f'cumulative</title><rect x="{x + step * 0.15:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
                    f'height="{h:.1f}"/><text class="value" x="{x + step / 2:.1f}" y="{y - 4:.1f}" '
                    f'text-anchor="middle">{failure.failures}</text></g>'
                    f'<text class="axis" x="{x + step / 2:.1f}" y="{TOP + inner_h + 18}" text-anchor="middle">'
                    f'{escape(failure.step)}</text><text class="share" x="{x + step / 2:.1f}" y="{TOP + inner_h + 36}" '
                    f'text-anchor="middle">{failure.cumulative:.0%}</text>')  # under its bar: clear of the line
        cy = TOP + inner_h - inner_h * failure.cumulative
        points.append((x + step / 2, cy))
    if points:
        body.append('<polyline class="cumulative" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        body += [f'<circle class="cumulative" cx="{x:.1f}" cy="{y:.1f}" r="4"/>' for x, y in points]
    else:
        body.append(f'<text class="empty" x="{WIDTH / 2:.0f}" y="{TOP + inner_h / 2:.0f}" text-anchor="middle">'
                    'No failures in this span</text>')
    return _frame("Failures by step and reason (Pareto)", summary, body, "pareto")
