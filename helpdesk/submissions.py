"""Once-only form submissions: a form's key is stored with the action it carries, so a second press does nothing."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict, Invalid
from helpdesk.models import FormSubmission

KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class AlreadySubmitted(Conflict):
    """The form was sent before: its action is done, or being done by the first press."""


def new_submission_key() -> str:
    """A fresh key for one rendered form."""
    return secrets.token_urlsafe(18)


def record_submission(session: Session, key: str, user_id: int, now: dt.datetime) -> None:
    """Store the key in the caller's transaction, before the action; AlreadySubmitted when it was used already.

    Stored with the action, the key is free again if the action fails and the form can be sent once more. Of two
    presses arriving at once, the database lets exactly one insert the key; the other's transaction fails whole
    (no savepoint: SQLite's driver would commit one early), which is why this runs before anything else.
    """
    if not KEY_SHAPE.fullmatch(key or ""):
        raise Invalid("submission: missing or malformed form key; reload the page")
    if session.get(FormSubmission, key) is not None:
        raise AlreadySubmitted("this form was sent already")
    session.add(FormSubmission(key=key, user_id=user_id, at=now))
    try:
        session.flush()
    except IntegrityError:
        raise AlreadySubmitted("this form was sent already") from None


def first_submission(session: Session, key: str, user_id: int, now: dt.datetime) -> bool:
    """record_submission as yes / no, for a form whose second press only redirects: False when the key was used.

    In the rare race of two presses at the same instant the second one's transaction cannot go on: it raises
    AlreadySubmitted (a Conflict, shown as such) instead of answering False.
    """
    if not KEY_SHAPE.fullmatch(key or ""):
        raise Invalid("submission: missing or malformed form key; reload the page")
    if session.get(FormSubmission, key) is not None:
        return False
    record_submission(session, key, user_id, now)
    return True
