"""Staff notifications on the real database: who hears of each event, once; quiet hours; warnings; Telegram links."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.models import Conversation
from core.db import get_engine, session_scope
from core.errors import Invalid, NotFound
from helpdesk import notifications, tickets
from helpdesk.accounts import Actor, create_user
from helpdesk.breaches import mark_breaches, warn_deadlines
from helpdesk.models import Department, Notification, OutboxMessage, RoutingRule, Ticket, TicketEvent, User
from helpdesk.notifications import (
    LINK_ALPHABET,
    link_telegram,
    mark_read,
    new_link_code,
    notify,
    unlink_telegram,
    unread_count,
)
from helpdesk.outbox import claim_due
from helpdesk.service import open_ticket
from helpdesk.sla import VN
from knowledge.models import Procedure


def vn(day: int, hour: int, minute: int = 0, month: int = 11) -> dt.datetime:
    """A moment of late 2026, Vietnam time, as UTC (23 November is a plain working Monday)."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=VN).astimezone(dt.UTC)


MONDAY_9 = vn(23, 9)
MONDAY_20 = vn(23, 20)  # evening: quiet hours
TUESDAY_8 = vn(24, 8)  # the next working moment after MONDAY_20


@dataclass
class Desk:
    """Two departments with their people; alice and sam have linked Telegram chats."""

    alice: Actor  # official, civil status, Telegram 1001
    bob: Actor  # official, civil status
    carol: Actor  # official, land
    sam: Actor  # supervisor, civil status, Telegram 1004
    lan: Actor  # supervisor, land
    root: Actor  # admin
    gone: Actor  # deactivated official, civil status


@pytest.fixture
def session(settings: object) -> Iterator[Session]:
    """A session the test commits itself."""
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
    for name, role, department, chat in [
        ("alice", "official", "civil-status", "1001"),
        ("bob", "official", "civil-status", None),
        ("carol", "official", "land", None),
        ("sam", "supervisor", "civil-status", "1004"),
        ("lan", "supervisor", "land", None),
        ("root", "admin", None, "1006"),
        ("gone", "official", "civil-status", "1007"),
    ]:
        user = create_user(session, username=name, password="correct horse 1", role=role, department=department)
        user.telegram_chat_id = chat
        user.active = name != "gone"
        session.flush()
        people[name] = Actor.of(user)
    session.commit()
    return Desk(**people)


def new_ticket(session: Session, *, user: str = "c1", now: dt.datetime = MONDAY_9) -> Ticket:
    conversation = Conversation(channel="telegram", user_key=user, state={})
    session.add(conversation)
    session.flush()
    ticket = open_ticket(
        session,
        conversation_id=conversation.id,
        channel="telegram",
        question="Khai sinh cho con? CCCD 001099012345",
        reason="low_confidence",
        lang="vi",
        now=now,
        candidates=[{"slug": "birth-registration", "title": "Đăng ký khai sinh"}],
    )
    session.commit()
    return ticket


def told(session: Session, kind: str | None = None) -> dict[str, list[str]]:
    """Each user's notification kinds (of one kind, if given), oldest first; users without any left out."""
    stmt = select(User.username, Notification.kind).join(User, User.id == Notification.user_id)
    if kind is not None:
        stmt = stmt.where(Notification.kind == kind)
    found: dict[str, list[str]] = {}
    for username, got in session.execute(stmt.order_by(Notification.id)):
        found.setdefault(username, []).append(got)
    return found


def pushes(session: Session) -> list[OutboxMessage]:
    """Telegram messages to staff chats (citizens' chats start with "c"), oldest first."""
    stmt = select(OutboxMessage).where(~OutboxMessage.recipient.startswith("c")).order_by(OutboxMessage.id)
    return list(session.scalars(stmt))


# -- who hears of what, once ---------------------------------------------------------------------------------


def test_a_new_ticket_tells_its_departments_officials_once(session: Session, desk: Desk) -> None:
    ticket = new_ticket(session)
    assert told(session) == {"alice": ["new_ticket"], "bob": ["new_ticket"]}  # not sam, carol, root or gone
    (push,) = pushes(session)
    assert (push.channel, push.recipient, push.chat_message_id, push.status) == ("telegram", "1001", None, "pending")
    assert push.next_attempt_at == MONDAY_9  # working hours: at once
    assert ticket.code in push.text
    assert f"/dashboard/tickets/{ticket.code}" in push.text
    assert "Yêu cầu mới" in push.text
    assert "001099012345" not in push.text  # the citizen's words stay off Telegram
    (row,) = session.scalars(select(Notification).where(Notification.user_id == desk.alice.user_id))
    assert (row.ticket_id, row.read_at, row.created_at) == (ticket.id, None, MONDAY_9)

    again = open_ticket(  # the conversation's open ticket is reused: no news
        session,
        conversation_id=ticket.conversation_id,
        channel="telegram",
        question="Còn nữa",
        reason="asked_for_person",
        lang="vi",
        now=MONDAY_9,
    )
    session.commit()
    assert again.id == ticket.id
    assert told(session) == {"alice": ["new_ticket"], "bob": ["new_ticket"]}
    assert len(pushes(session)) == 1


def test_outside_working_hours_the_push_waits_but_the_dashboard_does_not(session: Session, desk: Desk) -> None:
    new_ticket(session, now=MONDAY_20)
    assert told(session) == {"alice": ["new_ticket"], "bob": ["new_ticket"]}
    assert unread_count(session, desk.alice) == 1  # in the dashboard at once
    (push,) = pushes(session)
    assert push.next_attempt_at == TUESDAY_8
    assert claim_due(session, ["telegram"], MONDAY_20 + dt.timedelta(hours=11), 100) == []
    assert [m.recipient for m in claim_due(session, ["telegram"], TUESDAY_8, 100)] == ["1001"]


def test_a_breach_goes_at_once_at_night_past_a_waiting_push(session: Session, desk: Desk) -> None:
    """Supervisors and the holder hear of a missed deadline at once, even behind a push kept for the morning."""
    ticket = new_ticket(session)
    tickets.claim(session, desk.alice, ticket.code, MONDAY_9)
    night = ticket.resolve_deadline + dt.timedelta(hours=11)  # Monday 30 November, 20:00
    tickets.citizen_wrote(session, ticket, "Tôi bổ sung giấy tờ", night - dt.timedelta(minutes=30))
    session.commit()
    waiting = pushes(session)[-1]
    assert waiting.text.startswith("🔔 Người dân đã trả lời")
    assert waiting.next_attempt_at == vn(1, 8, month=12)  # kept for Tuesday morning

    assert mark_breaches(session, night) == [ticket.code]
    assert mark_breaches(session, night + dt.timedelta(minutes=5)) == []
    session.commit()
    assert told(session, "breached") == {"alice": ["breached"], "sam": ["breached"]}  # not bob
    breaches = [m for m in pushes(session) if "Trễ hạn" in m.text]
    assert sorted(m.recipient for m in breaches) == ["1001", "1004"]
    assert all(m.next_attempt_at == night for m in breaches)
    # alice's morning push does not hold her breach back (only a retry keeps a chat's order)
    due = {m.id for m in claim_due(session, ["telegram"], night, 100)}
    assert {m.id for m in breaches} <= due
    assert waiting.id not in due
    event = session.scalars(select(TicketEvent).where(TicketEvent.kind == "supervisor_notified")).one()
    assert event.data == {"notified": 2}


def test_the_citizen_answering_tells_the_holder_once_until_read(session: Session, desk: Desk) -> None:
    ticket = new_ticket(session)
    tickets.claim(session, desk.alice, ticket.code, MONDAY_9)
    for minute in (1, 2, 3):  # a burst of messages is one notice
        tickets.citizen_wrote(session, ticket, f"tin {minute}", MONDAY_9 + dt.timedelta(minutes=minute))
    session.commit()
    assert told(session, "citizen_answered") == {"alice": ["citizen_answered"]}
    mark_read(session, desk.alice, None, MONDAY_9 + dt.timedelta(minutes=5))
    tickets.citizen_wrote(session, ticket, "tin 4", MONDAY_9 + dt.timedelta(minutes=6))
    session.commit()
    assert told(session, "citizen_answered") == {"alice": ["citizen_answered"] * 2}
    assert [m.recipient for m in pushes(session) if "Người dân" in m.text] == ["1001", "1001"]

    tickets.release(session, desk.alice, ticket.code, MONDAY_9 + dt.timedelta(minutes=7))
    tickets.citizen_wrote(session, ticket, "tin 5", MONDAY_9 + dt.timedelta(minutes=8))
    session.commit()  # held by nobody: the department's officials (alice's unread notice already stands for it)
    assert told(session, "citizen_answered") == {"alice": ["citizen_answered"] * 2, "bob": ["citizen_answered"]}


def test_a_transfer_tells_the_new_department_and_never_the_actor(session: Session, desk: Desk) -> None:
    ticket = new_ticket(session)
    tickets.transfer(session, desk.sam, ticket.code, "land", "Câu hỏi về đất đai", MONDAY_9)
    session.commit()
    assert told(session, "transferred") == {"carol": ["transferred"], "lan": ["transferred"]}
    text = session.scalars(select(Notification.text).where(Notification.kind == "transferred")).first()
    assert text is not None
    assert ticket.code in text
    assert "Câu hỏi về đất đai" in text

    # whoever caused an event is left out, whichever audience it has
    assert notify(session, ticket, "breached", "x", MONDAY_9, actor_id=desk.lan.user_id) == []
    assert notify(session, ticket, "transferred", "x", MONDAY_9, actor_id=desk.carol.user_id) == [desk.lan.user_id]
    with pytest.raises(ValueError, match="unknown notification kind"):
        notify(session, ticket, "gossip", "x", MONDAY_9)


# -- one working hour ahead ------------------------------------------------------------------------------------


def test_the_one_hour_warning_comes_once_per_deadline(session: Session, desk: Desk) -> None:
    ticket = new_ticket(session)  # acknowledge by Tuesday 09:00
    assert warn_deadlines(session, vn(23, 16, 59)) == []  # Tuesday 09:00 is more than a working hour away
    assert warn_deadlines(session, vn(24, 8, 15)) == [ticket.code]
    assert warn_deadlines(session, vn(24, 8, 20)) == []
    session.commit()
    assert told(session, "deadline_soon") == {"alice": ["deadline_soon"], "bob": ["deadline_soon"]}  # nobody holds it
    (push,) = [m for m in pushes(session) if "Sắp đến hạn" in m.text]
    assert (push.recipient, push.next_attempt_at) == ("1001", vn(24, 8, 15))
    assert "09:00 24/11/2026" in push.text

    # claimed: the resolution deadline runs now, and its own warning goes to the holder alone
    tickets.claim(session, desk.alice, ticket.code, vn(24, 8, 30))
    session.commit()
    assert ticket.deadline == vn(30, 9)
    assert warn_deadlines(session, vn(27, 16)) == []
    assert warn_deadlines(session, vn(30, 8, 5)) == [ticket.code]
    assert warn_deadlines(session, vn(30, 8, 6)) == []
    session.commit()
    assert told(session, "deadline_soon") == {"alice": ["deadline_soon"] * 2, "bob": ["deadline_soon"]}


def test_a_new_clock_resets_the_warning_and_paused_tickets_get_none(session: Session, desk: Desk) -> None:
    ticket = new_ticket(session)
    assert warn_deadlines(session, vn(24, 8, 15)) == [ticket.code]
    tickets.transfer(session, desk.bob, ticket.code, "land", "Đất đai", vn(24, 8, 30))
    session.commit()
    assert ticket.deadline_warned_at is None
    new_deadline = ticket.deadline  # 8 working hours from Tuesday 08:30
    assert warn_deadlines(session, new_deadline - dt.timedelta(minutes=30)) == [ticket.code]
    session.commit()
    assert told(session, "deadline_soon") == {
        "alice": ["deadline_soon"],
        "bob": ["deadline_soon"],
        "carol": ["deadline_soon"],
    }

    paused = new_ticket(session, user="c2")
    tickets.reply(session, desk.alice, paused.code, "Bạn gửi thêm giấy tờ nhé", MONDAY_9, await_citizen=True)
    session.commit()
    assert paused.paused_at is not None
    assert warn_deadlines(session, paused.deadline - dt.timedelta(minutes=10)) == []


def test_a_deadline_moved_by_a_pause_is_warned_of_again(session: Session, desk: Desk) -> None:
    ticket = new_ticket(session)
    tickets.claim(session, desk.alice, ticket.code, MONDAY_9)  # answer by Monday 30 November, 09:00
    assert warn_deadlines(session, vn(30, 8, 15)) == [ticket.code]
    tickets.reply(session, desk.alice, ticket.code, "Bạn gửi thêm giấy tờ nhé", vn(30, 8, 30), await_citizen=True)
    tickets.citizen_wrote(session, ticket, "Đây ạ", vn(1, 10, month=12))  # half an hour left, from now
    session.commit()
    assert ticket.deadline == vn(1, 10, 30, month=12)
    assert warn_deadlines(session, vn(1, 10, 1, month=12)) == [ticket.code]
    assert warn_deadlines(session, vn(1, 10, 2, month=12)) == []
    session.commit()
    assert told(session, "deadline_soon") == {"alice": ["deadline_soon"] * 2}


def test_two_schedulers_warn_once(session: Session, desk: Desk) -> None:
    ticket = new_ticket(session)
    barrier = threading.Barrier(2)
    results: list[list[str]] = []

    def scheduler() -> None:
        barrier.wait()
        with session_scope() as own:
            results.append(warn_deadlines(own, vn(24, 8, 15)))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [[], [ticket.code]]
    session.expire_all()
    assert told(session, "deadline_soon") == {"alice": ["deadline_soon"], "bob": ["deadline_soon"]}


# -- reading ---------------------------------------------------------------------------------------------------


def test_mark_read_touches_only_your_own(session: Session, desk: Desk) -> None:
    new_ticket(session)
    new_ticket(session, user="c2")
    assert unread_count(session, desk.alice) == unread_count(session, desk.bob) == 2
    bobs = notifications.notifications_of(session, desk.bob)
    with pytest.raises(NotFound):
        mark_read(session, desk.alice, bobs[0].id, MONDAY_9)
    newest, older = notifications.notifications_of(session, desk.alice)
    assert newest.id > older.id
    assert mark_read(session, desk.alice, newest.id, MONDAY_9) == 1
    assert mark_read(session, desk.alice, newest.id, MONDAY_9) == 0  # already read
    assert unread_count(session, desk.alice) == 1
    assert mark_read(session, desk.alice, None, MONDAY_9) == 1
    assert (unread_count(session, desk.alice), unread_count(session, desk.bob)) == (0, 2)
    assert tickets.unread_count is notifications.unread_count  # the routes' import still works


# -- linking Telegram ------------------------------------------------------------------------------------------


def user(session: Session, actor: Actor) -> User:
    found = session.get(User, actor.user_id)
    assert found is not None
    return found


def test_a_link_code_links_once(session: Session, desk: Desk) -> None:
    bob = user(session, desk.bob)
    code = new_link_code(session, bob, MONDAY_9)
    assert len(code) == 8
    assert set(code) <= set(LINK_ALPHABET)
    assert bob.telegram_link_expires_at == MONDAY_9 + dt.timedelta(minutes=15)
    spaced = f" {code[:4].lower()} {code[4:].lower()} "  # typed by hand
    assert link_telegram(session, spaced, "2002", MONDAY_9 + dt.timedelta(minutes=14)).id == bob.id
    assert (bob.telegram_chat_id, bob.telegram_link_code, bob.telegram_link_expires_at) == ("2002", None, None)
    with pytest.raises(Invalid, match="wrong or has expired"):
        link_telegram(session, code, "2003", MONDAY_9 + dt.timedelta(minutes=14))
    assert bob.telegram_chat_id == "2002"
    new_ticket(session)
    assert sorted(m.recipient for m in pushes(session)) == ["1001", "2002"]


def test_a_link_code_expires_and_a_new_one_replaces_it(session: Session, desk: Desk) -> None:
    bob = user(session, desk.bob)
    first = new_link_code(session, bob, MONDAY_9)
    second = new_link_code(session, bob, MONDAY_9)
    assert first != second
    with pytest.raises(Invalid):
        link_telegram(session, first, "2002", MONDAY_9)
    with pytest.raises(Invalid):
        link_telegram(session, second, "2002", MONDAY_9 + dt.timedelta(minutes=15))
    for wrong in ("", "abc", "OOOO0000", "ABCDEFGHJ", second[::-1] + "Z"):
        with pytest.raises(Invalid):
            link_telegram(session, wrong, "2002", MONDAY_9)
    session.commit()
    assert bob.telegram_chat_id is None
    assert notifications.telegram_link(bob, MONDAY_9 + dt.timedelta(minutes=15)).code is None  # shown no more
    assert notifications.telegram_link(bob, MONDAY_9).code == second


def test_a_chat_belongs_to_one_account_and_unlinking_stops_pushes(session: Session, desk: Desk) -> None:
    alice, bob = user(session, desk.alice), user(session, desk.bob)
    link_telegram(session, new_link_code(session, bob, MONDAY_9), "1001", MONDAY_9)  # alice's chat
    session.commit()
    session.refresh(alice)
    assert (alice.telegram_chat_id, bob.telegram_chat_id) == (None, "1001")
    assert unlink_telegram(session, bob) is True
    assert unlink_telegram(session, bob) is False
    session.commit()
    new_ticket(session)
    assert pushes(session) == []
    assert told(session) == {"alice": ["new_ticket"], "bob": ["new_ticket"]}


def test_a_deactivated_account_gets_no_code_and_cannot_link(session: Session, desk: Desk) -> None:
    bob = user(session, desk.bob)
    code = new_link_code(session, bob, MONDAY_9)
    session.execute(update(User).where(User.id == bob.id).values(active=False))
    session.commit()
    session.refresh(bob)
    with pytest.raises(Invalid):
        link_telegram(session, code, "2002", MONDAY_9)
    with pytest.raises(Invalid, match="deactivated"):
        new_link_code(session, bob, MONDAY_9)
