"""Charts as inline SVG, drawn on the server (no script): bars, with an optional limit line per bar.

Each chart is an image with a title for screen readers; the page puts the same numbers in a table
beside it, so nothing is told by the chart (or by colour) alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.dashboard.layout import esc

WIDTH = 720
BAR_AREA = 460  # horizontal bars: label column on the left, bars to the right
ROW = 26
COLUMN_HEIGHT = 160


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    limit: float | None = None  # drawn as a dashed mark (e.g. a budget ceiling)
    text: str = ""  # shown at the bar's end (e.g. "3.20 of 5.00 USD")


def horizontal_bars(title: str, bars: list[Bar]) -> str:
    """One row per bar; values and limits share one scale."""
    top = max([b.value for b in bars] + [b.limit or 0 for b in bars] + [1e-12])
    label_width = WIDTH - BAR_AREA
    height = ROW * len(bars) + 8
    parts = []
    for index, bar in enumerate(bars):
        y = 4 + index * ROW
        length = BAR_AREA * 0.8 * bar.value / top
        parts.append(f'<text x="{label_width - 6}" y="{y + 16}" text-anchor="end" font-size="13">{esc(bar.label)}</text>'
                     f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="16" fill="#1a5fb4"></rect>'
                     f'<text x="{label_width + length + 6:.1f}" y="{y + 16}" font-size="12">{esc(bar.text)}</text>')
        if bar.limit:
            x = label_width + BAR_AREA * 0.8 * bar.limit / top
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 24}" stroke="#a00" stroke-width="2"'
                         ' stroke-dasharray="4 2"></line>')
    return (f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">'
            f"<title>{esc(title)}</title>{''.join(parts)}</svg>")


def columns(title: str, bars: list[Bar], *, limit: float | None = None, unit: str = "") -> str:
    """Vertical bars in order (e.g. one per day), with an optional horizontal limit line; the scale's
    top value is written at the top left."""
    top = max([b.value for b in bars] + [limit or 0, 1e-12])
    step = WIDTH / max(len(bars), 1)
    width = max(step * 0.7, 1)
    parts = []
    for index, bar in enumerate(bars):
        height = COLUMN_HEIGHT * bar.value / top
        x = index * step + (step - width) / 2
        parts.append(f'<rect x="{x:.1f}" y="{COLUMN_HEIGHT - height + 4:.1f}" width="{width:.1f}" height="{height:.1f}"'
                     f' fill="#1a5fb4"><title>{esc(bar.label)}: {esc(bar.text)}</title></rect>')
        if index == 0 or index == len(bars) - 1 or len(bars) <= 8:
            anchor, at = (("start", x) if index == 0 and len(bars) > 1 else ("end", x + width)
                          if index == len(bars) - 1 and len(bars) > 1 else ("middle", x + width / 2))
            parts.append(f'<text x="{at:.1f}" y="{COLUMN_HEIGHT + 20}" text-anchor="{anchor}"'
                         f' font-size="11">{esc(bar.label)}</text>')
    if limit:
        y = COLUMN_HEIGHT - COLUMN_HEIGHT * limit / top + 4
        parts.append(f'<line x1="0" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" stroke="#a00" stroke-width="2"'
                     ' stroke-dasharray="6 3"></line>')
    parts.append(f'<line x1="0" x2="{WIDTH}" y1="{COLUMN_HEIGHT + 4}" y2="{COLUMN_HEIGHT + 4}" stroke="#555"></line>'
                 f'<text x="2" y="12" font-size="11">{top:.4g} {esc(unit)}</text>'
                 f'<line x1="0" x2="{WIDTH}" y1="4" y2="4" stroke="#ddd"></line>')
    return (f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {COLUMN_HEIGHT + 28}" width="{WIDTH}"'
            f' height="{COLUMN_HEIGHT + 28}"><title>{esc(title)}</title>{"".join(parts)}</svg>')
