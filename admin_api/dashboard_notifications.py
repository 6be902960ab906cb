"""Dashboard pages: your notifications (mark read), the unread count for the header's badge, Telegram linking.

Every signed-in role has the page and sees only their own notifications. Each POST checks the CSRF token first and
carries a one-time key, so a double press acts once; then it goes back to the page (303).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from admin_api.dashboard import (
    PREFIX,
    SECURITY_HEADERS,
    ActorDep,
    CsrfField,
    LoginRequired,
    PageRoute,
    guard_form,
    page_actor,
    render,
)
from core.db import session_scope
from helpdesk import notifications
from helpdesk.accounts import Actor
from helpdesk.submissions import AlreadySubmitted, new_submission_key, record_submission
from helpdesk.tickets import codes_of
from knowledge.models import utcnow

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=PageRoute)

PAGE = f"{PREFIX}/notifications"
SHOWN = 100  # the newest ones; older notifications are still counted in the badge until read
SubmissionField = Annotated[str, Form(max_length=64)]


@router.get("/notifications")
def notifications_page(actor: ActorDep) -> Response:
    """Your notifications, newest first, unread highlighted; and whether your Telegram gets them."""
    now = utcnow()
    with session_scope() as session:
        rows = notifications.notifications_of(session, actor, limit=SHOWN)
        codes = codes_of(session, {n.ticket_id for n in rows if n.ticket_id})
        items = [
            {
                "id": n.id,
                "kind": n.kind,
                "label": notifications.KIND_LABELS.get(n.kind, (n.kind, n.kind)),
                "text": n.text,
                "code": codes.get(n.ticket_id) if n.ticket_id else None,
                "at": n.created_at,
                "read": n.read_at is not None,
            }
            for n in rows
        ]
        link = notifications.telegram_link(notifications.user_of(session, actor), now)
    return render(
        "notifications.html",
        actor,
        title=("Thông báo", "Notifications"),
        current="notifications",
        items=items,
        shown=SHOWN,
        link=link,
        submission=new_submission_key,
    )


@router.get("/notifications/unread")
def unread(request: Request) -> Response:
    """`{"unread": N}` for the header's badge; 401 (not a login page) when signed out, since a script asks."""
    try:
        actor = page_actor(request)
    except LoginRequired:
        return JSONResponse({"detail": "sign in to the dashboard"}, status_code=401, headers=SECURITY_HEADERS)
    with session_scope() as session:
        count = notifications.unread_count(session, actor)
    return JSONResponse({"unread": count}, headers=SECURITY_HEADERS)


def _once(
    request: Request, actor: Actor, csrf: str, submission: str, do: Callable[[Session, dt.datetime], object], back: str
) -> Response:
    """Check the form, run its action once (its key is stored in the same transaction), then back to the page."""
    guard_form(request, csrf)
    now = utcnow()
    try:
        with session_scope() as session:
            record_submission(session, submission, actor.user_id, now)
            do(session, now)
    except AlreadySubmitted:
        pass  # a second press of the same form: the first one did it
    return RedirectResponse(back, status_code=303)


@router.post("/notifications/read")
def mark_read(
    request: Request,
    actor: ActorDep,
    notification: Annotated[int | None, Form(ge=1)] = None,
    csrf: CsrfField = "",
    submission: SubmissionField = "",
) -> Response:
    """Mark one notification read, or all of them when the form names none."""
    return _once(
        request, actor, csrf, submission, lambda s, now: notifications.mark_read(s, actor, notification, now), PAGE
    )


@router.post("/notifications/telegram")
def telegram_code(
    request: Request, actor: ActorDep, csrf: CsrfField = "", submission: SubmissionField = ""
) -> Response:
    """A new one-time code to send to the bot as `/link CODE` (shown on the page for 15 minutes)."""
    return _once(
        request,
        actor,
        csrf,
        submission,
        lambda s, now: notifications.new_link_code(s, notifications.user_of(s, actor), now),
        f"{PAGE}#telegram",
    )


@router.post("/notifications/telegram/unlink")
def telegram_unlink(
    request: Request, actor: ActorDep, csrf: CsrfField = "", submission: SubmissionField = ""
) -> Response:
    """Stop sending notifications to your Telegram chat."""
    return _once(
        request,
        actor,
        csrf,
        submission,
        lambda s, _now: notifications.unlink_telegram(s, notifications.user_of(s, actor)),
        f"{PAGE}#telegram",
    )
