"""The HTML report's charts as geometry: grouped bars placed in Python, drawn by the template.

Pure values, no I/O. A bar's height is its value over the chart's largest value, times the
plot's height, so bars compare by area at a glance; the number is written above each bar too,
since a linear scale makes a REVIEW count beside an APPROVE count hard to read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: The SVG's size and the margins around the plot, in user units (px at 100 %).
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 16, 16, 28, 40
#: At most this many group labels under the axis; the others are left out (every k-th kept).
MAX_LABELS = 12


@dataclass(frozen=True)
class Bar:
    """One bar: its box, its series (a CSS class) and the value it stands for."""

    x: float
    y: float
    width: float
    height: float
    series: str
    value: int
    group: str

    @property
    def text(self) -> str:
        """The value as written above the bar and in its tooltip."""
        return f"{self.value:,}"

    @property
    def text_x(self) -> float:
        """Where the value is written: centred above the bar."""
        return round(self.x + self.width / 2, 2)

    @property
    def text_y(self) -> float:
        """The value's baseline, a little above the bar's top."""
        return round(self.y - 4, 2)


@dataclass(frozen=True)
class Label:
    """A text placed at (x, y)."""

    x: float
    y: float
    text: str


@dataclass(frozen=True)
class BarChart:
    """A grouped bar chart: its size, the bars, the group labels and the axis' y."""

    width: int
    height: int
    baseline: float
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]
    series: tuple[str, ...]


def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> BarChart:
    """Bars per group, one per series side by side; heights proportional to the values.

    `series` maps a name to one value per group, in the order of `groups`.
    """
    names = tuple(series)
    for name in names:
        if len(series[name]) != len(groups):
            raise ValueError(f"series {name!r} has {len(series[name])} values, not {len(groups)}")
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    baseline = float(TOP + plot_h)
    top = max((v for name in names for v in series[name]), default=0)
    slot = plot_w / max(len(groups), 1)
    bar_w = slot * 0.8 / max(len(names), 1)
    step = math.ceil(len(groups) / MAX_LABELS) if groups else 1
    bars, labels = [], []
    for i, group in enumerate(groups):
        left = LEFT + i * slot + slot * 0.1
        for j, name in enumerate(names):
            value = series[name][i]
            h = plot_h * value / top if top else 0.0
            bars.append(
                Bar(
                    x=round(left + j * bar_w, 2),
                    y=round(baseline - h, 2),
                    width=round(bar_w, 2),
                    height=round(h, 2),
                    series=name,
                    value=value,
                    group=group,
                )
            )
        if i % step == 0:
            labels.append(Label(x=round(LEFT + (i + 0.5) * slot, 2), y=baseline + 16, text=group))
    return BarChart(width, height, baseline, tuple(bars), tuple(labels), names)
