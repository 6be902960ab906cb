"""Dashboard pages of the knowledge base: the procedure list, a procedure with its history, the edit form, the
"what changed" feed and the bulk import.

Thin: every change is a knowledge.versions function (knowledge.admin for the import and small reads). Who may:
every staff role reads; supervisors and admins write drafts (and discard them); only admins publish, roll back,
retire, restore, verify and import. Every POST: the Origin and CSRF check first (guard_form), then who may (a
refusal is audited), then the action in one transaction with the form's once-only key, so a second press does
nothing and redirects as if done. Bad input shows the form again with every error and what was typed (422); an
edit started from a revision published over since is refused (409) with what changed in between.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Callable
from pathlib import Path as FilePath
from pathlib import PurePath
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from admin_api.dashboard import ENV, PREFIX, ActorDep, CsrfField, PageRoute, deny, guard_form, render
from bot.cards import render_card
from core.config import get_settings
from core.db import session_scope
from core.errors import Conflict, Invalid, NotFound
from helpdesk.accounts import Actor
from helpdesk.sla import VN
from helpdesk.submissions import AlreadySubmitted, new_submission_key, record_submission
from knowledge import admin as kb_admin
from knowledge import versions
from knowledge.io import read_records
from knowledge.models import utcnow
from knowledge.schemas import MAX_TEXT, MAX_TITLE
from knowledge.service import card_of, procedure_card

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=PageRoute)

KB = f"{PREFIX}/kb"
RESERVED_SLUGS = ("changes", "gaps", "import", "new")  # pages of their own under /dashboard/kb/: no procedure there
PAGE_SIZE = 50
CHANGES_SHOWN = 100
# The app refuses request bodies over admin_api.app.MAX_BODY_BYTES (1 MB) before they are read; a file is a little
# smaller than its request, so that is the dashboard's limit for an imported file too.
MAX_IMPORT_BYTES = 1_000_000
IMPORT_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl", ".ndjson", ".csv")
SHORT_VALUE = 240  # a diff's value longer than this shows shortened, the whole text in a <details>
EMPTY_FAQ_ROWS = 2  # blank FAQ variants under the existing ones, to add new ones without a script
ORIGINS = {
    "curated": ("Biên soạn sẵn", "curated"),
    "national": ("CSDL quốc gia", "national"),
    "admin": ("Sửa tại đây", "edited here"),
}
STATUSES = {"published": ("Đang áp dụng", "published"), "retired": ("Ngừng áp dụng", "retired")}
STATES = {
    "draft": ("Bản nháp chờ công bố", "draft"),
    "published": ("Đã công bố", "published"),
    "superseded": ("Bản nháp bị thay", "superseded draft"),
    "discarded": ("Bản nháp đã bỏ", "discarded draft"),
}
LANGS = {
    "vi": ("Tiếng Việt", "Vietnamese"),
    "en": ("Tiếng Anh", "English"),
    "ko": ("Tiếng Hàn", "Korean"),
    "ru": ("Tiếng Nga", "Russian"),
    "pl": ("Tiếng Ba Lan", "Polish"),
}
CONTENT_LANGS = ("vi", "en")  # written in full; ko, ru, pl carry a title and search phrases
TITLE_LANGS = ("ko", "ru", "pl")
# (name, Vietnamese, English, kind): kind "line" is one line, "text" a paragraph, "list" one item per line
TOP_FIELDS = (
    ("code", "Mã thủ tục quốc gia", "National code", "line"),
    ("category", "Lĩnh vực", "Category", "line"),
    ("authority", "Cơ quan thực hiện", "Authority", "text"),
    ("online_link", "Liên kết nộp trực tuyến", "Online link", "line"),
    ("source", "Nguồn", "Source", "text"),
    ("last_verified", "Ngày kiểm tra gần nhất", "Last verified", "date"),
)
TEXT_FIELDS = (
    ("title", "Tên thủ tục", "Title", "line"),
    ("summary", "Tóm tắt", "Summary", "text"),
    ("who", "Ai được làm", "Who may apply", "text"),
    ("documents", "Hồ sơ cần có", "Documents", "list"),
    ("fees", "Lệ phí", "Fees", "text"),
    ("processing_time", "Thời gian giải quyết", "Processing time", "text"),
    ("where_to_file", "Nơi nộp", "Where to file", "text"),
    ("steps", "Các bước", "Steps", "list"),
    ("conditions", "Điều kiện", "Conditions", "text"),
    ("result", "Kết quả", "Result", "text"),
    ("legal_basis", "Căn cứ pháp lý", "Legal basis", "list"),
    ("aliases", "Cách gọi khác", "Other names people search with", "list"),
)
FAQ_FIELDS = (("lang", "Ngôn ngữ", "Language"), ("questions", "Câu hỏi", "Questions"), ("answer", "Trả lời", "Answer"))
MAX_LENGTH = {"title": MAX_TITLE, "category": 200, "online_link": 2000, "code": 40, "reason": versions.MAX_REASON}
OTHER_LABELS = {
    "slug": ("Mã định danh (slug)", "Slug"),
    "reason": ("Lý do thay đổi", "Reason"),
    "status": ("Trạng thái", "Status"),
    "successor": ("Thủ tục thay thế", "Successor"),
    "faq": ("Câu hỏi thường gặp", "FAQ variants"),
    "submission": ("Biểu mẫu", "Form"),
    "if_match": ("Phiên bản đang sửa", "Revision edited"),
    "file": ("Tệp", "File"),
}
DONE = {  # ?done=… after a redirect → (Vietnamese, English)
    "draft": ("Đã lưu bản nháp; quản trị viên xem và công bố.", "Draft saved; an admin reviews and publishes it."),
    "published": (
        "Đã công bố: trợ lý ảo trả lời theo nội dung mới trong vài giây.",
        "Published: the bot answers with the new content within seconds.",
    ),
    "discarded": ("Đã bỏ bản nháp.", "Draft discarded."),
    "rolled-back": (
        "Đã công bố lại nội dung của phiên bản cũ (thành một phiên bản mới).",
        "Rolled back: the earlier content is published again, as a new version.",
    ),
    "retired": (
        "Đã ngừng áp dụng thủ tục: trợ lý ảo không trả lời bằng thủ tục này nữa.",
        "Retired: the bot no longer answers with this procedure.",
    ),
    "restored": ("Thủ tục được áp dụng lại.", "Restored: the bot answers with it again."),
    "verified": ("Đã xác nhận nội dung còn đúng đến hôm nay.", "Marked as verified today."),
}
_FIELD = re.compile(r"field '([^']*)': (.*?)(?=; field '|; … and \d+ more|$)", re.S)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

SlugPath = Annotated[str, Path(max_length=120)]
Key = Annotated[str, Form(max_length=100)]
Reason = Annotated[str, Form(max_length=5000)]  # the service says "at most 1000" with the page; this bounds the body
Done = Annotated[str | None, Query(max_length=20)]


async def _form(request: Request) -> dict[str, str]:
    """The POSTed form's text fields: the edit form has as many fields as the procedure has FAQ variants."""
    form = await request.form()
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}


FormDep = Annotated[dict[str, str], Depends(_form)]


# -- who may -------------------------------------------------------------------------------------------------


def _allow(actor: Actor, need: str, action: str) -> None:
    """Refuse (403, audited) what the role may not do: "propose" (supervisors, admins) or "publish" (admins)."""
    if need == "publish" and not versions.may_publish(actor.role):
        raise deny(actor, actor.department, action, "publishing knowledge-base changes is for admins")
    if need == "propose" and not versions.may_propose(actor.role):
        raise deny(actor, actor.department, action, "changing the knowledge base is for supervisors and admins")


def _rights(actor: Actor) -> dict[str, bool]:
    return {"can_propose": versions.may_propose(actor.role), "can_publish": versions.may_publish(actor.role)}


# -- shown values --------------------------------------------------------------------------------------------


def field_label(name: str) -> tuple[str, str]:
    """A record field's label ('vi.fees' → Lệ phí (Tiếng Việt)), for errors and diffs."""
    head, _, rest = name.partition(".")
    if head in LANGS and rest:
        inner = rest.split(".")[0]
        vi, en = next(((v, e) for n, v, e, _ in TEXT_FIELDS if n == inner), (inner, inner))
        return f"{vi} ({LANGS[head][0]})", f"{en} ({LANGS[head][1]})"
    if head == "faq" and rest:
        number, _, inner = rest.partition(".")
        vi, en = next(((v, e) for n, v, e in FAQ_FIELDS if n == inner.split(".")[0]), ("", ""))
        which = int(number) + 1 if number.isdigit() else number
        return (
            f"Câu hỏi thường gặp {which}" + (f": {vi}" if vi else ""),
            f"FAQ variant {which}" + (f": {en}" if en else ""),
        )
    top = next(((v, e) for n, v, e, _ in TOP_FIELDS if n == head), None)
    return top or OTHER_LABELS.get(head, (name, name))


def shown(value: Any) -> str:
    """A record value as text: lists one item a line, FAQ variants with their language and answer."""
    if value in (None, "", []):
        return "—"
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, dict):
                answer = f" → {item['answer']}" if item.get("answer") else ""
                lines.append(f"[{item.get('lang', 'vi')}] " + " | ".join(item.get("questions", [])) + answer)
            else:
                lines.append(f"• {item}")
        return "\n".join(lines)
    return str(value)


def diff_rows(diff: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A version's diff for the page: each field's label, its value before and after, long ones shortened."""
    rows = []
    for change in diff:
        before, after = shown(change.get("before")), shown(change.get("after"))
        rows.append(
            {
                "field": change["field"],
                "label": field_label(change["field"]),
                "before": before,
                "after": after,
                "before_short": _short(before),
                "after_short": _short(after),
            }
        )
    return rows


def _short(text: str) -> str | None:
    """The beginning of a long text, or None when it is short enough to show whole."""
    return text[:SHORT_VALUE].rstrip() + " …" if len(text) > SHORT_VALUE else None


def _date(value: dt.date | str | None) -> str:
    """A date as Vietnamese readers write it."""
    if not value:
        return "—"
    day = dt.date.fromisoformat(value) if isinstance(value, str) else value
    return day.strftime("%d/%m/%Y")


def _safe_link(url: str | None) -> str | None:
    """A link worth making clickable: only http(s), so that a typed javascript: URL stays text."""
    return url if url and re.match(r"https?://", url, re.I) else None


def _today() -> dt.date:
    return utcnow().astimezone(VN).date()


ENV.filters.update(kb_date=_date)
ENV.globals.update(KB_ORIGINS=ORIGINS, KB_STATUSES=STATUSES, KB_STATES=STATES, KB_LANGS=LANGS)


def _problems(exc: Exception) -> list[dict[str, Any]]:
    """A refusal as a list of problems, each naming its field (when it has one) and that field's label."""
    message = str(exc)
    body = re.sub(r"^\d+ error\(s\), nothing (saved|imported):\s*", "", message)
    if "\n" in body:  # a file's problems: one a line
        return [_problem("", line.strip()) for line in body.splitlines() if line.strip()]
    found = list(_FIELD.finditer(body))
    if not found:
        return [_problem("", message)]
    problems = [_problem(m.group(1), m.group(2).strip()) for m in found]
    more = re.search(r"… and \d+ more", body)
    if more:
        problems.append(_problem("", more.group(0)))
    return problems


def _problem(field: str, message: str) -> dict[str, Any]:
    """One problem: its field, the field's label, the message, and (set by the edit page) the input to link."""
    return {"field": field, "label": field_label(field) if field else None, "message": message, "input": None}


def _notice(done: str | None, again: bool) -> dict[str, Any] | None:
    if done not in DONE:
        return None
    return {"vi": DONE[done][0], "en": DONE[done][1], "again": again}


def _redirect(slug: str, done: str, again: bool = False) -> RedirectResponse:
    query = {"done": done, **({"again": "1"} if again else {})}
    return RedirectResponse(f"{KB}/{quote(slug, safe='')}?{urlencode(query)}", status_code=303)


# -- the list ------------------------------------------------------------------------------------------------


@router.get("/kb")
def kb_list(
    actor: ActorDep,
    q: Annotated[str, Query(max_length=200)] = "",
    category: Annotated[str, Query(max_length=200)] = "",
    origin: Annotated[str, Query(max_length=20)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    stale: Annotated[str, Query(max_length=5)] = "",
    stale_days: Annotated[int | None, Query(ge=1, le=36_500)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """Every staff role: procedures by slug, code or title words, filtered; stale ones marked; drafts waiting."""
    if origin and origin not in ORIGINS:
        raise Invalid(f"origin: {origin!r}; one of {', '.join(ORIGINS)}")
    if status and status not in STATUSES:
        raise Invalid(f"status: {status!r}; one of {', '.join(STATUSES)}")
    default_days = get_settings().kb_stale_days
    stale_days = stale_days or default_days
    threshold = _today() - dt.timedelta(days=stale_days)
    with session_scope() as session:
        found, total = versions.search_procedures(
            session,
            search=q,
            category=category or None,
            origin=origin or None,
            status=status or None,
            verified_before=threshold if stale else None,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        _, stale_total = versions.search_procedures(session, verified_before=threshold, limit=0)
        drafted = kb_admin.slugs_with_drafts(session, [p.slug for p in found])
        rows = [
            {
                "slug": p.slug,
                "title": p.text("vi").title if p.text("vi") else p.slug,
                "code": p.code,
                "category": p.category,
                "origin": p.origin,
                "status": p.status,
                "revision": p.revision,
                "last_verified": p.last_verified,
                "stale": p.last_verified is None or p.last_verified < threshold,
                "draft": p.slug in drafted,
            }
            for p in found
        ]
        drafts = _drafts_waiting(session) if versions.may_publish(actor.role) else []
        categories = kb_admin.categories(session)
    kept = {"q": q, "category": category, "origin": origin, "status": status, "stale": stale}
    kept = {k: v for k, v in kept.items() if v}
    if stale_days != default_days:
        kept["stale_days"] = str(stale_days)

    def href(**change: Any) -> str:
        merged = {**kept, **change}
        query = urlencode({k: v for k, v in merged.items() if v not in ("", None, 1)})
        return f"{KB}?{query}" if query else KB

    return render(
        "kb_list.html",
        actor,
        title=("Thủ tục", "Procedures"),
        current="kb",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        href=href,
        query={
            "q": q,
            "category": category,
            "origin": origin,
            "status": status,
            "stale": stale,
            "stale_days": stale_days,
        },
        categories=categories,
        threshold=threshold,
        stale_total=stale_total,
        stale_href=href(stale="1", page=1),
        drafts=drafts,
        **_rights(actor),
    )


def _drafts_waiting(session: Session) -> list[dict[str, Any]]:
    """The drafts admins have to review, oldest first."""
    waiting = versions.open_drafts(session)
    names = kb_admin.titles(session, [d.slug for d in waiting])
    return [
        {
            "slug": d.slug,
            "title": names.get(d.slug) or (d.record.get("vi") or {}).get("title") or d.slug,
            "new": d.base_revision == 0 and d.slug not in names,
            "author": d.author,
            "reason": d.reason,
            "created_at": d.created_at,
            "fields": [field_label(c["field"]) for c in d.diff],
        }
        for d in waiting
    ]


# -- what changed --------------------------------------------------------------------------------------------


@router.get("/kb/changes")
def kb_changes(actor: ActorDep, days: Annotated[int | None, Query(ge=1, le=3650)] = None) -> Response:
    """Every staff role: the published changes of any procedure, newest first, with who, when, why and what."""
    since = utcnow() - dt.timedelta(days=days) if days else None
    with session_scope() as session:
        changes = versions.recent_changes(session, since=since, limit=CHANGES_SHOWN)
        names = kb_admin.titles(session, [c.slug for c in changes])
        rows = [
            {
                "slug": c.slug,
                "title": names.get(c.slug) or (c.record.get("vi") or {}).get("title") or c.slug,
                "number": c.number,
                "author": c.author,
                "published_by": c.published_by,
                "published_at": c.published_at,
                "reason": c.reason,
                "diff": diff_rows(c.diff),
            }
            for c in changes
        ]
    return render(
        "kb_changes.html",
        actor,
        title=("Thay đổi gần đây", "What changed"),
        current="kb",
        rows=rows,
        days=days,
        limit=CHANGES_SHOWN,
    )


# -- the bulk import (admins) --------------------------------------------------------------------------------


def _import_page(actor: Actor, *, status: int = 200, **context: Any) -> Response:
    return render(
        "kb_import.html",
        actor,
        title=("Nhập thủ tục từ tệp", "Import procedures from a file"),
        current="kb",
        status=status,
        submission=new_submission_key,
        max_bytes=MAX_IMPORT_BYTES,
        suffixes=IMPORT_SUFFIXES,
        **{"errors": [], "changes": None, "name": "", "again": False, **context},
    )


@router.get("/kb/import")
def kb_import_form(actor: ActorDep, done: Done = None) -> Response:
    """Admins: the form to upload a YAML, JSON, JSON Lines or CSV file of procedures."""
    _allow(actor, "publish", "dashboard:kb:import")
    return _import_page(actor, again=done == "again")


@router.post("/kb/import")
def kb_import(
    request: Request,
    actor: ActorDep,
    file: Annotated[UploadFile | None, File()] = None,
    csrf: CsrfField = "",
    submission: Key = "",
) -> Response:
    """Admins: every record of the file published as a version, in one transaction; any error and nothing is."""
    guard_form(request, csrf)
    _allow(actor, "publish", "dashboard:kb:import")
    name = ""
    try:
        name, raw = _read_upload(file)
        now = utcnow()
        with session_scope() as session:
            record_submission(session, submission, actor.user_id, now)
            changes = kb_admin.import_versions(
                session, raw, name, author=actor.username, role=actor.role, now=now, reserved=RESERVED_SLUGS
            )
    except AlreadySubmitted:
        return RedirectResponse(f"{KB}/import?done=again", status_code=303)
    except Invalid as exc:
        return _import_page(actor, status=422, errors=_problems(exc), name=name)
    counts = {outcome: sum(c.outcome == outcome for c in changes) for outcome in ("created", "updated", "unchanged")}
    return _import_page(actor, changes=changes, counts=counts, name=name)


def _read_upload(file: UploadFile | None) -> tuple[str, list[dict[str, Any]]]:
    """The uploaded file's name (made safe) and its raw records; Invalid names what is wrong with it."""
    if file is None or not file.filename:
        raise Invalid("field 'file': choose a file to import")
    name = _SAFE_NAME.sub("_", PurePath(file.filename.replace("\\", "/")).name).strip("._")[:100] or "upload"
    plain = name.removesuffix(".gz")
    if not plain.lower().endswith(IMPORT_SUFFIXES):
        raise Invalid(f"field 'file': {name}: the name must end in {', '.join(IMPORT_SUFFIXES)} (or .gz of one)")
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise Invalid(f"field 'file': {name} is larger than {MAX_IMPORT_BYTES:,} bytes; split it into smaller files")
    if not data.strip():
        raise Invalid(f"field 'file': {name} is empty")
    with tempfile.TemporaryDirectory(prefix="motcua-import-") as folder:
        path = FilePath(folder) / name
        path.write_bytes(data)
        try:
            return name, read_records(path)
        except Invalid as exc:  # the file's messages name the temporary path: the person knows it by its name
            raise Invalid(str(exc).replace(str(path), name)) from None


# -- new and edit --------------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _clean(text: str) -> str:
    """A field as typed, without the browser's CRLF line ends and the spaces around it."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def record_from_form(form: dict[str, str], base: dict[str, Any] | None, slug: str | None = None) -> dict[str, Any]:
    """The record a submitted edit form describes; what the form does not show is kept from base (status,
    successor, the fields of ko/ru/pl texts beyond title and search phrases)."""
    base = base or {}

    def get(name: str) -> str:
        return _clean(form.get(name, ""))

    record: dict[str, Any] = {"slug": slug or get("slug")}
    for name, _, _, _kind in TOP_FIELDS:
        record[name] = get(name)
    for name in ("code", "last_verified"):  # empty means none: no code, never verified
        record[name] = record[name] or None
    for lang in CONTENT_LANGS:
        text: dict[str, Any] = {}
        for name, _, _, kind in TEXT_FIELDS:
            value: Any = _lines(get(f"{lang}.{name}")) if kind == "list" else get(f"{lang}.{name}")
            if value:
                text[name] = value
        if text or lang == "vi":  # Vietnamese is required: an empty one is reported as its missing title
            record[lang] = text
    for lang in TITLE_LANGS:
        kept = {k: v for k, v in (base.get(lang) or {}).items() if k not in ("title", "aliases")}
        text = {**kept, "title": get(f"{lang}.title"), "aliases": _lines(get(f"{lang}.aliases"))}
        text = {k: v for k, v in text.items() if v not in ("", [], None)}
        if text:
            record[lang] = text
    faq = []
    for index in sorted({int(m.group(1)) for k in form if (m := re.fullmatch(r"faq\.(\d+)\.\w+", k))}):
        questions, answer = _lines(get(f"faq.{index}.questions")), get(f"faq.{index}.answer")
        if questions or answer:
            faq.append({"lang": get(f"faq.{index}.lang") or "vi", "questions": questions, "answer": answer or None})
    record["faq"] = faq
    record["status"] = base.get("status", versions.ACTIVE)
    record["successor"] = base.get("successor")
    return record


def values_from_record(record: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The form's field values (by input name) and FAQ rows showing a record."""
    values: dict[str, str] = {"slug": record.get("slug") or ""}
    for name, _, _, _kind in TOP_FIELDS:
        values[name] = str(record.get(name) or "")
    for lang in LANGS:
        text = record.get(lang) or {}
        for name, _, _, _kind in TEXT_FIELDS:
            value = text.get(name) or ""
            values[f"{lang}.{name}"] = "\n".join(value) if isinstance(value, list) else str(value)
    rows = [
        {
            "lang": f.get("lang") or "vi",
            "questions": "\n".join(f.get("questions") or []),
            "answer": f.get("answer") or "",
        }
        for f in record.get("faq") or []
    ]
    return values, rows


def values_from_form(form: dict[str, str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """What was typed, to show the form again as it was sent."""
    values = {key: value for key, value in form.items() if not key.startswith("faq.")}
    indexes = sorted({int(m.group(1)) for k in form if (m := re.fullmatch(r"faq\.(\d+)\.\w+", k))})
    rows = [
        {name: form.get(f"faq.{i}.{name}", "") for name, _, _ in FAQ_FIELDS}
        for i in indexes
        if any(form.get(f"faq.{i}.{name}", "").strip() for name in ("questions", "answer"))
    ]
    return values, rows


def _edit_page(
    actor: Actor,
    *,
    slug: str | None,
    values: dict[str, str],
    faq: list[dict[str, str]],
    if_match: int,
    status: int = 200,
    problems: list[dict[str, Any]] | None = None,
    conflict: dict[str, Any] | None = None,
    draft: Any = None,
    stale_draft: Any = None,
) -> Response:
    """The edit form (or the new-procedure form when slug is None)."""
    problems = problems or []
    names = _input_names(len(faq) + EMPTY_FAQ_ROWS)
    for problem in problems:
        problem["input"] = _input_for(problem["field"], names)
    title = values.get("vi.title") or slug or ""
    return render(
        "kb_edit.html",
        actor,
        title=(f"Sửa: {title}", f"Edit: {title}") if slug else ("Thêm thủ tục", "New procedure"),
        current="kb",
        status=status,
        slug=slug,
        values=values,
        faq=[*faq, *({"lang": "vi", "questions": "", "answer": ""} for _ in range(EMPTY_FAQ_ROWS))],
        if_match=if_match,
        problems=problems,
        invalid={p["input"] for p in problems if p["input"]},
        conflict=conflict,
        draft=draft,
        stale_draft=stale_draft,
        top_fields=TOP_FIELDS,
        text_fields=TEXT_FIELDS,
        content_langs=CONTENT_LANGS,
        title_langs=TITLE_LANGS,
        max_length={**MAX_LENGTH, "text": MAX_TEXT},
        submission=new_submission_key,
        **_rights(actor),
    )


def _input_names(faq_rows: int) -> set[str]:
    names = {"slug", "reason", *(n for n, _, _, _ in TOP_FIELDS)}
    names |= {f"{lang}.{n}" for lang in LANGS for n, _, _, _ in TEXT_FIELDS}
    names |= {f"faq.{i}.{n}" for i in range(faq_rows) for n, _, _ in FAQ_FIELDS}
    return names


def _input_for(field: str, names: set[str]) -> str | None:
    """The form input a problem's field belongs to ('vi.steps.3' → 'vi.steps'; 'vi' → its title)."""
    parts = field.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in names:
            return candidate
    return f"{field}.title" if f"{field}.title" in names else None


@router.get("/kb/new")
def kb_new(actor: ActorDep) -> Response:
    """Supervisors and admins: the form for a new procedure."""
    _allow(actor, "propose", "dashboard:kb:new")
    values, faq = values_from_record({})
    return _edit_page(actor, slug=None, values=values, faq=faq, if_match=0)


@router.post("/kb")
def kb_create(request: Request, actor: ActorDep, form: FormDep) -> Response:
    """Save a new procedure as a draft, or (admins) publish it at once; a slug in use is refused."""
    return _save(request, actor, form, slug=None)


@router.get("/kb/{slug}")
def kb_procedure(slug: SlugPath, actor: ActorDep, done: Done = None, again: bool = False) -> Response:
    """Every staff role: the card as citizens see it, facts, FAQ variants, the waiting draft and the history."""
    return _procedure_page(actor, slug, notice=_notice(done, again))


@router.get("/kb/{slug}/edit")
def kb_edit(slug: SlugPath, actor: ActorDep) -> Response:
    """Supervisors and admins: every field of the procedure, per language, to save as a draft or publish."""
    _allow(actor, "propose", "dashboard:kb:edit")
    with session_scope() as session:
        start = kb_admin.editable(session, slug)
        if start is None:
            raise NotFound(f"no procedure with slug {slug!r}")
        draft = _version_facts(start.draft) if start.draft else None
        stale = _version_facts(start.stale_draft) if start.stale_draft else None
    values, faq = values_from_record(start.record)
    return _edit_page(actor, slug=slug, values=values, faq=faq, if_match=start.revision, draft=draft, stale_draft=stale)


@router.post("/kb/{slug}")
def kb_save(request: Request, slug: SlugPath, actor: ActorDep, form: FormDep) -> Response:
    """Save the edit as the procedure's draft, or (admins) publish it at once."""
    return _save(request, actor, form, slug=slug)


def _save(request: Request, actor: Actor, form: dict[str, str], *, slug: str | None) -> Response:
    """One edit form sent: checked, then stored as a draft or published, once; else the form again with why."""
    guard_form(request, form.get("csrf"))
    publish_now = form.get("action") == "publish"
    _allow(actor, "publish" if publish_now else "propose", "dashboard:kb:" + ("publish" if publish_now else "save"))
    values, faq = values_from_form(form)
    now = utcnow()
    saved = slug or _clean(form.get("slug", ""))
    if_match = 0
    try:
        if_match = _if_match(form.get("if_match", ""))
        with session_scope() as session:
            record_submission(session, form.get("submission", ""), actor.user_id, now)
            start = kb_admin.editable(session, slug) if slug else None
            if slug and start is None:
                raise NotFound(f"no procedure with slug {slug!r}")
            raw = record_from_form(form, start.record if start else None, slug)
            if slug is None:
                _check_new(session, raw)
            saved = raw["slug"]
            change = versions.save_and_publish if publish_now else versions.save_draft
            change(
                session,
                raw,
                author=actor.username,
                role=actor.role,
                reason=form.get("reason", ""),
                now=now,
                slug=slug,
                if_match=if_match if slug else 0,
            )
    except AlreadySubmitted:
        return _redirect(saved, "published" if publish_now else "draft", again=True)
    except Conflict as exc:
        conflict = _conflict(slug or "", if_match, str(exc))
        return _edit_page(
            actor, slug=slug, values=values, faq=faq, if_match=conflict["revision"], status=409, conflict=conflict
        )
    except Invalid as exc:
        return _edit_page(
            actor, slug=slug, values=values, faq=faq, if_match=if_match, status=422, problems=_problems(exc)
        )
    return _redirect(saved, "published" if publish_now else "draft")


def _if_match(value: str) -> int:
    """The revision the form was loaded at."""
    if not value.strip().isdigit() or len(value.strip()) > 9:
        raise Invalid(f"field 'if_match': {value[:20]!r} is not a revision number; reload the form")
    return int(value)


def _check_new(session: Session, raw: dict[str, Any]) -> None:
    """A new procedure's slug must be free: refused with every other problem of the record listed too."""
    taken = kb_admin.new_slug_problems(session, raw.get("slug") or "", reserved=RESERVED_SLUGS)
    if not taken:
        return
    others: list[str] = []
    try:
        versions.validated(raw)
    except Invalid as exc:
        others = [f"field '{p['field']}': {p['message']}" for p in _problems(exc) if p["field"]]
    problems = taken + others
    raise Invalid(f"{len(problems)} error(s), nothing saved: " + "; ".join(problems))


def _conflict(slug: str, started: int, message: str) -> dict[str, Any]:
    """What was published since the edit started, so that saving again is a choice made knowing it."""
    with session_scope() as session:
        proc = versions.get_live(session, slug)
        since = [
            _version_facts(v)
            for v in versions.history(session, slug)
            if v.state == versions.PUBLISHED and v.number is not None and v.number > started
        ]
    return {"message": message, "revision": proc.revision if proc else started, "since": since, "started": started}


# -- one procedure -------------------------------------------------------------------------------------------


def _version_facts(version: Any) -> dict[str, Any]:
    return {
        "id": version.id,
        "number": version.number,
        "state": version.state,
        "base_revision": version.base_revision,
        "author": version.author,
        "reason": version.reason,
        "created_at": version.created_at,
        "published_by": version.published_by,
        "published_at": version.published_at,
        "diff": diff_rows(version.diff),
    }


def _procedure_page(
    actor: Actor, slug: str, *, status: int = 200, notice: dict[str, Any] | None = None, error: str | None = None
) -> Response:
    stale_days = get_settings().kb_stale_days
    with session_scope() as session:
        proc = versions.get_live(session, slug)
        history = versions.history(session, slug)
        if proc is None and not history:
            raise NotFound(f"no procedure with slug {slug!r}")
        draft = versions.open_draft(session, slug)
        facts = None
        cards: dict[str, str] = {}
        successors: list[tuple[str, str]] = []
        successor_title = None
        if proc is not None:
            record = versions.live_record(proc)
            facts = {
                **{k: record.get(k) for k in ("code", "category", "authority", "source", "last_verified")},
                "title": proc.text("vi").title if proc.text("vi") else slug,
                "title_en": (record.get("en") or {}).get("title"),
                "online_link": proc.online_link,
                "link": _safe_link(proc.online_link),
                "origin": proc.origin,
                "status": proc.status,
                "successor": proc.successor_slug,
                "revision": proc.revision,
                "updated_at": proc.updated_at,
                "stale": proc.last_verified is None or proc.last_verified < _today() - dt.timedelta(days=stale_days),
            }
            cards = {
                lang: render_card(procedure_card(session, slug, lang), lang, "full").text for lang in CONTENT_LANGS
            }
            if proc.status == versions.ACTIVE and versions.may_publish(actor.role):
                successors = kb_admin.successor_choices(session, proc)
            if proc.successor_slug:
                successor_title = kb_admin.titles(session, [proc.successor_slug]).get(proc.successor_slug)
        else:
            record = dict(draft.record) if draft else dict(history[0].record)
        faq = (
            [
                {"lang": e.lang, "questions": list(e.questions), "answer": e.answer, "source": e.source}
                for e in versions.faq_entries(session, slug=slug, limit=500)
            ]
            if proc is not None
            else []
        )
        versions_shown = [_version_facts(v) for v in history]
        draft_card = _draft_card(draft, slug) if draft else None
    current = proc.revision if proc is not None else None
    return render(
        "kb_procedure.html",
        actor,
        title=((facts or {}).get("title") or (record.get("vi") or {}).get("title") or slug, slug),
        current="kb",
        status=status,
        slug=slug,
        facts=facts,
        cards=cards,
        faq=faq,
        draft=_version_facts(draft) if draft else None,
        draft_card=draft_card,
        history=versions_shown,
        current_revision=current,
        successors=successors,
        successor_title=successor_title,
        notice=notice,
        error=error,
        stale_days=stale_days,
        submission=new_submission_key,
        **_rights(actor),
    )


def _draft_card(draft: Any, slug: str) -> str | None:
    """The Vietnamese card the draft would give citizens once published (None if it no longer validates)."""
    try:
        preview = versions.preview_procedure(versions.validated(draft.record, slug=slug))
    except Invalid:
        return None
    return render_card(card_of(preview, "vi"), "vi", "full").text


def _act(
    request: Request,
    actor: Actor,
    slug: str,
    csrf: str,
    submission: str,
    action: str,
    need: str,
    do: Callable[[Session, dt.datetime], object],
) -> Response:
    """One button of the procedure page, once (the form's key); refused or stale: the page again, with why."""
    guard_form(request, csrf)
    _allow(actor, need, f"dashboard:kb:{action}")
    now = utcnow()
    try:
        with session_scope() as session:
            record_submission(session, submission, actor.user_id, now)
            do(session, now)
    except AlreadySubmitted:
        return _redirect(slug, action, again=True)
    except (Conflict, Invalid) as exc:
        return _procedure_page(actor, slug, status=409 if isinstance(exc, Conflict) else 422, error=str(exc))
    return _redirect(slug, action)


@router.post("/kb/{slug}/publish")
def kb_publish(
    request: Request,
    slug: SlugPath,
    actor: ActorDep,
    if_match: Annotated[str, Form(max_length=20)] = "",
    draft: Annotated[str, Form(max_length=20)] = "",
    csrf: CsrfField = "",
    submission: Key = "",
) -> Response:
    """Admins: publish the waiting draft they read (refused when it was replaced or published over since)."""

    def do(session: Session, now: dt.datetime) -> object:
        return kb_admin.publish_seen(
            session,
            slug,
            draft_id=_if_match(draft) if draft else None,
            publisher=actor.username,
            role=actor.role,
            now=now,
            if_match=_if_match(if_match) if if_match else None,
        )

    return _act(request, actor, slug, csrf, submission, "published", "publish", do)


@router.post("/kb/{slug}/discard")
def kb_discard(
    request: Request, slug: SlugPath, actor: ActorDep, csrf: CsrfField = "", submission: Key = ""
) -> Response:
    """Supervisors and admins: drop the waiting draft (it stays in the history as discarded)."""
    return _act(
        request,
        actor,
        slug,
        csrf,
        submission,
        "discarded",
        "propose",
        lambda session, _now: versions.discard_draft(session, slug, role=actor.role),
    )


@router.post("/kb/{slug}/rollback")
def kb_rollback(
    request: Request,
    slug: SlugPath,
    actor: ActorDep,
    number: Annotated[int, Form(ge=0, le=2**31 - 1)],
    reason: Reason = "",
    csrf: CsrfField = "",
    submission: Key = "",
) -> Response:
    """Admins: publish an earlier version's content again, as a new version."""
    return _act(
        request,
        actor,
        slug,
        csrf,
        submission,
        "rolled-back",
        "publish",
        lambda session, now: versions.rollback(
            session, slug, number, author=actor.username, role=actor.role, reason=reason, now=now
        ),
    )


@router.post("/kb/{slug}/retire")
def kb_retire(
    request: Request,
    slug: SlugPath,
    actor: ActorDep,
    successor: Annotated[str, Form(max_length=120)] = "",
    other: Annotated[str, Form(max_length=120)] = "",
    reason: Reason = "",
    csrf: CsrfField = "",
    submission: Key = "",
) -> Response:
    """Admins: stop answering with the procedure, naming the one that replaces it (chosen or typed), if any."""
    chosen = other.strip() or successor.strip() or None
    return _act(
        request,
        actor,
        slug,
        csrf,
        submission,
        "retired",
        "publish",
        lambda session, now: versions.retire(
            session, slug, author=actor.username, role=actor.role, reason=reason, now=now, successor=chosen
        ),
    )


@router.post("/kb/{slug}/restore")
def kb_restore(
    request: Request, slug: SlugPath, actor: ActorDep, reason: Reason = "", csrf: CsrfField = "", submission: Key = ""
) -> Response:
    """Admins: answer with a retired procedure again."""
    return _act(
        request,
        actor,
        slug,
        csrf,
        submission,
        "restored",
        "publish",
        lambda session, now: versions.restore(
            session, slug, author=actor.username, role=actor.role, reason=reason, now=now
        ),
    )


@router.post("/kb/{slug}/verify")
def kb_verify(
    request: Request, slug: SlugPath, actor: ActorDep, csrf: CsrfField = "", submission: Key = ""
) -> Response:
    """Admins: one click marks the content checked against the official source today."""
    return _act(
        request,
        actor,
        slug,
        csrf,
        submission,
        "verified",
        "publish",
        lambda session, now: versions.verify(
            session, slug, author=actor.username, role=actor.role, today=_today(), now=now
        ),
    )
