"""The index follows the knowledge base while it runs: a publication, a retirement, a roll-back or an import are
answered by the next question, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.config import Settings
from core.db import session_scope
from knowledge import versions
from knowledge.models import utcnow
from knowledge.service import ensure_seeded, procedure_card
from retrieval.live import LiveIndex
from retrieval.retriever import Retriever
from retrieval.service import AskService, open_retriever

SLANG = "xin cuốn sổ xanh để đi nước ngoài"  # a citizen's words for the passport, in no card


class Holder:
    """What the engine is to the live index: something with an answering service."""

    def __init__(self, asker: AskService) -> None:
        self.asker = asker


@pytest.fixture
def holder(settings: Settings) -> Holder:
    with session_scope() as session:
        ensure_seeded(session)
    with session_scope() as session:
        return Holder(AskService(open_retriever(session)))


def publish(slug: str, change: callable, reason: str) -> None:  # type: ignore[valid-type]
    with session_scope() as session:
        record = versions.live_record(versions.get_live(session, slug))
        change(record)
        versions.save_and_publish(
            session, record, author="root", role="admin", reason=reason, now=utcnow(), slug=slug
        )


def candidates(holder: Holder, question: str) -> list[str]:
    return [c["slug"] for c in holder.asker.ask(question).candidates]


def test_nothing_moved_nothing_rebuilt(holder: Holder) -> None:
    live = LiveIndex(holder)
    before = holder.asker
    assert live.refresh() is False
    assert holder.asker is before


def test_a_publication_is_answered_by_the_next_question(holder: Holder) -> None:
    live = LiveIndex(holder)
    assert candidates(holder, SLANG)[0] != "passport-issuance"
    publish("passport-issuance", lambda r: r["vi"]["aliases"].append(SLANG), "citizens call it the green book")
    old = holder.asker
    assert live.refresh() is True
    assert holder.asker is not old  # swapped whole: a question in flight finished on the old one
    assert candidates(holder, SLANG)[0] == "passport-issuance"
    assert live.refresh() is False  # caught up


def test_retired_is_never_answered_and_a_roll_back_brings_the_old_answer(holder: Holder) -> None:
    live = LiveIndex(holder)
    question = "thủ tục cấp hộ chiếu phổ thông"
    assert "passport-issuance" in candidates(holder, question)
    with session_scope() as session:
        versions.retire(
            session, "passport-issuance", author="root", role="admin", reason="merged", now=utcnow(),
            successor="id-card-reissue",
        )
    live.refresh()
    assert "passport-issuance" not in candidates(holder, question)
    assert all(c["slug"] != "passport-issuance" for c in holder.asker.ask("hộ chiếu").candidates)
    with session_scope() as session:
        versions.restore(session, "passport-issuance", author="root", role="admin", reason="", now=utcnow())
    live.refresh()
    assert "passport-issuance" in candidates(holder, question)

    with session_scope() as session:
        original = procedure_card(session, "passport-issuance", "vi")["fees"]
    publish("passport-issuance", lambda r: r["vi"].update(fees="Miễn phí"), "new fee")
    live.refresh()
    with session_scope() as session:
        assert procedure_card(session, "passport-issuance", "vi")["fees"] == "Miễn phí"
        first = min(v.number for v in versions.history(session, "passport-issuance") if v.number is not None)
        versions.rollback(session, "passport-issuance", first, author="root", role="admin", reason="", now=utcnow())
    live.refresh()
    with session_scope() as session:
        assert procedure_card(session, "passport-issuance", "vi")["fees"] == original


def test_an_import_against_the_running_database_is_picked_up(holder: Holder, tmp_path) -> None:  # noqa: ANN001
    import yaml

    from knowledge.service import import_file
    from tests.factories import procedure_record

    live = LiveIndex(holder)
    path = tmp_path / "new.yaml"
    fishing = {"title": "Cấp giấy phép khai thác thủy sản", "aliases": ["giấy phép đánh cá"]}
    record = procedure_record("fishing-licence", vi=fishing)
    path.write_text(yaml.safe_dump([record], allow_unicode=True), encoding="utf-8")
    with session_scope() as session:  # what `motcua kb import` does, in another process, on the same database
        import_file(session, path)
    assert live.refresh() is True
    assert candidates(holder, "xin giấy phép đánh cá")[0] == "fishing-licence"


def test_questions_keep_being_answered_while_the_index_is_rebuilt(holder: Holder) -> None:
    """A rebuild on the background thread never leaves a question without an index."""
    live = LiveIndex(holder, poll=0.01)
    errors: list[Exception] = []
    answered = []
    done = threading.Event()

    def ask_all_the_time() -> None:
        while not done.is_set():
            try:
                answered.append(holder.asker.ask("đăng ký khai sinh").status)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    asker = threading.Thread(target=ask_all_the_time)
    asker.start()

    async def follow_two_publications() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(live.run(stop))
        for n in range(2):
            publish("passport-issuance", lambda r, n=n: r["vi"]["aliases"].append(f"sổ xanh {n}"), f"edit {n}")
            for _ in range(200):
                await asyncio.sleep(0.02)
                if live.swaps == n + 1:
                    break
        stop.set()
        await task

    try:
        asyncio.run(follow_two_publications())
    finally:
        done.set()
        asker.join(10)
    assert live.swaps == 2
    assert errors == []
    assert len(answered) > 5
    assert isinstance(holder.asker.retriever, Retriever)
