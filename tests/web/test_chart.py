"""The server-side bar chart: one bar per day, scaled to a round top, with a text alternative."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.web.chart import HEIGHT, bar_chart

START = datetime(2030, 3, 1, tzinfo=UTC)


def series(*clicks: int) -> list[dict]:
    return [
        {"start": (START + timedelta(days=day)).isoformat(), "clicks": count, "human_clicks": count // 2}
        for day, count in enumerate(clicks)
    ]


def test_bars_are_scaled_to_a_round_top_and_labelled():
    chart = bar_chart(series(0, 3, 7))
    assert [bar.clicks for bar in chart.bars] == [0, 3, 7]
    assert [tick.text for tick in chart.counts] == ["0", "5", "10"]  # 7 rounds up to 10
    assert chart.bars[0].height == 0
    assert abs(chart.bars[2].height / chart.bars[1].height - 7 / 3) < 0.01
    assert all(bar.y + bar.height == chart.baseline for bar in chart.bars)
    assert chart.bars[1].label == "02 Mar 2030: 3 clicks (1 by people)"
    assert chart.summary == "10 clicks from 01 Mar to 03 Mar 2030; the busiest day was 03 Mar with 7."


def test_thirty_one_days_label_every_week_ending_today():
    chart = bar_chart(series(*[1] * 31))
    assert [tick.text for tick in chart.dates] == ["03 Mar", "10 Mar", "17 Mar", "24 Mar", "31 Mar"]
    assert [tick.anchor for tick in chart.dates] == ["middle"] * 4 + ["end"]
    assert chart.dates[-1].position == chart.bars[-1].x + chart.bars[-1].width
    assert [tick.text for tick in chart.counts] == ["0", "1"]
    assert chart.bars[0].label.endswith("1 click (0 by people)")


def test_an_empty_window_says_so():
    chart = bar_chart(series(0, 0))
    assert chart.peak is None
    assert chart.summary == "No clicks in the 2 days shown."
    assert all(bar.height == 0 and bar.y == HEIGHT - 36 for bar in chart.bars)
    assert bar_chart([]).bars == []


def test_round_tops():
    tops = {count: bar_chart(series(count)).counts[-1].text for count in (1, 2, 3, 6, 11, 21, 51, 101)}
    assert tops == {1: "1", 2: "2", 3: "5", 6: "10", 11: "20", 21: "50", 51: "100", 101: "200"}
