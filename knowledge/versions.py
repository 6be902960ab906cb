"""Keeping the knowledge base right while it runs: drafts, publication, history, roll-back, retirement, verification.

Every change of a procedure is a version: a draft (supervisors propose, admins too) until an admin publishes it;
publishing writes the whole record to the live tables in one transaction and counts the procedure's revision up,
which every running process notices (retrieval.live) and answers from within seconds. A version holds the whole
record, so any earlier one can be published again (a roll-back is a new version with the old content). Edits name
the revision they started from (If-Match): a stale one is refused (409) rather than silently overwriting.

Callers check who may do what with the functions below (`may_propose`, `may_publish`); services only flush.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from core.errors import Conflict, Invalid, NotFound, PermissionDenied
from core.text import fold
from knowledge.models import TEXT_FIELDS, FaqEntry, Procedure, ProcedureText, ProcedureVersion, faq_procedures
from knowledge.schemas import ProcedureIn
from knowledge.service import MAX_ERRORS_SHOWN, procedure_record

DRAFT, PUBLISHED, SUPERSEDED, DISCARDED = "draft", "published", "superseded", "discarded"
ACTIVE, RETIRED = "published", "retired"
MAX_REASON = 1000
PROPOSERS = ("supervisor", "admin")


def may_propose(role: str) -> bool:
    """Supervisors and admins write drafts."""
    return role in PROPOSERS


def may_publish(role: str) -> bool:
    """Only admins publish (and roll back, retire, restore, verify)."""
    return role == "admin"


def require(role: str, action: str) -> None:
    """Refuse an action the role may not take."""
    allowed = may_publish(role) if action == "publish" else may_propose(role)
    if not allowed:
        who = "admins" if action == "publish" else "supervisors and admins"
        raise PermissionDenied(f"only {who} may {action} knowledge-base changes; you are {role}")


@dataclass(frozen=True)
class Draft:
    """A validated record, as a draft will hold it."""

    record: dict[str, Any]
    slug: str


# -- records -----------------------------------------------------------------------------------------------


def live_record(proc: Procedure) -> dict[str, Any]:
    """The procedure as published now, in the version layout: the import record plus status and successor."""
    return {**procedure_record(proc), "status": proc.status, "successor": proc.successor_slug}


def validated(raw: dict[str, Any], *, slug: str | None = None) -> Draft:
    """The record checked field by field (one Invalid naming every bad field), status and successor included."""
    raw = dict(raw)
    status = raw.pop("status", ACTIVE) or ACTIVE
    successor = raw.pop("successor", None) or None
    if slug is not None and raw.get("slug", slug) != slug:
        raise Invalid(f"field 'slug': the record is {raw.get('slug')!r}, the address names {slug!r}")
    raw.setdefault("slug", slug)
    try:
        record = ProcedureIn.model_validate(raw)
    except ValidationError as exc:
        problems = [f"field {'.'.join(str(p) for p in err['loc']) or 'record'!r}: {err['msg']}" for err in exc.errors()]
        shown = problems[:MAX_ERRORS_SHOWN]
        more = f"; … and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise Invalid(f"{len(problems)} error(s), nothing saved: " + "; ".join(shown) + more) from None
    if status not in (ACTIVE, RETIRED):
        raise Invalid(f"field 'status': {status!r}; one of {ACTIVE}, {RETIRED}")
    if successor == record.slug:
        raise Invalid("field 'successor': a procedure cannot succeed itself")
    plain = record.model_dump(mode="json", exclude_none=True)
    return Draft({**plain, "status": status, "successor": successor}, record.slug)


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """The fields that differ, flattened ('vi.fees', 'faq'), each with its value before and after."""
    old, new = _flat(before or {}), _flat(after)
    return [
        {"field": name, "before": old.get(name), "after": new.get(name)}
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                if item not in ("", [], None):
                    flat[f"{key}.{inner}"] = item
        elif value not in ("", [], None):
            flat[key] = value
    return flat


# -- drafts --------------------------------------------------------------------------------------------------


def get_live(session: Session, slug: str) -> Procedure | None:
    """The procedure with this slug, if it exists (published or retired)."""
    return session.scalar(select(Procedure).where(Procedure.slug == slug))


def save_draft(
    session: Session,
    raw: dict[str, Any],
    *,
    author: str,
    role: str,
    reason: str,
    now: dt.datetime,
    slug: str | None = None,
    if_match: int | None = None,
    supersede: bool = True,
) -> ProcedureVersion:
    """Store a proposed change as the procedure's open draft (an earlier open draft is superseded).

    `if_match` is the revision the author edited; when the procedure was published since, the draft is refused
    (409) so that nobody overwrites a change they did not see. A new procedure has revision 0. With
    `supersede=False` (a change published at once) a waiting draft is left as it is: its publication will then
    ask for it to be redone on top of the new revision rather than it silently disappearing.
    """
    require(role, "propose")
    draft = validated(raw, slug=slug)
    proc = get_live(session, draft.slug)
    revision = proc.revision if proc is not None else 0
    if if_match is not None and if_match != revision:
        raise Conflict(
            f"procedure {draft.slug!r} is at revision {revision}, the edit started from {if_match}; "
            "reload it and edit again"
        )
    _snapshot_original(session, proc, now)
    if supersede:
        session.execute(
            update(ProcedureVersion)
            .where(ProcedureVersion.slug == draft.slug, ProcedureVersion.state == DRAFT)
            .values(state=SUPERSEDED)
            .execution_options(synchronize_session="fetch")
        )
    version = ProcedureVersion(
        slug=draft.slug,
        state=DRAFT,
        base_revision=revision,
        record=draft.record,
        diff=diff(live_record(proc) if proc is not None else None, draft.record),
        author=author,
        reason=_reason(reason),
        created_at=now,
    )
    session.add(version)
    session.flush()
    return version


def open_draft(session: Session, slug: str) -> ProcedureVersion | None:
    """The procedure's draft waiting to be published, if any."""
    return session.scalar(
        select(ProcedureVersion)
        .where(ProcedureVersion.slug == slug, ProcedureVersion.state == DRAFT)
        .order_by(ProcedureVersion.id.desc())
    )


def open_drafts(session: Session, limit: int = 200) -> list[ProcedureVersion]:
    """Every draft waiting to be published, oldest first (what admins review)."""
    stmt = select(ProcedureVersion).where(ProcedureVersion.state == DRAFT).order_by(ProcedureVersion.id)
    return list(session.scalars(stmt.limit(limit)))


def discard_draft(session: Session, slug: str, *, role: str) -> ProcedureVersion:
    """Drop the open draft (it stays in the history as discarded)."""
    require(role, "propose")
    version = open_draft(session, slug)
    if version is None:
        raise NotFound(f"procedure {slug!r} has no draft")
    version.state = DISCARDED
    return version


# -- publication ---------------------------------------------------------------------------------------------


def publish(
    session: Session, slug: str, *, publisher: str, role: str, now: dt.datetime, if_match: int | None = None
) -> Procedure:
    """Publish the procedure's open draft: the live record becomes the draft's, the revision counts up."""
    require(role, "publish")
    version = open_draft(session, slug)
    if version is None:
        raise NotFound(f"procedure {slug!r} has no draft to publish")
    proc = get_live(session, slug)
    revision = proc.revision if proc is not None else 0
    expected = if_match if if_match is not None else version.base_revision
    if expected != revision:
        raise Conflict(
            f"procedure {slug!r} is at revision {revision}, the draft was written against {version.base_revision}; "
            "edit it again on top of what is published now"
        )
    return _publish_version(session, version, proc, publisher=publisher, now=now)


def save_and_publish(
    session: Session,
    raw: dict[str, Any],
    *,
    author: str,
    role: str,
    reason: str,
    now: dt.datetime,
    slug: str | None = None,
    if_match: int | None = None,
) -> Procedure:
    """An admin's change published at once (still a version in the history)."""
    require(role, "publish")
    version = save_draft(
        session, raw, author=author, role=role, reason=reason, now=now, slug=slug, if_match=if_match, supersede=False
    )
    return _publish_version(session, version, get_live(session, version.slug), publisher=author, now=now)


def rollback(
    session: Session, slug: str, number: int, *, author: str, role: str, reason: str, now: dt.datetime
) -> Procedure:
    """Publish an earlier published version's content again, as a new version."""
    require(role, "publish")
    old = session.scalar(
        select(ProcedureVersion).where(
            ProcedureVersion.slug == slug, ProcedureVersion.number == number, ProcedureVersion.state == PUBLISHED
        )
    )
    if old is None:
        raise NotFound(f"procedure {slug!r} has no published version {number}")
    why = _reason(reason) or f"roll back to version {number}"
    return save_and_publish(session, dict(old.record), author=author, role=role, reason=why, now=now, slug=slug)


def retire(
    session: Session,
    slug: str,
    *,
    author: str,
    role: str,
    reason: str,
    now: dt.datetime,
    successor: str | None = None,
    if_match: int | None = None,
) -> Procedure:
    """Stop answering with a procedure (naming the one that replaces it, if any); it stays, retired."""
    proc = _existing(session, slug)
    if successor:
        target = get_live(session, successor)
        if target is None or target.status == RETIRED:
            raise Invalid(f"field 'successor': no published procedure {successor!r}")
    record = {**live_record(proc), "status": RETIRED, "successor": successor or None}
    return save_and_publish(
        session, record, author=author, role=role, reason=reason or "retired", now=now, slug=slug, if_match=if_match
    )


def restore(session: Session, slug: str, *, author: str, role: str, reason: str, now: dt.datetime) -> Procedure:
    """Answer with a retired procedure again."""
    proc = _existing(session, slug)
    if proc.status != RETIRED:
        raise Conflict(f"procedure {slug!r} is not retired")
    record = {**live_record(proc), "status": ACTIVE, "successor": None}
    return save_and_publish(session, record, author=author, role=role, reason=reason or "restored", now=now, slug=slug)


def verify(session: Session, slug: str, *, author: str, role: str, today: dt.date, now: dt.datetime) -> Procedure:
    """Mark the procedure's content checked against the official source today."""
    proc = _existing(session, slug)
    record = {**live_record(proc), "last_verified": today.isoformat()}
    return save_and_publish(session, record, author=author, role=role, reason="verified", now=now, slug=slug)


def _publish_version(
    session: Session, version: ProcedureVersion, proc: Procedure | None, *, publisher: str, now: dt.datetime
) -> Procedure:
    draft = validated(version.record, slug=version.slug)
    proc = _apply(session, proc, draft, now)
    proc.revision = (proc.revision or 0) + 1
    version.state, version.number = PUBLISHED, proc.revision
    version.published_by, version.published_at = publisher, now
    session.flush()
    return proc


def _apply(session: Session, proc: Procedure | None, draft: Draft, now: dt.datetime) -> Procedure:
    """Write the record to the live tables exactly (an emptied field is emptied), in the caller's transaction."""
    record = ProcedureIn.model_validate({k: v for k, v in draft.record.items() if k not in ("status", "successor")})
    if record.code:
        holder = session.scalar(select(Procedure).where(Procedure.code == record.code))
        if holder is not None and holder is not proc:
            raise Invalid(f"field 'code': {record.code} already belongs to procedure {holder.slug!r}")
    if proc is None:
        proc = Procedure(slug=record.slug, created_at=now, revision=0)
        session.add(proc)
    proc.origin = "admin"  # published by people here: bundled seeds no longer overwrite it
    for name in ("code", "category", "authority", "online_link", "source", "last_verified"):
        setattr(proc, name, getattr(record, name))
    proc.status = draft.record["status"]
    proc.successor_slug = draft.record["successor"]
    proc.retired_at = (proc.retired_at or now) if proc.status == RETIRED else None
    proc.updated_at = now  # the knowledge-base version every process watches reads this
    wanted = record.texts()
    for text in list(proc.texts):
        if text.lang not in wanted:
            proc.texts.remove(text)
    existing = {t.lang: t for t in proc.texts}
    for lang, text_in in wanted.items():
        text = existing.get(lang)
        if text is None:
            text = ProcedureText(lang=lang)
            proc.texts.append(text)
        for name in TEXT_FIELDS:
            setattr(text, name, getattr(text_in, name))
    session.flush()
    _replace_faq(session, proc, record, now)
    return proc


def _replace_faq(session: Session, proc: Procedure, record: ProcedureIn, now: dt.datetime) -> None:
    """The procedure's own FAQ entries become the record's; portal entries (real questions) stay."""
    own = session.scalars(
        select(FaqEntry.id)
        .join(faq_procedures, faq_procedures.c.faq_id == FaqEntry.id)
        .where(faq_procedures.c.procedure_id == proc.id, FaqEntry.source != "portal")
    ).all()
    if own:
        session.execute(delete(FaqEntry).where(FaqEntry.id.in_(own)))
        session.expire(proc, ["faqs"])
    for faq_in in record.faq:
        session.add(
            FaqEntry(
                lang=faq_in.lang,
                questions=list(faq_in.questions),
                answer=faq_in.answer,
                source="admin",
                external_id=faq_in.external_id,
                created_at=now,
                updated_at=now,
                procedures=[proc],
            )
        )
    session.flush()


def _snapshot_original(session: Session, proc: Procedure | None, now: dt.datetime) -> None:
    """Before a procedure's first change, keep its content as seeded or imported, so it can be rolled back to."""
    if proc is None:
        return
    seen = session.scalar(
        select(func.count()).where(ProcedureVersion.slug == proc.slug, ProcedureVersion.state == PUBLISHED)
    )
    if seen:
        return
    session.add(
        ProcedureVersion(
            slug=proc.slug,
            number=proc.revision,
            state=PUBLISHED,
            base_revision=proc.revision,
            record=live_record(proc),
            diff=[],
            author="system",
            reason=f"as {proc.origin} before the first change",
            created_at=proc.updated_at or now,
            published_by="system",
            published_at=proc.updated_at or now,
        )
    )


def _existing(session: Session, slug: str) -> Procedure:
    proc = get_live(session, slug)
    if proc is None:
        raise NotFound(f"no procedure with slug {slug!r}")
    return proc


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise Invalid(f"field 'reason': {len(reason)} characters; at most {MAX_REASON}")
    return reason


# -- reading -------------------------------------------------------------------------------------------------


def history(session: Session, slug: str) -> list[ProcedureVersion]:
    """Every version of the procedure, newest first (drafts and discarded ones included)."""
    stmt = select(ProcedureVersion).where(ProcedureVersion.slug == slug).order_by(ProcedureVersion.id.desc())
    return list(session.scalars(stmt))


def recent_changes(session: Session, *, since: dt.datetime | None = None, limit: int = 50) -> list[ProcedureVersion]:
    """Published changes of any procedure, newest first: the "what changed" feed for officials."""
    stmt = select(ProcedureVersion).where(ProcedureVersion.state == PUBLISHED, ProcedureVersion.author != "system")
    if since is not None:
        stmt = stmt.where(ProcedureVersion.published_at >= since)
    return list(
        session.scalars(stmt.order_by(ProcedureVersion.published_at.desc(), ProcedureVersion.id.desc()).limit(limit))
    )


def search_procedures(
    session: Session,
    *,
    search: str = "",
    category: str | None = None,
    origin: str | None = None,
    status: str | None = None,
    verified_before: dt.date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Procedure], int]:
    """Procedures by slug, code or title words, filtered; the page and the total."""
    conditions = []
    if search.strip():
        pattern = search.strip()
        titles = select(ProcedureText.procedure_id).where(ProcedureText.title.contains(pattern, autoescape=True))
        conditions.append(
            or_(
                Procedure.slug.contains(pattern.lower(), autoescape=True),
                Procedure.code == pattern,
                Procedure.id.in_(titles),
            )
        )
    if category:
        conditions.append(Procedure.category == category)
    if origin:
        conditions.append(Procedure.origin == origin)
    if status:
        conditions.append(Procedure.status == status)
    if verified_before is not None:
        conditions.append(or_(Procedure.last_verified.is_(None), Procedure.last_verified < verified_before))
    total = session.scalar(select(func.count()).select_from(Procedure).where(*conditions)) or 0
    page = session.scalars(
        select(Procedure).where(*conditions).order_by(Procedure.slug).limit(limit).offset(offset)
    ).all()
    return list(page), total


def faq_entries(session: Session, *, search: str = "", slug: str | None = None, limit: int = 50) -> list[FaqEntry]:
    """FAQ entries whose questions contain the words (with or without diacritics), or of one procedure."""
    stmt = select(FaqEntry).order_by(FaqEntry.id)
    if slug:
        stmt = (
            stmt.join(faq_procedures, faq_procedures.c.faq_id == FaqEntry.id)
            .join(Procedure, Procedure.id == faq_procedures.c.procedure_id)
            .where(Procedure.slug == slug)
        )
    entries = session.scalars(stmt).all()
    wanted = fold(search).split()
    if wanted:  # a few thousand short questions: folding them here beats a LIKE over JSON text
        entries = [e for e in entries if all(w in fold(" ".join(e.questions)) for w in wanted)]
    return list(entries[:limit])


def preview_procedure(draft: Draft) -> Procedure:
    """The draft as an unsaved procedure (texts and FAQ entries), for indexing and cards "as if published"."""
    record = ProcedureIn.model_validate({k: v for k, v in draft.record.items() if k not in ("status", "successor")})
    proc = Procedure(
        slug=record.slug,
        code=record.code,
        category=record.category,
        authority=record.authority,
        online_link=record.online_link,
        source=record.source,
        last_verified=record.last_verified,
        origin="admin",
        status=draft.record["status"],
        successor_slug=draft.record["successor"],
    )
    proc.texts = [ProcedureText(lang=lang, **text.model_dump()) for lang, text in record.texts().items()]
    proc.faqs = [
        FaqEntry(lang=f.lang, questions=list(f.questions), answer=f.answer, source="admin") for f in record.faq
    ]
    return proc


