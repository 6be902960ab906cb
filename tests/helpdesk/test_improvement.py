"""The improvement loop on the real database: the gap report of a seeded chat log, and FAQ proposals with permissions,
the draft's record and its publication."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import ChatMessage, Conversation, Feedback, InboundUpdate
from core.db import get_engine
from core.errors import Conflict, Invalid, PermissionDenied
from helpdesk import improvement, tickets
from helpdesk.accounts import Actor, create_user
from helpdesk.improvement import GapQuestion
from helpdesk.models import Department, RoutingRule, TicketEvent
from helpdesk.service import open_ticket
from helpdesk.sla import VN
from knowledge import versions
from knowledge.service import procedure_record as record_of
from retrieval.retriever import Retriever
from tests.factories import procedure_record

MONDAY_9 = dt.datetime(2026, 11, 23, 9, tzinfo=VN).astimezone(dt.UTC)
SINCE, UNTIL = MONDAY_9 - dt.timedelta(days=1), MONDAY_9 + dt.timedelta(days=7)
_users = itertools.count()


@pytest.fixture
def session(settings: object) -> Iterator[Session]:
    """A session the test commits itself (refusals are audited in a transaction of their own)."""
    with Session(get_engine(), expire_on_commit=False) as own:
        yield own
        own.commit()


# -- the chat log ----------------------------------------------------------------------------------------------


class Log:
    """Writes conversations as the engine does: the citizen's message and the bot's replies share an update."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def conversation(self) -> Conversation:
        conv = Conversation(channel="web", user_key=f"citizen-{next(_users)}", state={})
        self.session.add(conv)
        self.session.flush()
        return conv

    def turn(
        self,
        text: str,
        status: str,
        *,
        conv: Conversation | None = None,
        at: dt.datetime = MONDAY_9,
        procedure: str | None = None,
        replies: int = 1,
    ) -> ChatMessage:
        """One citizen message and the bot's replies to it; returns the (last) reply."""
        conv = conv or self.conversation()
        update = InboundUpdate(channel="web", user_key=conv.user_key, payload={}, received_at=at, processed_at=at)
        self.session.add(update)
        self.session.flush()
        self.session.add(
            ChatMessage(
                conversation_id=conv.id, direction="in", author="citizen", text=text, at=at, inbound_id=update.id
            )
        )
        reply = None
        for _ in range(replies):
            reply = ChatMessage(
                conversation_id=conv.id,
                direction="out",
                author="bot",
                text="…",
                at=at + dt.timedelta(seconds=1),
                inbound_id=update.id,
                status=status,
                procedure=procedure if status == "answered" else None,
            )
            self.session.add(reply)
        self.session.flush()
        assert reply is not None
        return reply

    def thumbs(self, answer: ChatMessage, value: int, at: dt.datetime = MONDAY_9) -> None:
        self.session.add(Feedback(message_id=answer.id, conversation_id=answer.conversation_id, value=value, at=at))
        self.session.flush()


DOGS = {"Đăng ký nuôi chó cảnh ở phường", "thủ tục đăng ký nuôi chó", "đăng ký nuôi chó cần giấy tờ gì"}
WINE = {"xin giấy phép bán lẻ rượu", "giấy phép bán lẻ rượu cần gì", "thủ tục xin giấy phép bán lẻ rượu"}


def seed_mix(session: Session) -> None:
    """Two topics the knowledge base lacks, asked several ways; off-topic questions; and what must not count."""
    log = Log(session)
    # a missing procedure, asked four ways (one of them without diacritics: the same text)
    log.turn("Đăng ký nuôi chó cảnh ở phường", "declined", replies=2)  # two replies to one question: counted once
    log.turn("Đăng ký nuôi chó cảnh ở phường", "declined")
    log.turn("Đăng  ký nuôi chó cảnh ở phường", "escalated")
    log.turn("dang ky nuoi cho canh o phuong", "declined")
    log.turn("thủ tục đăng ký nuôi chó", "clarify")
    log.turn("đăng ký nuôi chó cần giấy tờ gì", "escalated")
    # another: clarified, and answered badly (👎), once through a clarify's button
    log.turn("xin giấy phép bán lẻ rượu", "clarify")
    log.turn("xin giấy phép bán lẻ rượu", "clarify")
    conv = log.conversation()
    log.turn("giấy phép bán lẻ rượu cần gì", "clarify", conv=conv)
    chosen = log.turn("[p:food-safety-certificate]", "answered", conv=conv, procedure="food-safety-certificate")
    log.thumbs(chosen, -1)
    log.thumbs(log.turn("thủ tục xin giấy phép bán lẻ rượu", "answered", procedure="food-safety-certificate"), -1)
    # off-topic, each its own
    log.turn("thời tiết hôm nay thế nào", "declined")
    log.turn("cho tôi công thức nấu phở", "declined")
    # none of these is a gap
    log.turn("đăng ký khai sinh cho con", "answered", procedure="birth-registration")
    log.thumbs(log.turn("làm lại căn cước bị mất", "answered", procedure="id-card-reissue"), +1)
    log.turn("tôi muốn gặp cán bộ", "escalated")  # asked for a person: not the bot's failure
    log.turn("[h]", "escalated")  # the "talk to an official" button
    log.turn("/start", "start")
    browsing = log.conversation()  # an answer reached through the topics: the 👎 judges no typed question
    log.turn("ở đâu làm hộ chiếu", "answered", conv=browsing, procedure="passport-issuance")
    log.turn("[t:justice]", "topics", conv=browsing)
    log.thumbs(log.turn("[p:copy-certification]", "answered", conv=browsing, procedure="copy-certification"), -1)
    log.turn("câu hỏi cũ ngoài kỳ báo cáo", "declined", at=SINCE - dt.timedelta(hours=1))
    late = log.turn("đăng ký tạm trú online", "answered", procedure="temporary-residence-registration")
    log.thumbs(late, -1, at=UNTIL + dt.timedelta(hours=1))  # a 👎 after the period
    session.commit()


def test_gap_questions_are_the_failures_of_the_period(session: Session) -> None:
    seed_mix(session)
    found = {q.text: (q.count, q.reasons) for q in improvement.gap_questions(session, SINCE, UNTIL)}
    assert found == {
        "Đăng ký nuôi chó cảnh ở phường": (4, {"declined": 3, "escalated": 1}),
        "thủ tục đăng ký nuôi chó": (1, {"clarify": 1}),
        "đăng ký nuôi chó cần giấy tờ gì": (1, {"escalated": 1}),
        "xin giấy phép bán lẻ rượu": (2, {"clarify": 2}),
        "giấy phép bán lẻ rượu cần gì": (1, {"clarify": 1, "thumbs_down": 1}),  # the 👎 judged the question
        "thủ tục xin giấy phép bán lẻ rượu": (1, {"thumbs_down": 1}),
        "thời tiết hôm nay thế nào": (1, {"declined": 1}),
        "cho tôi công thức nấu phở": (1, {"declined": 1}),
    }


def test_a_thumbs_down_on_a_card_opened_further_judges_the_question_it_answered(session: Session) -> None:
    log = Log(session)
    conv = log.conversation()
    log.turn("lệ phí đổi bằng lái xe", "answered", conv=conv, procedure="driving-licence-renewal")  # the short card
    log.turn("[c:driving-licence-renewal:full]", "answered", conv=conv, procedure="driving-licence-renewal")
    steps = log.turn("[c:driving-licence-renewal:steps]", "answered", conv=conv, procedure="driving-licence-renewal")
    log.thumbs(steps, -1)
    browsing = log.conversation()  # a card reached by topics, then opened: no typed question behind it
    log.turn("đăng ký khai sinh", "answered", conv=browsing, procedure="birth-registration")
    log.turn("[t:transport]", "topics", conv=browsing)
    log.turn("[p:vehicle-registration]", "answered", conv=browsing, procedure="vehicle-registration")
    log.thumbs(
        log.turn("[c:vehicle-registration:full]", "answered", conv=browsing, procedure="vehicle-registration"), -1
    )
    session.commit()
    found = {q.text: (q.count, q.reasons) for q in improvement.gap_questions(session, SINCE, UNTIL)}
    assert found == {"lệ phí đổi bằng lái xe": (1, {"thumbs_down": 1})}


def test_gap_report_groups_the_seeded_mix(session: Session, bundled_retriever: Retriever) -> None:
    seed_mix(session)
    questions = improvement.gap_questions(session, SINCE, UNTIL)
    report = improvement.gap_report(questions, bundled_retriever.embedder, bundled_retriever)
    shape = [(g.count, {q.text for q in g.examples}) for g in report.groups]
    assert shape == [
        (6, DOGS),
        (4, WINE),
        (1, {"cho tôi công thức nấu phở"}),
        (1, {"thời tiết hôm nay thế nào"}),
    ]
    dogs, wine = report.groups[:2]
    assert dogs.examples[0].text == "Đăng ký nuôi chó cảnh ở phường"  # most asked first
    assert dogs.reasons == {"declined": 3, "escalated": 2, "clarify": 1}
    assert wine.reasons == {"clarify": 3, "thumbs_down": 2}
    assert (report.questions, report.asked, report.left_out) == (8, 12, 0)
    for group in report.groups:
        assert len(group.nearest) == 3
        assert all(p["slug"] in bundled_retriever.by_slug and p["title"] for p in group.nearest)
        assert group.central in {q.text for q in group.examples}


def test_gap_report_is_deterministic_and_bounded(bundled_retriever: Retriever) -> None:
    questions = [GapQuestion(text, 1, {"declined": 1}) for text in [*DOGS, *WINE, "thời tiết hôm nay thế nào"]]
    first = improvement.gap_report(questions, bundled_retriever.embedder)
    shuffled = list(questions)
    random.Random(7).shuffle(shuffled)
    again = improvement.gap_report(shuffled, bundled_retriever.embedder)
    assert [[q.text for q in g.examples] for g in first.groups] == [[q.text for q in g.examples] for g in again.groups]
    assert first.groups[0].nearest == []  # no retriever: no nearest procedures
    many = [GapQuestion(f"câu hỏi số {i}", 1, {"declined": 1}) for i in range(improvement.MAX_QUESTIONS + 3)]
    bounded = improvement.gap_report(many, bundled_retriever.embedder, threshold=0.99)
    assert (bounded.questions, bounded.left_out) == (improvement.MAX_QUESTIONS + 3, 3)
    assert sum(g.phrasings for g in bounded.groups) == improvement.MAX_QUESTIONS
    assert (
        max(len(g.examples) for g in improvement.gap_report(many[:20], bundled_retriever.embedder, threshold=0).groups)
        == 5
    )
    assert improvement.gap_report([], bundled_retriever.embedder).groups == []


def test_gap_period_is_at_most_92_days() -> None:
    today = dt.date(2026, 11, 30)
    assert improvement.gap_period(None, None, today=today).days == 30
    assert improvement.gap_period("2026-09-01", "2026-11-30", today=today).days == 91
    with pytest.raises(Invalid, match="at most 92 days"):
        improvement.gap_period("2026-08-01", "2026-11-30", today=today)
    with pytest.raises(Invalid, match="not a date"):
        improvement.gap_period("yesterday", None, today=today)


def test_the_gap_report_is_for_supervisors_and_admins(session: Session, desk: Desk) -> None:
    improvement.require_gap_reader(desk.sam, "gaps", MONDAY_9)
    improvement.require_gap_reader(desk.root, "gaps", MONDAY_9)
    with pytest.raises(PermissionDenied, match="supervisors and admins"):
        improvement.require_gap_reader(desk.alice, "gaps", MONDAY_9)
    denied = session.scalars(select(TicketEvent.data).where(TicketEvent.kind == "denied", TicketEvent.actor == "alice"))
    assert [d["action"] for d in denied] == ["gaps"]


# -- proposals -------------------------------------------------------------------------------------------------


@dataclass
class Desk:
    alice: Actor  # official, civil status
    carol: Actor  # official, land
    sam: Actor  # supervisor, civil status
    root: Actor  # admin


@pytest.fixture
def desk(session: Session) -> Desk:
    session.add_all(
        [
            Department(slug="one-stop", name="Bộ phận Một cửa", is_default=True),
            Department(slug="civil-status", name="Tư pháp – Hộ tịch"),
            Department(slug="land", name="Đất đai – Xây dựng"),
        ]
    )
    session.add(RoutingRule(kind="category", value="civil-status", department="civil-status"))
    people = {}
    for name, role, department in [
        ("alice", "official", "civil-status"),
        ("carol", "official", "land"),
        ("sam", "supervisor", "civil-status"),
        ("root", "admin", None),
    ]:
        user = create_user(session, username=name, password="correct horse 1", role=role, department=department)
        session.flush()
        people[name] = Actor.of(user)
    for slug in ("birth-registration", "dog-registration"):
        versions.save_and_publish(
            session, procedure_record(slug), author="root", role="admin", reason="seed", now=MONDAY_9
        )
    session.commit()
    return Desk(**people)


def answered_ticket(
    session: Session,
    desk: Desk,
    question: str = "Con tôi sinh ở nước ngoài thì khai sinh thế nào?",
    slug: str | None = "birth-registration",
) -> tuple[str, int]:
    """A ticket of civil status answered by alice; its code and the reply's message id."""
    conv = Log(session).conversation()
    ticket = open_ticket(
        session,
        conversation_id=conv.id,
        channel="web",
        question=question,
        reason="low_confidence",
        lang="vi",
        now=MONDAY_9,
        candidates=[{"slug": slug, "title": "Đăng ký khai sinh"}] if slug else [],
    )
    ticket.department = "civil-status"
    _, message_id = tickets.reply(session, desk.alice, ticket.code, "Mang giấy chứng sinh đến UBND xã.", MONDAY_9)
    session.commit()
    return ticket.code, message_id


def test_an_official_proposes_their_reply_and_an_admin_publishes_it(session: Session, desk: Desk) -> None:
    code, message_id = answered_ticket(session, desk)
    version = improvement.propose_faq_from_ticket(session, desk.alice, code, message_id, MONDAY_9)
    session.commit()
    assert (version.slug, version.state, version.author) == ("birth-registration", "draft", "alice")
    assert version.reason == f"FAQ from ticket {code}: proposed by official alice"
    seeded = procedure_record("birth-registration")["faq"]
    assert version.record["faq"] == [
        *seeded,  # the procedure's own entries stay
        {
            "lang": "vi",
            "questions": ["Con tôi sinh ở nước ngoài thì khai sinh thế nào?"],
            "answer": "Mang giấy chứng sinh đến UBND xã.",
        },
    ]
    assert {d["field"] for d in version.diff} == {"faq"}
    proc = versions.publish(session, "birth-registration", publisher="root", role="admin", now=MONDAY_9)
    session.commit()
    session.expire_all()
    faq = record_of(proc)["faq"]
    assert len(faq) == len(seeded) + 1
    assert {
        "lang": "vi",
        "questions": ["Con tôi sinh ở nước ngoài thì khai sinh thế nào?"],
        "answer": "Mang giấy chứng sinh đến UBND xã.",
    } in faq  # part of the procedure now: the next index build answers the question with it
    with pytest.raises(Conflict, match="already has the question"):  # once published, the same proposal is a repeat
        improvement.propose_faq_from_ticket(session, desk.alice, code, message_id, MONDAY_9)


def test_a_proposal_needs_access_to_the_ticket_and_its_own_reply(session: Session, desk: Desk) -> None:
    code, message_id = answered_ticket(session, desk)
    other_code, other_message = answered_ticket(session, desk, "Khai sinh muộn có bị phạt không?")
    with pytest.raises(PermissionDenied, match="belongs to department civil-status"):
        improvement.propose_faq_from_ticket(session, desk.carol, code, message_id, MONDAY_9)
    session.rollback()
    denied = session.scalars(select(TicketEvent.data).where(TicketEvent.kind == "denied", TicketEvent.actor == "carol"))
    assert [d["action"] for d in denied] == ["propose_faq"]  # audited
    with pytest.raises(Invalid, match=f"not an official's reply on ticket {code}"):
        improvement.propose_faq_from_ticket(session, desk.alice, code, other_message, MONDAY_9)
    citizen = session.scalar(
        select(ChatMessage.id).where(ChatMessage.author == "citizen").order_by(ChatMessage.id.desc())
    )
    with pytest.raises(Invalid, match="not an official's reply"):
        improvement.propose_faq_from_ticket(session, desk.alice, code, citizen or 0, MONDAY_9)
    with pytest.raises(Invalid, match="not an official's reply"):
        improvement.propose_faq_from_ticket(session, desk.alice, code, 10**9, MONDAY_9)
    assert versions.open_draft(session, "birth-registration") is None  # nothing half-stored
    # the department's supervisor may propose too; then the same question again is a repeat, even as a draft
    version = improvement.propose_faq_from_ticket(session, desk.sam, other_code, other_message, MONDAY_9)
    assert version.reason == f"FAQ from ticket {other_code}: proposed by supervisor sam"
    with pytest.raises(Conflict, match="already has the question"):
        improvement.propose_faq_from_ticket(session, desk.root, other_code, other_message, MONDAY_9)
    session.commit()


def test_a_ticket_without_procedure_asks_to_choose_one(session: Session, desk: Desk) -> None:
    code, message_id = answered_ticket(session, desk, "Nuôi chó có phải đăng ký không?", slug=None)
    with pytest.raises(Invalid, match="names no procedure; choose"):
        improvement.propose_faq_from_ticket(session, desk.alice, code, message_id, MONDAY_9)
    with pytest.raises(Invalid, match="no procedure 'no-such-thing'"):
        improvement.propose_faq_from_ticket(session, desk.alice, code, message_id, MONDAY_9, slug="no-such-thing")
    version = improvement.propose_faq_from_ticket(
        session, desk.alice, code, message_id, MONDAY_9, slug="dog-registration"
    )
    assert version.slug == "dog-registration"
    assert version.record["faq"][-1]["questions"] == ["Nuôi chó có phải đăng ký không?"]
    session.commit()


def test_a_request_for_a_person_is_no_faq_question(session: Session, desk: Desk) -> None:
    code, message_id = answered_ticket(session, desk, "tôi muốn gặp cán bộ")
    with pytest.raises(Invalid, match="asked for an official"):
        improvement.propose_faq_from_ticket(session, desk.alice, code, message_id, MONDAY_9)


def test_a_retired_procedure_takes_no_proposal(session: Session, desk: Desk) -> None:
    code, message_id = answered_ticket(session, desk)
    versions.retire(
        session,
        "birth-registration",
        author="root",
        role="admin",
        reason="gone",
        now=MONDAY_9,
        successor="dog-registration",
    )
    with pytest.raises(Invalid, match="retired; propose it to its successor 'dog-registration'"):
        improvement.propose_faq_from_ticket(session, desk.alice, code, message_id, MONDAY_9)


def test_a_proposal_keeps_a_colleagues_open_draft(session: Session, desk: Desk) -> None:
    code, message_id = answered_ticket(session, desk)
    live = versions.live_record(versions.get_live(session, "birth-registration"))
    edited = {**live, "vi": {**live["vi"], "fees": "50.000 đồng"}}
    versions.save_draft(session, edited, author="sam", role="supervisor", reason="new fee", now=MONDAY_9)
    version = improvement.propose_faq_from_ticket(session, desk.alice, code, message_id, MONDAY_9)
    assert version.record["vi"]["fees"] == "50.000 đồng"  # sam's edit is still in the draft
    assert len(version.record["faq"]) == len(live["faq"]) + 1
    assert version.reason.endswith("; on top of the open draft by sam (new fee)")
    session.commit()


def test_gap_questions_proposed_as_an_faq_variant(session: Session, desk: Desk) -> None:
    wanted = ["Đăng ký nuôi chó cảnh ở phường", "dang ky nuoi cho canh o phuong", "Câu hỏi một?", "  "]
    with pytest.raises(PermissionDenied, match="supervisors and admins"):
        improvement.propose_faq_variant(session, desk.alice, "dog-registration", wanted, MONDAY_9)
    version = improvement.propose_faq_variant(session, desk.sam, "dog-registration", wanted, MONDAY_9)
    # the unaccented repeat, a question the procedure already has and the blank one are left out
    assert version.record["faq"][-1] == {"lang": "vi", "questions": ["Đăng ký nuôi chó cảnh ở phường"]}
    assert version.reason.startswith("FAQ variants from the gap report (1 questions): proposed by supervisor sam")
    with pytest.raises(Conflict, match="already has every one"):
        improvement.propose_faq_variant(session, desk.sam, "dog-registration", ["Câu hỏi hai?"], MONDAY_9)
    with pytest.raises(Invalid, match="choose the procedure"):
        improvement.propose_faq_variant(session, desk.root, "", wanted, MONDAY_9)
    with pytest.raises(Invalid, match="at most 2000"):
        improvement.propose_faq_variant(session, desk.root, "birth-registration", ["x" * 2001], MONDAY_9)
    session.commit()
