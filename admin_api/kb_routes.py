"""Knowledge-base admin API: read, draft, publish, retire, roll back, import, export, preview — thin over
knowledge.versions (supervisors propose, admins publish; every staff member reads).

Optimistic concurrency: a procedure's answer carries `ETag: "<revision>"`; PUT needs `If-Match` with it, and a
stale one is refused with 409 so that nobody overwrites a change they have not seen.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from admin_api.auth_routes import current_actor
from core.db import session_scope
from core.errors import Conflict, Invalid, NotFound, PermissionDenied
from helpdesk.accounts import Actor
from helpdesk.sla import VN
from knowledge import io as kb_io
from knowledge import versions
from knowledge.models import Procedure, ProcedureVersion, utcnow
from knowledge.service import export_procedures, validate_records
from retrieval.preview import preview_ask

router = APIRouter(prefix="/api/kb", tags=["knowledge base"])
ActorDep = Annotated[Actor, Depends(current_actor)]
STAFF = Depends(current_actor)  # reading needs a signed-in staff member of any role
MAX_IMPORT_BYTES = 900_000  # under the app's body limit of 1 MB
PROBLEMS = {404: {"description": "Not found"}, 403: {"description": "Not allowed"}, 409: {"description": "Conflict"}}


class Strict(BaseModel):
    """Request bodies refuse unknown fields."""

    model_config = ConfigDict(extra="forbid")


class RecordIn(Strict):
    """A procedure record (the import/export layout, plus status and successor) and why it changes."""

    record: dict[str, Any]
    reason: Annotated[str, Field(max_length=versions.MAX_REASON)] = ""
    publish: bool = Field(False, description="admins: publish at once instead of leaving a draft")


class ReasonIn(Strict):
    """Why."""

    reason: Annotated[str, Field(max_length=versions.MAX_REASON)] = ""


class RetireIn(ReasonIn):
    """Retire, naming the procedure that replaces it (if any)."""

    successor: Annotated[str | None, Field(max_length=120)] = None


class RollbackIn(ReasonIn):
    """Publish an earlier published version again."""

    version: Annotated[int, Field(ge=0)]


class PreviewIn(Strict):
    """A question asked as if drafts were published."""

    question: Annotated[str, Field(min_length=1, max_length=1000)]
    slugs: list[Annotated[str, Field(max_length=120)]] | None = Field(
        None, description="whose drafts to put in place; default: every open draft"
    )
    lang: Annotated[str | None, Field(max_length=8)] = None


def _summary(proc: Procedure) -> dict[str, Any]:
    vi = proc.text("vi")
    return {
        "slug": proc.slug,
        "code": proc.code,
        "title": vi.title if vi else proc.slug,
        "category": proc.category,
        "origin": proc.origin,
        "status": proc.status,
        "successor": proc.successor_slug,
        "revision": proc.revision,
        "last_verified": proc.last_verified.isoformat() if proc.last_verified else None,
        "updated_at": proc.updated_at.isoformat() if proc.updated_at else None,
    }


def _version(v: ProcedureVersion, *, record: bool = False) -> dict[str, Any]:
    out = {
        "id": v.id,
        "slug": v.slug,
        "number": v.number,
        "state": v.state,
        "base_revision": v.base_revision,
        "author": v.author,
        "reason": v.reason,
        "created_at": v.created_at.isoformat(),
        "published_by": v.published_by,
        "published_at": v.published_at.isoformat() if v.published_at else None,
        "diff": v.diff,
    }
    if record:
        out["record"] = v.record
    return out


def _detail(proc: Procedure, draft: ProcedureVersion | None) -> JSONResponse:
    body = {
        **_summary(proc),
        "record": versions.live_record(proc),
        "draft": _version(draft, record=True) if draft else None,
    }
    return JSONResponse(body, headers={"ETag": f'"{proc.revision}"'})


def _revision(if_match: str | None) -> int | None:
    """The revision an If-Match header names ("3", 3 or W/"3")."""
    if if_match is None:
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise Invalid(f"If-Match: {if_match!r} is not a revision; send the ETag the procedure came with")
    return int(value)


@router.get("/procedures", dependencies=[STAFF])
def list_procedures(
    q: Annotated[str, Query(max_length=200)] = "",
    category: Annotated[str | None, Query(max_length=200)] = None,
    origin: Annotated[str | None, Query(pattern="^(curated|national|admin)$")] = None,
    status: Annotated[str | None, Query(pattern="^(published|retired)$")] = None,
    stale_days: Annotated[int | None, Query(ge=0, le=36_500, description="not verified for this many days")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """Procedures by slug, code or title words, with filters; staff of every role read."""
    before = dt.datetime.now(VN).date() - dt.timedelta(days=stale_days) if stale_days is not None else None
    with session_scope() as session:
        page, total = versions.search_procedures(
            session,
            search=q,
            category=category,
            origin=origin,
            status=status,
            verified_before=before,
            limit=limit,
            offset=offset,
        )
        return {"data": [_summary(p) for p in page], "count": total, "limit": limit, "offset": offset}


@router.get("/procedures/{slug}", responses=PROBLEMS, dependencies=[STAFF])
def read_procedure(slug: str) -> JSONResponse:
    """One procedure as published, its open draft, and its revision as the ETag."""
    with session_scope() as session:
        return _detail(_existing(session, slug), versions.open_draft(session, slug))


@router.post("/procedures", status_code=201, responses=PROBLEMS)
def create_procedure(body: RecordIn, actor: ActorDep) -> JSONResponse:
    """A new procedure: a draft (supervisors, admins), or published at once (admins, `publish: true`)."""
    now = utcnow()
    with session_scope() as session:
        slug = body.record.get("slug")
        if isinstance(slug, str) and versions.get_live(session, slug) is not None:
            raise Conflict(f"field 'slug': procedure {slug!r} exists already; edit it instead")
        return _save(session, actor, body, None, 0, now, status=201)


@router.put("/procedures/{slug}", responses={**PROBLEMS, 428: {"description": "If-Match missing"}})
def update_procedure(
    slug: str, body: RecordIn, actor: ActorDep, if_match: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """Change a procedure: a draft on top of the revision named by If-Match (409 when stale), or published."""
    if if_match is None:
        return JSONResponse({"detail": "If-Match: send the ETag the procedure came with"}, status_code=428)
    now = utcnow()
    with session_scope() as session:
        _existing(session, slug)
        return _save(session, actor, body, slug, _revision(if_match), now)


def _save(
    session: Any,
    actor: Actor,
    body: RecordIn,
    slug: str | None,
    if_match: int | None,
    now: dt.datetime,
    status: int = 200,
) -> JSONResponse:
    common = {"author": actor.username, "role": actor.role, "reason": body.reason, "now": now, "if_match": if_match}
    if body.publish:
        proc = versions.save_and_publish(session, body.record, slug=slug, **common)
        draft = None
    else:
        draft = versions.save_draft(session, body.record, slug=slug, **common)
        proc = versions.get_live(session, draft.slug)
    if proc is None:  # a new procedure's first draft: nothing is published yet
        return JSONResponse(
            {"slug": draft.slug, "revision": 0, "draft": _version(draft, record=True)}, status_code=status
        )
    response = _detail(proc, draft or versions.open_draft(session, proc.slug))
    response.status_code = status
    return response


@router.post("/procedures/{slug}/publish", responses=PROBLEMS)
def publish_procedure(slug: str, actor: ActorDep, if_match: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Publish the open draft (admins): the bot answers from it within seconds."""
    with session_scope() as session:
        proc = versions.publish(
            session, slug, publisher=actor.username, role=actor.role, now=utcnow(), if_match=_revision(if_match)
        )
        return _detail(proc, None)


@router.delete("/procedures/{slug}/draft", responses=PROBLEMS)
def discard_draft(slug: str, actor: ActorDep) -> dict[str, Any]:
    """Drop the open draft (it stays in the history as discarded)."""
    with session_scope() as session:
        return _version(versions.discard_draft(session, slug, role=actor.role))


@router.post("/procedures/{slug}/retire", responses=PROBLEMS)
def retire_procedure(
    slug: str, body: RetireIn, actor: ActorDep, if_match: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """Stop answering with the procedure (admins); a successor is offered in its place."""
    with session_scope() as session:
        proc = versions.retire(
            session,
            slug,
            author=actor.username,
            role=actor.role,
            reason=body.reason,
            now=utcnow(),
            successor=body.successor,
            if_match=_revision(if_match),
        )
        return _detail(proc, None)


@router.post("/procedures/{slug}/restore", responses=PROBLEMS)
def restore_procedure(slug: str, body: ReasonIn, actor: ActorDep) -> JSONResponse:
    """Answer with a retired procedure again (admins)."""
    with session_scope() as session:
        proc = versions.restore(session, slug, author=actor.username, role=actor.role, reason=body.reason, now=utcnow())
        return _detail(proc, None)


@router.post("/procedures/{slug}/verify", responses=PROBLEMS)
def verify_procedure(slug: str, actor: ActorDep) -> JSONResponse:
    """Mark the content checked against the official source today (admins)."""
    now = utcnow()
    with session_scope() as session:
        proc = versions.verify(
            session, slug, author=actor.username, role=actor.role, today=now.astimezone(VN).date(), now=now
        )
        return _detail(proc, None)


@router.get("/procedures/{slug}/history", responses=PROBLEMS, dependencies=[STAFF])
def procedure_history(slug: str) -> list[dict[str, Any]]:
    """Every version of the procedure, newest first, each with author, time, reason and field-level diff."""
    with session_scope() as session:
        found = versions.history(session, slug)
        if not found and versions.get_live(session, slug) is None:
            _existing(session, slug)
        return [_version(v, record=True) for v in found]


@router.post("/procedures/{slug}/rollback", responses=PROBLEMS)
def rollback_procedure(slug: str, body: RollbackIn, actor: ActorDep) -> JSONResponse:
    """Publish an earlier version's content again, as a new version (admins)."""
    with session_scope() as session:
        proc = versions.rollback(
            session, slug, body.version, author=actor.username, role=actor.role, reason=body.reason, now=utcnow()
        )
        return _detail(proc, None)


@router.get("/drafts", dependencies=[STAFF])
def drafts() -> list[dict[str, Any]]:
    """Every draft waiting for an admin, oldest first."""
    with session_scope() as session:
        return [_version(v) for v in versions.open_drafts(session)]


@router.get("/changes", dependencies=[STAFF])
def changes(
    since: Annotated[dt.date | None, Query(description="published on or after this day")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """What changed in the knowledge base, newest first (every staff role)."""
    start = dt.datetime.combine(since, dt.time(), tzinfo=VN) if since else None
    with session_scope() as session:
        return [_version(v) for v in versions.recent_changes(session, since=start, limit=limit)]


@router.get("/faq", dependencies=[STAFF])
def faq(
    q: Annotated[str, Query(max_length=200)] = "",
    procedure: Annotated[str | None, Query(max_length=120)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """FAQ entries whose questions hold the words (with or without diacritics), or of one procedure."""
    with session_scope() as session:
        return [
            {
                "id": e.id,
                "lang": e.lang,
                "questions": e.questions,
                "answer": e.answer,
                "source": e.source,
                "procedures": [p.slug for p in e.procedures],
            }
            for e in versions.faq_entries(session, search=q, slug=procedure, limit=limit)
        ]


@router.post("/import", responses=PROBLEMS)
async def import_records(
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="YAML, JSON, JSON Lines or CSV, as `motcua kb import` reads")],
    reason: Annotated[str, Query(max_length=versions.MAX_REASON)] = "",
    publish: bool = False,
) -> dict[str, Any]:
    """Many procedures at once, all or nothing: every error is listed and nothing changes when one is bad."""
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise Invalid(f"file: larger than {MAX_IMPORT_BYTES} bytes; split it")
    name = Path(file.filename or "upload.yaml").name
    with tempfile.TemporaryDirectory(prefix="motcua-import-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        records = validate_records(kb_io.read_records(path), name)
    now, why = utcnow(), reason or f"import {name}"
    with session_scope() as session:
        done = []
        for record in records:
            raw = record.model_dump(mode="json", exclude_none=True)
            proc = versions.get_live(session, record.slug)
            common = {"author": actor.username, "role": actor.role, "reason": why, "now": now, "slug": record.slug}
            if publish:
                versions.save_and_publish(session, raw, **common)
            else:
                versions.save_draft(session, {**(versions.live_record(proc) if proc else {}), **raw}, **common)
            done.append(record.slug)
    return {"procedures": done, "published": publish, "count": len(done)}


@router.get("/export")
def export_records(
    actor: ActorDep,
    format: Annotated[str, Query(pattern="^(yaml|json|jsonl|csv)$")] = "yaml",  # noqa: A002 - the API's word
    origin: Annotated[str | None, Query(pattern="^(curated|national|admin)$")] = None,
) -> Response:
    """Every procedure (optionally of one origin) as a file the import reads back."""
    if actor.role not in versions.PROPOSERS:
        raise PermissionDenied("exports are for supervisors and admins")
    with tempfile.TemporaryDirectory(prefix="motcua-export-") as tmp:
        path = Path(tmp) / f"knowledge.{format}"
        with session_scope() as session:
            export_procedures(session, path, format, origin=origin)
        body = path.read_bytes()
    media = {"yaml": "application/yaml", "json": "application/json", "jsonl": "application/jsonl", "csv": "text/csv"}
    return Response(
        body,
        media_type=media[format],
        headers={"Content-Disposition": f'attachment; filename="knowledge.{format}"'},
    )


@router.post("/preview-ask")
def preview(body: PreviewIn, request: Request, actor: ActorDep) -> dict[str, Any]:
    """Answer a question as if the drafts were published (supervisors and admins); nothing is saved."""
    if actor.role not in versions.PROPOSERS:
        raise PermissionDenied("previews are for supervisors and admins")
    embedder = request.app.state.engine.asker.retriever.embedder  # the running model: no second copy loaded
    with session_scope() as session:
        found = preview_ask(session, body.question, embedder, slugs=body.slugs, lang=body.lang)
        return {**found.result.to_json(), "answer": found.card, "drafts": found.drafts}


def _existing(session: Any, slug: str) -> Procedure:
    proc = versions.get_live(session, slug)
    if proc is None:
        raise NotFound(f"no procedure with slug {slug!r}")
    return proc
