"""Inline SVG bar charts for the dashboard: no script, readable without colour (each bar
carries its number), each with a <title> for screen readers."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

Bar = tuple[str, float, str]  # (series label, value, css class)


def bar_chart(groups: Sequence[tuple[str, Sequence[Bar]]], title: str, width: int = 560) -> Markup:
    """Horizontal grouped bars: one group per row label, one bar per series."""
    bar_h, gap, label_w, pad = 16, 10, 170, 40
    top = 8
    longest = max((value for _, bars in groups for _, value, _ in bars), default=0) or 1
    scale = (width - label_w - pad) / longest
    rows = []
    y = top
    for group_label, bars in groups:
        rows.append(
            f'<text class="chart-label" x="{label_w - 8}" y="{y + bar_h - 4}" '
            f'text-anchor="end">{escape(group_label)}</text>'
        )
        for series, value, css in bars:
            length = max(value * scale, 0)
            rows.append(
                f'<rect class="bar {css}" x="{label_w}" y="{y}" width="{length:.1f}" '
                f'height="{bar_h - 2}"><title>{escape(group_label)} — {escape(series)}: '
                f"{_number(value)}</title></rect>"
                f'<text class="chart-value" x="{label_w + length + 4:.1f}" y="{y + bar_h - 4}">'
                f"{_number(value)}</text>"
            )
            y += bar_h
        y += gap
    height = y + top
    # Labels are escaped above; the rest is numbers and classes from code.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(rows)}</svg>"
    )


def _number(value: float) -> str:
    return f"{value:g}"
