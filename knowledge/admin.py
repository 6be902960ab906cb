"""What the knowledge base's dashboard pages need beside knowledge.versions: small reads, new slugs, bulk import.

The import here is the dashboard's: every record of a file becomes a published version (history, diff, author,
reason "import FILE") in the caller's one transaction, all or nothing, every problem listed before anything is
written. `knowledge.service.import_file` (the CLI's) writes the live tables directly instead.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, Invalid, NotFound
from knowledge import versions
from knowledge.models import Procedure, ProcedureText, ProcedureVersion
from knowledge.service import MAX_ERRORS_SHOWN, validate_records

MAX_SUCCESSORS = 300  # choices offered when retiring: the procedures of the same category


@dataclass(frozen=True)
class Editable:
    """Where an edit starts: the record shown in the form, the revision it names (If-Match), the draft it continues."""

    record: dict[str, Any]
    revision: int
    draft: ProcedureVersion | None = None
    stale_draft: ProcedureVersion | None = None


@dataclass
class ImportedChange:
    """One record of an imported file: created, updated (with the fields it changed) or unchanged."""

    slug: str
    outcome: str  # created | updated | unchanged
    fields: list[str] = field(default_factory=list)
    revision: int | None = None


def categories(session: Session) -> list[str]:
    """Every category in use, for the list's filter."""
    stmt = select(Procedure.category).where(Procedure.category != "").distinct().order_by(Procedure.category)
    return list(session.scalars(stmt))


def slugs_with_drafts(session: Session, slugs: Iterable[str]) -> set[str]:
    """Which of these procedures have a draft waiting to be published."""
    wanted = list(slugs)
    if not wanted:
        return set()
    stmt = select(ProcedureVersion.slug).where(
        ProcedureVersion.state == versions.DRAFT, ProcedureVersion.slug.in_(wanted)
    )
    return set(session.scalars(stmt))


def titles(session: Session, slugs: Iterable[str], lang: str = "vi") -> dict[str, str]:
    """Each procedure's title in lang (else any language it has), by slug; slugs not published are left out."""
    wanted = list(set(slugs))
    if not wanted:
        return {}
    rows = session.execute(
        select(Procedure.slug, ProcedureText.lang, ProcedureText.title)
        .join(ProcedureText, ProcedureText.procedure_id == Procedure.id)
        .where(Procedure.slug.in_(wanted))
    ).all()
    found: dict[str, str] = {}
    for slug, _lang, title in sorted(rows, key=lambda row: row[1] != lang):  # lang first, then the others
        found.setdefault(slug, title)
    return found


def successor_choices(session: Session, proc: Procedure) -> list[tuple[str, str]]:
    """(slug, Vietnamese title) of the published procedures of the same category, to name as a successor."""
    stmt = (
        select(Procedure)
        .where(
            Procedure.status == versions.ACTIVE,
            Procedure.slug != proc.slug,
            Procedure.category == proc.category,
        )
        .order_by(Procedure.slug)
        .limit(MAX_SUCCESSORS)
    )
    return [(p.slug, (p.text("vi").title if p.text("vi") else p.slug)) for p in session.scalars(stmt)]


def editable(session: Session, slug: str) -> Editable | None:
    """What an edit of the procedure starts from: its waiting draft when that draft is of the revision published
    now (an edit continues it), else the published record; None when the slug is neither published nor drafted."""
    proc = versions.get_live(session, slug)
    draft = versions.open_draft(session, slug)
    revision = proc.revision if proc is not None else 0
    if draft is not None and draft.base_revision == revision:
        return Editable(dict(draft.record), revision, draft=draft)
    if proc is None:
        return None
    return Editable(versions.live_record(proc), revision, stale_draft=draft)


def new_slug_problems(session: Session, slug: str, *, reserved: Collection[str] = ()) -> list[str]:
    """Why a new procedure cannot have this slug (taken, waiting as a draft, or reserved), as 'field' messages."""
    if not slug:
        return []
    if slug in reserved:
        return [f"field 'slug': {slug!r} is reserved ({', '.join(sorted(reserved))}); choose another"]
    proc = versions.get_live(session, slug)
    if proc is not None:
        return [f"field 'slug': a procedure {slug!r} exists already ({proc.status}); edit it instead"]
    if versions.open_draft(session, slug) is not None:
        return [f"field 'slug': a draft of a new procedure {slug!r} is waiting; edit that draft instead"]
    return []


def publish_seen(
    session: Session,
    slug: str,
    *,
    draft_id: int | None,
    publisher: str,
    role: str,
    now: dt.datetime,
    if_match: int | None = None,
) -> Procedure:
    """Publish the waiting draft the admin looked at: refused (409) when another draft has replaced it since, so
    that nobody publishes a text they did not read (versions.publish publishes whichever draft is open)."""
    versions.require(role, "publish")
    draft = versions.open_draft(session, slug)
    if draft is None:
        raise NotFound(f"procedure {slug!r} has no draft to publish")
    if draft_id is not None and draft.id != draft_id:
        raise Conflict(
            f"the draft of {slug!r} was replaced by {draft.author}'s since the page was loaded; "
            "read it and publish again"
        )
    return versions.publish(session, slug, publisher=publisher, role=role, now=now, if_match=if_match)


def import_versions(
    session: Session,
    raw: list[dict[str, Any]],
    source: str,
    *,
    author: str,
    role: str,
    now: dt.datetime,
    reserved: Collection[str] = (),
) -> list[ImportedChange]:
    """Publish every record of a file as a version of its procedure, all or nothing.

    Every problem a record has is found before anything is written (field errors, slugs twice in the file, a
    national code twice or already another procedure's) and raised as one Invalid listing them all. A record equal
    to what is published is left alone; a procedure keeps its status and successor (a file does not retire).
    """
    versions.require(role, "publish")
    records = validate_records(raw, source)
    problems = _file_problems(session, records, source, reserved)
    if problems:
        shown = problems[:MAX_ERRORS_SHOWN]
        more = f"\n  … and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise Invalid(f"{len(problems)} error(s), nothing imported:\n  " + "\n  ".join(shown) + more)
    reason = f"import {source}"
    changes: list[ImportedChange] = []
    for record in records:
        proc = versions.get_live(session, record.slug)
        plain = record.model_dump(mode="json", exclude_none=True)
        before = versions.live_record(proc) if proc is not None else None
        plain["status"] = before["status"] if before else versions.ACTIVE
        plain["successor"] = before["successor"] if before else None
        changed = versions.diff(before, versions.validated(plain).record)
        if before is not None and not changed:
            changes.append(ImportedChange(record.slug, "unchanged", revision=proc.revision if proc else None))
            continue
        published = versions.save_and_publish(
            session, plain, author=author, role=role, reason=reason, now=now, slug=record.slug
        )
        outcome = "created" if before is None else "updated"
        changes.append(ImportedChange(record.slug, outcome, [c["field"] for c in changed], published.revision))
    return changes


def _file_problems(session: Session, records: list[Any], source: str, reserved: Collection[str]) -> list[str]:
    """Problems between records, and with what is stored, that field validation cannot see."""
    problems: list[str] = []
    label = {r.slug: f"{source}: record {i} (slug {r.slug!r})" for i, r in enumerate(records, 1)}
    for record in records:
        if record.slug in reserved:
            problems.append(f"{label[record.slug]}: field 'slug': {record.slug!r} is reserved; choose another")
    codes = Counter(r.code for r in records if r.code)
    for code, times in sorted(codes.items()):
        if times > 1:
            problems.append(f"{source}: field 'code': {code} is given to {times} records")
    if codes:
        holders = dict(session.execute(select(Procedure.code, Procedure.slug).where(Procedure.code.in_(codes))).all())
        for record in records:
            holder = holders.get(record.code) if record.code else None
            if holder is not None and holder != record.slug:
                problems.append(f"{label[record.slug]}: field 'code': {record.code} already belongs to {holder!r}")
    return problems
