"""Reply templates (canned responses) of a department: kept by its supervisors and admins, inserted by officials."""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Invalid, NotFound, PermissionDenied
from core.text import fold
from helpdesk.accounts import Actor
from helpdesk.events import record_denial, record_event
from helpdesk.models import Department, ReplyTemplate
from knowledge.models import utcnow

logger = logging.getLogger(__name__)

MAX_TITLE = 120  # the column's length
MAX_BODY = 4000  # a chat message, not a letter: Telegram cuts a message at 4096 characters


# -- who may -----------------------------------------------------------------------------------------------


def may_read(actor: Actor, department: str | None) -> bool:
    """Admins read any department's templates; officials and supervisors their own department's."""
    return actor.role == "admin" or (department is not None and department == actor.department)


def may_edit(actor: Actor, department: str | None) -> bool:
    """Admins edit any department's templates; supervisors their own department's; officials none."""
    return actor.role == "admin" or (
        actor.role == "supervisor" and department is not None and department == actor.department
    )


def _refuse(actor: Actor, department: str | None, action: str, reason: str, now: dt.datetime) -> PermissionDenied:
    """Audit a refusal (in its own transaction) and return the error to raise."""
    record_denial(None, department, actor=actor.username, user_id=actor.user_id, action=action, reason=reason, now=now)
    return PermissionDenied(f"{reason}; you are {actor.role} of {actor.department or 'no department'}")


def check_edit(actor: Actor, department: str | None, action: str, now: dt.datetime) -> None:
    """Refuse (403, audited) who may not change this department's templates."""
    if may_edit(actor, department):
        return
    if actor.role == "official":
        raise _refuse(actor, department, action, "reply templates are kept by supervisors and admins", now)
    raise _refuse(actor, department, action, f"the reply templates of department {department} are not yours", now)


# -- reading -----------------------------------------------------------------------------------------------


def _title_key(template: ReplyTemplate) -> tuple[str, str, int]:
    """Alphabetical as a reader expects it, the same on every database: diacritics and case folded, then exact."""
    return fold(template.title), template.title, template.id


def templates_for(session: Session, actor: Actor, department: str | None) -> list[ReplyTemplate]:
    """The department's templates sorted by title: admins any department, officials and supervisors their own."""
    if not may_read(actor, department):
        raise _refuse(
            actor,
            department,
            "templates:read",
            f"the reply templates of department {department} are not yours",
            utcnow(),
        )
    if department is None:  # an admin on a ticket no department holds: nothing to insert
        return []
    rows = session.scalars(select(ReplyTemplate).where(ReplyTemplate.department == department))
    return sorted(rows, key=_title_key)


def template_to_edit(session: Session, actor: Actor, template_id: int, action: str, now: dt.datetime) -> ReplyTemplate:
    """The template with this id if the actor may change it (refusal audited); checked before anything is written."""
    template = session.get(ReplyTemplate, template_id)
    if template is None:
        raise NotFound(f"no reply template {template_id} (deleted meanwhile?)")
    check_edit(actor, template.department, action, now)
    return template


# -- changing ----------------------------------------------------------------------------------------------


def _clean_title(title: str) -> str:
    title = title.strip()
    if not title:
        raise Invalid("field 'title': required (1-120 characters)")
    if len(title) > MAX_TITLE:
        raise Invalid(f"field 'title': at most {MAX_TITLE} characters (this one has {len(title)})")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in title):  # a title is one line of visible text
        raise Invalid("field 'title': one line of text, without line breaks or invisible characters")
    return unicodedata.normalize("NFC", title)


def _clean_body(body: str) -> str:
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()  # browsers send a textarea's lines as CRLF
    if not body:
        raise Invalid(f"field 'body': required (1-{MAX_BODY} characters)")
    if len(body) > MAX_BODY:
        raise Invalid(f"field 'body': at most {MAX_BODY} characters (this one has {len(body)})")
    return unicodedata.normalize("NFC", body)


def save_template(
    session: Session,
    actor: Actor,
    department: str,
    title: str,
    body: str,
    now: dt.datetime,
    template_id: int | None = None,
) -> ReplyTemplate:
    """Create a department's template, or update the one with template_id; supervisors of it and admins only."""
    if template_id is not None:
        template = template_to_edit(session, actor, template_id, "templates:update", now)
        if department != template.department:
            raise Invalid(
                f"field 'department': template {template_id} belongs to {template.department}, not {department}"
            )
    else:
        template = None
        check_edit(actor, department, "templates:create", now)
        if session.scalar(select(Department.id).where(Department.slug == department)) is None:
            raise Invalid(f"field 'department': unknown department {department!r}")
    clean_title, clean_body = _clean_title(title), _clean_body(body)
    folded = fold(clean_title)
    for other in session.scalars(select(ReplyTemplate).where(ReplyTemplate.department == department)):
        if other is not template and fold(other.title) == folded:  # "Lệ phí" and "le phi" would confuse a reader
            raise Invalid(f"field 'title': department {department} already has a template titled {other.title!r}")
    if template is None:
        template = ReplyTemplate(department=department)
        session.add(template)
    template.title, template.body = clean_title, clean_body
    template.updated_by, template.updated_at = actor.username, now
    try:
        session.flush()
    except IntegrityError:  # the same title saved meanwhile by someone else: the caller's transaction rolls back
        raise Invalid(f"field 'title': department {department} already has a template titled {clean_title!r}") from None
    kind = "template_created" if template_id is None else "template_updated"
    event = record_event(
        session,
        None,
        kind,
        actor=actor.username,
        user_id=actor.user_id,
        now=now,
        template=template.id,
        title=clean_title,
    )
    event.department = department
    logger.info("reply template %s of %s saved by %s", template.id, department, actor.username)
    return template


def delete_template(session: Session, actor: Actor, template_id: int, now: dt.datetime) -> None:
    """Delete a template; supervisors of its department and admins only."""
    template = template_to_edit(session, actor, template_id, "templates:delete", now)
    department, title = template.department, template.title
    session.delete(template)
    session.flush()
    event = record_event(
        session,
        None,
        "template_deleted",
        actor=actor.username,
        user_id=actor.user_id,
        now=now,
        template=template_id,
        title=title,
    )
    event.department = department
    logger.info("reply template %s of %s deleted by %s", template_id, department, actor.username)
