"""Progress of long work: plain lines with count, rate and ETA every few seconds when nobody watches a terminal."""

from __future__ import annotations

import io
import logging

import pytest

from core.progress import ProgressLines, progress


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_five_seconds_with_count_rate_and_eta() -> None:
    clock, lines = Clock(), []
    report = ProgressLines("embedding", 3000, lines.append, clock=clock)
    clock.now += 1
    report.update(100)
    assert lines == []  # not yet five seconds
    clock.now += 4
    report.update(500)
    assert lines == ["embedding: 500/3,000 (16 %), 100.0/s, ETA 25 s"]
    clock.now += 1
    report.update(600)
    assert len(lines) == 1
    clock.now += 9
    report.update(3000)
    report.finish()
    assert lines[1:] == [
        "embedding: 3,000/3,000 (100 %), 200.0/s, ETA 0 s",
        "embedding: 3,000/3,000 (100 %), 200.0/s, done in 15 s",
    ]


def test_unknown_totals_and_late_totals() -> None:
    clock, lines = Clock(), []
    report = ProgressLines("importing", None, lines.append, clock=clock)
    clock.now += 10
    report.update(50)
    assert lines == ["importing: 50, 5.0/s"]
    clock.now += 10
    report.update(60, 120)
    assert lines[-1] == "importing: 60/120 (50 %), 3.0/s, ETA 20 s"


def test_quick_work_says_nothing() -> None:
    lines: list[str] = []
    report = ProgressLines("embedding", 10, lines.append)
    report.update(10)
    report.finish()
    assert lines == []


def test_a_pipe_gets_lines_not_a_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()  # not a terminal, like a CI log or `docker logs`
    ticks = iter([0.0, 6.0, 12.0, 12.0])
    monkeypatch.setattr("core.progress.time.monotonic", lambda: next(ticks))
    with progress("importing national procedures", 2642, stream=stream) as update:
        update(1000)
        update(2642)
    out = stream.getvalue().splitlines()
    assert out[0] == "importing national procedures: 1,000/2,642 (37 %), 166.7/s, ETA 10 s"
    assert out[-1].endswith("done in 12 s")
    assert "\r" not in stream.getvalue()


def test_a_server_logs_the_lines(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    ticks = iter([0.0, 7.0, 7.0])
    monkeypatch.setattr("core.progress.time.monotonic", lambda: next(ticks))
    logger = logging.getLogger("motcua.test")
    with caplog.at_level(logging.INFO, logger="motcua.test"), progress("embedding", 70, logger=logger) as update:
        update(70)
    assert [r.getMessage() for r in caplog.records] == [
        "embedding: 70/70 (100 %), 10.0/s, ETA 0 s",
        "embedding: 70/70 (100 %), 10.0/s, done in 7 s",
    ]
