"""The improvement loop over HTTP (Bearer token): the gap report, and an official's reply proposed as an FAQ entry.

Thin: helpdesk.improvement decides; this parses, checks the token and shapes the JSON. The gap report is for
supervisors and admins (city-wide: the knowledge base is one); a proposal is for staff who may act on the ticket.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from admin_api.auth_routes import current_actor
from core.db import session_scope
from core.errors import Conflict
from helpdesk import improvement
from helpdesk.accounts import Actor
from helpdesk.improvement import GapReport, Searcher
from knowledge.models import ProcedureVersion, utcnow

router = APIRouter(prefix="/api", tags=["improvement"])
ActorDep = Annotated[Actor, Depends(current_actor)]


def current_retriever(request: Request) -> Searcher:
    """The running app's retriever (its embedder groups the questions); 409 while the index is still loading."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        raise Conflict("the retrieval index is still loading; try again in a minute")
    return engine.asker.retriever


class ExampleOut(BaseModel):
    """A phrasing as citizens typed it, how often, and why it was a gap each time."""

    text: str
    count: int
    reasons: dict[str, int]


class NearestOut(BaseModel):
    """A procedure close to a group's questions."""

    slug: str
    title: str
    title_en: str
    score: float


class GroupOut(BaseModel):
    """Questions that mean the same."""

    count: int
    phrasings: int
    examples: list[ExampleOut]
    reasons: dict[str, int]
    central: str
    nearest: list[NearestOut]


class GapsOut(BaseModel):
    """The gap report of a period, groups most asked first."""

    from_: str = Field(alias="from")
    to: str
    questions: int
    asked: int
    left_out: int
    threshold: float
    groups: list[GroupOut]

    model_config = ConfigDict(populate_by_name=True)


class ProposeIn(BaseModel):
    """Which official reply of the ticket becomes the FAQ answer, and (when the ticket names none) the procedure."""

    model_config = ConfigDict(extra="forbid")

    message_id: Annotated[int, Field(ge=1)]
    slug: Annotated[str | None, Field(max_length=120)] = None


class DraftOut(BaseModel):
    """The draft written: an admin reviews and publishes it."""

    slug: str
    version: int
    state: str
    author: str
    reason: str
    faq: dict[str, Any]


def gaps_json(report: GapReport, period: Any) -> dict[str, Any]:
    """The report as plain data."""
    return {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "questions": report.questions,
        "asked": report.asked,
        "left_out": report.left_out,
        "threshold": report.threshold,
        "groups": [
            {
                "count": g.count,
                "phrasings": g.phrasings,
                "examples": [{"text": q.text, "count": q.count, "reasons": q.reasons} for q in g.examples],
                "reasons": g.reasons,
                "central": g.central,
                "nearest": g.nearest,
            }
            for g in report.groups
        ],
    }


@router.get("/kb/gaps", response_model=GapsOut, response_model_by_alias=True)
def gaps(
    request: Request,
    actor: ActorDep,
    start: Annotated[str | None, Query(alias="from", max_length=10, description="first day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, Query(alias="to", max_length=10, description="last day, included")] = None,
) -> dict[str, Any]:
    """Questions the bot declined, escalated, clarified or got a 👎 for, grouped by meaning (≤ 92 days)."""
    improvement.require_gap_reader(actor, "gaps", utcnow())
    period = improvement.gap_period(start, end)
    retriever = current_retriever(request)
    with session_scope() as session:
        report = improvement.gaps_of_period(session, period, retriever)
    return gaps_json(report, period)


def draft_json(version: ProcedureVersion) -> dict[str, Any]:
    """A draft as the API answers it, with the FAQ entry it added (the record's last)."""
    return {
        "slug": version.slug,
        "version": version.id,
        "state": version.state,
        "author": version.author,
        "reason": version.reason,
        "faq": (version.record.get("faq") or [{}])[-1],
    }


@router.post("/tickets/{code}/propose-faq", response_model=DraftOut, status_code=201)
def propose_faq(code: Annotated[str, Path(max_length=40)], body: ProposeIn, actor: ActorDep) -> dict[str, Any]:
    """Propose an official's reply on the ticket as an FAQ entry of its procedure: a draft an admin publishes."""
    now = utcnow()
    with session_scope() as session:
        version = improvement.propose_faq_from_ticket(session, actor, code, body.message_id, now, slug=body.slug)
        return draft_json(version)
