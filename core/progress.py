"""Progress of long work (imports, index builds): a bar on a terminal, a line every few seconds elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

# Often enough that a log watcher never wonders whether the process hangs; rare enough to stay readable.
LINE_EVERY_SECONDS = 5.0

Update = Callable[..., None]


class ProgressLines:
    """Reports `done of total` with rate and ETA as plain lines, at most one every `every` seconds."""

    def __init__(
        self,
        desc: str,
        total: int | None,
        emit: Callable[[str], None],
        *,
        every: float = LINE_EVERY_SECONDS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.desc = desc
        self.total = total
        self.done = 0
        self._emit = emit
        self._every = every
        self._clock = clock or time.monotonic
        self._started = self._clock()
        self._last_line = self._started

    def update(self, done: int, total_now: int | None = None) -> None:
        """Record the absolute count done so far; emit a line when the last one is old enough."""
        if total_now is not None:
            self.total = total_now
        self.done = done
        now = self._clock()
        if now - self._last_line >= self._every:
            self._last_line = now
            self._emit(self.line(now))

    def finish(self) -> None:
        """A last line, when the work took long enough to have shown any."""
        now = self._clock()
        if now - self._started >= self._every and self.done:
            self._emit(self.line(now, finished=True))

    def line(self, now: float, *, finished: bool = False) -> str:
        """'desc: 640/2,977 (21 %), 45.1/s, ETA 52 s' (the ETA only while the total is known)."""
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        count = f"{self.done:,}"
        if self.total:
            count += f"/{self.total:,} ({self.done * 100 // self.total} %)"
        text = f"{self.desc}: {count}, {rate:,.1f}/s"
        if finished:
            return f"{text}, done in {elapsed:,.0f} s"
        if self.total and rate > 0:
            text += f", ETA {max(self.total - self.done, 0) / rate:,.0f} s"
        return text


@contextmanager
def progress(
    desc: str, total: int | None = None, *, logger: logging.Logger | None = None, stream: TextIO | None = None
) -> Iterator[Update]:
    """An `update(done, total=None)` callable for long work.

    With a logger, lines go to it (a server's log); otherwise to stderr: a tqdm bar on a terminal, plain
    lines every few seconds when stderr is a file or a pipe (CI logs, `docker logs`), which a bar would
    either fill with carriage returns or leave silent.
    """
    stream = stream or sys.stderr
    if logger is None and stream.isatty():
        with tqdm(total=total, desc=desc, unit="", file=stream, leave=False) as bar:

            def update_bar(done: int, total_now: int | None = None) -> None:
                if total_now is not None and bar.total != total_now:
                    bar.total = total_now
                bar.n = done
                bar.refresh()

            yield update_bar
        return
    emit = logger.info if logger is not None else (lambda text: print(text, file=stream, flush=True))
    lines = ProgressLines(desc, total, emit)
    yield lines.update
    lines.finish()
