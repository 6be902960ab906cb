"""Officials' ticket work on the real database: routing, deadlines, claim race, scope, transfer, pause, breaches."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from bot.models import ChatMessage, Conversation
from core.db import get_engine, session_scope
from core.errors import Conflict, Invalid, PermissionDenied
from helpdesk import tickets
from helpdesk.accounts import Actor, create_user
from helpdesk.breaches import mark_breaches, next_deadline
from helpdesk.models import (
    Department,
    Notification,
    OutboxMessage,
    RoutingRule,
    Ticket,
    TicketCount,
    TicketEvent,
)
from helpdesk.service import OPEN_STATUSES, open_ticket
from helpdesk.sla import VN, add_working_hours
from helpdesk.tickets import QueueFilter
from knowledge.models import Procedure

MONDAY_9 = dt.datetime(2026, 11, 23, 9, tzinfo=VN).astimezone(dt.UTC)  # a plain working Monday


@dataclass
class Desk:
    """Two departments with their people."""

    alice: Actor  # official, civil status
    bob: Actor  # official, civil status
    carol: Actor  # official, land
    sam: Actor  # supervisor, civil status
    lan: Actor  # supervisor, land
    root: Actor  # admin


@pytest.fixture
def session(settings: object) -> Iterator[Session]:
    """A session the test commits itself (the shared fixture is one transaction)."""
    with Session(get_engine(), expire_on_commit=False) as own:
        yield own
        own.commit()


@pytest.fixture
def desk(session: Session) -> Desk:
    session.add_all(
        [
            Department(slug="one-stop", name="Bộ phận Một cửa", is_default=True),
            Department(slug="civil-status", name="Tư pháp – Hộ tịch"),
            Department(slug="land", name="Đất đai – Xây dựng"),
        ]
    )
    session.flush()
    session.add(RoutingRule(kind="category", value="civil-status", department="civil-status"))
    session.add(Procedure(slug="birth-registration", category="civil-status", authority="UBND cấp xã"))
    people = {}
    for name, role, department in [
        ("alice", "official", "civil-status"),
        ("bob", "official", "civil-status"),
        ("carol", "official", "land"),
        ("sam", "supervisor", "civil-status"),
        ("lan", "supervisor", "land"),
        ("root", "admin", None),
    ]:
        user = create_user(session, username=name, password="correct horse 1", role=role, department=department)
        session.flush()
        people[name] = Actor.of(user)
    session.commit()
    return Desk(**people)


def new_ticket(
    session: Session,
    *,
    user: str = "c1",
    channel: str = "telegram",
    slug: str | None = "birth-registration",
    now: dt.datetime = MONDAY_9,
) -> Ticket:
    conversation = Conversation(channel=channel, user_key=user, state={})
    session.add(conversation)
    session.flush()
    candidates = [{"slug": slug, "title": "Đăng ký khai sinh"}] if slug else []
    ticket = open_ticket(
        session,
        conversation_id=conversation.id,
        channel=channel,
        question="Khai sinh cho con?",
        reason="low_confidence",
        lang="vi",
        now=now,
        candidates=candidates,
    )
    session.commit()
    return ticket


def events(session: Session, ticket: Ticket) -> list[str]:
    return list(
        session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id))
    )


def test_a_ticket_is_routed_and_gets_both_deadlines(session: Session, desk: Desk) -> None:
    routed = new_ticket(session)
    assert (routed.department, routed.category, routed.status) == ("civil-status", "civil-status", "new")
    assert routed.ack_deadline == add_working_hours(MONDAY_9, 8) == routed.deadline
    assert routed.resolve_deadline == add_working_hours(MONDAY_9, 40)
    unrouted = new_ticket(session, user="c2", slug=None)
    assert unrouted.department == "one-stop"  # nothing matched: the default desk triages it
    assert events(session, routed) == ["created"]


def test_two_officials_claiming_at_once_exactly_one_wins(session: Session, desk: Desk) -> None:
    code = new_ticket(session).code
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def claim(actor: Actor) -> None:
        barrier.wait()
        try:
            with session_scope() as own:
                tickets.claim(own, actor, code, MONDAY_9)
            outcomes[actor.username] = "won"
        except Conflict as exc:
            outcomes[actor.username] = f"409: {exc}"

    threads = [threading.Thread(target=claim, args=(a,)) for a in (desk.alice, desk.bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(v == "won" for v in outcomes.values()) == [False, True], outcomes
    session.expire_all()
    ticket = session.scalar(select(Ticket).where(Ticket.code == code))
    winner = desk.alice if outcomes["alice"] == "won" else desk.bob
    assert (ticket.status, ticket.assignee_id) == ("acknowledged", winner.user_id)
    assert ticket.deadline == ticket.resolve_deadline  # acknowledged: the resolution clock runs now
    assert events(session, ticket).count("claimed") == 1


def test_another_department_is_refused_and_the_attempt_audited(session: Session, desk: Desk) -> None:
    code = new_ticket(session).code
    for action in (
        lambda: tickets.claim(session, desk.carol, code, MONDAY_9),
        lambda: tickets.detail(session, desk.lan, code, MONDAY_9),
        lambda: tickets.reply(session, desk.carol, code, "Xin chào", MONDAY_9),
    ):
        with pytest.raises(PermissionDenied, match="civil-status"):
            action()
    session.rollback()
    denied = session.scalars(select(TicketEvent).where(TicketEvent.kind == "denied")).all()
    assert [(e.actor, e.data["action"]) for e in denied] == [("carol", "claim"), ("lan", "view"), ("carol", "reply")]
    with pytest.raises(PermissionDenied):
        tickets.queue(session, desk.carol, QueueFilter(department="civil-status"), MONDAY_9)
    # the admin and the own department's supervisor may
    assert tickets.detail(session, desk.root, code, MONDAY_9)[0].code == code
    assert tickets.detail(session, desk.sam, code, MONDAY_9)[0].code == code


def test_reply_reaches_the_outbox_and_records_working_hours(session: Session, desk: Desk) -> None:
    code = new_ticket(session).code
    later = MONDAY_9 + dt.timedelta(hours=5)  # 09:00 → 14:00 is 4 working hours (lunch 12–13)
    ticket, message_id = tickets.reply(session, desk.alice, code, "Mang giấy chứng sinh đến UBND xã.", later)
    session.commit()
    assert (ticket.status, ticket.assignee_id) == ("answered", desk.alice.user_id)  # replying claims it
    assert ticket.first_response_hours == pytest.approx(4.0) == ticket.resolution_hours
    queued = session.scalar(select(OutboxMessage).where(OutboxMessage.chat_message_id == message_id))
    assert (queued.channel, queued.recipient, queued.text) == ("telegram", "c1", "Mang giấy chứng sinh đến UBND xã.")
    assert events(session, ticket) == ["created", "claimed", "replied"]
    tickets.close(session, desk.alice, code, later)
    with pytest.raises(Conflict, match="closed"):
        tickets.reply(session, desk.alice, code, "again", later)
    with pytest.raises(Conflict, match="already closed"):
        tickets.close(session, desk.alice, code, later)
    reopened = tickets.reopen_by(session, desk.sam, code, later, "citizen called")
    assert (reopened.status, reopened.resolved_at, reopened.assignee_id) == ("reopened", None, None)


def test_an_official_does_not_act_over_a_colleague_but_the_supervisor_may(session: Session, desk: Desk) -> None:
    code = new_ticket(session).code
    tickets.claim(session, desk.alice, code, MONDAY_9)
    with pytest.raises(Conflict, match="held by alice"):
        tickets.reply(session, desk.bob, code, "Tôi trả lời thay", MONDAY_9)
    with pytest.raises(Conflict, match="held by alice"):
        tickets.claim(session, desk.bob, code, MONDAY_9)
    ticket, _ = tickets.reply(session, desk.sam, code, "Trưởng phòng trả lời", MONDAY_9)
    assert ticket.status == "answered"


def test_transfer_restarts_the_clocks_and_tells_the_new_supervisor(session: Session, desk: Desk) -> None:
    code = new_ticket(session).code
    tickets.claim(session, desk.alice, code, MONDAY_9)
    with pytest.raises(Invalid, match="reason"):
        tickets.transfer(session, desk.alice, code, "land", "  ", MONDAY_9)
    with pytest.raises(Invalid, match="no department 'moon'"):
        tickets.transfer(session, desk.alice, code, "moon", "wrong desk", MONDAY_9)
    later = MONDAY_9 + dt.timedelta(hours=1)
    moved = tickets.transfer(session, desk.alice, code, "land", "Câu hỏi về đất đai", later)
    session.commit()
    assert (moved.department, moved.status, moved.assignee_id) == ("land", "transferred", None)
    assert moved.deadline == add_working_hours(later, 8)
    told = session.scalars(select(Notification).where(Notification.user_id == desk.lan.user_id)).all()
    assert [n.kind for n in told] == ["transferred"]
    with pytest.raises(PermissionDenied):  # no longer alice's department
        tickets.claim(session, desk.alice, code, later)
    assert tickets.claim(session, desk.carol, code, later).assignee_id == desk.carol.user_id


def test_waiting_for_the_citizen_stops_the_clock(session: Session, desk: Desk) -> None:
    ticket = new_ticket(session)
    code = ticket.code
    tickets.claim(session, desk.alice, code, MONDAY_9)
    resolve_by = ticket.resolve_deadline
    tickets.reply(
        session, desk.alice, code, "Bạn sinh con ở đâu?", MONDAY_9 + dt.timedelta(hours=1), await_citizen=True
    )
    session.commit()
    assert ticket.status == "acknowledged"
    assert ticket.paused_at is not None
    # two working days pass while the citizen is silent: no breach, nothing overdue
    much_later = resolve_by + dt.timedelta(days=3)
    assert mark_breaches(session, much_later) == []
    assert tickets.queue(session, desk.alice, QueueFilter(overdue=True), much_later) == ([], 0)
    back = dt.datetime(2026, 11, 26, 9, tzinfo=VN).astimezone(dt.UTC)  # Thursday 09:00, 3 working days later
    tickets.citizen_wrote(session, ticket, "Ở Hà Nội", back)
    assert ticket.paused_at is None
    assert ticket.deadline == add_working_hours(back, 39.0)  # 40 h target, 1 h used before the pause
    assert events(session, ticket)[-2:] == ["citizen_message", "resumed"]


def test_a_missed_deadline_apologises_once_and_tells_the_supervisor(session: Session, desk: Desk) -> None:
    ticket = new_ticket(session, channel="web", user="w-1")
    assert next_deadline(session) == ticket.ack_deadline
    assert mark_breaches(session, ticket.ack_deadline - dt.timedelta(seconds=1)) == []
    late = ticket.ack_deadline + dt.timedelta(seconds=1)
    assert mark_breaches(session, late) == [ticket.code]
    assert mark_breaches(session, late + dt.timedelta(minutes=5)) == []  # never twice
    session.commit()
    apologies = session.scalars(select(ChatMessage).where(ChatMessage.status == "apology")).all()
    assert len(apologies) == 1
    assert ticket.code in apologies[0].text
    assert "xin lỗi" in apologies[0].text
    assert ticket.apologies == 1
    assert ticket.ack_breached_at == late
    assert ticket.expected_at == add_working_hours(late, 4)
    assert [n.kind for n in session.scalars(select(Notification).where(Notification.user_id == desk.sam.user_id))] == [
        "breached"
    ]
    assert events(session, ticket) == ["created", "breached", "apology_sent", "supervisor_notified"]
    # once acknowledged, the resolution deadline is a second, separate promise
    tickets.claim(session, desk.alice, ticket.code, late)
    missed_again = ticket.resolve_deadline + dt.timedelta(minutes=1)
    assert mark_breaches(session, missed_again) == [ticket.code]
    assert mark_breaches(session, missed_again) == []
    assert session.scalar(select(func.count()).where(ChatMessage.status == "apology")) == 2


def test_the_queue_is_scoped_ordered_filtered_and_capped(session: Session, desk: Desk) -> None:
    first = new_ticket(session, user="a", now=MONDAY_9)
    second = new_ticket(session, user="b", now=MONDAY_9 - dt.timedelta(days=7))  # older: earlier deadline
    other = new_ticket(session, user="c", slug=None)  # one-stop
    rows, count = tickets.queue(session, desk.alice, QueueFilter(), MONDAY_9)
    assert [t.code for t in rows] == [second.code, first.code]
    assert count == 2
    rows, count = tickets.queue(session, desk.root, QueueFilter(limit=1), MONDAY_9)
    assert count == 3
    assert len(rows) == 1
    rows, _ = tickets.queue(session, desk.alice, QueueFilter(overdue=True), MONDAY_9)
    assert [t.code for t in rows] == [second.code]
    tickets.claim(session, desk.alice, first.code, MONDAY_9)
    rows, _ = tickets.queue(session, desk.sam, QueueFilter(assignee="alice"), MONDAY_9)
    assert [t.code for t in rows] == [first.code]
    rows, _ = tickets.queue(session, desk.root, QueueFilter(department="one-stop"), MONDAY_9)
    assert [t.code for t in rows] == [other.code]
    with pytest.raises(Invalid, match="limit"):
        tickets.queue(session, desk.root, QueueFilter(limit=10**9), MONDAY_9)
    with pytest.raises(Invalid, match="status: unknown"):
        tickets.queue(session, desk.root, QueueFilter(status=("lost",)), MONDAY_9)


def kept_counts(session: Session) -> dict[tuple[str, str], int]:
    """The trigger-kept totals, without the (department, status) pairs that went back to zero."""
    rows = session.execute(select(TicketCount.department, TicketCount.status, TicketCount.n))
    return {(department, status): n for department, status, n in rows if n}


def real_counts(session: Session) -> dict[tuple[str, str], int]:
    """The same totals counted from the tickets themselves."""
    department = func.coalesce(Ticket.department, "")
    rows = session.execute(select(department, Ticket.status, func.count()).group_by(department, Ticket.status))
    return {(d, s): n for d, s, n in rows}


QUEUE_VIEWS = [
    (actor, wanted)
    for actor in ("alice", "carol", "root")
    for wanted in (
        QueueFilter(),
        QueueFilter(status=("closed",)),
        QueueFilter(status=("answered", "new")),
        QueueFilter(status=tickets.STATUSES),
        QueueFilter(assignee="none"),
        QueueFilter(overdue=False),
        QueueFilter(limit=1, offset=1),
        QueueFilter(offset=100),  # past the last page: no rows, the total still counts
    )
]


def assert_totals_true(session: Session, desk: Desk, now: dt.datetime) -> None:
    """Every view's total equals a plain count of its tickets, and the kept table equals GROUP BY."""
    assert kept_counts(session) == real_counts(session)
    for name, wanted in QUEUE_VIEWS:
        actor = getattr(desk, name)
        statuses = wanted.status or OPEN_STATUSES
        where = [Ticket.status.in_(statuses)]
        if actor.role != "admin":
            where.append(Ticket.department == actor.department)
        if wanted.assignee == "none":
            where.append(Ticket.assignee_id.is_(None))
        if wanted.overdue is False:
            where.append(~and_(Ticket.status.in_(OPEN_STATUSES), Ticket.paused_at.is_(None), Ticket.deadline < now))
        expected = session.scalar(select(func.count()).select_from(Ticket).where(*where))
        rows, total = tickets.queue(session, actor, wanted, now)
        assert total == expected, (name, wanted)
        assert len(rows) == max(0, min(wanted.limit, expected - wanted.offset)), (name, wanted)


def test_queue_totals_stay_exact_through_every_change(session: Session, desk: Desk) -> None:
    assert_totals_true(session, desk, MONDAY_9)
    made = [new_ticket(session, user=f"c{i}", slug=None if i % 3 == 0 else "birth-registration") for i in range(7)]
    assert_totals_true(session, desk, MONDAY_9)
    tickets.claim(session, desk.alice, made[1].code, MONDAY_9)
    tickets.reply(session, desk.alice, made[2].code, "Mang CCCD.", MONDAY_9)
    tickets.transfer(session, desk.bob, made[4].code, "land", "đất đai", MONDAY_9)
    tickets.close(session, desk.alice, made[2].code, MONDAY_9)
    session.commit()
    assert_totals_true(session, desk, MONDAY_9)
    tickets.reopen_by(session, desk.sam, made[2].code, MONDAY_9, "chưa rõ")
    tickets.transfer(session, desk.carol, made[4].code, "civil-status", "trả lại", MONDAY_9)
    session.commit()
    assert_totals_true(session, desk, MONDAY_9 + dt.timedelta(days=30))  # and with everything overdue
    # Changes made outside the ORM are counted too: a bulk UPDATE, a ticket moved off any department, deletes.
    session.execute(update(Ticket).where(Ticket.department == "one-stop").values(status="closed"))
    session.execute(update(Ticket).where(Ticket.id == made[5].id).values(department=None))
    session.execute(delete(Ticket).where(Ticket.id.in_([made[0].id, made[1].id])))
    session.commit()
    assert kept_counts(session)[("", "new")] == 1
    assert_totals_true(session, desk, MONDAY_9)


def test_urgent_tickets_have_shorter_deadlines(session: Session, desk: Desk) -> None:
    ticket = new_ticket(session)
    tickets.set_urgency(session, desk.sam, ticket.code, "urgent", MONDAY_9)
    assert ticket.deadline == add_working_hours(MONDAY_9, 4)
    assert ticket.resolve_deadline == add_working_hours(MONDAY_9, 16)
    with pytest.raises(Invalid):
        tickets.set_urgency(session, desk.sam, ticket.code, "panic", MONDAY_9)
