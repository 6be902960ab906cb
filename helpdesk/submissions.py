"""Once-only form submissions: a form's key is stored with the action it carries, so a second press does nothing."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Invalid
from helpdesk.models import FormSubmission

KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_submission_key() -> str:
    """A fresh key for one rendered form."""
    return secrets.token_urlsafe(18)


def first_submission(session: Session, key: str, user_id: int, now: dt.datetime) -> bool:
    """Record the key in the caller's transaction; False when it was used already (a double press, a resend).

    The key is stored in the same transaction as the action: if the action fails, the key is free again and the
    form can be sent once more. Of two presses arriving at once, the database lets exactly one insert the key.
    """
    if not KEY_SHAPE.fullmatch(key or ""):
        raise Invalid("submission: missing or malformed form key; reload the page")
    if session.get(FormSubmission, key) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(FormSubmission(key=key, user_id=user_id, at=now))
    except IntegrityError:
        return False
    return True
