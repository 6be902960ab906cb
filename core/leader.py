"""One process per data folder runs the background jobs (polling, outbox, deadlines); the others only serve HTTP."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

_held: dict[Path, int] = {}  # lock file → open descriptor, kept for the life of the process


def become_leader(data_dir: Path) -> bool:
    """Take the data folder's background lock if nobody holds it; the OS frees it when the process dies."""
    path = (data_dir / "background.lock").resolve()
    if path in _held:
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _held[path] = fd
    return True


def step_down(data_dir: Path) -> None:
    """Release the background lock (at shutdown, so a restarted worker can take it at once)."""
    fd = _held.pop((data_dir / "background.lock").resolve(), None)
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
