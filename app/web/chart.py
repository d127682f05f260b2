"""A bar chart of clicks per day as plain numbers for an SVG template (no script, no library)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 24, 12, 36  # room for the y labels on the left, dates below
LABEL_EVERY = 7  # days between date labels


@dataclass(frozen=True)
class Bar:
    """One day's bar, in SVG user units."""

    day: date
    clicks: int
    human_clicks: int
    x: float
    y: float
    width: float
    height: float

    @property
    def label(self) -> str:
        """What the bar says to a reader: the day and its clicks."""
        return f"{self.day:%d %b %Y}: {clicks(self.clicks)} ({self.human_clicks} by people)"


@dataclass(frozen=True)
class Tick:
    """A label on an axis at `position` (x for dates, y for counts)."""

    position: float
    text: str
    anchor: str = "middle"  # SVG text-anchor: the last date ends at the plot's edge, never past it


@dataclass(frozen=True)
class Chart:
    """Everything the template draws, plus the totals its text alternative states."""

    bars: list[Bar]
    dates: list[Tick]
    counts: list[Tick]
    total: int
    peak: Bar | None
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM

    @property
    def summary(self) -> str:
        """A one-sentence description for screen readers."""
        if self.peak is None:
            return f"No clicks in the {len(self.bars)} days shown."
        first, last = self.bars[0].day, self.bars[-1].day
        return (
            f"{clicks(self.total)} from {first:%d %b} to {last:%d %b %Y}; "
            f"the busiest day was {self.peak.day:%d %b} with {self.peak.clicks}."
        )


def bar_chart(series: list[dict]) -> Chart:
    """Lay out `series` (stats buckets with start, clicks, human_clicks) as one bar per day."""
    plot_height = HEIGHT - TOP - BOTTOM
    top = _nice_ceiling(max((point["clicks"] for point in series), default=0))
    slot = (WIDTH - LEFT - RIGHT) / max(len(series), 1)
    bars = []
    for index, point in enumerate(series):
        height = plot_height * point["clicks"] / top
        bars.append(
            Bar(
                day=datetime.fromisoformat(point["start"]).date(),
                clicks=point["clicks"],
                human_clicks=point["human_clicks"],
                x=round(LEFT + index * slot + slot * 0.15, 2),
                y=round(HEIGHT - BOTTOM - height, 2),
                width=round(slot * 0.7, 2),
                height=round(height, 2),
            )
        )
    dates = [
        Tick(round(bar.x + bar.width / 2, 2), f"{bar.day:%d %b}")
        for index, bar in enumerate(bars[:-1])
        if (len(bars) - 1 - index) % LABEL_EVERY == 0
    ]
    if bars:  # always label the last day (today)
        dates.append(Tick(round(bars[-1].x + bars[-1].width, 2), f"{bars[-1].day:%d %b}", "end"))
    counts = [
        Tick(round(HEIGHT - BOTTOM - plot_height * value / top, 2), str(value)) for value in _steps(top)
    ]
    peak = max(bars, key=lambda bar: (bar.clicks, bar.day), default=None)
    total = sum(bar.clicks for bar in bars)
    return Chart(bars, dates, counts, total, peak if peak is not None and peak.clicks else None)


def clicks(count: int) -> str:
    """`count` with the right noun: 1 click, 2 clicks."""
    return f"{count} click" if count == 1 else f"{count} clicks"


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at least `value` (the top of the y axis)."""
    ceiling = 1
    while ceiling < value:
        for factor in (2, 5 / 2, 2):
            ceiling = int(ceiling * factor)
            if ceiling >= value:
                break
    return ceiling


def _steps(top: int) -> list[int]:
    """The y-axis labels: 0, the middle when it is a whole number, and the top."""
    return [0, top // 2, top] if top % 2 == 0 and top >= 2 else [0, top]
