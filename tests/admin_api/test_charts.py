"""The SVG chart helper: well-formed, accessible, escaped, links on figures, and a clear chart when empty."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from admin_api.charts import NO_DATA, Bar, Series, bar_chart, fmt, line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & "quotes" \'too\''


def parse(svg: str) -> ET.Element:
    """Parse the chart as XML: any unescaped label would make it fail here."""
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    """Every text node of <text> elements."""
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_line_chart_has_axes_points_path_and_accessible_names() -> None:
    """A line chart: title and desc referenced by aria-labelledby, a path, one circle per value, labels."""
    labels = ["2026-03-01", "2026-03-02", "2026-03-03"]
    svg = line_chart("Số yêu cầu · Volume", labels, [Series("Yêu cầu", [2, 5, 3])], desc="Tickets per day")
    root = parse(svg)
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None
    assert desc is not None
    assert title.text == "Số yêu cầu · Volume"
    assert desc.text == "Tickets per day"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    path = root.find(f".//{SVG}path")
    assert path is not None
    assert path.get("d", "").count("L") == 2
    assert len(list(root.iter(f"{SVG}circle"))) == 3
    assert set(labels) <= set(texts(root))
    assert "0" in texts(root)  # the y axis starts at zero


def test_line_chart_points_link_to_their_tickets() -> None:
    """A point with a link is wrapped in <a href>; the href is escaped once, and readable."""
    svg = line_chart("t", ["a", "b"], [Series("s", [1, 2], ["/dashboard/tickets?figure=opened&from=a", None])])
    root = parse(svg)
    links = list(root.iter(f"{SVG}a"))
    assert [a.get("href") for a in links] == ["/dashboard/tickets?figure=opened&from=a"]
    assert "&amp;from=a" in svg


def test_gaps_break_the_line() -> None:
    """None is no data: the path lifts its pen instead of drawing to zero."""
    root = parse(line_chart("t", ["a", "b", "c", "d"], [Series("s", [1, None, 3, 4])]))
    path = root.find(f".//{SVG}path")
    assert path is not None
    assert path.get("d", "").count("M") == 2
    assert len(list(root.iter(f"{SVG}circle"))) == 3


def test_two_series_get_a_legend() -> None:
    """Several lines share the axes and are named in a legend."""
    root = parse(line_chart("t", ["a", "b"], [Series("Đầu tiên", [1, 2]), Series("Giải quyết", [3, 4])]))
    assert len(list(root.iter(f"{SVG}path"))) == 2
    assert {"Đầu tiên", "Giải quyết"} <= set(texts(root))


def test_every_label_is_escaped() -> None:
    """Titles, series names, x labels, bar labels and links are text, never markup."""
    svg = line_chart(HOSTILE, [HOSTILE], [Series(HOSTILE, [1], [f"/x?q={HOSTILE}"])], desc=HOSTILE, unit=HOSTILE)
    svg += bar_chart(HOSTILE, [Bar(HOSTILE, 2, f"/y?q={HOSTILE}")], desc=HOSTILE)
    assert "<script" not in svg
    assert '"quotes"' not in svg
    for chart in svg.split("</svg>")[:-1]:
        root = parse(chart + "</svg>")
        assert root.find(f"{SVG}title") is not None
        assert not list(root.iter("script"))
        assert not list(root.iter(f"{SVG}script"))


@pytest.mark.parametrize(
    "svg",
    [
        line_chart("Trống · Empty", [], []),
        line_chart("Trống · Empty", ["a", "b"], [Series("s", [None, None])]),
        line_chart("Trống · Empty", ["a"], [Series("s", [math.nan])]),
        bar_chart("Trống · Empty", []),
    ],
    ids=["no labels", "only gaps", "nan", "no bars"],
)
def test_empty_data_gives_a_no_data_chart(svg: str) -> None:
    """No data is said in words, inside a valid, titled chart; never an exception or an empty string."""
    root = parse(svg)
    assert NO_DATA in texts(root)
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == "Trống · Empty"
    assert not list(root.iter(f"{SVG}path"))


def test_all_zero_values_still_draw_axes() -> None:
    """A flat line at zero is data (nothing happened), not "no data"."""
    root = parse(line_chart("t", ["a", "b"], [Series("s", [0, 0])]))
    assert NO_DATA not in texts(root)
    assert len(list(root.iter(f"{SVG}circle"))) == 2


def test_bar_chart_bars_scale_with_values_and_link() -> None:
    """Bars are proportional to their values; each carries its value, and its link when it has one."""
    root = parse(bar_chart("Xếp hạng · Ranking", [Bar("A", 10, "/a"), Bar("B", 5), Bar("C", 0)], unit="h"))
    widths = [float(r.get("width", "0")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] == pytest.approx(2 * widths[1])
    assert widths[2] == 0
    assert [a.get("href") for a in root.iter(f"{SVG}a")] == ["/a"]
    assert {"10", "5", "0"} <= set(texts(root))


def test_long_bar_labels_are_cut_but_kept_in_the_tooltip() -> None:
    """A long department name is shortened on the chart; the tooltip has it in full."""
    name = "Phòng Tài nguyên và Môi trường huyện Thanh Trì, thành phố Hà Nội"
    root = parse(bar_chart("t", [Bar(name, 3)]))
    assert any(t.endswith("…") and len(t) < len(name) for t in texts(root))
    assert any(name in "".join(t.itertext()) for t in root.iter(f"{SVG}title"))


def test_many_labels_are_thinned() -> None:
    """Ninety days do not print ninety overlapping dates."""
    labels = [f"d{i}" for i in range(90)]
    root = parse(line_chart("t", labels, [Series("s", list(range(90)))]))
    shown = [t for t in texts(root) if t.startswith("d")]
    assert 2 <= len(shown) <= 8
    assert shown[0] == "d0"


def test_nice_ticks_and_numbers() -> None:
    """Axis ticks are round and reach the maximum; whole numbers print without decimals."""
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(100) == [0, 50, 100]
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(0.3)[-1] >= 0.3
    assert fmt(3.0) == "3"
    assert fmt(2.34) == "2.3"
