"""Notifications for officials and supervisors, and the one-time codes that link their Telegram chats.

Every staff notification is sent here: a row in the dashboard at once, and for staff who linked a Telegram chat one
message through the outbox. Outside working hours a Telegram message waits for the next working moment, except a
missed deadline, which goes at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.errors import Invalid, NotFound
from helpdesk.accounts import Actor
from helpdesk.models import Notification, Ticket, User
from helpdesk.outbox import enqueue
from helpdesk.sla import VN, default_calendar

logger = logging.getLogger(__name__)

TELEGRAM = "telegram"
MAX_PAGE = 200
KIND_LABELS = {  # kind → (Vietnamese, English), for the dashboard and the Telegram message's title
    "new_ticket": ("Yêu cầu mới", "New ticket"),
    "citizen_answered": ("Người dân đã trả lời", "The citizen answered"),
    "deadline_soon": ("Sắp đến hạn", "Deadline within a working hour"),
    "breached": ("Trễ hạn", "Deadline missed"),
    "transferred": ("Yêu cầu chuyển đến", "Transferred to your department"),
}
KINDS = tuple(KIND_LABELS)
AT_ONCE = frozenset({"breached"})  # pushed on Telegram even outside working hours

Audience = Literal["department", "officials", "supervisors", "assignee_or_officials", "assignee_and_supervisors"]
AUDIENCES: dict[str, Audience] = {
    "new_ticket": "officials",  # they take tickets; supervisors hear of transfers and missed deadlines
    "transferred": "department",  # new to its department's officials, and a decision its supervisors should see
    "citizen_answered": "assignee_or_officials",
    "deadline_soon": "assignee_or_officials",
    "breached": "assignee_and_supervisors",
}

LINK_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: the code is typed from the screen
LINK_CODE_CHARS = 8
LINK_CODE_LIFETIME = dt.timedelta(minutes=15)
_LINK_CODE = re.compile(f"[{LINK_ALPHABET}]{{{LINK_CODE_CHARS}}}")
WRONG_CODE = "the link code is wrong or has expired; get a new one on the dashboard's notifications page"


# -- sending -----------------------------------------------------------------------------------------------


def notify(
    session: Session,
    ticket: Ticket,
    kind: str,
    text: str,
    now: dt.datetime,
    *,
    recipients: Audience | Iterable[int] | None = None,
    actor_id: int | None = None,
) -> list[int]:
    """Notify the kind's audience (or the given users) about the ticket, never the actor; returns the users told.

    Each recipient gets one dashboard notification now and, with a linked Telegram chat, one Telegram message:
    at once for a missed deadline, otherwise not before the next working moment.
    """
    if kind not in KIND_LABELS:
        raise ValueError(f"unknown notification kind {kind!r}; one of {', '.join(KINDS)}")
    audience = AUDIENCES[kind] if recipients is None else recipients
    users = [user for user in _recipients(session, ticket, audience) if user.id != actor_id]
    not_before = now if kind in AT_ONCE else (quiet_until(now) or now)
    message = telegram_text(kind, ticket.code, text)
    for user in users:
        session.add(Notification(user_id=user.id, ticket_id=ticket.id, kind=kind, text=text, created_at=now))
        if user.telegram_chat_id:
            enqueue(session, TELEGRAM, user.telegram_chat_id, message, [], None, not_before=not_before)
    return [user.id for user in users]


def quiet_until(now: dt.datetime) -> dt.datetime | None:
    """The next working moment when now is outside working hours; None during them."""
    following = default_calendar().add_working_hours(now, 0.0)  # zero hours: the clock's next running moment
    return following if following > now else None


def telegram_text(kind: str, code: str, text: str) -> str:
    """The Telegram message of a notification: what happened, and where the ticket's page is."""
    return f"🔔 {KIND_LABELS[kind][0]} · {code}\n{text}\nXem yêu cầu: /dashboard/tickets/{code}"


def _recipients(session: Session, ticket: Ticket, wanted: Audience | Iterable[int]) -> list[User]:
    """The active users an audience stands for, by id."""
    if not isinstance(wanted, str):
        ids = set(wanted)
        if not ids:
            return []
        return list(session.scalars(select(User).where(User.id.in_(ids), User.active).order_by(User.id)))
    assignee = _assignee(session, ticket)
    if wanted == "assignee_or_officials" and assignee is not None:
        return [assignee]
    if wanted == "assignee_and_supervisors":
        supervisors = _staff(session, ticket, ("supervisor",))
        return sorted({u.id: u for u in [*supervisors, *([assignee] if assignee else [])]}.values(), key=_by_id)
    if wanted == "department":
        return _staff(session, ticket, ("official", "supervisor"))
    if wanted == "supervisors":
        return _staff(session, ticket, ("supervisor",))
    # officials (also assignee_or_officials without an assignee): without officials, the supervisors are told
    return _staff(session, ticket, ("official",)) or _staff(session, ticket, ("supervisor",))


def _assignee(session: Session, ticket: Ticket) -> User | None:
    user = session.get(User, ticket.assignee_id) if ticket.assignee_id is not None else None
    return user if user is not None and user.active else None


def _staff(session: Session, ticket: Ticket, roles: Sequence[str]) -> list[User]:
    if ticket.department is None:
        return []
    stmt = select(User).where(User.department == ticket.department, User.role.in_(roles), User.active)
    return list(session.scalars(stmt.order_by(User.id)))


def _by_id(user: User) -> int:
    return user.id


# -- the events ----------------------------------------------------------------------------------------------


def local_time(moment: dt.datetime) -> str:
    """A moment as Vietnamese readers write it, in Vietnam time: 14:30 23/11/2026."""
    return moment.astimezone(VN).strftime("%H:%M %d/%m/%Y")


def _stage_vi(ticket: Ticket) -> str:
    return "trả lời" if ticket.status == "acknowledged" else "tiếp nhận"


def notify_new_ticket(session: Session, ticket: Ticket, now: dt.datetime) -> list[int]:
    """A new ticket: its department's officials (no citizen's words in it: a Telegram push leaves our servers)."""
    text = f"Yêu cầu mới {ticket.code} ở phòng {ticket.department}; hạn tiếp nhận {local_time(ticket.deadline)}."
    return notify(session, ticket, "new_ticket", text, now)


def notify_citizen_answered(session: Session, ticket: Ticket, now: dt.datetime) -> list[int]:
    """The citizen wrote on a held ticket: its holder, once until they read it (a burst of messages is one notice)."""
    unread = set(
        session.scalars(
            select(Notification.user_id).where(
                Notification.ticket_id == ticket.id,
                Notification.kind == "citizen_answered",
                Notification.read_at.is_(None),
            )
        )
    )
    wanted = [user.id for user in _recipients(session, ticket, AUDIENCES["citizen_answered"]) if user.id not in unread]
    text = f"Người dân đã nhắn thêm trong yêu cầu {ticket.code}; hạn {_stage_vi(ticket)} {local_time(ticket.deadline)}."
    return notify(session, ticket, "citizen_answered", text, now, recipients=wanted)


def notify_deadline_soon(session: Session, ticket: Ticket, now: dt.datetime) -> list[int]:
    """Less than a working hour to the running deadline: the holder, or the department's officials."""
    text = (
        f"Yêu cầu {ticket.code} sắp đến hạn {_stage_vi(ticket)} lúc {local_time(ticket.deadline)} "
        "(còn chưa đến 1 giờ làm việc)."
    )
    return notify(session, ticket, "deadline_soon", text, now)


def notify_breach(session: Session, ticket: Ticket, stage: str, expected: dt.datetime, now: dt.datetime) -> list[int]:
    """A missed deadline: the department's supervisors and the ticket's holder, at once whatever the hour."""
    text = (
        f"Yêu cầu {ticket.code} đã trễ hạn {'trả lời' if stage == 'resolve' else 'tiếp nhận'} "
        f"({local_time(ticket.deadline)}); người dân được hẹn có phản hồi trước {local_time(expected)}."
    )
    return notify(session, ticket, "breached", text, now)


def notify_transfer(
    session: Session, ticket: Ticket, source: str | None, reason: str, now: dt.datetime, *, actor_id: int | None
) -> list[int]:
    """A ticket transferred in: the new department's officials and supervisors, not whoever transferred it."""
    text = f"Yêu cầu {ticket.code} được chuyển đến phòng {ticket.department} từ {source or '(không rõ)'}: {reason}"
    return notify(session, ticket, "transferred", text, now, actor_id=actor_id)


# -- reading -----------------------------------------------------------------------------------------------


def notifications_of(
    session: Session, actor: Actor, *, unread_only: bool = False, limit: int = 50
) -> list[Notification]:
    """The actor's notifications, newest first."""
    stmt = select(Notification).where(Notification.user_id == actor.user_id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return list(session.scalars(stmt.order_by(Notification.id.desc()).limit(max(1, min(limit, MAX_PAGE)))))


def unread_count(session: Session, actor: Actor) -> int:
    """How many of the actor's notifications are unread."""
    stmt = select(func.count()).where(Notification.user_id == actor.user_id, Notification.read_at.is_(None))
    return session.scalar(stmt) or 0


def mark_read(session: Session, actor: Actor, notification_id: int | None, now: dt.datetime) -> int:
    """Mark one of the actor's notifications read, or all of them (None); returns how many changed."""
    stmt = update(Notification).where(Notification.user_id == actor.user_id, Notification.read_at.is_(None))
    if notification_id is not None:
        own = select(Notification.id).where(Notification.id == notification_id, Notification.user_id == actor.user_id)
        if session.scalar(own) is None:
            raise NotFound(f"you have no notification {notification_id}")
        stmt = stmt.where(Notification.id == notification_id)
    return session.execute(stmt.values(read_at=now).execution_options(synchronize_session=False)).rowcount


# -- linking a Telegram chat ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TelegramLink:
    """A user's Telegram link as the dashboard shows it: linked or not, and a link code still valid."""

    linked: bool
    code: str | None
    expires_at: dt.datetime | None


def user_of(session: Session, actor: Actor) -> User:
    """The actor's own user row."""
    user = session.get(User, actor.user_id)
    if user is None:
        raise NotFound(f"no user {actor.username!r}")
    return user


def telegram_link(user: User, now: dt.datetime) -> TelegramLink:
    """Whether the user's Telegram is linked, and the pending code unless it has expired."""
    expires = user.telegram_link_expires_at
    if user.telegram_link_code is None or expires is None or expires <= now:
        return TelegramLink(user.telegram_chat_id is not None, None, None)
    return TelegramLink(user.telegram_chat_id is not None, user.telegram_link_code, expires)


def new_link_code(session: Session, user: User, now: dt.datetime) -> str:
    """A fresh one-time code (replacing any earlier one) that links the Telegram chat sending `/link CODE`."""
    if not user.active:
        raise Invalid(f"user {user.username!r} is deactivated")
    while True:  # 32^8 codes: a clash with a pending one is a one-in-billions event, but cheap to rule out
        code = "".join(secrets.choice(LINK_ALPHABET) for _ in range(LINK_CODE_CHARS))
        if session.scalar(select(User.id).where(User.telegram_link_code == code)) is None:
            break
    user.telegram_link_code = code
    user.telegram_link_expires_at = now + LINK_CODE_LIFETIME
    session.flush()
    return code


def link_telegram(session: Session, code: str, chat_id: str, now: dt.datetime) -> User:
    """Link the chat to the account whose valid code it sent; the code is used up. Invalid for a wrong or old code.

    One chat belongs to one account: a chat linked before to another account moves to this one.
    """
    wanted = re.sub(r"[\s-]", "", code or "").upper()
    if not _LINK_CODE.fullmatch(wanted):
        raise Invalid(WRONG_CODE)
    user = session.scalar(select(User).where(User.telegram_link_code == wanted))
    if user is None or not user.active:
        raise Invalid(WRONG_CODE)
    # Using the code up first, conditionally: of two chats sending it at once exactly one links, and a refusal
    # leaves nothing changed.
    used = session.execute(
        update(User)
        .where(User.id == user.id, User.telegram_link_code == wanted, User.telegram_link_expires_at > now)
        .values(telegram_link_code=None, telegram_link_expires_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not used:
        raise Invalid(WRONG_CODE)
    session.execute(
        update(User)
        .where(User.telegram_chat_id == chat_id, User.id != user.id)
        .values(telegram_chat_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(telegram_chat_id=chat_id)
        .execution_options(synchronize_session=False)
    )
    session.refresh(user)
    logger.info("telegram notifications linked for user %s", user.username)  # never the chat id or the code
    return user


def unlink_telegram(session: Session, user: User) -> bool:
    """Stop Telegram notifications of the user (and forget a pending code); False when nothing was linked."""
    linked = user.telegram_chat_id is not None
    user.telegram_chat_id = None
    user.telegram_link_code = user.telegram_link_expires_at = None
    session.flush()
    if linked:
        logger.info("telegram notifications unlinked for user %s", user.username)
    return linked
