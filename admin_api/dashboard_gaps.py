"""Dashboard pages of the improvement loop: the gap report, and proposing answers as FAQ entries.

Thin: helpdesk.improvement groups the questions and writes the drafts; here the pages and forms. The gap report is
for supervisors and admins; an official's reply is proposed from the ticket page by whoever may act on the ticket.
Every POST checks the CSRF token first and carries a once-only key: a second press only shows the result again.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from admin_api.dashboard import PREFIX, ActorDep, CsrfField, DateParam, PageRoute, guard_form, render
from admin_api.improvement_routes import current_retriever
from core.db import session_scope
from core.errors import Conflict, Invalid
from helpdesk import improvement
from helpdesk.accounts import Actor
from helpdesk.submissions import AlreadySubmitted, new_submission_key, record_submission
from helpdesk.tickets import ticket_for
from knowledge.models import utcnow
from knowledge.versions import open_draft

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=PageRoute)

CodePath = Annotated[str, Path(max_length=40)]
SlugField = Annotated[str, Form(max_length=120)]
SubmissionField = Annotated[str, Form(max_length=64)]
ToParam = Annotated[str | None, Query(alias="to", max_length=10)]
REASON_LABELS = {  # why a question is in the report → (Vietnamese, English)
    "declined": ("Ngoài phạm vi", "declined"),
    "escalated": ("Chuyển cán bộ", "escalated"),
    "clarify": ("Hỏi lại, độ tin cậy thấp", "clarify: low confidence"),
    "thumbs_down": ("👎 không hài lòng", "thumbs down"),
}
SHOWN_GROUPS = 100  # the most asked groups; the JSON API gives them all


# -- the gap report ------------------------------------------------------------------------------------------


@router.get("/kb/gaps")
def gaps_page(request: Request, actor: ActorDep, start: DateParam = None, end: ToParam = None) -> Response:
    """What the bot could not answer well in a period, grouped by meaning, with what to add to the knowledge base."""
    improvement.require_gap_reader(actor, "dashboard:gaps", utcnow())
    period = improvement.gap_period(start, end)
    retriever = current_retriever(request)
    with session_scope() as session:
        report = improvement.gaps_of_period(session, period, retriever)
    return render(
        "gaps.html",
        actor,
        title=("Câu hỏi chưa trả lời được", "Knowledge gaps"),
        current="kb",
        period=period,
        report=report,
        groups=report.groups[:SHOWN_GROUPS],
        hidden_groups=max(0, len(report.groups) - SHOWN_GROUPS),
        reason_labels=REASON_LABELS,
        submission=new_submission_key,
        max_days=improvement.MAX_GAP_DAYS,
    )


@router.post("/kb/gaps/faq")
def add_faq_variant(
    request: Request,
    actor: ActorDep,
    slug: SlugField = "",
    question: Annotated[list[str] | None, Form()] = None,
    csrf: CsrfField = "",
    submission: SubmissionField = "",
) -> Response:
    """Propose a group's questions as a new FAQ entry of a procedure: a draft for an admin to publish."""
    guard_form(request, csrf)
    now = utcnow()
    improvement.require_gap_reader(actor, "dashboard:gaps:faq", now)
    again = False
    try:
        with session_scope() as session:
            record_submission(session, submission, actor.user_id, now)
            improvement.propose_faq_variant(session, actor, slug, question or [], now)
    except AlreadySubmitted:  # a Conflict too: caught first
        again = True
    except (Conflict, Invalid) as exc:
        return _result(actor, slug, back=f"{PREFIX}/kb/gaps", error=exc)
    query = {"slug": slug.strip(), **({"again": "true"} if again else {})}
    return RedirectResponse(f"{PREFIX}/kb/gaps/proposed?{urlencode(query)}", status_code=303)


@router.get("/kb/gaps/proposed")
def variant_proposed(
    actor: ActorDep, slug: Annotated[str, Query(max_length=120)] = "", again: bool = False
) -> Response:
    """The draft a gap-report proposal wrote."""
    improvement.require_gap_reader(actor, "dashboard:gaps", utcnow())
    return _result(actor, slug, back=f"{PREFIX}/kb/gaps", again=again)


# -- from a ticket -------------------------------------------------------------------------------------------


@router.post("/tickets/{code}/propose-faq")
def propose_from_ticket(
    request: Request,
    code: CodePath,
    actor: ActorDep,
    message_id: Annotated[int, Form(ge=1)],
    slug: SlugField = "",
    csrf: CsrfField = "",
    submission: SubmissionField = "",
) -> Response:
    """Propose an official's reply on this ticket as an FAQ entry (the citizen's question, the reply's answer)."""
    guard_form(request, csrf)
    now = utcnow()
    back = f"{PREFIX}/tickets/{code}"
    again, written = False, slug.strip()
    try:
        with session_scope() as session:
            record_submission(session, submission, actor.user_id, now)
            version = improvement.propose_faq_from_ticket(session, actor, code, message_id, now, slug=slug or None)
            written = version.slug
    except AlreadySubmitted:  # a Conflict too: caught first
        again = True
    except (Conflict, Invalid) as exc:
        return _result(actor, written, back=back, error=exc)
    query = {**({"slug": written} if written else {}), **({"again": "true"} if again else {})}
    return RedirectResponse(f"{back}/propose-faq?{urlencode(query)}", status_code=303)


@router.get("/tickets/{code}/propose-faq")
def ticket_proposed(
    code: CodePath, actor: ActorDep, slug: Annotated[str, Query(max_length=120)] = "", again: bool = False
) -> Response:
    """The draft a proposal from this ticket wrote (for whoever may see the ticket)."""
    with session_scope() as session:
        ticket = ticket_for(session, actor, code, "view", utcnow())
        chosen = slug or ticket.procedure_slug or ""
        back = f"{PREFIX}/tickets/{ticket.code}"
    return _result(actor, chosen, back=back, again=again)


def _result(actor: Actor, slug: str, *, back: str, again: bool = False, error: Exception | None = None) -> Response:
    """The outcome of a proposal: the procedure's open draft with the FAQ entry it adds, or why nothing was saved."""
    draft: dict[str, Any] | None = None
    if error is None and slug:
        with session_scope() as session:
            version = open_draft(session, slug)
            if version is not None:
                draft = {
                    "slug": version.slug,
                    "author": version.author,
                    "reason": version.reason,
                    "created_at": version.created_at,
                    "faq": (version.record.get("faq") or [{}])[-1],
                }
    status = 200 if error is None else 409 if isinstance(error, Conflict) else 422
    return render(
        "faq_proposed.html",
        actor,
        title=("Đề xuất FAQ", "FAQ proposal"),
        status=status,
        current="kb",
        slug=slug,
        draft=draft,
        again=again,
        error=str(error) if error is not None else None,
        back=back,
    )
