"""One process per data folder builds the index of each new knowledge-base version; the serving workers only load it.

Building an index at the national size is a second or two of pure Python; done on a serving worker's thread it
holds the interpreter lock that the citizens' questions need, and their answers slow down several times over. In
a process of its own, at a lower CPU priority, it costs the workers only a share of the cores, and each worker
loads the finished index (its BM25 tables and vectors as saved, nothing tokenised) in a fraction of a second.

`motcua serve` starts one beside its workers (retrieval.live waits for it, or builds itself when none runs).
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from core.config import get_settings
from core.db import session_scope
from core.logging import configure_logging
from retrieval.embedders import load_embedder
from retrieval.retriever import VectorCache
from retrieval.service import index_version, open_retriever

logger = logging.getLogger(__name__)

LOCK_FILE = "builder.lock"
NICENESS = 5  # the serving workers come first: the build takes what they leave of the two cores
RESTART_PAUSE = 1.0
BUILDER_POLL_SECONDS = 0.1  # one process per data folder asks this often: a publication's wait starts here


def builder_running(index_dir: Path) -> bool:
    """Whether a builder holds this index folder's lock right now."""
    path = index_dir / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def run(stop: threading.Event | None = None) -> None:
    """Build each new version's index until stopped; return at once if another builder has this data folder."""
    settings = get_settings()
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.index_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        logger.info("another index builder serves %s", settings.index_dir)
        return
    stop = stop or threading.Event()
    embedder = load_embedder(settings.embedder)
    cache = VectorCache(settings.index_dir / "vectors", embedder)  # kept: a build reads no vector file
    with session_scope() as session:  # the current version once more, to warm the text caches of later builds
        open_retriever(session, embedder=embedder, cache=cache, force=True)
    built = ""
    parent = os.getppid()
    try:
        while not stop.is_set():
            if os.getppid() != parent:  # the server is gone (uvicorn ends its process by re-raising SIGTERM)
                logger.info("the server stopped; the index builder stops too")
                return
            with session_scope() as session:
                wanted = index_version(session)
            if wanted != built:
                started = time.monotonic()
                with session_scope() as session:
                    open_retriever(session, embedder=embedder, cache=cache)  # builds and saves, or finds it saved
                if built:
                    logger.info("index %s ready in %.2f s", wanted, time.monotonic() - started)
                built = wanted
            stop.wait(min(settings.kb_poll_seconds, BUILDER_POLL_SECONDS))
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _process_main() -> None:
    """The builder process: logging as the app's, a lower priority, SIGTERM stops it cleanly."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    _lower_priority()
    stop = threading.Event()

    def finish(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    run(stop)


def _lower_priority() -> None:
    """Below the serving workers: a build's share of a core would otherwise slow the questions being answered."""
    os.nice(NICENESS)


@contextmanager
def index_builder() -> Iterator[None]:
    """A builder process for as long as the block runs (started again if it dies)."""
    context = multiprocessing.get_context("spawn")
    done = threading.Event()
    current: list[multiprocessing.process.BaseProcess] = []

    def supervise() -> None:
        while not done.is_set():
            process = context.Process(target=_process_main, name="motcua-index-builder", daemon=True)
            process.start()
            current[:] = [process]
            while process.is_alive() and not done.is_set():
                process.join(0.5)
            if done.is_set():
                break
            if process.exitcode == 0:  # another builder has this data folder; look again later
                done.wait(RESTART_PAUSE * 10)
            else:
                logger.error("the index builder exited with %s; starting a new one", process.exitcode)
                done.wait(RESTART_PAUSE)

    watcher = threading.Thread(target=supervise, name="index-builder-supervisor", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        for process in current:
            process.terminate()
            process.join(30)
        watcher.join(5)
