"""Officials' workspace in the dashboard: the inbox and the ticket page that acts (claim, reply, transfer, close…).

Thin: every action is a helpdesk.tickets function (the same the admin API calls, with the same permissions and
audit events); pages are rendered here. Each action form carries the CSRF token and a one-time key: a second press
of the same form does nothing. dashboard.js refreshes the inbox and the conversation without reload and keeps the
"being viewed by" notice; without it the pages still work.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin_api.dashboard import (
    ENV,
    PREFIX,
    SECURITY_HEADERS,
    ActorDep,
    CsrfField,
    PageRoute,
    fragment,
    guard_form,
    render,
)
from bot.cards import render_card
from bot.history import conversation_log, last_message_id
from core.db import session_scope
from core.errors import Conflict, Invalid, NotFound
from helpdesk import inbox, presence, reply_templates, tickets
from helpdesk.accounts import Actor
from helpdesk.models import Department, Ticket, TicketEvent
from helpdesk.submissions import AlreadySubmitted, new_submission_key, record_submission
from knowledge.models import utcnow
from knowledge.service import procedure_card

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=PageRoute)

CodePath = Annotated[str, Path(max_length=40)]
SubmissionField = Annotated[str, Form(max_length=64)]
DELIVERY = {  # the outbox's record of a reply → (Vietnamese, English)
    "pending": ("Đang chờ gửi", "queued"),
    "sent": ("Đã gửi", "sent"),
    "failed": ("Gửi không được", "failed"),
    "shown": ("Đã hiện trong web chat", "shown in the web chat"),
}
# Events that repeat a message of the conversation (shown with the message itself) or only audit a refusal.
NOT_IN_CONVERSATION = {"replied", "citizen_message", "denied"}
EVENT_VI = {
    "created": "Tạo yêu cầu",
    "claimed": "Nhận xử lý",
    "released": "Trả về hộp chung",
    "transferred": "Chuyển phòng",
    "urgency": "Đổi mức độ",
    "closed": "Đóng yêu cầu",
    "reopened": "Mở lại",
    "breached": "Trễ hạn",
    "apology_sent": "Đã xin lỗi công dân",
    "supervisor_notified": "Đã báo giám sát",
    "rated": "Công dân đánh giá",
    "resumed": "Đồng hồ chạy lại",
}
ENV.globals.update(EVENT_VI=EVENT_VI)
ACTION_DONE = {
    "claim": ("Bạn đã nhận yêu cầu này.", "You hold this ticket now."),
    "release": ("Đã trả yêu cầu về hộp chung của phòng.", "Given back to the department's inbox."),
    "reply": ("Đã gửi trả lời cho công dân.", "Your reply is on its way to the citizen."),
    "note": ("Đã thêm ghi chú nội bộ.", "Internal note added."),
    "transfer": ("Đã chuyển yêu cầu.", "Ticket transferred."),
    "urgency": ("Đã đổi mức độ.", "Urgency changed."),
    "close": ("Đã đóng yêu cầu.", "Ticket closed."),
    "reopen": ("Đã mở lại yêu cầu.", "Ticket reopened."),
}


# -- the inbox ---------------------------------------------------------------------------------------------


def _inbox_query(
    view: str, search: str, channel: str | None, lang: str | None, department: str | None, page: int
) -> inbox.InboxQuery:
    return inbox.InboxQuery(
        view=view, search=search, channel=channel or None, lang=lang or None, department=department or None, page=page
    )


def _inbox_context(actor: Actor, query: inbox.InboxQuery) -> dict[str, Any]:
    """What the inbox page and its live part show."""
    now = utcnow()
    with session_scope() as session:
        found = inbox.inbox_page(session, actor, query, now)
        departments = _departments(session)
    department_name = dict(departments).get(found.department or "", "")
    if actor.role != "admin":
        departments = []  # only admins choose
    params = {
        "q": query.search,
        "channel": query.channel or "",
        "lang": query.lang or "",
        "department": query.department or "",
    }
    kept = {k: v for k, v in params.items() if v}

    def href(**change: Any) -> str:
        merged = {"view": query.view, **kept, **change}
        return f"{PREFIX}/inbox?" + urlencode({k: v for k, v in merged.items() if v not in ("", None, 1)})

    shown = [*found.arrivals, *found.rows]
    stamp_source = repr((found.counts, [(r["code"], r["status"], r["assignee"], r["due"]) for r in shown]))
    return {
        "query": query,
        "found": found,
        "views": inbox.VIEWS,
        "href": href,
        "departments": departments,
        "department_name": department_name,
        "live_url": f"{PREFIX}/inbox/live?" + urlencode({"view": query.view, **kept, "page": query.page}),
        "stamp": hashlib.blake2b(stamp_source.encode(), digest_size=8).hexdigest(),
        "now": now,
    }


@router.get("/inbox")
def inbox_view(
    actor: ActorDep,
    view: Annotated[str, Query(max_length=20)] = "open",
    q: Annotated[str, Query(max_length=200)] = "",
    channel: Annotated[str | None, Query(max_length=20)] = None,
    lang: Annotated[str | None, Query(max_length=8)] = None,
    department: Annotated[str | None, Query(max_length=80)] = None,
    page: Annotated[int, Query(ge=1, le=inbox.MAX_PAGE_NUMBER)] = 1,
) -> Response:
    """The department's tickets by view, soonest deadline first, with a count on each view's tab."""
    context = _inbox_context(actor, _inbox_query(view, q, channel, lang, department, page))
    return render("inbox.html", actor, title=("Hộp yêu cầu", "Inbox"), current="inbox", **context)


@router.get("/inbox/live")
def inbox_live(
    actor: ActorDep,
    view: Annotated[str, Query(max_length=20)] = "open",
    q: Annotated[str, Query(max_length=200)] = "",
    channel: Annotated[str | None, Query(max_length=20)] = None,
    lang: Annotated[str | None, Query(max_length=8)] = None,
    department: Annotated[str | None, Query(max_length=80)] = None,
    page: Annotated[int, Query(ge=1, le=inbox.MAX_PAGE_NUMBER)] = 1,
) -> Response:
    """The inbox's tabs and table alone, for dashboard.js to swap in when something changed."""
    context = _inbox_context(actor, _inbox_query(view, q, channel, lang, department, page))
    return fragment("_inbox_live.html", actor=actor, **context)


# -- one ticket --------------------------------------------------------------------------------------------


def _workspace(session: Session, actor: Actor, code: str, now: dt.datetime, template: int | None) -> dict[str, Any]:
    """Everything the ticket page shows: facts, the conversation with notes in order, who else is looking."""
    ticket, events, deliveries = tickets.detail(session, actor, code, now)
    names = tickets.usernames(session, {ticket.assignee_id} if ticket.assignee_id else set())
    facts = {
        **tickets.ticket_summary(ticket, now, names),
        "due": inbox.due_state(ticket, now),
        "reason": ticket.reason,
        "candidates": list(ticket.candidates or []),
        "procedure": ticket.procedure_slug,
        "ack_deadline": ticket.ack_deadline,
        "resolve_deadline": ticket.resolve_deadline,
        "first_response_at": ticket.first_response_at,
        "resolved_at": ticket.resolved_at,
        "first_response_hours": ticket.first_response_hours,
        "resolution_hours": ticket.resolution_hours,
        "apologies": ticket.apologies,
        "rating": ticket.rating,
        "held_by_me": ticket.assignee_id == actor.user_id,
        "deadline_at": ticket.deadline,
        "opened_at": ticket.created_at,
    }
    presence.mark_viewing(session, ticket.id, actor.user_id, now)
    messages = [
        {**m, "kind": "message", "delivery": _delivery(deliveries.get(m["id"]))}
        for m in conversation_log(session, ticket.conversation_id)
    ]
    marks = [
        {"kind": "event", "at": e.at, "event": e.kind, "actor": e.actor, "data": dict(e.data or {})}
        for e in events
        if e.kind not in NOT_IN_CONVERSATION
    ]
    conversation = sorted(messages + marks, key=lambda item: item["at"])
    templates = reply_templates.templates_for(session, actor, ticket.department) if ticket.department else []
    chosen = next((t for t in templates if t.id == template), None)
    return {
        "ticket": facts,
        "conversation": conversation,
        "history": [
            {"at": e.at, "kind": e.kind, "actor": e.actor, "department": e.department, "data": dict(e.data or {})}
            for e in events
        ],
        "viewers": presence.other_viewers(session, ticket.id, actor.user_id, now),
        "templates": [{"id": t.id, "title": t.title, "body": t.body} for t in templates],
        "template_body": chosen.body if chosen else None,
        "card_text": _card_text(session, ticket),
        "departments": [d for d in _departments(session) if d[0] != ticket.department],
        "stamp": _stamp(session, ticket),
        "submission": new_submission_key,
    }


def _delivery(state: str | None) -> dict[str, str] | None:
    """How far a reply got, as the outbox recorded it, with its labels."""
    if state not in DELIVERY:
        return None
    vi, en = DELIVERY[state]
    return {"key": state, "vi": vi, "en": en}


def _card_text(session: Session, ticket: Ticket) -> str:
    """The ticket's procedure card in the citizen's language, as an official may send it in one click."""
    if not ticket.procedure_slug:
        return ""
    try:
        return render_card(procedure_card(session, ticket.procedure_slug, ticket.lang), ticket.lang, "full").text
    except NotFound:  # the procedure was removed from the knowledge base since
        return ""


def _stamp(session: Session, ticket: Ticket) -> str:
    """Changes whenever the page would: a new event, a new message, a rating."""
    last_event = session.scalar(select(func.max(TicketEvent.id)).where(TicketEvent.ticket_id == ticket.id)) or 0
    source = (last_event, last_message_id(session, ticket.conversation_id), ticket.status, ticket.rating)
    return hashlib.blake2b(repr(source).encode(), digest_size=8).hexdigest()


def _departments(session: Session) -> list[tuple[str, str]]:
    return [tuple(row) for row in session.execute(select(Department.slug, Department.name).order_by(Department.slug))]


def _ticket_response(
    actor: Actor,
    code: str,
    *,
    status: int = 200,
    error: str | None = None,
    done: str | None = None,
    again: bool = False,
    draft: str = "",
    template: int | None = None,
) -> Response:
    now = utcnow()
    with session_scope() as session:
        context = _workspace(session, actor, code, now, template)
    facts = context["ticket"]
    return render(
        "ticket.html",
        actor,
        title=(f"Yêu cầu {facts['code']}", f"Ticket {facts['code']}"),
        status=status,
        current="inbox",
        error=error,
        done=ACTION_DONE.get(done or ""),
        again=again,
        draft=draft or context["template_body"] or "",
        **context,
    )


@router.get("/tickets/{code}")
def ticket_page(
    code: CodePath,
    actor: ActorDep,
    done: Annotated[str | None, Query(max_length=20)] = None,
    again: bool = False,
    template: Annotated[int | None, Query(ge=1)] = None,
    insert: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """One ticket: the conversation and notes in order, facts and deadlines, and every action an official takes."""
    if insert == "card":
        with session_scope() as session:
            ticket, _, _ = tickets.detail(session, actor, code, utcnow())
            card = _card_text(session, ticket)
        return _ticket_response(actor, code, draft=card)
    return _ticket_response(actor, code, done=done, again=again, template=template)


@router.get("/tickets/{code}/live")
def ticket_live(code: CodePath, actor: ActorDep) -> Response:
    """The ticket's facts and conversation alone, for dashboard.js to swap in when something changed."""
    now = utcnow()
    with session_scope() as session:
        context = _workspace(session, actor, code, now, None)
    return fragment("_ticket_live.html", actor=actor, **context)


@router.post("/tickets/{code}/presence")
def ticket_presence(request: Request, code: CodePath, actor: ActorDep) -> Response:
    """The page's heartbeat: note that this user is looking; answer who else is, and the page's stamp."""
    guard_form(request, None)  # the script sends the CSRF token in its header
    now = utcnow()
    with session_scope() as session:
        ticket = tickets.ticket_for(session, actor, code, "view", now)
        presence.mark_viewing(session, ticket.id, actor.user_id, now)
        body = {
            "viewers": presence.other_viewers(session, ticket.id, actor.user_id, now),
            "stamp": _stamp(session, ticket),
        }
    return JSONResponse(body, headers=SECURITY_HEADERS)


def _act(
    request: Request,
    actor: Actor,
    code: str,
    csrf: str,
    submission: str,
    action: str,
    do: Callable[[Session, dt.datetime], object],
    *,
    draft: str = "",
) -> Response:
    """Run one action once (the form's key), then back to the ticket; a refused action shows the page with why."""
    guard_form(request, csrf)
    now = utcnow()
    repeated = False
    try:
        with session_scope() as session:
            record_submission(session, submission, actor.user_id, now)
            do(session, now)
    except AlreadySubmitted:
        repeated = True
    except (Conflict, Invalid) as exc:
        status = 409 if isinstance(exc, Conflict) else 422
        return _ticket_response(actor, code, status=status, error=str(exc), draft=draft)
    query = {"done": action, **({"again": "true"} if repeated else {})}
    return RedirectResponse(f"{PREFIX}/tickets/{code}?{urlencode(query)}", status_code=303)


@router.post("/tickets/{code}/claim")
def claim(
    request: Request, code: CodePath, actor: ActorDep, csrf: CsrfField = "", submission: SubmissionField = ""
) -> Response:
    """Take the ticket: acknowledge it and become its owner (409 when a colleague was first)."""
    return _act(request, actor, code, csrf, submission, "claim", lambda s, now: tickets.claim(s, actor, code, now))


@router.post("/tickets/{code}/release")
def release(
    request: Request, code: CodePath, actor: ActorDep, csrf: CsrfField = "", submission: SubmissionField = ""
) -> Response:
    """Give the ticket back to the department's inbox."""
    return _act(request, actor, code, csrf, submission, "release", lambda s, now: tickets.release(s, actor, code, now))


@router.post("/tickets/{code}/reply")
def reply(
    request: Request,
    code: CodePath,
    actor: ActorDep,
    text: Annotated[str, Form(max_length=8000)] = "",
    await_citizen: Annotated[bool, Form()] = False,
    csrf: CsrfField = "",
    submission: SubmissionField = "",
) -> Response:
    """Answer the citizen in their own channel; "wait for the citizen" stops the clock until they write."""
    return _act(
        request,
        actor,
        code,
        csrf,
        submission,
        "reply",
        lambda s, now: tickets.reply(s, actor, code, text, now, await_citizen=await_citizen),
        draft=text,
    )


@router.post("/tickets/{code}/note")
def note(
    request: Request,
    code: CodePath,
    actor: ActorDep,
    text: Annotated[str, Form(max_length=tickets.MAX_NOTE_CHARS)] = "",
    csrf: CsrfField = "",
    submission: SubmissionField = "",
) -> Response:
    """An internal note, never shown to the citizen."""
    return _act(
        request, actor, code, csrf, submission, "note", lambda s, now: tickets.add_note(s, actor, code, text, now)
    )


@router.post("/tickets/{code}/transfer")
def transfer(
    request: Request,
    code: CodePath,
    actor: ActorDep,
    department: Annotated[str, Form(max_length=80)] = "",
    reason: Annotated[str, Form(max_length=tickets.MAX_REASON_CHARS)] = "",
    csrf: CsrfField = "",
    submission: SubmissionField = "",
) -> Response:
    """Hand the ticket to another department, with the reason."""
    return _act(
        request,
        actor,
        code,
        csrf,
        submission,
        "transfer",
        lambda s, now: tickets.transfer(s, actor, code, department, reason, now),
    )


@router.post("/tickets/{code}/urgency")
def urgency(
    request: Request,
    code: CodePath,
    actor: ActorDep,
    value: Annotated[str, Form(alias="urgency", max_length=10)] = "",
    csrf: CsrfField = "",
    submission: SubmissionField = "",
) -> Response:
    """Mark the ticket urgent or normal; its deadlines are recomputed."""
    return _act(
        request,
        actor,
        code,
        csrf,
        submission,
        "urgency",
        lambda s, now: tickets.set_urgency(s, actor, code, value, now),
    )


@router.post("/tickets/{code}/close")
def close(
    request: Request,
    code: CodePath,
    actor: ActorDep,
    reason: Annotated[str, Form(max_length=tickets.MAX_REASON_CHARS)] = "",
    csrf: CsrfField = "",
    submission: SubmissionField = "",
) -> Response:
    """Close the ticket."""
    return _act(
        request, actor, code, csrf, submission, "close", lambda s, now: tickets.close(s, actor, code, now, reason)
    )


@router.post("/tickets/{code}/reopen")
def reopen(
    request: Request,
    code: CodePath,
    actor: ActorDep,
    reason: Annotated[str, Form(max_length=tickets.MAX_REASON_CHARS)] = "",
    csrf: CsrfField = "",
    submission: SubmissionField = "",
) -> Response:
    """Open an answered or closed ticket again."""
    return _act(
        request, actor, code, csrf, submission, "reopen", lambda s, now: tickets.reopen_by(s, actor, code, now, reason)
    )
