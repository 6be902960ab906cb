"""The officials' inbox on the real database: views and their counts, scope, search, filters, paging, due states;
unclaiming, who is viewing, once-only form keys."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.history import pressed_label
from bot.models import Conversation
from core.db import get_engine
from core.errors import Conflict, Invalid, PermissionDenied
from helpdesk import inbox, presence, tickets
from helpdesk.accounts import Actor, create_user
from helpdesk.inbox import InboxQuery, inbox_page
from helpdesk.models import Department, FormSubmission, Ticket, TicketEvent
from helpdesk.service import open_ticket
from helpdesk.sla import VN, add_working_hours
from helpdesk.submissions import AlreadySubmitted, new_submission_key, record_submission

MONDAY_9 = dt.datetime(2026, 11, 23, 9, tzinfo=VN).astimezone(dt.UTC)  # a plain working Monday


@pytest.fixture
def session(settings: object) -> Iterator[Session]:
    """A session the test commits itself."""
    with Session(get_engine(), expire_on_commit=False) as own:
        yield own
        own.commit()


@pytest.fixture
def people(session: Session) -> dict[str, Actor]:
    session.add_all([Department(slug="ho-tich", name="Hộ tịch"), Department(slug="dat-dai", name="Đất đai")])
    session.flush()
    found = {}
    for name, role, department in [
        ("anh", "official", "ho-tich"),
        ("binh", "official", "ho-tich"),
        ("chi", "official", "dat-dai"),
        ("dung", "supervisor", "ho-tich"),
        ("root", "admin", None),
    ]:
        user = create_user(session, username=name, password="correct horse 1", role=role, department=department)
        session.flush()
        found[name] = Actor.of(user)
    session.commit()
    return found


def ticket(
    session: Session, question: str, *, department: str = "ho-tich", at: dt.datetime = MONDAY_9, **fields: object
) -> Ticket:
    conversation = Conversation(channel=str(fields.pop("channel", "web")), user_key=f"u{question}{at}", state={})
    session.add(conversation)
    session.flush()
    made = open_ticket(
        session,
        conversation_id=conversation.id,
        channel=conversation.channel,
        question=question,
        reason="asked_for_person",
        lang=str(fields.pop("lang", "vi")),
        now=at,
    )
    made.department = department
    for name, value in fields.items():
        setattr(made, name, value)
    session.commit()
    return made


def codes(page: inbox.InboxPage) -> list[str]:
    return [row["code"] for row in page.rows]


def test_each_view_holds_its_tickets_and_the_tabs_count_them(session: Session, people: dict[str, Actor]) -> None:
    an = people["anh"]
    fresh = ticket(session, "Khai sinh cho con", at=MONDAY_9 + dt.timedelta(hours=1))
    late = ticket(session, "Trích lục kết hôn", at=MONDAY_9 - dt.timedelta(days=5))
    mine = ticket(session, "Cải chính hộ tịch", at=MONDAY_9)
    waiting = ticket(session, "Nhận cha con", at=MONDAY_9)
    done = ticket(session, "Đăng ký giám hộ", at=MONDAY_9)
    other = ticket(session, "Cấp sổ đỏ", department="dat-dai")
    now = MONDAY_9 + dt.timedelta(hours=2)
    tickets.claim(session, an, mine.code, now)
    tickets.reply(session, an, waiting.code, "Xin gửi thêm giấy tờ", now, await_citizen=True)
    tickets.reply(session, people["binh"], done.code, "Đã xong", now)
    session.commit()
    expected = {
        "open": {fresh.code, late.code, mine.code, waiting.code},
        "mine": {mine.code, waiting.code},
        "unassigned": {fresh.code, late.code},
        "overdue": {late.code},
        "waiting": {waiting.code},
        "closed": {done.code},
    }
    for view, wanted in expected.items():
        page = inbox_page(session, an, InboxQuery(view=view), now)
        assert set(codes(page)) == wanted, view
        assert page.total == len(wanted)
        assert page.counts == {k: len(v) for k, v in expected.items()}, view
        assert other.code not in codes(page)
    ordered = codes(inbox_page(session, an, InboxQuery(view="open"), now))
    assert ordered[0] == late.code  # the soonest (here: missed) deadline first
    late_row = inbox_page(session, an, InboxQuery(view="overdue"), now).rows[0]
    assert late_row["due"] == "missed"
    assert late_row["hours_left"] < 0
    assert inbox_page(session, an, InboxQuery(view="waiting"), now).rows[0]["due"] == "paused"


def test_officials_and_supervisors_see_their_own_department_admins_any(
    session: Session, people: dict[str, Actor]
) -> None:
    ours = ticket(session, "Khai sinh")
    theirs = ticket(session, "Sổ đỏ", department="dat-dai")
    now = MONDAY_9 + dt.timedelta(hours=1)
    assert codes(inbox_page(session, people["dung"], InboxQuery(), now)) == [ours.code]
    assert codes(inbox_page(session, people["chi"], InboxQuery(), now)) == [theirs.code]
    assert set(codes(inbox_page(session, people["root"], InboxQuery(), now))) == {ours.code, theirs.code}
    assert codes(inbox_page(session, people["root"], InboxQuery(department="dat-dai"), now)) == [theirs.code]
    with pytest.raises(PermissionDenied, match="your own department"):
        inbox_page(session, people["anh"], InboxQuery(department="dat-dai"), now)
    denied = session.scalars(select(TicketEvent).where(TicketEvent.kind == "denied")).all()
    assert [(e.actor, e.department, e.data["action"]) for e in denied] == [("anh", "dat-dai", "inbox")]


def test_search_by_code_or_words_with_or_without_diacritics(session: Session, people: dict[str, Actor]) -> None:
    birth = ticket(session, "Đăng ký khai sinh cho con thứ hai")
    marriage = ticket(session, "Trích lục kết hôn 100% bản sao")
    now = MONDAY_9 + dt.timedelta(hours=1)

    def search(text: str) -> list[str]:
        return codes(inbox_page(session, people["anh"], InboxQuery(search=text), now))

    assert search("khai sinh") == [birth.code]
    assert search("dang ky KHAI SINH") == [birth.code]
    assert search("Đăng Ký") == [birth.code]
    assert search(birth.code.lower()) == [birth.code]
    assert search("con thứ ba") == []  # every word must match
    assert search("100%") == [marriage.code]
    assert search("%") == [marriage.code]  # LIKE's wildcards are searched for as themselves
    assert search("_") == []


def test_channel_and_language_filters_and_paging(session: Session, people: dict[str, Actor]) -> None:
    made = [ticket(session, f"Câu hỏi số {i}", at=MONDAY_9 + dt.timedelta(minutes=i)) for i in range(7)]
    english = ticket(session, "Birth certificate", lang="en", channel="telegram", at=MONDAY_9 + dt.timedelta(hours=1))
    now = MONDAY_9 + dt.timedelta(hours=2)
    first = inbox_page(session, people["anh"], InboxQuery(per_page=3), now)
    third = inbox_page(session, people["anh"], InboxQuery(per_page=3, page=3), now)
    assert (first.total, first.pages) == (8, 3)
    assert codes(first) == [t.code for t in made[:3]]
    assert codes(third) == [t.code for t in made[6:]] + [english.code]
    assert codes(inbox_page(session, people["anh"], InboxQuery(lang="en"), now)) == [english.code]
    assert codes(inbox_page(session, people["anh"], InboxQuery(channel="telegram"), now)) == [english.code]
    with pytest.raises(Invalid, match="view"):
        inbox_page(session, people["anh"], InboxQuery(view="everything"), now)
    with pytest.raises(Invalid, match="page"):
        inbox_page(session, people["anh"], InboxQuery(page=0), now)


def test_new_hand_offs_show_above_the_deadline_order(session: Session, people: dict[str, Actor]) -> None:
    now = MONDAY_9 + dt.timedelta(hours=3)
    old = ticket(session, "Hỏi từ tuần trước", at=MONDAY_9 - dt.timedelta(days=3))
    taken = ticket(session, "Đã có người nhận", at=now - dt.timedelta(minutes=20))
    first = ticket(session, "Mới thứ nhất", at=now - dt.timedelta(minutes=30))
    second = ticket(session, "Mới thứ hai", at=now - dt.timedelta(minutes=5))
    ticket(session, "Phòng khác", department="dat-dai", at=now - dt.timedelta(minutes=1))
    tickets.claim(session, people["binh"], taken.code, now)
    session.commit()
    page = inbox_page(session, people["anh"], InboxQuery(), now)
    assert [r["code"] for r in page.arrivals] == [second.code, first.code]  # newest first, unassigned, ours
    assert codes(page)[0] == old.code  # the table keeps the deadline order
    assert [r["code"] for r in inbox_page(session, people["anh"], InboxQuery(view="unassigned"), now).arrivals] == [
        second.code,
        first.code,
    ]
    assert inbox_page(session, people["anh"], InboxQuery(view="mine"), now).arrivals == []
    assert inbox_page(session, people["anh"], InboxQuery(per_page=2, page=2), now).arrivals == []
    later = now + dt.timedelta(minutes=inbox.ARRIVAL_MINUTES - 10)  # the first one arrived too long ago
    assert [r["code"] for r in inbox_page(session, people["anh"], InboxQuery(), later).arrivals] == [second.code]


def test_due_states() -> None:
    now = MONDAY_9
    opened = Ticket(code="MC-X", status="new", deadline=add_working_hours(now, 0.5))
    assert inbox.due_state(opened, now)[0] == "soon"
    opened.deadline = add_working_hours(now, 3)
    assert inbox.due_state(opened, now) == ("ok", pytest.approx(3.0))
    opened.deadline = now - dt.timedelta(hours=1)
    assert inbox.due_state(opened, now) == ("missed", pytest.approx(-1.0))
    opened.paused_at = now
    assert inbox.due_state(opened, now) == ("paused", None)
    opened.status = "closed"
    assert inbox.due_state(opened, now) == ("done", None)


def test_unclaiming_gives_the_ticket_back_for_a_colleague(session: Session, people: dict[str, Actor]) -> None:
    held = ticket(session, "Khai sinh")
    now = MONDAY_9 + dt.timedelta(hours=1)
    tickets.claim(session, people["anh"], held.code, now)
    with pytest.raises(Conflict, match="held by anh"):
        tickets.release(session, people["binh"], held.code, now)
    tickets.release(session, people["anh"], held.code, now)
    session.commit()
    assert (held.status, held.assignee_id) == ("acknowledged", None)
    with pytest.raises(Conflict, match="held by nobody"):
        tickets.release(session, people["anh"], held.code, now)
    assert codes(inbox_page(session, people["binh"], InboxQuery(view="unassigned"), now)) == [held.code]
    tickets.claim(session, people["binh"], held.code, now)
    session.commit()
    assert held.assignee_id == people["binh"].user_id
    tickets.release(session, people["dung"], held.code, now)  # a supervisor may take it from a colleague
    session.commit()
    kinds = session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == held.id).order_by(TicketEvent.id))
    assert list(kinds) == ["created", "claimed", "released", "claimed", "released"]


def test_who_is_viewing(session: Session, people: dict[str, Actor]) -> None:
    open_one = ticket(session, "Khai sinh")
    an, binh = people["anh"], people["binh"]
    presence.mark_viewing(session, open_one.id, an.user_id, MONDAY_9)
    presence.mark_viewing(session, open_one.id, an.user_id, MONDAY_9 + dt.timedelta(seconds=3))  # the next beat
    presence.mark_viewing(session, open_one.id, binh.user_id, MONDAY_9 + dt.timedelta(seconds=5))
    session.commit()
    at = MONDAY_9 + dt.timedelta(seconds=10)
    assert presence.other_viewers(session, open_one.id, an.user_id, at) == ["binh"]
    assert presence.other_viewers(session, open_one.id, binh.user_id, at) == ["anh"]
    later = MONDAY_9 + dt.timedelta(seconds=5 + presence.VIEWING_SECONDS + 1)
    assert presence.other_viewers(session, open_one.id, an.user_id, later) == []  # binh's page went quiet
    presence.stop_viewing(session, open_one.id, an.user_id)
    assert presence.other_viewers(session, open_one.id, binh.user_id, at) == []


def test_a_form_key_acts_once_and_is_free_again_when_its_action_failed(
    session: Session, people: dict[str, Actor]
) -> None:
    key, user = new_submission_key(), people["anh"].user_id
    record_submission(session, key, user, MONDAY_9)
    with pytest.raises(AlreadySubmitted):
        record_submission(session, key, user, MONDAY_9)  # the second press, in the same transaction
    session.commit()
    with pytest.raises(AlreadySubmitted):
        record_submission(session, key, user, MONDAY_9)  # ... or in a later one
    session.rollback()
    other = new_submission_key()
    record_submission(session, other, user, MONDAY_9)
    session.rollback()  # the action failed: nothing of it stays, the key included
    record_submission(session, other, user, MONDAY_9)
    session.commit()
    assert session.scalar(select(FormSubmission.key).where(FormSubmission.key == other)) == other
    for bad in ("", "short", "has spaces in it!!", "x" * 65):
        with pytest.raises(Invalid, match="form key"):
            record_submission(session, bad, user, MONDAY_9)


def test_two_presses_at_once_act_once(settings: object, people: dict[str, Actor]) -> None:
    """Two transactions insert the same key concurrently: the database lets exactly one of them through."""
    key, user = new_submission_key(), people["anh"].user_id
    first, second = Session(get_engine()), Session(get_engine())
    try:
        record_submission(first, key, user, MONDAY_9)
        outcome: list[str] = []

        def press_again() -> None:
            try:
                record_submission(second, key, user, MONDAY_9)
                second.commit()
                outcome.append("acted")
            except AlreadySubmitted:
                second.rollback()
                outcome.append("refused")

        racer = threading.Thread(target=press_again)
        racer.start()
        racer.join(0.5)  # the second insert waits on the first one's uncommitted key
        first.commit()
        racer.join(10)
        assert outcome == ["refused"]
    finally:
        first.close()
        second.close()


def test_button_presses_read_as_words() -> None:
    assert pressed_label("[h]") == "👤 gặp cán bộ · talk to an official"
    assert pressed_label("[p:birth-registration]") == "chọn thủ tục · chose birth-registration"
    assert pressed_label("[r:MC-ABCDEF:4]") == "★★★★"
    assert pressed_label("[f:-]") == "👎"
    assert pressed_label("khai sinh [con]") is None
