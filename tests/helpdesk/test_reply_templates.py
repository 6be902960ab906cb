"""Reply templates on a real database: who may read and change them, validation, order, uniqueness, the audit trail."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import get_engine, session_scope
from core.errors import Invalid, NotFound, PermissionDenied
from helpdesk.accounts import Actor, create_user
from helpdesk.models import Department, ReplyTemplate, TicketEvent
from helpdesk.reply_templates import delete_template, save_template, templates_for

NOW = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)
BODY = "Chào anh/chị, hồ sơ cần bản sao CCCD và tờ khai."


@dataclass
class People:
    """An official and a supervisor of each of two departments, and an admin."""

    official: Actor
    foreign_official: Actor
    supervisor: Actor
    foreign_supervisor: Actor
    admin: Actor


@pytest.fixture
def session(settings: object) -> Iterator[Session]:
    """A session the test commits itself (the shared fixture is one transaction)."""
    with Session(get_engine(), expire_on_commit=False) as own:
        yield own
        own.commit()


@pytest.fixture
def people(session: Session) -> People:
    session.add_all([Department(slug="civil-status", name="Tư pháp"), Department(slug="land", name="Đất đai")])
    session.flush()
    actors = {}
    for key, name, role, department in [
        ("official", "lan", "official", "civil-status"),
        ("foreign_official", "minh", "official", "land"),
        ("supervisor", "sam", "supervisor", "civil-status"),
        ("foreign_supervisor", "thu", "supervisor", "land"),
        ("admin", "root", "admin", None),
    ]:
        user = create_user(session, username=name, password="correct horse 1", role=role, department=department)
        session.flush()
        actors[key] = Actor.of(user)
    session.commit()  # a refusal is audited in a transaction of its own: nothing of ours may hold SQLite's lock
    return People(**actors)


def denials(session: Session) -> list[tuple[str, str | None, str]]:
    rows = session.scalars(select(TicketEvent).where(TicketEvent.kind == "denied").order_by(TicketEvent.id))
    return [(e.actor, e.department, e.data["action"]) for e in rows]


def titles(session: Session, actor: Actor, department: str | None) -> list[str]:
    return [t.title for t in templates_for(session, actor, department)]


def test_a_supervisor_keeps_templates_sorted_by_title_as_readers_sort(session: Session, people: People) -> None:
    for title in ("Lệ phí", "Giờ làm việc", "Đăng ký lại", "bổ sung hồ sơ", "Chào hỏi"):
        save_template(session, people.supervisor, "civil-status", title, BODY, NOW)
    save_template(session, people.foreign_supervisor, "land", "Đất", BODY, NOW)
    # diacritics and case folded: Đ sorts with D, not after Z as its code point would
    expected = ["bổ sung hồ sơ", "Chào hỏi", "Đăng ký lại", "Giờ làm việc", "Lệ phí"]
    assert titles(session, people.supervisor, "civil-status") == expected
    assert titles(session, people.official, "civil-status") == expected  # officials read (to insert) their own
    assert titles(session, people.admin, "land") == ["Đất"]
    template = templates_for(session, people.official, "civil-status")[0]
    assert (template.department, template.body, template.updated_by, template.updated_at) == (
        "civil-status",
        BODY,
        "sam",
        NOW,
    )


def test_an_update_changes_title_and_text_and_is_in_the_audit_trail(session: Session, people: People) -> None:
    created = save_template(session, people.supervisor, "civil-status", "Lệ phí", BODY, NOW)
    later = NOW + dt.timedelta(hours=1)
    updated = save_template(
        session, people.admin, "civil-status", "Lệ phí trích lục", "Miễn phí.", later, template_id=created.id
    )
    assert updated.id == created.id
    assert (updated.title, updated.body, updated.updated_by, updated.updated_at) == (
        "Lệ phí trích lục",
        "Miễn phí.",
        "root",
        later,
    )
    save_template(
        session,
        people.supervisor,
        "civil-status",
        "Lệ phí trích lục",
        "Same title, new text.",
        later,
        template_id=created.id,
    )  # keeping its own title is no clash
    delete_template(session, people.supervisor, created.id, later)
    assert session.scalar(select(ReplyTemplate.id)) is None
    trail = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.is_(None)).order_by(TicketEvent.id))
    assert [(e.kind, e.actor, e.department, e.data["template"]) for e in trail] == [
        ("template_created", "sam", "civil-status", created.id),
        ("template_updated", "root", "civil-status", created.id),
        ("template_updated", "sam", "civil-status", created.id),
        ("template_deleted", "sam", "civil-status", created.id),
    ]


def test_reading_is_for_the_own_department_or_admins_and_refusals_are_audited(session: Session, people: People) -> None:
    save_template(session, people.supervisor, "civil-status", "Lệ phí", BODY, NOW)
    session.commit()
    for actor in (people.foreign_official, people.foreign_supervisor):
        with pytest.raises(PermissionDenied, match="templates of department civil-status are not yours"):
            templates_for(session, actor, "civil-status")
    with pytest.raises(PermissionDenied):
        templates_for(session, people.official, None)  # a ticket of no department is nobody's but the admins'
    assert templates_for(session, people.admin, None) == []
    assert titles(session, people.admin, "civil-status") == ["Lệ phí"]
    assert denials(session) == [
        ("minh", "civil-status", "templates:read"),
        ("thu", "civil-status", "templates:read"),
        ("lan", None, "templates:read"),
    ]


def test_changing_is_for_the_departments_supervisors_and_admins(session: Session, people: People) -> None:
    own = save_template(session, people.supervisor, "civil-status", "Lệ phí", BODY, NOW)
    save_template(session, people.admin, "land", "Đất", BODY, NOW)  # admins: any department
    session.commit()
    refused = [
        (people.official, lambda a: save_template(session, a, "civil-status", "Mới", BODY, NOW)),
        (people.foreign_supervisor, lambda a: save_template(session, a, "civil-status", "Mới", BODY, NOW)),
        # the stored department decides, whatever department the form claims
        (people.foreign_supervisor, lambda a: save_template(session, a, "land", "Mới", BODY, NOW, template_id=own.id)),
        (people.foreign_supervisor, lambda a: delete_template(session, a, own.id, NOW)),
        (people.official, lambda a: delete_template(session, a, own.id, NOW)),
    ]
    for actor, action in refused:
        with pytest.raises(PermissionDenied) as refusal:
            action(actor)
        expected = "kept by supervisors and admins" if actor.role == "official" else "are not yours"
        assert expected in str(refusal.value)
    session.rollback()
    assert denials(session) == [
        ("lan", "civil-status", "templates:create"),
        ("thu", "civil-status", "templates:create"),
        ("thu", "civil-status", "templates:update"),
        ("thu", "civil-status", "templates:delete"),
        ("lan", "civil-status", "templates:delete"),
    ]
    assert session.get(ReplyTemplate, own.id).title == "Lệ phí"
    assert sorted(session.scalars(select(ReplyTemplate.title))) == ["Lệ phí", "Đất"]


@pytest.mark.parametrize(
    ("title", "body", "message"),
    [
        ("", BODY, "field 'title': required (1-120 characters)"),
        ("   ", BODY, "field 'title': required"),
        ("t" * 121, BODY, "field 'title': at most 120 characters (this one has 121)"),
        ("two\nlines", BODY, "field 'title': one line of text"),
        ("zero\u200bwidth", BODY, "field 'title': one line of text, without line breaks or invisible characters"),
        ("Lệ phí", "", "field 'body': required (1-4000 characters)"),
        ("Lệ phí", " \r\n ", "field 'body': required"),
        ("Lệ phí", "b" * 4001, "field 'body': at most 4000 characters (this one has 4001)"),
    ],
)
def test_bad_input_is_refused_clearly_and_nothing_is_stored(
    session: Session, people: People, title: str, body: str, message: str
) -> None:
    with pytest.raises(Invalid, match=re.escape(message)):
        save_template(session, people.supervisor, "civil-status", title, body, NOW)
    assert session.scalar(select(ReplyTemplate.id)) is None


def test_limits_are_inclusive_and_text_is_tidied(session: Session, people: People) -> None:
    longest = save_template(session, people.supervisor, "civil-status", " " + "t" * 120 + " ", "b" * 4000, NOW)
    assert (len(longest.title), len(longest.body)) == (120, 4000)
    lines = save_template(session, people.supervisor, "civil-status", "Lines", "\r\n one\r\ntwo\rthree \n", NOW)
    assert lines.body == "one\ntwo\nthree"  # a browser's CRLF kept as plain line breaks, outer blanks dropped


def test_an_unknown_department_or_template_is_refused(session: Session, people: People) -> None:
    with pytest.raises(Invalid, match="field 'department': unknown department 'nowhere'"):
        save_template(session, people.admin, "nowhere", "Lệ phí", BODY, NOW)
    with pytest.raises(NotFound, match="no reply template 999"):
        save_template(session, people.admin, "land", "Lệ phí", BODY, NOW, template_id=999)
    with pytest.raises(NotFound, match="no reply template 999"):
        delete_template(session, people.admin, 999, NOW)
    own = save_template(session, people.admin, "land", "Lệ phí", BODY, NOW)
    with pytest.raises(Invalid, match="template .* belongs to land, not civil-status"):
        save_template(session, people.admin, "civil-status", "Lệ phí", BODY, NOW, template_id=own.id)


def test_a_title_is_unique_in_its_department_whatever_its_case_or_diacritics(session: Session, people: People) -> None:
    first = save_template(session, people.supervisor, "civil-status", "Lệ phí", BODY, NOW)
    other = save_template(session, people.supervisor, "civil-status", "Giờ làm việc", BODY, NOW)
    for clash in ("Lệ phí", "lệ PHÍ", "Le phi"):
        with pytest.raises(Invalid, match="department civil-status already has a template titled 'Lệ phí'"):
            save_template(session, people.supervisor, "civil-status", clash, BODY, NOW)
    with pytest.raises(Invalid, match="already has a template titled 'Lệ phí'"):
        save_template(session, people.supervisor, "civil-status", "Lệ phí", BODY, NOW, template_id=other.id)
    assert save_template(session, people.foreign_supervisor, "land", "Lệ phí", BODY, NOW).department == "land"
    assert session.get(ReplyTemplate, first.id).title == "Lệ phí"


def test_the_same_title_saved_twice_at_once_is_stored_once(session: Session, people: People) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create() -> None:
        barrier.wait()
        try:
            with session_scope() as own:
                save_template(own, people.supervisor, "civil-status", "Lệ phí", BODY, NOW)
            outcomes.append("saved")
        except Invalid as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == [
        "field 'title': department civil-status already has a template titled 'Lệ phí'",
        "saved",
    ]
    assert list(session.scalars(select(ReplyTemplate.title))) == ["Lệ phí"]
