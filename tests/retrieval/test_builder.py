"""The index builder: one per data folder, it indexes each new knowledge-base version; a worker then only loads it."""

from __future__ import annotations

import threading
import time

from core.config import Settings, get_settings
from core.db import session_scope
from knowledge import versions
from knowledge.models import utcnow
from knowledge.service import ensure_seeded
from retrieval.builder import builder_running, run
from retrieval.live import LiveIndex
from retrieval.retriever import Retriever
from retrieval.service import AskService, index_folder, index_version, open_retriever


class Holder:
    def __init__(self, asker: AskService) -> None:
        self.asker = asker


def test_the_builder_indexes_each_new_version_and_a_worker_only_loads_it(settings: Settings) -> None:
    with session_scope() as session:
        ensure_seeded(session)
    with session_scope() as session:
        holder = Holder(AskService(open_retriever(session)))
    index_dir = get_settings().index_dir
    assert not builder_running(index_dir)
    stop = threading.Event()
    builder = threading.Thread(target=run, args=(stop,))
    builder.start()
    try:
        deadline = time.monotonic() + 10
        while not builder_running(index_dir):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = threading.Thread(target=run, args=(threading.Event(),))  # a second builder for the same folder
        second.start()
        second.join(10)
        assert not second.is_alive()  # it saw the lock and left at once
        with session_scope() as session:
            record = versions.live_record(versions.get_live(session, "passport-issuance"))
            record["vi"]["aliases"].append("sổ xanh đi nước ngoài")
            versions.save_and_publish(
                session, record, author="root", role="admin", reason="alias", now=utcnow(), slug="passport-issuance"
            )
            wanted = index_version(session)
        folder = index_folder(index_dir, holder.asker.retriever.embedder, wanted)
        deadline = time.monotonic() + 20
        while not (folder / "meta.json").exists():  # the builder saved the new version's index
            assert time.monotonic() < deadline, "the builder never built the new version"
            time.sleep(0.05)
        built_by_builder = (folder / "meta.json").stat().st_mtime
        live = LiveIndex(holder)
        assert live.refresh() is True
        assert holder.asker.retriever.version == wanted
        assert (folder / "meta.json").stat().st_mtime == built_by_builder  # loaded, not built again
        assert holder.asker.ask("sổ xanh đi nước ngoài").candidates[0]["slug"] == "passport-issuance"
        assert Retriever.load(folder, holder.asker.retriever.embedder) is not None
    finally:
        stop.set()
        builder.join(20)
    assert not builder_running(index_dir)  # the lock went with it
