"""Accessible SVG bar charts, drawn on the server (no JavaScript): a ``role="img"`` figure with
a title and a description giving every value, bars in the GOV.UK blue with their figures
written beside them. Each chart sits next to a table of the same figures."""

from __future__ import annotations

from html import escape

BAR_HEIGHT = 28
GAP = 10
LABEL_WIDTH = 260
CHART_WIDTH = 640


def bar_chart(values: list[tuple[str, int]], *, title: str) -> str:
    """A horizontal bar chart as an SVG string (already escaped: render with ``|safe``)."""
    top = max((v for _, v in values), default=0) or 1
    room = CHART_WIDTH - LABEL_WIDTH - 60
    height = max(1, len(values)) * (BAR_HEIGHT + GAP) + GAP
    slug = "".join(c if c.isalnum() else "-" for c in title.lower())
    summary = "; ".join(f"{label}: {value}" for label, value in values) or "no figures yet"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" width="100%" '
        f'font-family="GDS Transport, arial, sans-serif" '
        f'aria-labelledby="{slug}-title {slug}-desc">',
        f'<title id="{slug}-title">{escape(title)}</title>',
        f'<desc id="{slug}-desc">{escape(summary)}</desc>',
    ]
    for i, (label, value) in enumerate(values):
        y = GAP + i * (BAR_HEIGHT + GAP)
        width = round(room * value / top)
        text = label if len(label) <= 34 else label[:33] + "…"
        parts += [
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 19}" text-anchor="end" '
            f'font-size="20" fill="#0b0c0c">{escape(text)}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{max(width, 2)}" height="{BAR_HEIGHT}" '
            f'fill="#1d70b8"></rect>',
            f'<text x="{LABEL_WIDTH + max(width, 2) + 6}" y="{y + 19}" font-size="20" '
            f'fill="#0b0c0c">{value}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)
