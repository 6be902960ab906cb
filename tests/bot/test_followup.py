"""Follow-up questions and hand-offs through the real engine, database and bundled knowledge base (hash embedder)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.engine import ConversationEngine, Inbound
from bot.followup import read_follow_up
from bot.models import Conversation
from core.config import Settings
from core.db import session_scope
from helpdesk.departments import ensure_departments_seeded
from helpdesk.models import Ticket
from knowledge.service import ensure_seeded
from retrieval.decision import Thresholds
from retrieval.retriever import Retriever
from retrieval.service import AskService

ALWAYS_ANSWER = Thresholds(
    answer_dense=-1, answer_margin=-100, domain_dense=-1, domain_known=0, off_topic_gap=10, clarify_gap=10
)
NEVER_ANSWER = Thresholds(
    answer_dense=2, answer_margin=100, domain_dense=-1, domain_known=0, off_topic_gap=10, clarify_gap=10
)


@pytest.mark.parametrize(
    ("text", "aspect"),
    [
        ("lệ phí bao nhiêu?", "fees"),
        ("le phi bao nhieu", "fees"),
        ("hết bao nhiêu tiền vậy", "fees"),
        ("how much does it cost?", "fees"),
        ("nộp ở đâu", "where_to_file"),
        ("nop o dau", "where_to_file"),
        ("where do I file it?", "where_to_file"),
        ("mất bao lâu", "processing_time"),
        ("how long does it take", "processing_time"),
        ("how much time does it take?", "processing_time"),
        ("cần giấy tờ gì", "documents"),
        ("can nhung gi", "documents"),
        ("what documents do I need", "documents"),
        ("mẫu tờ khai ở đâu tải", "where_to_file"),  # the first part named wins: "ở đâu" before "tờ khai"
        ("nộp trực tuyến được không", "online_link"),
        ("ai được làm", "who"),
        ("căn cứ pháp lý là gì", "legal_basis"),
        ("trình tự thực hiện", "steps"),
    ],
)
def test_the_part_of_a_card_a_message_asks_for(text: str, aspect: str) -> None:
    follow = read_follow_up(text)
    assert follow.aspect == aspect
    if aspect != "steps":
        assert follow.names_nothing_else, follow.rest


@pytest.mark.parametrize(
    ("text", "rest"),
    [
        ("thế còn đăng ký kết hôn?", ("ket", "hon")),
        ("the con dang ky ket hon", ("ket", "hon")),
        ("what about a passport?", ("passport",)),
        ("lệ phí làm sổ đỏ bao nhiêu", ("so", "do")),
    ],
)
def test_words_that_name_another_procedure_are_kept(text: str, rest: tuple[str, ...]) -> None:
    follow = read_follow_up(text)
    assert follow.rest == rest
    assert not follow.names_nothing_else


def test_referring_back_is_seen_in_both_languages() -> None:
    assert read_follow_up("còn nộp ở đâu?").refers_back
    assert read_follow_up("con le phi thi sao").refers_back
    assert read_follow_up("what about the fee?").refers_back
    assert not read_follow_up("đăng ký khai sinh").refers_back


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def retriever(settings: Settings, bundled_retriever: Retriever) -> Retriever:
    with session_scope() as session:
        ensure_seeded(session)
        ensure_departments_seeded(session, settings)
    return bundled_retriever


def talk(engine: ConversationEngine, text: str | None = None, *, button: str | None = None, user: str = "u1"):  # noqa: ANN201
    with session_scope() as session:
        return engine.handle(session, Inbound(channel="web", user=user, text=text, button=button))


def about(user: str = "u1") -> str | None:
    """The procedure the conversation's last answer was about."""
    with session_scope() as session:
        conv = session.scalar(select(Conversation).where(Conversation.user_key == user))
        return conv.state.get("last_procedure")


def test_follow_ups_about_fee_place_and_documents_answer_the_current_procedure(retriever: Retriever) -> None:
    # Once a card is shown, the follow-ups need no search at all: even a bot that never answers a search answers them.
    engine = ConversationEngine(AskService(retriever, ALWAYS_ANSWER))
    first = talk(engine, "cấp hộ chiếu phổ thông")
    assert first.status == "answered"
    assert about() == "passport-issuance"
    engine.asker = AskService(retriever, NEVER_ANSWER)
    for follow_up in ("lệ phí bao nhiêu?", "nop o dau", "còn giấy tờ thì sao?", "how much does it cost?"):
        outcome = talk(engine, follow_up)
        assert outcome.status == "answered", follow_up
        assert about() == "passport-issuance", follow_up
        assert "hộ chiếu" in outcome.replies[0].text.lower() or "passport" in outcome.replies[0].text.lower()


def test_a_message_naming_another_procedure_switches(retriever: Retriever) -> None:
    engine = ConversationEngine(AskService(retriever, ALWAYS_ANSWER))
    talk(engine, "cấp hộ chiếu phổ thông")
    outcome = talk(engine, "thế còn đăng ký kết hôn thì lệ phí bao nhiêu?")
    assert outcome.status == "answered"
    assert about() == "marriage-registration"
    talk(engine, "nộp ở đâu")
    assert about() == "marriage-registration"


def test_the_context_expires_after_the_idle_time(retriever: Retriever, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTCUA_CONTEXT_MINUTES", "30")
    from core.config import get_settings

    get_settings.cache_clear()
    clock = Clock()
    engine = ConversationEngine(AskService(retriever, ALWAYS_ANSWER), clock=clock)
    talk(engine, "cấp hộ chiếu phổ thông")
    engine.asker = AskService(retriever, NEVER_ANSWER)
    clock.now += dt.timedelta(minutes=29)
    assert talk(engine, "lệ phí bao nhiêu?").status == "answered"  # and the answer starts the idle time again
    clock.now += dt.timedelta(minutes=31)
    late = talk(engine, "lệ phí bao nhiêu?")
    assert late.status != "answered"  # nothing to be about any more: the bot does not guess
    get_settings.cache_clear()


def test_a_clarify_list_after_an_aspect_question_answers_that_part(retriever: Retriever) -> None:
    engine = ConversationEngine(AskService(retriever, NEVER_ANSWER))  # never sure: always a clarify list
    outcome = talk(engine, "lệ phí làm căn cước")
    assert outcome.status == "clarify"
    slug = outcome.replies[0].buttons[0].payload.removeprefix("p:")
    pressed = talk(engine, button=f"p:{slug}")
    assert pressed.status == "answered"
    assert about() == slug
    with session_scope() as session:
        conv = session.scalar(select(Conversation).where(Conversation.user_key == "u1"))
        assert "pending_part" not in conv.state  # used once


def ticket_of(db: Session, code: str | None) -> Ticket:
    assert code
    return db.scalar(select(Ticket).where(Ticket.code == code))


@pytest.mark.parametrize(
    ("question", "department"),
    [
        ("đăng ký khai sinh cho con", "civil-status"),
        ("cấp giấy phép xây dựng nhà ở riêng lẻ", "land-construction"),
        ("cấp lại thẻ căn cước bị mất", "police"),
    ],
)
def test_a_typed_request_for_a_person_carries_the_last_question_and_its_department(
    retriever: Retriever, question: str, department: str
) -> None:
    engine = ConversationEngine(AskService(retriever, ALWAYS_ANSWER))
    talk(engine, question)
    asked = about()
    outcome = talk(engine, "tôi muốn gặp cán bộ")
    assert outcome.status == "escalated"
    with session_scope() as db:
        ticket = ticket_of(db, outcome.ticket)
        assert ticket.question == question
        assert ticket.reason == "asked_for_person"
        assert ticket.procedure_slug == asked
        assert ticket.department == department
        assert any(question in m["text"] for m in ticket.excerpt)  # the official sees the conversation


def test_a_request_for_a_person_after_an_unanswered_question_is_routed_by_that_question(retriever: Retriever) -> None:
    engine = ConversationEngine(AskService(retriever, NEVER_ANSWER))
    first = talk(engine, "đăng ký khai sinh cho con")
    assert first.status == "clarify"  # no procedure chosen yet
    outcome = talk(engine, "I want to talk to a person")
    assert outcome.status == "escalated"
    with session_scope() as db:
        ticket = ticket_of(db, outcome.ticket)
        assert ticket.question == "đăng ký khai sinh cho con"
        assert ticket.department == "civil-status"  # by the question's best candidates, not by "talk to a person"


def test_a_request_for_a_person_in_a_fresh_conversation_goes_to_the_default_desk(retriever: Retriever) -> None:
    engine = ConversationEngine(AskService(retriever, ALWAYS_ANSWER))
    outcome = talk(engine, "tôi muốn gặp cán bộ", user="fresh")
    assert outcome.status == "escalated"
    with session_scope() as db:
        ticket = ticket_of(db, outcome.ticket)
        assert ticket.department == "one-stop"
        assert ticket.procedure_slug is None


def test_a_case_the_knowledge_base_has_no_procedure_for_is_named_not_answered(retriever: Retriever) -> None:
    # The bundled curated set has the domestic marriage registration only: even a bot sure of its search says so.
    engine = ConversationEngine(AskService(retriever, ALWAYS_ANSWER))
    outcome = talk(engine, "đăng ký kết hôn với người nước ngoài cần gì")
    assert outcome.status == "clarify"
    assert "có yếu tố nước ngoài" in outcome.replies[0].text
    assert any(b.payload == "p:marriage-registration" for b in outcome.replies[0].buttons)
