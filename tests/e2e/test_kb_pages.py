"""The knowledge base's dashboard pages over real HTTP and in chromium: who may, CSRF, once-only, escaping, bad input,
stale edits, the bulk import, and an admin's new fee answered in the web chat."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from admin_api import dashboard_kb
from core.db import session_scope
from helpdesk.accounts import create_user
from helpdesk.models import Department, TicketEvent
from helpdesk.sla import VN
from helpdesk.submissions import new_submission_key
from knowledge import versions
from knowledge.models import Procedure, ProcedureVersion, utcnow
from tests.conftest import running_app
from tests.e2e.conftest import contrast_problems

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "kb pages password"
ROLES = ("official", "supervisor", "admin", "anonymous")
USERNAMES = {"official": "kb.canbo", "supervisor": "kb.truongphong", "admin": "kb.admin"}
CURATED = "id-card-first-issuance"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
WAIT_MS = 10_000
_numbers = itertools.count()


def fresh(prefix: str = "kb-test") -> str:
    """A slug no other test of the module uses."""
    return f"{prefix}-{next(_numbers)}"


# -- fixtures and helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(module_database: str) -> Iterator[str]:
    """One real app for the module (SQLite, then PostgreSQL); tests that change a procedure make their own."""
    with running_app() as base:
        yield base


@pytest.fixture(scope="module")
def people(live_server: str) -> dict[str, str]:
    """An official and a supervisor of one department, and an admin: role → username."""
    with session_scope() as session:
        session.add(Department(slug="kb-dept", name="Phòng thử thủ tục", name_en="Test department"))
    with session_scope() as session:
        for role, username in USERNAMES.items():
            create_user(
                session,
                username=username,
                password=PASSWORD,
                role=role,
                department=None if role == "admin" else "kb-dept",
            )
    return USERNAMES


class Forms(HTMLParser):
    """The POST forms of a page, each as a browser would send it: inputs, textareas and the selected options."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._form: dict[str, str] | None = None
        self._textarea: str | None = None
        self._select: str | None = None
        self._first_option = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Collect the fields of the form being read."""
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and values.get("method") == "post":
            self._form = self.forms.setdefault(values["action"], {})
        elif self._form is None:
            return
        elif tag == "input" and "name" in values and values.get("type") not in ("checkbox", "file", "submit"):
            self._form[values["name"]] = values.get("value", "")
        elif tag == "textarea":
            self._textarea = values["name"]
            self._form[self._textarea] = ""
        elif tag == "select":
            self._select, self._first_option = values["name"], True
        elif tag == "option" and self._select is not None:
            if self._first_option or "selected" in values:
                self._form[self._select] = values.get("value", "")
            self._first_option = False

    def handle_data(self, data: str) -> None:
        """A textarea's text."""
        if self._form is not None and self._textarea is not None:
            self._form[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        """A form, textarea or select ends."""
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def form_of(page: httpx.Response, action: str) -> dict[str, str]:
    """The fields of the page's form posting to action."""
    forms = Forms(page.text).forms
    assert action in forms, f"no form to {action} on the page; forms: {sorted(forms)}"
    return dict(forms[action])


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def logged_in(base: str, username: str | None) -> httpx.Client:
    """An HTTP client with the dashboard's cookies, signed in as username (None: anonymous, CSRF cookie only)."""
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
    token = csrf_of(client.get("/dashboard/login"))
    if username is not None:
        sent = client.post("/dashboard/login", data={"username": username, "password": PASSWORD, "csrf": token})
        assert sent.status_code == 303, sent.text
    return client


@pytest.fixture(scope="module")
def clients(live_server: str, people: dict[str, str]) -> Iterator[dict[str, httpx.Client]]:
    """One signed-in client per role, and an anonymous one."""
    made = {role: logged_in(live_server, people.get(role)) for role in ROLES}
    yield made
    for client in made.values():
        client.close()


def token_of(client: httpx.Client) -> str:
    return csrf_of(client.get("/dashboard/login"))


def post(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    """A POST with this client's CSRF token and a fresh once-only key (unless given)."""
    return client.post(path, data={"csrf": token_of(client), "submission": new_submission_key(), **fields})


def record(slug: str, fee: str = "50.000 đồng", **top: Any) -> dict[str, Any]:
    """A small valid procedure record."""
    return {
        "slug": slug,
        "category": "kb-test",
        "authority": "commune",
        "vi": {"title": f"Thủ tục thử {slug}", "fees": fee, "documents": ["Tờ khai", "Bản sao giấy tờ"]},
        "en": {"title": f"Test procedure {slug}", "fees": "VND 50,000"},
        "faq": [{"lang": "vi", "questions": [f"hỏi về {slug}?"], "answer": "Trả lời thử."}],
        **top,
    }


def publish_directly(slug: str, fee: str = "50.000 đồng", **top: Any) -> int:
    """Publish a procedure's record through the service (as an admin elsewhere would); its revision."""
    with session_scope() as session:
        proc = versions.save_and_publish(
            session, record(slug, fee, **top), author="elsewhere", role="admin", reason="set up", now=utcnow()
        )
        return proc.revision


def draft_directly(slug: str, fee: str) -> None:
    """A supervisor's draft of the procedure, written through the service."""
    with session_scope() as session:
        proc = versions.get_live(session, slug)
        versions.save_draft(
            session,
            record(slug, fee),
            author="elsewhere",
            role="supervisor",
            reason="draft",
            now=utcnow(),
            if_match=proc.revision if proc else 0,
        )


def live(slug: str) -> dict[str, Any] | None:
    """The procedure as published now (None when there is none)."""
    with session_scope() as session:
        proc = versions.get_live(session, slug)
        return versions.live_record(proc) | {"revision": proc.revision} if proc else None


def fee_of(slug: str) -> str | None:
    found = live(slug)
    return found["vi"].get("fees") if found else None


def version_count(slug: str) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).where(ProcedureVersion.slug == slug)) or 0


def has_draft(slug: str) -> bool:
    with session_scope() as session:
        return versions.open_draft(session, slug) is not None


def denials(username: str) -> list[str]:
    with session_scope() as session:
        rows = session.scalars(
            select(TicketEvent).where(TicketEvent.kind == "denied", TicketEvent.actor == username)
        ).all()
    return [e.data["action"] for e in rows]


def to_login(response: httpx.Response, path: str) -> bool:
    """The anonymous answer: a redirect to the sign-in form that comes back to path."""
    location = response.headers.get("location", "")
    return (
        response.status_code == 303
        and location.startswith("/dashboard/login?next=")
        and path in location.replace("%2F", "/")
    )


def today() -> str:
    return utcnow().astimezone(VN).date().isoformat()


# -- the permission matrix ---------------------------------------------------------------------------------

EVERYONE = {"official", "supervisor", "admin"}
PAGES = [  # path, roles answered 200 (every other signed-in role: 403, anonymous: to the login form)
    ("/dashboard/kb", EVERYONE),
    ("/dashboard/kb?q=khai+sinh&origin=curated&status=published&stale=1&stale_days=30", EVERYONE),
    ("/dashboard/kb/changes", EVERYONE),
    (f"/dashboard/kb/{CURATED}", EVERYONE),
    (f"/dashboard/kb/{CURATED}/edit", {"supervisor", "admin"}),
    ("/dashboard/kb/new", {"supervisor", "admin"}),
    ("/dashboard/kb/import", {"admin"}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "allowed"), PAGES)
def test_every_page_answers_each_role_as_it_should(
    clients: dict[str, httpx.Client], people: dict[str, str], role: str, path: str, allowed: set[str]
) -> None:
    before = denials(people.get(role, "-"))
    response = clients[role].get(path)
    if role == "anonymous":
        assert to_login(response, path.split("?")[0])
        return
    expected = 200 if role in allowed else 403
    assert response.status_code == expected, response.text[:500]
    assert response.headers["cache-control"] == "no-store"
    if expected == 403:
        assert "Không có quyền truy cập" in response.text
        assert len(denials(people[role])) == len(before) + 1  # the refusal is in the audit trail
    else:
        assert len(denials(people[role])) == len(before)


def test_officials_read_without_a_single_button(clients: dict[str, httpx.Client]) -> None:
    for path in ("/dashboard/kb", f"/dashboard/kb/{CURATED}", "/dashboard/kb/changes"):
        page = clients["official"].get(path).text
        assert [a for a in Forms(page).forms if a.startswith("/dashboard/kb")] == [], path
        assert "/edit" not in page
        assert "/dashboard/kb/new" not in page
        assert "/dashboard/kb/import" not in page
    supervisor = clients["supervisor"].get(f"/dashboard/kb/{CURATED}").text
    assert f"/dashboard/kb/{CURATED}/edit" in supervisor
    assert "/verify" not in supervisor
    assert "/rollback" not in supervisor
    assert "/retire" not in supervisor
    edit = clients["supervisor"].get(f"/dashboard/kb/{CURATED}/edit").text
    assert 'value="draft"' in edit
    assert 'value="publish"' not in edit
    admin = clients["admin"].get(f"/dashboard/kb/{CURATED}").text
    assert "/verify" in admin
    assert "/retire" in admin
    assert 'value="publish"' in clients["admin"].get(f"/dashboard/kb/{CURATED}/edit").text


@dataclass
class Action:
    """A POST form of these pages: how to send it, who may, what success answers and how to see it happened."""

    name: str
    allowed: set[str]
    send: Callable[[httpx.Client, dict[str, Any], dict[str, str]], tuple[httpx.Response, Callable[[], bool]]]
    success: int = 303


def _edit_form(clients: dict[str, httpx.Client], slug: str, client: httpx.Client) -> dict[str, str]:
    """The edit form as the admin's browser shows it, with the sending client's CSRF token and a new key."""
    form = form_of(clients["admin"].get(f"/dashboard/kb/{slug}/edit"), f"/dashboard/kb/{slug}")
    return {**form, "csrf": token_of(client), "submission": new_submission_key()}


def _save_draft(client: httpx.Client, clients: dict[str, Any], extra: dict[str, str]) -> Any:
    slug = fresh()
    publish_directly(slug)
    fields = {**_edit_form(clients, slug, client), "vi.fees": "Đã sửa: 60.000 đồng", "action": "draft", **extra}
    return client.post(f"/dashboard/kb/{slug}", data=fields), lambda: has_draft(slug) and fee_of(slug) == "50.000 đồng"


def _save_and_publish(client: httpx.Client, clients: dict[str, Any], extra: dict[str, str]) -> Any:
    slug = fresh()
    publish_directly(slug)
    fields = {**_edit_form(clients, slug, client), "vi.fees": "70.000 đồng", "action": "publish", **extra}
    return client.post(f"/dashboard/kb/{slug}", data=fields), lambda: fee_of(slug) == "70.000 đồng"


def _create(client: httpx.Client, clients: dict[str, Any], extra: dict[str, str]) -> Any:
    slug = fresh("kb-new")
    form = form_of(clients["admin"].get("/dashboard/kb/new"), "/dashboard/kb")
    fields = {
        **form,
        "csrf": token_of(client),
        "submission": new_submission_key(),
        "slug": slug,
        "vi.title": "Thủ tục mới thử",
        "action": "draft",
        **extra,
    }
    return client.post("/dashboard/kb", data=fields), lambda: has_draft(slug)


def _publish(client: httpx.Client, clients: dict[str, Any], extra: dict[str, str]) -> Any:
    slug = fresh()
    revision = publish_directly(slug)
    draft_directly(slug, "80.000 đồng")
    sent = post(client, f"/dashboard/kb/{slug}/publish", if_match=str(revision), **extra)
    return sent, lambda: fee_of(slug) == "80.000 đồng"


def _discard(client: httpx.Client, clients: dict[str, Any], extra: dict[str, str]) -> Any:
    slug = fresh()
    publish_directly(slug)
    draft_directly(slug, "90.000 đồng")
    return post(client, f"/dashboard/kb/{slug}/discard", **extra), lambda: not has_draft(slug)


def _rollback(client: httpx.Client, clients: dict[str, Any], extra: dict[str, str]) -> Any:
    slug = fresh()
    first = publish_directly(slug, "1 đồng")
    publish_directly(slug, "2 đồng")
    sent = post(client, f"/dashboard/kb/{slug}/rollback", number=str(first), **extra)
    return sent, lambda: fee_of(slug) == "1 đồng"


def _retire(client: httpx.Client, clients: dict[str, Any], extra: dict[str, str]) -> Any:
    slug, successor = fresh(), fresh()
    publish_directly(slug)
    publish_directly(successor)
    sent = post(client, f"/dashboard/kb/{slug}/retire", successor=successor, reason="thay thế", **extra)
    return sent, lambda: (live(slug) or {}).get("successor") == successor and live(slug)["status"] == "retired"


def _restore(client: httpx.Client, clients: dict[str, Any], extra: dict[str, str]) -> Any:
    slug = fresh()
    publish_directly(slug)
    with session_scope() as session:
        versions.retire(session, slug, author="elsewhere", role="admin", reason="", now=utcnow())
    return post(client, f"/dashboard/kb/{slug}/restore", **extra), lambda: live(slug)["status"] == "published"


def _verify(client: httpx.Client, clients: dict[str, Any], extra: dict[str, str]) -> Any:
    slug = fresh()
    publish_directly(slug, last_verified="2020-01-01")
    return post(client, f"/dashboard/kb/{slug}/verify", **extra), lambda: live(slug)["last_verified"] == today()


def _import(client: httpx.Client, clients: dict[str, Any], extra: dict[str, str]) -> Any:
    slug = fresh("kb-imported")
    body = json.dumps([record(slug)], ensure_ascii=False).encode()
    data = {"csrf": token_of(client), "submission": new_submission_key(), **extra}
    sent = client.post("/dashboard/kb/import", data=data, files={"file": ("procedures.json", body, "application/json")})
    return sent, lambda: live(slug) is not None


ACTIONS = [
    Action("save draft", {"supervisor", "admin"}, _save_draft),
    Action("save and publish", {"admin"}, _save_and_publish),
    Action("create", {"supervisor", "admin"}, _create),
    Action("publish", {"admin"}, _publish),
    Action("discard", {"supervisor", "admin"}, _discard),
    Action("rollback", {"admin"}, _rollback),
    Action("retire", {"admin"}, _retire),
    Action("restore", {"admin"}, _restore),
    Action("verify", {"admin"}, _verify),
    Action("import", {"admin"}, _import, success=200),  # the page lists what changed
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_every_form_acts_only_for_who_may(
    clients: dict[str, httpx.Client], people: dict[str, str], role: str, action: Action
) -> None:
    before = denials(people.get(role, "-"))
    response, happened = action.send(clients[role], clients, {})
    if role == "anonymous":
        assert to_login(response, "/dashboard/kb")
        assert not happened()
        return
    if role in action.allowed:
        assert response.status_code == action.success, response.text[:1500]
        assert happened()
        return
    assert response.status_code == 403, response.text[:800]
    assert "Không có quyền truy cập" in response.text
    assert not happened()
    assert len(denials(people[role])) == len(before) + 1


# -- CSRF and the Origin check -----------------------------------------------------------------------------


@pytest.mark.parametrize("forgery", ["missing", "wrong", "another browser's"])
@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    clients: dict[str, httpx.Client], action: Action, forgery: str
) -> None:
    client = clients["admin"]
    if forgery == "missing":
        csrf = ""
    elif forgery == "wrong":
        csrf = token_of(client)[:-4] + "AAAA"
    else:
        with httpx.Client(base_url=client.base_url, timeout=30) as other:
            csrf = token_of(other)
    response, happened = action.send(client, clients, {"csrf": csrf})
    assert response.status_code == 403
    assert "security token is missing or out of date" in response.text
    assert not happened()


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_a_form_from_another_site_is_refused(clients: dict[str, httpx.Client], action: Action) -> None:
    client = clients["admin"]
    client.headers["Origin"] = "https://evil.example"
    try:
        response, happened = action.send(client, clients, {})
    finally:
        del client.headers["Origin"]
    assert response.status_code == 403
    assert not happened()


# -- once-only: a double press acts once --------------------------------------------------------------------


def test_a_double_press_of_save_and_publish_makes_one_version(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    slug = fresh()
    revision = publish_directly(slug)
    versions_before = version_count(slug)
    form = {**form_of(admin.get(f"/dashboard/kb/{slug}/edit"), f"/dashboard/kb/{slug}"), "vi.fees": "99 đồng"}
    answers = [admin.post(f"/dashboard/kb/{slug}", data={**form, "action": "publish"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["location"] == f"/dashboard/kb/{slug}?done=published"
    assert answers[1].headers["location"] == f"/dashboard/kb/{slug}?done=published&again=1"
    assert "lần bấm thứ hai không làm gì thêm" in admin.get(answers[1].headers["location"]).text
    assert live(slug)["revision"] == revision + 1
    assert version_count(slug) == versions_before + 1
    assert fee_of(slug) == "99 đồng"


def test_a_double_press_creates_one_draft_and_buttons_act_once(clients: dict[str, httpx.Client]) -> None:
    supervisor, admin = clients["supervisor"], clients["admin"]
    slug = fresh("kb-new")
    form = {**form_of(supervisor.get("/dashboard/kb/new"), "/dashboard/kb"), "slug": slug, "vi.title": "Mới"}
    answers = [supervisor.post("/dashboard/kb", data={**form, "action": "draft"}) for _ in range(2)]
    assert [a.headers["location"] for a in answers] == [
        f"/dashboard/kb/{slug}?done=draft",
        f"/dashboard/kb/{slug}?done=draft&again=1",
    ]
    assert version_count(slug) == 1
    page = admin.get(f"/dashboard/kb/{slug}")
    assert page.status_code == 200
    assert "Thủ tục mới, chưa được công bố." in page.text
    publish = form_of(page, f"/dashboard/kb/{slug}/publish")
    for _ in range(2):
        assert admin.post(f"/dashboard/kb/{slug}/publish", data=publish).status_code == 303
    assert live(slug)["revision"] == 1
    verify = form_of(admin.get(f"/dashboard/kb/{slug}"), f"/dashboard/kb/{slug}/verify")
    for _ in range(2):
        assert admin.post(f"/dashboard/kb/{slug}/verify", data=verify).status_code == 303
    assert live(slug)["revision"] == 2  # verified once
    assert live(slug)["last_verified"] == today()


# -- escaping ------------------------------------------------------------------------------------------------


def test_html_and_script_in_every_text_field_is_shown_as_text_on_every_page(clients: dict[str, httpx.Client]) -> None:
    admin, supervisor = clients["admin"], clients["supervisor"]
    slug = fresh("kb-xss")
    form = form_of(admin.get("/dashboard/kb/new"), "/dashboard/kb")
    text_fields = [k for k in form if k not in ("csrf", "submission", "if_match", "slug", "code", "last_verified")]
    text_fields = [k for k in text_fields if not k.endswith(".lang")]
    fields = {**form, **{k: f"{k} {XSS}" for k in text_fields}, "slug": slug, "online_link": "javascript:alert(1)"}
    sent = admin.post("/dashboard/kb", data={**fields, "action": "publish"})
    assert sent.status_code == 303, sent.text[:2000]
    draft = form_of(supervisor.get(f"/dashboard/kb/{slug}/edit"), f"/dashboard/kb/{slug}")
    assert draft["vi.fees"] == f"vi.fees {XSS}"  # the edit form holds the text exactly
    assert (
        supervisor.post(
            f"/dashboard/kb/{slug}", data={**draft, "vi.fees": f"new {XSS}", "reason": XSS, "action": "draft"}
        ).status_code
        == 303
    )
    pages = {
        "list": admin.get(f"/dashboard/kb?q={slug}").text,
        "procedure": admin.get(f"/dashboard/kb/{slug}").text,
        "edit": admin.get(f"/dashboard/kb/{slug}/edit").text,
        "changes": admin.get("/dashboard/kb/changes").text,
        "official": clients["official"].get(f"/dashboard/kb/{slug}").text,
    }
    for name, page in pages.items():
        assert ESCAPED in page, name
        assert "<script>alert" not in page, name
        assert "<img src=x" not in page, name
        assert 'href="javascript:' not in page, name
    procedure = pages["procedure"]
    for name in ("summary", "who", "steps", "fees", "legal_basis", "conditions", "result", "where_to_file"):
        assert f"vi.{name} {ESCAPED}" in procedure, name  # the card and the history show it
    assert f"faq.0.questions {ESCAPED}" in procedure  # the FAQ variants
    assert f"authority {ESCAPED}" in procedure
    assert f"source {ESCAPED}" in procedure
    assert "javascript:alert(1)" in procedure  # the link is shown as text, never as a link
    assert f"ko.title {ESCAPED}" in pages["edit"]
    assert f"pl.aliases {ESCAPED}" in pages["edit"]
    assert f"reason {ESCAPED}" in pages["changes"]


# -- bad input: the form again with every error and what was typed; never a 500 -----------------------------


def test_an_oversized_field_and_bad_values_are_listed_and_nothing_changes(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    slug = fresh()
    revision = publish_directly(slug)
    form = form_of(admin.get(f"/dashboard/kb/{slug}/edit"), f"/dashboard/kb/{slug}")
    bad = {
        "vi.fees": "x" * 60_001,
        "vi.title": "",
        "code": "abc",
        "last_verified": "2026-13-45",
        "en.summary": "an English summary without an English title",
        "en.title": "",
        "reason": "r" * 1001,
    }
    answer = admin.post(f"/dashboard/kb/{slug}", data={**form, **bad, "action": "publish"})
    assert answer.status_code == 422, answer.text[:500]
    text = answer.text
    for label in (
        "Lệ phí (Tiếng Việt)",
        "Tên thủ tục (Tiếng Việt)",
        "Mã thủ tục quốc gia",
        "Ngày kiểm tra gần nhất",
        "Tên thủ tục (Tiếng Anh)",
    ):
        assert label in text, label
    assert "at most 60000 characters" in text
    assert "national code must look like 1.001193" in text
    assert 'href="#f-vi-fees"' in text
    assert re.search(r'<textarea id="f-vi-fees" name="vi.fees"[^>]* aria-invalid="true"', text)
    assert "an English summary without an English title</textarea>" in text  # what was typed
    assert live(slug)["revision"] == revision
    assert not has_draft(slug)
    reason = admin.post(f"/dashboard/kb/{slug}", data={**form, "reason": "r" * 1001, "action": "draft"})
    assert reason.status_code == 422
    assert "at most 1000" in reason.text
    assert not has_draft(slug)


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("Bad Slug!", "String should match pattern"),
        ("a", "String should match pattern"),
        ("", "String should match pattern"),
        (CURATED, "exists already"),
        ("new", "is reserved"),
        ("import", "is reserved"),
        ("gaps", "is reserved"),
    ],
)
def test_bad_or_duplicate_new_slugs_are_refused_with_a_clear_error(
    clients: dict[str, httpx.Client], slug: str, message: str
) -> None:
    admin = clients["admin"]
    before = live(CURATED)
    form = form_of(admin.get("/dashboard/kb/new"), "/dashboard/kb")
    fields = {**form, "slug": slug, "vi.title": "Tên mới", "vi.fees": "y" * 60_001, "action": "publish"}
    answer = admin.post("/dashboard/kb", data=fields)
    assert answer.status_code == 422, answer.text[:500]
    assert message in answer.text
    assert "Mã định danh (slug)" in answer.text
    assert "at most 60000 characters" in answer.text  # the other problems are listed too
    assert live(CURATED) == before
    if slug not in (CURATED, ""):
        assert live(slug) is None
        assert not has_draft(slug)


def test_a_draft_of_a_new_procedure_keeps_its_slug(clients: dict[str, httpx.Client]) -> None:
    supervisor = clients["supervisor"]
    slug = fresh("kb-new")
    draft_directly(slug, "1 đồng")
    form = form_of(supervisor.get("/dashboard/kb/new"), "/dashboard/kb")
    answer = supervisor.post("/dashboard/kb", data={**form, "slug": slug, "vi.title": "Khác", "action": "draft"})
    assert answer.status_code == 422
    assert "a draft of a new procedure" in answer.text
    edit = supervisor.get(f"/dashboard/kb/{slug}/edit")  # the way to change it: edit that draft
    assert edit.status_code == 200
    assert "Bạn đang sửa tiếp bản nháp của elsewhere" in edit.text


def test_a_stale_edit_is_refused_with_what_changed_since_and_can_then_be_saved(
    clients: dict[str, httpx.Client],
) -> None:
    admin = clients["admin"]
    slug = fresh()
    revision = publish_directly(slug, "1 đồng")
    form = form_of(admin.get(f"/dashboard/kb/{slug}/edit"), f"/dashboard/kb/{slug}")
    assert form["if_match"] == str(revision)
    publish_directly(slug, "2 đồng")  # someone else publishes meanwhile
    mine = {**form, "vi.fees": "3 đồng", "action": "publish"}
    answer = admin.post(f"/dashboard/kb/{slug}", data=mine)
    assert answer.status_code == 409
    assert "thủ tục đã được công bố lại trong lúc bạn sửa" in answer.text
    assert f"is at revision {revision + 1}, the edit started from {revision}" in answer.text
    assert "2 đồng" in answer.text  # what the other change did
    assert fee_of(slug) == "2 đồng"
    again = form_of(answer, f"/dashboard/kb/{slug}")
    assert again["vi.fees"] == "3 đồng"  # what was typed
    assert again["if_match"] == str(revision + 1)
    assert admin.post(f"/dashboard/kb/{slug}", data={**again, "action": "publish"}).status_code == 303
    assert fee_of(slug) == "3 đồng"
    # the publish button publishes the draft that was read: not one written since, nor over a newer revision
    draft_directly(slug, "4 đồng")
    publish = form_of(admin.get(f"/dashboard/kb/{slug}"), f"/dashboard/kb/{slug}/publish")
    draft_directly(slug, "5 đồng")  # another draft replaces the one on the page
    replaced = admin.post(f"/dashboard/kb/{slug}/publish", data=publish)
    assert replaced.status_code == 409
    assert "was replaced by elsewhere" in replaced.text
    publish = form_of(admin.get(f"/dashboard/kb/{slug}"), f"/dashboard/kb/{slug}/publish")
    publish_directly(slug, "6 đồng")  # published meanwhile: the draft on the page is gone with it
    draft_directly(slug, "7 đồng")
    stale = admin.post(f"/dashboard/kb/{slug}/publish", data={**publish, "draft": ""})
    assert stale.status_code == 409
    assert "the draft was written against" in stale.text or "is at revision" in stale.text
    assert fee_of(slug) == "6 đồng"


@pytest.mark.parametrize(
    ("path", "fields", "status"),
    [
        ("/dashboard/kb/no-such-procedure", {"vi.title": "x", "if_match": "0"}, 404),
        ("/dashboard/kb/no-such-procedure/publish", {}, 404),
        ("/dashboard/kb/no-such-procedure/verify", {}, 404),
        (f"/dashboard/kb/{CURATED}/rollback", {"number": "abc"}, 422),
        (f"/dashboard/kb/{CURATED}/rollback", {"number": "999"}, 404),
        (f"/dashboard/kb/{CURATED}/restore", {}, 409),
        (f"/dashboard/kb/{CURATED}/retire", {"other": "no-such-procedure"}, 422),
        (f"/dashboard/kb/{CURATED}/retire", {"successor": CURATED}, 422),
        (f"/dashboard/kb/{CURATED}", {"vi.title": "x", "if_match": "many"}, 422),
        (f"/dashboard/kb/{CURATED}/discard", {}, 404),
        (f"/dashboard/kb/{CURATED}/verify", {"submission": "short"}, 422),
    ],
)
def test_malformed_requests_get_a_page_never_a_500(
    clients: dict[str, httpx.Client], path: str, fields: dict[str, str], status: int
) -> None:
    before = live(CURATED)
    answer = post(clients["admin"], path, **fields)
    assert answer.status_code == status, answer.text[:800]
    assert "<main" in answer.text
    assert live(CURATED) == before


def test_unknown_filters_and_pages(clients: dict[str, httpx.Client]) -> None:
    official = clients["official"]
    assert official.get("/dashboard/kb?origin=elsewhere").status_code == 422
    assert official.get("/dashboard/kb?status=maybe").status_code == 422
    assert official.get("/dashboard/kb?stale_days=0").status_code == 422
    assert official.get("/dashboard/kb/no-such-procedure").status_code == 404
    assert clients["admin"].get("/dashboard/kb/no-such-procedure/edit").status_code == 404
    assert "sf-notice" not in official.get(f"/dashboard/kb/{CURATED}?done=<script>").text


def test_the_edit_form_shows_every_field_so_an_untouched_form_changes_nothing(live_server: str) -> None:
    # every bundled procedure through the form and back: a field the form lost or reshaped would show in the diff
    with session_scope() as session:
        procs = session.scalars(select(Procedure).order_by(Procedure.slug)).all()
        assert len(procs) >= 43
        for proc in procs:
            before = versions.live_record(proc)
            values, faq = dashboard_kb.values_from_record(before)
            form = {**values, **{f"faq.{i}.{k}": v for i, row in enumerate(faq) for k, v in row.items()}}
            form = {k: v.replace("\n", "\r\n") for k, v in form.items()}  # as browsers send a textarea
            after = versions.validated(dashboard_kb.record_from_form(form, before, proc.slug), slug=proc.slug)
            assert versions.diff(before, after.record) == [], proc.slug


# -- the list, the procedure page, the feed ------------------------------------------------------------------


def test_the_list_searches_filters_and_marks_stale_procedures_and_drafts(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    fresh_one, stale_one = fresh("kb-fresh"), fresh("kb-stale")
    publish_directly(fresh_one, last_verified=today())
    publish_directly(stale_one, last_verified="2020-01-01")
    draft_directly(stale_one, "7 đồng")
    page = admin.get("/dashboard/kb?category=kb-test&stale=1").text
    assert f'<code class="kb-slug">{stale_one}</code>' in page
    assert f'<code class="kb-slug">{fresh_one}</code>' not in page
    assert "kb-stale" in page
    assert "Có bản nháp" in page
    assert "Bản nháp chờ công bố" in page  # admins: drafts waiting
    assert f'href="/dashboard/kb/{stale_one}#draft"' in page
    everything = admin.get("/dashboard/kb?category=kb-test&stale=1&stale_days=36500").text
    assert f'<code class="kb-slug">{stale_one}</code>' not in everything  # verified within a hundred years
    by_title = admin.get(f"/dashboard/kb?q=Thủ tục thử {fresh_one}").text
    assert f'<code class="kb-slug">{fresh_one}</code>' in by_title
    assert f'<code class="kb-slug">{stale_one}</code>' not in by_title
    by_code = admin.get("/dashboard/kb?q=1.014061").text
    assert CURATED in by_code
    assert CURATED in admin.get("/dashboard/kb?origin=curated&q=" + CURATED).text
    assert "Bản nháp chờ công bố" not in clients["supervisor"].get("/dashboard/kb").text
    first = admin.get("/dashboard/kb").text
    assert 'rel="next"' in first  # 43 curated and the module's own: more than a page
    assert admin.get("/dashboard/kb?page=2").status_code == 200


def test_the_procedure_page_shows_card_faq_history_and_the_feed_shows_changes(
    clients: dict[str, httpx.Client],
) -> None:
    admin = clients["admin"]
    slug = fresh()
    first = publish_directly(slug, "1 đồng")
    long_fee = "Lệ phí dài " + "rất dài " * 60
    publish_directly(slug, long_fee)
    page = admin.get(f"/dashboard/kb/{slug}").text
    assert "Lệ phí: Lệ phí dài" in page  # the card in Vietnamese
    assert "Fees: VND 50,000" in page  # and in English
    assert f"hỏi về {slug}?" in page  # the FAQ variant
    assert "Xem toàn bộ" in page  # the long fee shortened, whole in a <details>
    rollback = form_of(admin.get(f"/dashboard/kb/{slug}"), f"/dashboard/kb/{slug}/rollback")
    assert rollback["number"] == str(first)
    assert admin.post(f"/dashboard/kb/{slug}/rollback", data=rollback).status_code == 303
    assert fee_of(slug) == "1 đồng"
    changes = clients["official"].get("/dashboard/kb/changes").text
    assert f'href="/dashboard/kb/{slug}#history"' in changes
    assert "roll back to version" in changes
    assert "Lệ phí (Tiếng Việt)" in changes


# -- the bulk import -----------------------------------------------------------------------------------------


def _upload(client: httpx.Client, name: str, body: bytes) -> httpx.Response:
    data = {"csrf": token_of(client), "submission": new_submission_key()}
    return client.post("/dashboard/kb/import", data=data, files={"file": (name, body, "application/octet-stream")})


def test_a_half_valid_file_changes_nothing_and_lists_every_error(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    good, bad, twice = fresh("kb-good"), fresh("kb-bad"), fresh("kb-twice")
    existing = fresh()
    publish_directly(existing, "1 đồng")
    records = [
        record(good),
        {**record(existing, "2 đồng")},
        {"slug": bad, "vi": {"title": "", "fees": "z" * 60_001}, "colour": "red"},
        record(twice),
        record(twice),
        {**record(fresh("kb-code")), "code": "1.014061"},  # the curated identity card's code
        {"slug": "Not A Slug", "vi": {"title": "t"}},
    ]
    answer = _upload(admin, "half.json", json.dumps(records, ensure_ascii=False).encode())
    assert answer.status_code == 422, answer.text[:500]
    text = answer.text.replace("&#39;", "'")
    assert "Không nhập gì cả" in text
    for expected in (
        "record 3 (slug '" + bad + "'): field 'vi.title'",
        "record 3 (slug '" + bad + "'): field 'vi.fees'",
        "record 3 (slug '" + bad + "'): field 'colour'",
        "record 5 (slug '" + twice + "'): field 'slug': duplicate of record 4",
        "record 7 (slug 'Not A Slug'): field 'slug'",
    ):
        assert expected in text, expected
    assert fee_of(existing) == "1 đồng"
    assert all(live(s) is None for s in (good, bad, twice))
    # field errors first; the code another procedure holds is found once the records are valid
    clash = _upload(admin, "clash.yaml", json.dumps([record(good), {**record(fresh()), "code": "1.014061"}]).encode())
    assert clash.status_code == 422
    assert f"already belongs to '{CURATED}'" in clash.text.replace("&#39;", "'")
    assert live(good) is None


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("notes.txt", b"hello", "the name must end in"),
        ("empty.json", b"  ", "is empty"),
        ("broken.json", b"[{", "broken.json: invalid JSON"),
        ("latin.csv", "slug,vi.title\nx,Tên\n".encode("cp1258"), "not UTF-8"),
        ("object.yaml", b"slug: a", "expected a list of procedure records"),
    ],
)
def test_an_unreadable_file_is_refused_with_why(
    clients: dict[str, httpx.Client], name: str, body: bytes, message: str
) -> None:
    answer = _upload(clients["admin"], name, body)
    assert answer.status_code == 422
    assert message in answer.text
    assert "/tmp" not in answer.text  # the file is named as the person knows it


def test_no_file_and_a_file_over_the_limit(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    nothing = post(admin, "/dashboard/kb/import")
    assert nothing.status_code == 422
    assert "choose a file" in nothing.text
    big = _upload(admin, "big.json", b"[" + b" " * 1_000_001 + b"]")
    assert big.status_code == 413  # the app refuses any request over 1 MB before reading it


def test_a_valid_file_publishes_each_record_as_a_version_and_lists_them(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    new, existing, same = fresh("kb-new"), fresh(), fresh()
    publish_directly(existing, "1 đồng")
    publish_directly(same, "1 đồng")
    body = "\n".join(
        json.dumps(r, ensure_ascii=False) for r in (record(new), record(existing, "2 đồng"), record(same, "1 đồng"))
    )
    form = form_of(admin.get("/dashboard/kb/import"), "/dashboard/kb/import")
    sent = [
        admin.post("/dashboard/kb/import", data=form, files={"file": ("batch.jsonl", body.encode(), "text/plain")})
        for _ in range(2)
    ]
    assert sent[0].status_code == 200, sent[0].text[:1000]
    assert "1 thêm mới, 1 cập nhật, 1 không đổi" in sent[0].text
    assert "vi.fees" in sent[0].text
    assert (sent[1].status_code, sent[1].headers["location"]) == (303, "/dashboard/kb/import?done=again")
    assert "đã được nhập ở lần bấm trước" in admin.get(sent[1].headers["location"]).text
    assert fee_of(existing) == "2 đồng"
    assert live(new) is not None
    with session_scope() as session:
        reasons = [v.reason for v in versions.history(session, existing)]
        assert reasons[0] == "import batch.jsonl"
        assert len(versions.history(session, same)) == 1  # unchanged: no new version
        assert session.scalar(select(Procedure.origin).where(Procedure.slug == new)) == "admin"


# -- in chromium ---------------------------------------------------------------------------------------------


WIDER_THAN_THE_WINDOW = """
() => [...document.querySelectorAll("body *")]
  .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
  .filter((el) => ![...el.children].some((c) => c.getBoundingClientRect().right > window.innerWidth + 1))
  .map((el) => `<${el.tagName.toLowerCase()} class="${el.className}"> ${el.textContent.trim().slice(0, 40)}`)
  .slice(0, 5)
"""


def check_page(page: Page, name: str) -> None:
    """WCAG AA contrast, no sideways scrolling, and a full-page screenshot to look at."""
    assert contrast_problems(page) == [], name
    too_wide = page.evaluate(WIDER_THAN_THE_WINDOW)
    assert too_wide == [], f"{name} scrolls sideways: {too_wide}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"kb_{name}.png"), full_page=True)


def sign_in(page: Page, base: str, username: str, then: str) -> None:
    page.goto(f"{base}/dashboard/login?next={then}")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(f"{base}{then}")


@contextmanager
def context_page(browser: Browser, width: int, height: int) -> Iterator[Page]:
    """A page of a new browser context (no cookies, no storage), failing on any script error."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert errors == []


def ask_chat(page: Page, base: str, question: str, slug: str) -> str:
    """Ask the web chat; when it offers procedures to choose from, choose slug's; the card's text."""
    page.goto(f"{base}/chat")
    bot = page.locator("#messages .msg--bot")
    expect(bot.first).to_be_visible(timeout=WAIT_MS)
    before = bot.count()
    page.get_by_label("Câu hỏi của bạn").fill(question)
    page.get_by_label("Câu hỏi của bạn").press("Enter")
    expect(bot).to_have_count(before + 1, timeout=WAIT_MS)
    chip = bot.last.locator(f".chip[data-payload='p:{slug}']")
    if chip.count():
        chip.click()
        expect(bot).to_have_count(before + 2, timeout=WAIT_MS)
    return bot.last.locator(".bubble").inner_text()


def test_in_chromium_an_admin_changes_a_fee_and_the_web_chat_answers_with_it(
    live_server: str, people: dict[str, str], browser: Browser, module_database: str
) -> None:
    sqlite = module_database.startswith("sqlite")
    slug = "criminal-record-certificate"
    new_fee = f"Lệ phí mới {next(_numbers)}: 123.456 đồng mỗi phiếu"
    with context_page(browser, 1280, 900) as desk:
        sign_in(desk, live_server, people["admin"], "/dashboard/kb")
        desk.get_by_label("Tìm slug, mã hoặc tên").fill("lý lịch tư pháp")
        desk.get_by_role("button", name="Lọc").click()
        if sqlite:
            check_page(desk, "list_desktop")
        desk.get_by_role("link", name="Cấp Phiếu lý lịch tư pháp").click()
        expect(desk).to_have_url(f"{live_server}/dashboard/kb/{slug}")
        desk.get_by_role("link", name="Sửa thủ tục").click()
        expect(desk.get_by_role("heading", level=1)).to_contain_text("Sửa thủ tục")
        if sqlite:
            check_page(desk, "edit_desktop")
        desk.locator("#f-vi-fees").fill(new_fee)
        desk.locator("#f-reason").fill("Biểu phí mới")
        desk.get_by_role("button", name="Lưu và công bố").click()
        expect(desk.locator(".done")).to_contain_text("Đã công bố")
        expect(desk.locator("#card-vi")).to_contain_text(new_fee)
        expect(desk.locator("#history")).to_contain_text("Biểu phí mới")
        if sqlite:
            check_page(desk, "procedure_desktop")
            desk.locator("#history").screenshot(path=str(ARTIFACTS / "kb_history_desktop.png"))
            desk.goto(f"{live_server}/dashboard/kb/changes")
            expect(desk.locator("main")).to_contain_text("Biểu phí mới")
            check_page(desk, "changes_desktop")
    assert fee_of(slug) == new_fee

    with context_page(browser, 412, 915) as chat:  # a citizen, another browser
        card = ask_chat(chat, live_server, "Lệ phí cấp phiếu lý lịch tư pháp là bao nhiêu?", slug)
        assert new_fee in card, card
        if sqlite:
            chat.screenshot(path=str(ARTIFACTS / "kb_chat_new_fee.png"))

    if sqlite:
        with context_page(browser, 412, 915) as phone:
            sign_in(phone, live_server, people["admin"], "/dashboard/kb?category=identity")
            check_page(phone, "list_phone")
            phone.goto(f"{live_server}/dashboard/kb/{slug}")
            check_page(phone, "procedure_phone")
            phone.locator("#history").screenshot(path=str(ARTIFACTS / "kb_history_phone.png"))
            phone.goto(f"{live_server}/dashboard/kb/{slug}/edit")
            check_page(phone, "edit_phone")
            phone.goto(f"{live_server}/dashboard/kb/import")
            check_page(phone, "import_phone")


def test_in_chromium_a_supervisor_drafts_and_an_admin_publishes_with_a_successor(
    live_server: str, people: dict[str, str], browser: Browser, module_database: str
) -> None:
    slug, successor = fresh("kb-old"), fresh("kb-successor")
    publish_directly(slug, "1 đồng")
    publish_directly(successor)
    with context_page(browser, 1280, 900) as desk:
        sign_in(desk, live_server, people["supervisor"], f"/dashboard/kb/{slug}/edit")
        desk.locator("#f-vi-fees").fill("Miễn phí")
        desk.locator("#f-faq-1-questions").fill("có mất tiền không?\ncó tốn phí không?")
        desk.locator("#f-faq-1-answer").fill("Không mất phí.")
        expect(desk.get_by_role("button", name="Lưu và công bố")).to_have_count(0)
        desk.get_by_role("button", name="Lưu bản nháp").click()
        expect(desk.locator(".done")).to_contain_text("Đã lưu bản nháp")
        expect(desk.locator("#draft")).to_contain_text("Miễn phí")
        desk.locator("#draft summary").click()
        expect(desk.locator("#card-draft")).to_contain_text("Lệ phí: Miễn phí")  # the card once published
    assert fee_of(slug) == "1 đồng"
    with context_page(browser, 1280, 900) as desk:
        sign_in(desk, live_server, people["admin"], "/dashboard/kb")
        if desk.locator(".kb-drafts details[open]").count() == 0:  # a long list of drafts starts folded
            desk.locator(".kb-drafts summary").click()
        desk.locator(f".kb-drafts a[href='/dashboard/kb/{slug}#draft']").click()
        desk.locator("#draft").get_by_role("button", name="Công bố").click()
        expect(desk.locator(".done")).to_contain_text("Đã công bố")
        expect(desk.locator("main")).to_contain_text("có tốn phí không?")
        desk.get_by_label("Thủ tục thay thế").select_option(successor)
        desk.get_by_role("button", name="Ngừng áp dụng").click()
        expect(desk.locator(".done")).to_contain_text("Đã ngừng áp dụng")
        expect(desk.locator(f"main a[href='/dashboard/kb/{successor}']").first).to_be_visible()
        if module_database.startswith("sqlite"):
            check_page(desk, "retired_desktop")
        # a half-valid file through the import page: every error listed, nothing changed
        desk.goto(f"{live_server}/dashboard/kb/import")
        half = [record(fresh("kb-good")), {"slug": "Bad Slug", "vi": {"title": "", "fees": XSS}}]
        desk.locator("#f-file").set_input_files(
            files=[{"name": "half.json", "mimeType": "application/json", "buffer": json.dumps(half).encode()}]
        )
        desk.get_by_role("button", name="Kiểm tra và nhập").click()
        expect(desk.locator("#kb-problems")).to_contain_text("Không nhập gì cả")
        expect(desk.locator("#kb-problems li")).to_have_count(2)
        expect(desk.locator("#kb-problems li").first).to_contain_text("half.json: record 2 (slug 'Bad Slug')")
        if module_database.startswith("sqlite"):
            check_page(desk, "import_errors_desktop")
    assert live(half[0]["slug"]) is None
    assert fee_of(slug) == "Miễn phí"
    assert live(slug)["status"] == "retired"
    assert live(slug)["successor"] == successor
