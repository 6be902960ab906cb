"""The index follows the knowledge base while the app runs: published changes are answered within seconds.

Every process (each `motcua serve` worker, on any machine) polls the knowledge-base version in the database — the
same fingerprint that names a persisted index — every `kb_poll_seconds`. When it moved (a publication in the
dashboard or the API, a `motcua kb import` against the same database), the process loads the new index as the data
folder's builder process saved it (retrieval.builder: the building stays off the serving processes), or builds it
on a background thread when no builder runs, and then swaps the engine's answering service in one assignment: a
question in flight finishes on the index it started with, the next one uses the new index.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from core.config import get_settings
from core.db import session_scope
from retrieval.builder import builder_running
from retrieval.retriever import Retriever
from retrieval.service import AskService, index_folder, index_version, open_retriever

logger = logging.getLogger(__name__)

BUILDER_WAIT_SECONDS = 60.0  # past this the worker stops waiting for the builder and builds the index itself
LOAD_RETRY_SECONDS = 0.03
RECHECK_SECONDS = 0.5  # while waiting for the builder, how often the database's version is read again


class Answering(Protocol):
    """What the live index keeps current: anything holding an AskService as `asker` (the conversation engine)."""

    asker: AskService


class LiveIndex:
    """Keeps `holder.asker` on the current knowledge-base version."""

    def __init__(self, holder: Answering, *, poll: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.holder = holder
        self.poll = poll
        self.clock = clock
        self.swaps = 0

    @property
    def version(self) -> str:
        """The version of the index answering now."""
        return self.holder.asker.retriever.version

    def refresh(self) -> bool:
        """Load (or build) and swap in the index of the database's knowledge-base version if it moved."""
        with session_scope() as session:
            wanted = index_version(session)
        if wanted == self.version:
            return False
        started = self.clock()
        embedder = self.holder.asker.retriever.embedder
        settings = get_settings()
        folder = index_folder(settings.index_dir, embedder, wanted)
        retriever = Retriever.load(folder, embedder)
        if retriever is None and builder_running(settings.index_dir):  # it is on it: wait rather than compete
            deadline = self.clock() + BUILDER_WAIT_SECONDS
            recheck = self.clock() + RECHECK_SECONDS
            while retriever is None and self.clock() < deadline and builder_running(settings.index_dir):
                time.sleep(LOAD_RETRY_SECONDS)
                retriever = Retriever.load(folder, embedder)
                if retriever is None and self.clock() >= recheck:
                    # The knowledge base may have moved on meanwhile (the builder then builds the newer version,
                    # and may prune this one): the next poll takes whatever is current.
                    recheck = self.clock() + RECHECK_SECONDS
                    with session_scope() as session:
                        if index_version(session) != wanted:
                            return False
        if retriever is None:  # no builder (an app run in-process, as tests do), or it failed: build it here
            with session_scope() as session:
                retriever = open_retriever(session, embedder=embedder)
        self.holder.asker = AskService(retriever)  # one assignment: questions in flight keep the old service
        self.swaps += 1
        logger.info(
            "knowledge base moved to %s: %d procedures answered from the new index after %.2f s",
            retriever.version,
            len(retriever.procedures),
            self.clock() - started,
        )
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every `poll` seconds until stop is set; a failed refresh is logged and tried again."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # noqa: BLE001 - the old index keeps answering; the next poll tries again
                logger.exception("refreshing the index failed; still answering from %s", self.version)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll)
