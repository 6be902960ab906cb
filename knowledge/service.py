"""Use cases of the knowledge base: import, export, seed, look-up. Services only flush; callers commit."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core.errors import Invalid, NotFound
from core.progress import progress as progress_lines
from knowledge import io as kb_io
from knowledge.models import TEXT_FIELDS, FaqEntry, KbMeta, Procedure, ProcedureText, faq_procedures, utcnow
from knowledge.national import BUNDLED_NATIONAL_FILE, iter_national_file, parse_national_record
from knowledge.schemas import CONTENT_LANGS, PortalFaqIn, ProcedureIn, ProcedureTextIn

logger = logging.getLogger(__name__)

CURATED_DIR = Path(__file__).resolve().parent / "seed" / "curated"
SEED_KEY = "curated_seed"
NATIONAL_SEED_KEY = "national_seed"
MAX_ERRORS_SHOWN = 20
Progress = Callable[[int], None]


@dataclass
class ImportReport:
    """What an import did."""

    created: int = 0
    updated: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.created} created, {self.updated} updated, {self.skipped} skipped"
        return text + "".join(f"\n  {note}" for note in self.notes)


def national_slug(code: str) -> str:
    """The slug an imported national record gets: stable and derived from its code."""
    return "tthc-" + code.replace(".", "-")


def validate_records(raw: list[dict[str, Any]], source: str) -> list[ProcedureIn]:
    """Validate every record; raise one Invalid naming each bad record and field, or return them all."""
    errors: list[str] = []
    records: list[ProcedureIn] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw, 1):
        label = f"{source}: record {index}" + (f" (slug {item.get('slug')!r})" if item.get("slug") else "")
        try:
            record = ProcedureIn.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(part) for part in err["loc"]) or "record"
                errors.append(f"{label}: field {where!r}: {err['msg']}")
            continue
        if record.slug in seen:
            errors.append(f"{label}: field 'slug': duplicate of record {seen[record.slug]}")
        seen[record.slug] = index
        records.append(record)
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f"\n  … and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise Invalid(f"{len(errors)} error(s), nothing imported:\n  " + "\n  ".join(shown) + more)
    return records


def import_file(
    session: Session, path: Path, fmt: str | None = None, *, origin: str = "admin"
) -> ImportReport:
    """Import (create or update by slug) every procedure of a YAML/JSON/CSV file, all or nothing."""
    records = validate_records(kb_io.read_records(path, fmt), str(path))
    return upsert_procedures(session, records, origin=origin)


def upsert_procedures(session: Session, records: Iterable[ProcedureIn], *, origin: str) -> ImportReport:
    """Create or update procedures by slug; a national record with the same code becomes the curated one."""
    report = ImportReport()
    records = list(records)
    by_slug = {
        p.slug: p
        for p in session.scalars(select(Procedure).where(Procedure.slug.in_([r.slug for r in records])))
    }
    codes = [r.code for r in records if r.code]
    by_code = (
        {p.code: p for p in session.scalars(select(Procedure).where(Procedure.code.in_(codes)))}
        if codes
        else {}
    )
    for record in records:
        proc = by_slug.get(record.slug)
        holder = by_code.get(record.code) if record.code else None
        if holder is not None and holder is not proc:
            if holder.origin != "national" or proc is not None:
                raise Invalid(
                    f"procedure {record.slug!r}: field 'code': {record.code} already belongs to {holder.slug!r}"
                )
            # A curated procedure and a national record with one code are one procedure (DESIGN.md).
            holder.slug = record.slug
            proc = holder
        if proc is None:
            proc = Procedure(slug=record.slug, origin=origin)
            session.add(proc)
            report.created += 1
        else:
            report.updated += 1
            # An admin's edit makes the procedure theirs: later bundled seeds no longer overwrite it.
            if proc.origin == "national" or origin == "admin":
                proc.origin = origin
        _apply_record(session, proc, record)
    session.flush()
    return report


def _apply_record(session: Session, proc: Procedure, record: ProcedureIn) -> None:
    """Copy a record onto a procedure; curated fields win, empty ones keep what the national record had."""
    proc.updated_at = utcnow()  # texts and FAQ live in other tables; the version fingerprint reads this
    for name in ("code", "category", "authority", "online_link", "source", "last_verified"):
        value = getattr(record, name)
        if value not in (None, ""):
            setattr(proc, name, value)
    existing = {t.lang: t for t in proc.texts}
    for lang, text_in in record.texts().items():
        text = existing.get(lang)
        if text is None:
            text = ProcedureText(lang=lang, **text_in.model_dump())
            proc.texts.append(text)
            continue
        for name, value in text_in.model_dump().items():
            if value not in ("", [], None):
                setattr(text, name, value)
    session.flush()
    # FAQ entries written with the procedure are replaced as a whole; portal FAQ entries stay.
    for faq in list(proc.faqs):
        if faq.source != "portal" and len(faq.procedures) == 1:
            session.delete(faq)
    session.flush()
    session.expire(proc, ["faqs"])
    for faq_in in record.faq:
        session.add(
            FaqEntry(
                lang=faq_in.lang,
                questions=list(faq_in.questions),
                answer=faq_in.answer,
                source="curated" if proc.origin == "curated" else "admin",
                external_id=faq_in.external_id,
                procedures=[proc],
            )
        )


def import_national(session: Session, path: Path, *, progress: Progress | None = None) -> ImportReport:
    """Load the national procedure database file; curated procedures keep their own content."""
    report = ImportReport()
    parsed: dict[str, dict[str, Any]] = {}
    try:
        for _lineno, raw in iter_national_file(path):
            record = parse_national_record(raw)
            if record["code"] in parsed:
                report.skipped += 1
                continue
            parsed[record["code"]] = record
    except FileNotFoundError:
        raise Invalid(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise Invalid(f"{path}: not UTF-8 text (offset {exc.start})") from None
    except ValueError as exc:
        raise Invalid(f"{exc}; nothing imported") from None
    if report.skipped:
        report.notes.append(f"{report.skipped} duplicate national code(s) ignored (first record kept)")
    existing = {p.code: p for p in session.scalars(select(Procedure).where(Procedure.code.is_not(None)))}
    taken_slugs = set(session.scalars(select(Procedure.slug)))
    for done, (code, record) in enumerate(parsed.items(), 1):
        proc = existing.get(code)
        text_fields = {name: record.get(name) for name in TEXT_FIELDS if name in record}
        text_fields["title"] = record["title"]
        if proc is None:
            slug = national_slug(code)
            if slug in taken_slugs:
                raise Invalid(
                    f"{path}: record {code}: field 'slug': {slug!r} is already used by another procedure"
                )
            proc = Procedure(slug=slug, code=code, origin="national")
            proc.texts.append(ProcedureText(lang="vi", **ProcedureTextIn(**text_fields).model_dump()))
            session.add(proc)
            report.created += 1
        else:
            report.updated += 1
            vi = proc.text("vi") if any(t.lang == "vi" for t in proc.texts) else None
            if vi is None:
                proc.texts.append(ProcedureText(lang="vi", **ProcedureTextIn(**text_fields).model_dump()))
            else:
                for name, value in text_fields.items():
                    if value and not getattr(vi, name):
                        setattr(vi, name, value)
        for name, value in (
            ("category", record["category"]),
            ("authority", record["authority"]),
            ("online_link", record["url"]),
            ("ministry", record.get("ministry") or ""),
            ("level", record.get("level") or ""),
            ("source", f"Cơ sở dữ liệu quốc gia về TTHC, mã {code}"),
        ):
            if value and not getattr(proc, name):
                setattr(proc, name, value)
        if progress:
            progress(done)
    session.flush()
    return report


def import_portal_faq(
    session: Session, path: Path, *, parity: str | None = None, progress: Progress | None = None
) -> ImportReport:
    """Import the portal's FAQ file as FAQ entries tied to the procedures of their national codes.

    parity 'even' / 'odd' keeps only the entries whose numeric faq_id has that parity: the evaluation
    protocol imports one half and asks the other.
    """
    report = ImportReport()
    entries: list[PortalFaqIn] = []
    errors: list[str] = []
    for lineno, raw in kb_io.iter_jsonl(path):
        try:
            entries.append(PortalFaqIn.model_validate(raw))
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) + f": {e['msg']}" for e in exc.errors())
            errors.append(f"{path}:{lineno}: {fields}")
    if errors:
        raise Invalid(
            f"{len(errors)} error(s), nothing imported:\n  " + "\n  ".join(errors[:MAX_ERRORS_SHOWN])
        )
    if parity:
        want = 0 if parity == "even" else 1
        entries = [e for e in entries if e.faq_id.isdigit() and int(e.faq_id) % 2 == want]
    by_code = {p.code: p for p in session.scalars(select(Procedure).where(Procedure.code.is_not(None)))}
    existing = {
        f.external_id: f for f in session.scalars(select(FaqEntry).where(FaqEntry.source == "portal"))
    }
    unknown_codes = 0
    for done, entry in enumerate(entries, 1):
        procs = [by_code[c] for c in dict.fromkeys(entry.procedures) if c in by_code]
        unknown_codes += sum(1 for c in entry.procedures if c not in by_code)
        if not procs:
            report.skipped += 1
            continue
        external_id = f"portal:{entry.faq_id}"
        faq = existing.get(external_id)
        if faq is None:
            faq = FaqEntry(external_id=external_id, source="portal", lang="vi")
            session.add(faq)
            existing[external_id] = faq
            report.created += 1
        else:
            report.updated += 1
        faq.questions = [entry.question]
        faq.answer = entry.answer
        faq.procedures = procs
        if progress:
            progress(done)
    if report.skipped:
        report.notes.append(f"{report.skipped} entries name no procedure of the knowledge base (skipped)")
    if unknown_codes:
        report.notes.append(f"{unknown_codes} procedure code reference(s) not in the knowledge base")
    session.flush()
    return report


def procedure_record(proc: Procedure) -> dict[str, Any]:
    """A procedure as a plain record in the import/export layout."""
    record: dict[str, Any] = {
        "slug": proc.slug,
        "code": proc.code,
        "category": proc.category,
        "authority": proc.authority,
        "online_link": proc.online_link,
        "source": proc.source,
        "last_verified": proc.last_verified.isoformat() if proc.last_verified else None,
    }
    for text in sorted(proc.texts, key=lambda t: t.lang):
        record[text.lang] = {k: v for k, v in text.as_dict().items() if v not in ("", [], None)}
    faqs = [f for f in proc.faqs if f.source != "portal"]
    if faqs:
        record["faq"] = [{"lang": f.lang, "questions": f.questions, "answer": f.answer} for f in faqs]
    return record


def export_procedures(
    session: Session, path: Path, fmt: str | None = None, *, origin: str | None = None
) -> int:
    """Write procedures (optionally of one origin) to a file; returns the count."""
    stmt = select(Procedure).options(selectinload(Procedure.faqs)).order_by(Procedure.slug)
    if origin:
        stmt = stmt.where(Procedure.origin == origin)
    return kb_io.write_records((procedure_record(p) for p in session.scalars(stmt)), path, fmt)


def get_procedure(session: Session, slug: str) -> Procedure:
    """The procedure with this slug."""
    proc = session.scalar(select(Procedure).where(Procedure.slug == slug))
    if proc is None:
        raise NotFound(f"no procedure with slug {slug!r}")
    return proc


def kb_version(session: Session) -> str:
    """A short fingerprint that changes whenever procedures, texts or FAQ entries change."""
    parts = [
        session.execute(select(func.count(Procedure.id), func.max(Procedure.updated_at))).one(),
        session.execute(select(func.count(ProcedureText.id), func.max(ProcedureText.id))).one(),
        session.execute(
            select(func.count(FaqEntry.id), func.max(FaqEntry.updated_at), func.max(FaqEntry.id))
        ).one(),
        session.execute(select(func.count()).select_from(faq_procedures)).one(),
    ]
    return hashlib.sha256(repr([tuple(map(str, p)) for p in parts]).encode()).hexdigest()[:16]


def counts(session: Session) -> dict[str, int]:
    """How many procedures (by origin) and FAQ entries the knowledge base holds."""
    rows = session.execute(
        select(Procedure.origin, func.count(Procedure.id)).group_by(Procedure.origin)
    ).all()
    result = dict(rows)
    result["faq_entries"] = session.scalar(select(func.count(FaqEntry.id))) or 0
    return result


def ensure_seeded(session: Session, folder: Path = CURATED_DIR) -> ImportReport | None:
    """Load the bundled curated set, or its newer version, into the database; None when up to date.

    A new release may improve the bundled procedures: they are re-applied to every procedure that is
    still as curated (origin 'curated'); ones an admin has edited since (origin 'admin') stay as they are.
    """
    files = sorted(folder.glob("*.yaml"))
    fingerprint = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:16]
    meta = session.get(KbMeta, SEED_KEY)
    if meta is not None and meta.value == fingerprint:
        return None
    records: list[ProcedureIn] = []
    for path in files:
        records += validate_records(kb_io.read_records(path), str(path))
    admin_edited = set(session.scalars(select(Procedure.slug).where(Procedure.origin == "admin")))
    fresh = [r for r in records if r.slug not in admin_edited]
    report = upsert_procedures(session, fresh, origin="curated")
    report.skipped += len(records) - len(fresh)
    _seeded(session, SEED_KEY, fingerprint)
    return report


def _seeded(session: Session, key: str, fingerprint: str) -> None:
    """Remember which version of a bundled file the database holds, so that the next start skips it."""
    meta = session.get(KbMeta, key)
    if meta is None:
        session.add(KbMeta(key=key, value=fingerprint))
    else:
        meta.value = fingerprint
    session.flush()


def ensure_national_seeded(session: Session, path: Path = BUNDLED_NATIONAL_FILE) -> ImportReport | None:
    """Load the national procedures bundled with the package, or their newer file; None when up to date.

    So that a citizen asking about any of the 2,642 procedures of the national portal gets its card; curated
    procedures of the same code keep their own content (import_national).
    """
    fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    meta = session.get(KbMeta, NATIONAL_SEED_KEY)
    if meta is not None and meta.value == fingerprint:
        return None
    with progress_lines("importing the national procedures", None, logger=logger) as update:
        report = import_national(session, path, progress=update)
    _seeded(session, NATIONAL_SEED_KEY, fingerprint)
    return report


def procedure_card(session: Session, slug: str, lang: str) -> dict[str, Any]:
    """What a citizen needs of a procedure, in their language where we have it."""
    return card_of(get_procedure(session, slug), lang)


def card_of(proc: Procedure, lang: str) -> dict[str, Any]:
    """The card of a procedure object (saved or not: a draft previewed as if published)."""
    by_lang = {t.lang: t for t in proc.texts}
    # Content exists in Vietnamese and English; other languages contribute their title only.
    text = proc.text(lang if lang in CONTENT_LANGS else "en")
    fields = text.as_dict() if text else {}
    fields.pop("aliases", None)
    if lang in by_lang and lang not in CONTENT_LANGS:
        fields["title"] = by_lang[lang].title
    return {
        "slug": proc.slug,
        "code": proc.code,
        "lang": text.lang if text else lang,
        **fields,
        "authority": proc.authority,
        "online_link": proc.online_link,
        "source": proc.source,
        "last_verified": proc.last_verified.isoformat() if proc.last_verified else None,
        "status": proc.status or "published",
        "successor": proc.successor_slug,
    }
