"""Staff accounts, my account and reply templates over real HTTP and in chromium: who may, CSRF, once-only, escaping."""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from markupsafe import escape
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from core.db import session_scope
from core.errors import Unauthenticated
from helpdesk.accounts import authenticate, create_user, get_user
from helpdesk.models import Department, ReplyTemplate, TicketEvent, User
from helpdesk.submissions import new_submission_key
from knowledge.models import utcnow
from tests.conftest import running_app

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "staff pages password"
ROLES = ("official", "foreign_official", "supervisor", "foreign_supervisor", "admin", "anonymous")
USERNAMES = {  # role in the matrix → the account playing it; "foreign" is of the other department than dept-a
    "official": "off.a",
    "foreign_official": "off.b",
    "supervisor": "sup.a",
    "foreign_supervisor": "sup.b",
    "admin": "boss",
}
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp;'
_names = itertools.count()


def fresh(prefix: str) -> str:
    """A username (or title) no other test of the module uses."""
    return f"{prefix}.{next(_names)}"


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(module_database: str) -> Iterator[str]:
    """One real app for the module (SQLite, then PostgreSQL); every test makes the accounts and templates it changes."""
    with running_app() as base:
        yield base


@pytest.fixture(scope="module")
def people(live_server: str) -> dict[str, str]:
    """Two departments, an official and a supervisor of each, and an admin; role in the matrix → username."""
    with session_scope() as session:
        session.add_all(
            [
                Department(slug="dept-a", name="Phòng Tư pháp thử", name_en="Test civil status"),
                Department(slug="dept-b", name="Phòng Đất đai thử", name_en="Test land office"),
            ]
        )
    with session_scope() as session:
        for role, username in USERNAMES.items():
            department = None if role == "admin" else ("dept-b" if role.startswith("foreign") else "dept-a")
            create_user(
                session,
                username=username,
                password=PASSWORD,
                role=role.removeprefix("foreign_"),
                department=department,
                full_name=username.upper(),
            )
    return USERNAMES


class Forms(HTMLParser):
    """The POST forms of a page: action → its fields' values."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._current: dict[str, str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Collect forms and their inputs."""
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and values.get("method") == "post":
            self._current = self.forms.setdefault(values["action"], {})
        elif tag == "input" and self._current is not None and "name" in values:
            self._current[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        """A form ends."""
        if tag == "form":
            self._current = None


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token a dashboard page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def form_of(page: httpx.Response, action: str) -> dict[str, str]:
    """The hidden fields (csrf, submission, …) of the page's form posting to action."""
    forms = Forms(page.text).forms
    assert action in forms, f"no form to {action} on the page; forms: {sorted(forms)}"
    return dict(forms[action])


@contextmanager
def signed_in(base: str, username: str | None, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """A client signed in as username for a with-block, closed after it."""
    client = logged_in(base, username, password)
    try:
        yield client
    finally:
        client.close()


def logged_in(base: str, username: str | None, password: str = PASSWORD) -> httpx.Client:
    """An HTTP client with the dashboard's cookies, signed in as username (None: anonymous, CSRF cookie only)."""
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
    token = csrf_of(client.get("/dashboard/login"))
    if username is not None:
        sent = client.post("/dashboard/login", data={"username": username, "password": password, "csrf": token})
        assert sent.status_code == 303, sent.text
    return client


@pytest.fixture(scope="module")
def clients(live_server: str, people: dict[str, str]) -> Iterator[dict[str, httpx.Client]]:
    """One signed-in client per role of the matrix, and an anonymous one."""
    made = {role: logged_in(live_server, people.get(role)) for role in ROLES}
    yield made
    for client in made.values():
        client.close()


def token_of(client: httpx.Client) -> str:
    """The client's CSRF token, from a page every role (and the login form) shows."""
    return csrf_of(client.get("/dashboard/login"))


def post(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    """A POST of a form with this client's CSRF token and a fresh once-only key (unless given)."""
    data = {"csrf": token_of(client), "submission": new_submission_key(), **fields}
    return client.post(path, data=data)


def make_user(role: str = "official", department: str | None = "dept-a", password: str = PASSWORD) -> str:
    """A new account to act on."""
    username = fresh(f"x{role[:3]}")
    with session_scope() as session:
        create_user(session, username=username, password=password, role=role, department=department)
    return username


def make_template(department: str = "dept-a", title: str | None = None, body: str = "Nội dung mẫu.") -> int:
    """A new template of department, stored directly."""
    with session_scope() as session:
        template = ReplyTemplate(
            department=department, title=title or fresh("Mẫu"), body=body, updated_by="test", updated_at=utcnow()
        )
        session.add(template)
        session.flush()
        return template.id


def password_works(username: str, password: str) -> bool:
    with session_scope() as session:
        try:
            authenticate(session, username, password)
        except Unauthenticated:
            return False
        return True


def is_active(username: str) -> bool:
    with session_scope() as session:
        return get_user(session, username).active


def user_exists(username: str) -> bool:
    with session_scope() as session:
        return session.scalar(select(User.id).where(User.username == username)) is not None


def template(template_id: int) -> tuple[str, str] | None:
    with session_scope() as session:
        row = session.get(ReplyTemplate, template_id)
        return (row.title, row.body) if row else None


def templates_titled(title: str) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(ReplyTemplate).where(ReplyTemplate.title == title))


def events(kind: str, **data: object) -> list[TicketEvent]:
    """Events of a kind whose data has these values."""
    with session_scope() as session:
        rows = session.scalars(select(TicketEvent).where(TicketEvent.kind == kind).order_by(TicketEvent.id)).all()
    return [e for e in rows if all(e.data.get(k) == v for k, v in data.items())]


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


# -- the permission matrix ---------------------------------------------------------------------------------

PAGES = [  # path, roles answered 200 (every other signed-in role: 403, anonymous: to the login form)
    ("/dashboard/staff", {"admin"}),
    ("/dashboard/account", {"official", "foreign_official", "supervisor", "foreign_supervisor", "admin"}),
    ("/dashboard/templates?department=dept-a", {"supervisor", "admin"}),
    ("/dashboard/templates", {"supervisor", "foreign_supervisor", "admin"}),  # each supervisor: their own department
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


@dataclass
class Action:
    """A POST form of these pages: how to send it, who may, what success answers and how to see it happened."""

    name: str
    allowed: set[str]
    send: Callable[[httpx.Client, dict[str, str]], tuple[httpx.Response, Callable[[], bool]]]  # → did it happen?
    success: int = 303


def _create_staff(client: httpx.Client, extra: dict[str, str]) -> tuple[httpx.Response, Callable[[], bool]]:
    username = fresh("new")
    response = post(
        client,
        "/dashboard/staff",
        username=username,
        role="official",
        department="dept-a",
        password="typed pass 1",
        **extra,
    )
    return response, lambda: user_exists(username)


def _reset(client: httpx.Client, extra: dict[str, str]) -> tuple[httpx.Response, Callable[[], bool]]:
    victim = make_user()
    response = post(client, f"/dashboard/staff/{victim}/reset", **extra)
    return response, lambda: not password_works(victim, PASSWORD)


def _deactivate(client: httpx.Client, extra: dict[str, str]) -> tuple[httpx.Response, Callable[[], bool]]:
    victim = make_user("supervisor")
    response = post(client, f"/dashboard/staff/{victim}/active", active="false", **extra)
    return response, lambda: not is_active(victim)


def _create_template(client: httpx.Client, extra: dict[str, str]) -> tuple[httpx.Response, Callable[[], bool]]:
    title = fresh("Mẫu mới")
    response = post(client, "/dashboard/templates", department="dept-a", title=title, body="Xin chào.", **extra)
    return response, lambda: templates_titled(title) == 1


def _update_template(client: httpx.Client, extra: dict[str, str]) -> tuple[httpx.Response, Callable[[], bool]]:
    template_id = make_template()
    title = fresh("Đã sửa")
    response = post(client, f"/dashboard/templates/{template_id}", title=title, body="Nội dung mới.", **extra)
    return response, lambda: template(template_id) == (title, "Nội dung mới.")


def _delete_template(client: httpx.Client, extra: dict[str, str]) -> tuple[httpx.Response, Callable[[], bool]]:
    template_id = make_template()
    response = post(client, f"/dashboard/templates/{template_id}/delete", department="dept-a", **extra)
    return response, lambda: template(template_id) is None


ACTIONS = [
    Action("create staff", {"admin"}, _create_staff),
    Action("reset password", {"admin"}, _reset, success=200),  # the new password is on the response page
    Action("deactivate", {"admin"}, _deactivate),
    Action("create template", {"supervisor", "admin"}, _create_template),
    Action("update template", {"supervisor", "admin"}, _update_template),
    Action("delete template", {"supervisor", "admin"}, _delete_template),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_every_form_acts_only_for_who_may(
    clients: dict[str, httpx.Client], people: dict[str, str], role: str, action: Action
) -> None:
    before = denials(people.get(role, "-"))
    response, happened = action.send(clients[role], {})
    if role == "anonymous":
        assert to_login(response, "/dashboard/")
        assert not happened()
        return
    if role in action.allowed:
        assert response.status_code == action.success, response.text[:800]
        assert happened()
        return
    assert response.status_code == 403, response.text[:800]
    assert "Không có quyền truy cập" in response.text
    assert not happened()
    assert len(denials(people[role])) == len(before) + 1


@pytest.mark.parametrize("role", [r for r in ROLES if r != "anonymous"])
def test_every_role_changes_their_own_password(live_server: str, people: dict[str, str], role: str) -> None:
    real = role.removeprefix("foreign_")
    username = make_user(real, None if real == "admin" else ("dept-b" if role.startswith("foreign") else "dept-a"))
    with signed_in(live_server, username) as client:
        page = client.get("/dashboard/account")
        assert page.status_code == 200
        assert username in page.text
        form = form_of(page, "/dashboard/account/password")
        sent = client.post(
            "/dashboard/account/password",
            data={**form, "current_password": PASSWORD, "new_password": "my new words", "repeated": "my new words"},
        )
        assert (sent.status_code, sent.headers["location"]) == (303, "/dashboard/account?done=password")
        assert "Đã đổi mật khẩu của bạn." in client.get(sent.headers["location"]).text
    assert password_works(username, "my new words")
    assert not password_works(username, PASSWORD)
    with signed_in(live_server, None) as anonymous:
        answer = post(anonymous, "/dashboard/account/password", current_password="x", new_password="y", repeated="y")
        assert to_login(answer, "/dashboard/account/password")


# -- CSRF and the Origin check -----------------------------------------------------------------------------


def _forged(client: httpx.Client, forgery: str) -> str:
    """A CSRF token that is not this browser's: none, a damaged one, or another browser's."""
    if forgery == "missing":
        return ""
    if forgery == "wrong":
        return token_of(client)[:-4] + "AAAA"
    with httpx.Client(base_url=client.base_url, timeout=30) as other:
        return token_of(other)


@pytest.mark.parametrize("forgery", ["missing", "wrong", "another browser's"])
@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    clients: dict[str, httpx.Client], action: Action, forgery: str
) -> None:
    client = clients["admin"]
    response, happened = action.send(client, {"csrf": _forged(client, forgery)})
    assert response.status_code == 403
    assert "security token is missing or out of date" in response.text
    assert not happened()


def test_own_password_change_needs_the_csrf_token(live_server: str) -> None:
    username = make_user()
    with signed_in(live_server, username) as client:
        form = form_of(client.get("/dashboard/account"), "/dashboard/account/password")
        fields = {**form, "current_password": PASSWORD, "new_password": "my new words", "repeated": "my new words"}
        for csrf in ("", "not-the-token"):
            assert client.post("/dashboard/account/password", data={**fields, "csrf": csrf}).status_code == 403
        foreign = client.post("/dashboard/account/password", data=fields, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
    assert password_works(username, PASSWORD)


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_a_form_from_another_site_is_refused(clients: dict[str, httpx.Client], action: Action) -> None:
    client = clients["admin"]
    client.headers["Origin"] = "https://evil.example"
    try:
        response, happened = action.send(client, {})
    finally:
        del client.headers["Origin"]
    assert response.status_code == 403
    assert not happened()


# -- once-only: a double press acts once --------------------------------------------------------------------


def test_a_double_press_creates_one_account_and_shows_its_password_once(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    form = form_of(admin.get("/dashboard/staff"), "/dashboard/staff")
    username = fresh("twice")
    fields = {**form, "username": username, "full_name": "Hai Lần", "role": "official", "department": "dept-a"}
    first = admin.post("/dashboard/staff", data=fields)
    assert first.status_code == 200
    password = re.search(r'id="sf-password">([^<]+)<', first.text)
    assert password, first.text
    second = admin.post("/dashboard/staff", data=fields)
    assert (second.status_code, second.headers["location"]) == (
        303,
        f"/dashboard/staff?done=created-again&user={username}",
    )
    notice = admin.get(second.headers["location"]).text
    assert "đã được tạo ở lần bấm trước" in notice
    assert password.group(1) not in notice
    assert len(events("user_created", username=username)) == 1
    assert password_works(username, password.group(1))


def test_two_presses_at_the_same_moment_create_one_account(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    form = form_of(admin.get("/dashboard/staff"), "/dashboard/staff")
    username = fresh("race")
    fields = {**form, "username": username, "role": "supervisor", "department": "dept-b", "password": "typed pass 9"}
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def press() -> None:
        barrier.wait()
        statuses.append(admin.post("/dashboard/staff", data=fields).status_code)

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [303, 303]  # neither press sees "already exists"
    assert len(events("user_created", username=username)) == 1


def test_a_double_press_resets_a_password_once(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    victim = make_user()
    form = form_of(admin.get("/dashboard/staff"), f"/dashboard/staff/{victim}/reset")
    first = admin.post(f"/dashboard/staff/{victim}/reset", data=form)
    second = admin.post(f"/dashboard/staff/{victim}/reset", data=form)
    password = re.search(r'id="sf-password">([^<]+)<', first.text)
    assert password
    assert (second.status_code, second.headers["location"]) == (303, f"/dashboard/staff?done=reset-again&user={victim}")
    assert 'id="sf-password"' not in admin.get(second.headers["location"]).text
    assert password_works(victim, password.group(1))  # the password shown is the one in force
    assert len(events("password_reset", username=victim)) == 1


def test_a_double_press_deactivates_once(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    victim = make_user()
    form = form_of(admin.get("/dashboard/staff"), f"/dashboard/staff/{victim}/active")
    assert form["active"] == "false"
    for _ in range(2):
        sent = admin.post(f"/dashboard/staff/{victim}/active", data=form)
        assert (sent.status_code, sent.headers["location"]) == (303, f"/dashboard/staff?done=deactivated&user={victim}")
    assert not is_active(victim)
    assert len(events("user_deactivated", username=victim)) == 1
    form = form_of(admin.get("/dashboard/staff"), f"/dashboard/staff/{victim}/active")
    assert form["active"] == "true"  # the row now offers to reactivate
    assert admin.post(f"/dashboard/staff/{victim}/active", data=form).status_code == 303
    assert is_active(victim)


def test_a_double_press_saves_a_template_once(clients: dict[str, httpx.Client]) -> None:
    supervisor = clients["supervisor"]
    form = form_of(supervisor.get("/dashboard/templates"), "/dashboard/templates")
    assert form["department"] == "dept-a"
    title = fresh("Hai lần")
    fields = {**form, "title": title, "body": "Một lần thôi."}
    answers = [supervisor.post("/dashboard/templates", data=fields) for _ in range(2)]
    assert [a.headers["location"] for a in answers] == [
        "/dashboard/templates?department=dept-a&done=template-created"
    ] * 2
    assert templates_titled(title) == 1
    template_id = events("template_created", title=title)[0].data["template"]
    page = supervisor.get("/dashboard/templates")
    update = form_of(page, f"/dashboard/templates/{template_id}")
    for _ in range(2):
        assert (
            supervisor.post(
                f"/dashboard/templates/{template_id}", data={**update, "title": title, "body": "Đã sửa."}
            ).status_code
            == 303
        )
    assert len(events("template_updated", template=template_id)) == 1
    delete = form_of(page, f"/dashboard/templates/{template_id}/delete")
    for _ in range(2):  # the second finds it gone, and redirects as if it did it
        sent = supervisor.post(f"/dashboard/templates/{template_id}/delete", data=delete)
        assert (sent.status_code, sent.headers["location"]) == (
            303,
            "/dashboard/templates?department=dept-a&done=template-deleted",
        )
    assert template(template_id) is None
    assert len(events("template_deleted", template=template_id)) == 1
    another = make_template()
    gone = supervisor.post(f"/dashboard/templates/{another}/delete", data=delete)  # a used key, another template
    assert gone.status_code == 303
    assert template(another) is not None  # the key belonged to the first delete: nothing done


def test_a_double_press_changes_my_password_once(live_server: str) -> None:
    username = make_user("supervisor")
    with signed_in(live_server, username) as client:
        form = form_of(client.get("/dashboard/account"), "/dashboard/account/password")
        fields = {**form, "current_password": PASSWORD, "new_password": "my new words", "repeated": "my new words"}
        answers = [client.post("/dashboard/account/password", data=fields) for _ in range(2)]
    # without the once-only key the second press would say "current password wrong"
    assert [(a.status_code, a.headers["location"]) for a in answers] == [(303, "/dashboard/account?done=password")] * 2
    assert password_works(username, "my new words")
    assert len(events("password_changed", username=username)) == 1


# -- the one-time password ---------------------------------------------------------------------------------


def test_a_reset_password_is_shown_once_works_and_is_nowhere_else(
    clients: dict[str, httpx.Client], live_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    admin = clients["admin"]
    victim = make_user()
    with signed_in(live_server, victim) as old_session:
        form = form_of(admin.get("/dashboard/staff"), f"/dashboard/staff/{victim}/reset")
        shown = admin.post(f"/dashboard/staff/{victim}/reset", data=form)
        assert shown.status_code == 200
        assert shown.headers["cache-control"] == "no-store"
        assert "location" not in shown.headers
        password = re.search(r'id="sf-password">([^<]+)<', shown.text).group(1)  # type: ignore[union-attr]
        assert re.fullmatch(r"[A-Za-z2-9]{4}(-[A-Za-z2-9]{4}){3}", password)
        assert "chỉ hiện <strong>một lần</strong>" in shown.text
        assert password not in str(shown.url)
        assert password not in admin.get("/dashboard/staff").text
        assert old_session.get("/dashboard/account").status_code == 200  # their open session goes on
    assert not password_works(victim, PASSWORD)
    with signed_in(live_server, victim, password) as client:
        assert victim in client.get("/dashboard/account").text
    assert password not in caplog.text
    assert "password of user" in caplog.text  # the server's log says what happened, without the secret
    assert all(password not in str(e.data) for e in events("password_reset", username=victim))


def test_a_generated_password_is_shown_once_and_a_typed_one_never(
    clients: dict[str, httpx.Client], live_server: str
) -> None:
    admin = clients["admin"]
    typed = fresh("typed")
    form = form_of(admin.get("/dashboard/staff"), "/dashboard/staff")
    sent = admin.post(
        "/dashboard/staff",
        data={**form, "username": typed, "role": "supervisor", "department": "dept-b", "password": "chosen by me 7"},
    )
    assert (sent.status_code, sent.headers["location"]) == (303, f"/dashboard/staff?done=created&user={typed}")
    page = admin.get(sent.headers["location"]).text
    assert f"Đã tạo tài khoản {typed}." in page
    assert "chosen by me 7" not in page
    assert 'id="sf-password"' not in page
    with signed_in(live_server, typed, "chosen by me 7") as client:
        assert client.get("/dashboard/templates").status_code == 200  # a supervisor of dept-b


def test_a_deactivated_account_is_locked_out_at_once_and_can_come_back(
    clients: dict[str, httpx.Client], live_server: str
) -> None:
    admin = clients["admin"]
    victim = make_user()
    with signed_in(live_server, victim) as session_of_victim:
        assert post(admin, f"/dashboard/staff/{victim}/active", active="false").status_code == 303
        assert to_login(session_of_victim.get("/dashboard/account"), "/dashboard/account")
    with httpx.Client(base_url=live_server, timeout=30) as client:
        token = csrf_of(client.get("/dashboard/login"))
        refused = client.post("/dashboard/login", data={"username": victim, "password": PASSWORD, "csrf": token})
        assert refused.status_code == 401
    assert post(admin, f"/dashboard/staff/{victim}/active", active="true").status_code == 303
    assert password_works(victim, PASSWORD)


def test_an_admin_does_not_lock_themselves_out(clients: dict[str, httpx.Client], people: dict[str, str]) -> None:
    admin = clients["admin"]
    page = admin.get("/dashboard/staff").text
    assert "/dashboard/staff/boss/active" not in page  # no such buttons on their own row
    for path, fields in (
        (f"/dashboard/staff/{people['admin']}/active", {"active": "false"}),
        (f"/dashboard/staff/{people['admin']}/reset", {}),
    ):
        refused = post(admin, path, **fields)
        assert refused.status_code == 422
        assert "own" in refused.text
    assert is_active(people["admin"])
    assert password_works(people["admin"], PASSWORD)


# -- bad input: the page again with a clear message and what was typed; never a 500 ------------------------


def test_bad_staff_input_shows_the_form_again_with_what_was_typed(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    form = form_of(admin.get("/dashboard/staff"), "/dashboard/staff")
    cases = [
        ({"username": "Bad Name!"}, "Tên đăng nhập: 3–80 ký tự", "Field 'username': 'Bad Name!' must be 3-80"),
        ({"password": "aaaaaaaaaa"}, "không phải một ký tự lặp lại", "must not be one character repeated"),
        ({"password": "short"}, "Mật khẩu: ít nhất 8 ký tự", "at least 8 characters"),
        ({"department": ""}, "Phòng: chọn một phòng", "officials and supervisors need a department"),
        ({"department": "nowhere"}, "Phòng: chọn một phòng", "unknown department"),
        ({"role": "admin"}, "Vai trò: cán bộ hoặc giám sát", "motcua users create --role admin"),
        ({"username": "boss"}, "đã có người dùng", "User 'boss' already exists"),
        ({"submission": "x"}, "Biểu mẫu đã cũ", "Submission: missing or malformed form key"),
    ]
    for change, vi, en in cases:
        fields = {
            **form,
            "username": fresh("bad"),
            "full_name": 'Trần "Thị" <B>',
            "role": "official",
            "department": "dept-a",
            "password": "typed secret 123",
            **change,
        }
        if "password" in change:
            fields["full_name"] = "Trần Thị B"
        answer = admin.post("/dashboard/staff", data=fields)
        assert answer.status_code == 422, (change, answer.text[:300])
        assert vi in answer.text, change
        assert en in answer.text.replace("&#39;", "'"), change
        assert fields["password"] not in answer.text  # a password is never sent back
        assert f'value="{escape(fields["username"])}"' in answer.text  # what was typed, escaped
        assert f'value="{escape(fields["full_name"])}"' in answer.text
        assert not user_exists(fields["username"]) or fields["username"] == "boss"


def test_bad_template_and_password_input_is_shown_again(clients: dict[str, httpx.Client], live_server: str) -> None:
    supervisor = clients["supervisor"]
    form = form_of(supervisor.get("/dashboard/templates"), "/dashboard/templates")
    long_title = "t" * 121
    answer = supervisor.post(
        "/dashboard/templates", data={**form, "title": long_title, "body": "Giữ lại nội dung này."}
    )
    assert answer.status_code == 422
    assert "Tên mẫu: 1–120 ký tự" in answer.text
    assert "Giữ lại nội dung này.</textarea>" in answer.text
    assert f'value="{long_title}"' in answer.text
    template_id = make_template()
    page = supervisor.get("/dashboard/templates")
    update = form_of(page, f"/dashboard/templates/{template_id}")
    answer = supervisor.post(f"/dashboard/templates/{template_id}", data={**update, "title": "Ok", "body": " "})
    assert answer.status_code == 422
    assert f'<li class="panel" id="template-{template_id}">' in answer.text
    assert "<details open>" in answer.text  # the template being edited stays open, with the error inside
    assert "Nội dung: 1–4000 ký tự." in answer.text

    username = make_user()
    with signed_in(live_server, username) as client:
        form = form_of(client.get("/dashboard/account"), "/dashboard/account/password")
        for current, new, repeated, vi in [
            ("not my password", "my new words", "my new words", "Mật khẩu hiện tại không đúng."),
            (PASSWORD, "my new words", "my other words", "Hai lần nhập mật khẩu mới không giống nhau."),
            (PASSWORD, username, username, "Mật khẩu: ít nhất 8 ký tự, không trùng tên đăng nhập"),
        ]:
            fields = {**form, "current_password": current, "new_password": new, "repeated": repeated}
            answer = client.post("/dashboard/account/password", data=fields)
            assert answer.status_code == 422
            assert vi in answer.text
            for secret in {current, new, repeated} - {username}:
                assert secret not in answer.text
    assert password_works(username, PASSWORD)


@pytest.mark.parametrize(
    ("path", "fields", "status"),
    [
        ("/dashboard/templates/abc", {"title": "a", "body": "b"}, 422),
        ("/dashboard/templates/99999999999999", {"title": "a", "body": "b"}, 422),
        ("/dashboard/templates/0/delete", {}, 422),
        ("/dashboard/templates/2147483000", {"title": "a", "body": "b"}, 404),
        ("/dashboard/templates/2147483000/delete", {}, 404),
        ("/dashboard/staff/nobody.here/reset", {}, 404),
        ("/dashboard/staff/nobody.here/active", {"active": "false"}, 404),
        ("/dashboard/staff/boss/active", {"active": "maybe"}, 422),
        ("/dashboard/staff", {"username": "u" * 600}, 422),
        ("/dashboard/templates", {"department": "dept-a", "title": "a", "body": "b" * 30_000}, 422),
    ],
)
def test_malformed_requests_get_a_page_never_a_500(
    clients: dict[str, httpx.Client], path: str, fields: dict[str, str], status: int
) -> None:
    answer = post(clients["admin"], path, **fields)
    assert answer.status_code == status, answer.text[:500]
    assert "<main" in answer.text


def test_a_refusal_of_an_oversized_field_is_a_page_not_a_500(clients: dict[str, httpx.Client]) -> None:
    # what a refusal records must fit the audit trail: an oversized department is refused before that
    for path in ("/dashboard/staff", "/dashboard/templates"):
        answer = post(clients["official"], path, department="d" * 200, title="t", body="b", username="someone")
        assert answer.status_code == 422
        assert "department" in answer.text


def test_unknown_department_and_foreign_notice_parameters(clients: dict[str, httpx.Client]) -> None:
    assert clients["admin"].get("/dashboard/templates?department=nowhere").status_code == 404
    page = clients["admin"].get("/dashboard/staff?done=created&user=<script>x</script>").text
    assert "sf-notice" not in page  # no username's shape: no notice, the text never echoed
    assert "<script>x" not in page
    assert "&lt;script&gt;x" not in page
    assert "sf-notice" not in clients["admin"].get("/dashboard/staff?done=whatever").text
    assert "Đã tạo tài khoản boss." in clients["admin"].get("/dashboard/staff?done=created&user=boss").text


# -- escaping ------------------------------------------------------------------------------------------------


def test_every_user_controlled_value_is_shown_as_text(clients: dict[str, httpx.Client]) -> None:
    admin, supervisor = clients["admin"], clients["supervisor"]
    username = fresh("xss")
    assert (
        post(
            admin,
            "/dashboard/staff",
            username=username,
            full_name=XSS,
            role="official",
            department="dept-a",
            password="typed password 1",
        ).status_code
        == 303
    )
    staff = admin.get("/dashboard/staff").text
    title = "<b>Tiêu đề</b> " + fresh("x")
    assert post(supervisor, "/dashboard/templates", department="dept-a", title=title, body=XSS).status_code == 303
    templates = supervisor.get("/dashboard/templates").text
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;"
    for page in (staff, templates):
        assert escaped in page
        assert "<script>alert" not in page
        assert "<img src=x" not in page
    assert "&lt;b&gt;Tiêu đề&lt;/b&gt;" in templates
    assert "<b>Tiêu đề</b>" not in templates
    with signed_in(str(admin.base_url), username, "typed password 1") as official:
        assert escaped in official.get("/dashboard/account").text


# -- in chromium ---------------------------------------------------------------------------------------------


CONTRAST = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(',').map(parseFloat);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ({r, g, b}) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a),
    a: 1,
  });
  const background = (el) => {
    const chain = [];
    for (let e = el; e; e = e.parentElement) chain.unshift(e);
    let bg = {r: 255, g: 255, b: 255, a: 1};
    for (const e of chain) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) bg = over(c, bg);
    }
    return bg;
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= parseFloat(getComputedStyle(e).opacity);
    const bg = background(el);
    const c = parse(style.color);
    const fg = over({...c, a: c.a * opacity}, bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) low.push(`${node.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
  }
  return low;
}
"""


def check_page(page: Page, name: str) -> None:
    """WCAG AA contrast of every visible text, no sideways scrolling, and a full-page screenshot to look at."""
    assert page.evaluate(CONTRAST) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"staff_{name}.png"), full_page=True)


def sign_in(page: Page, base: str, username: str, password: str, then: str) -> None:
    """Sign in through the form, as a person would, and go on to `then`."""
    page.goto(f"{base}/dashboard/login?next={then}")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(f"{base}{then}")


@pytest.fixture
def desk(browser: Browser) -> Iterator[Page]:
    """A desktop-sized page with no script errors."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == []


def test_in_chromium_an_admin_creates_an_official_and_resets_a_password(
    live_server: str, people: dict[str, str], desk: Page, page: Page, module_database: str
) -> None:
    suffix = "" if module_database.startswith("sqlite") else "_postgres"
    username = fresh("moi.canbo").replace(".", "-")
    sign_in(desk, live_server, "boss", PASSWORD, "/dashboard")
    desk.get_by_role("link", name="Cán bộ Staff").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Tài khoản cán bộ")
    create = desk.locator("form[action='/dashboard/staff']")
    create.get_by_label("Tên đăng nhập").fill(username)
    create.get_by_label("Họ và tên").fill("Nguyễn Văn Mới")
    create.get_by_label("Vai trò").select_option("official")
    create.get_by_label("Phòng").select_option("dept-a")
    create.get_by_role("button", name="Tạo tài khoản").click()
    expect(desk.locator(".sf-notice")).to_contain_text(f"Đã tạo tài khoản {username}.")
    first = desk.locator("#sf-password").inner_text()
    expect(desk.locator(f"#user-{username}")).to_contain_text("Nguyễn Văn Mới")
    if not suffix:
        check_page(desk, "created_desktop")

    desk.get_by_role("button", name=f"Đặt lại mật khẩu của {username}").click()
    expect(desk.locator("#sf-secret-title")).to_contain_text(f"Mật khẩu mới của {username}")
    second = desk.locator("#sf-password").inner_text()
    assert second != first
    desk.reload()  # "resend the form?" sends the same once-only key: no second reset, and no password
    expect(desk.locator(".sf-notice")).to_contain_text("đã được đặt lại ở lần bấm trước")
    expect(desk.locator("#sf-password")).to_have_count(0)
    assert password_works(username, second)

    # the new official signs in with it, on a phone, and changes it
    sign_in(page, live_server, username, second, "/dashboard/account")
    expect(page.locator("dl.facts")).to_contain_text("Nguyễn Văn Mới")
    page.get_by_label("Mật khẩu hiện tại").fill(second)
    page.get_by_label("Mật khẩu mới", exact=False).first.fill("của riêng tôi 1")
    page.get_by_label("Nhập lại mật khẩu mới").fill("của riêng tôi 1")
    page.get_by_role("button", name="Đổi mật khẩu").click()
    expect(page.locator(".sf-notice")).to_contain_text("Đã đổi mật khẩu của bạn.")
    if not suffix:
        check_page(page, "account_phone")
    assert password_works(username, "của riêng tôi 1")

    # the admin's staff page on a phone: one card per account
    sign_in(page, live_server, "boss", PASSWORD, "/dashboard/staff")
    expect(page.locator(f"#user-{username}")).to_be_visible()
    if not suffix:
        check_page(page, "staff_phone")
        desk.goto(f"{live_server}/dashboard/account")
        check_page(desk, "account_desktop")


def test_in_chromium_a_supervisor_creates_edits_and_deletes_a_template(
    live_server: str, people: dict[str, str], desk: Page, page: Page, module_database: str
) -> None:
    sqlite = module_database.startswith("sqlite")
    title = fresh("Hẹn lịch nhận kết quả")
    sign_in(desk, live_server, "sup.a", PASSWORD, "/dashboard/templates")
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Mẫu trả lời")
    expect(desk.locator("main")).to_contain_text("Phòng Tư pháp thử")
    add = desk.locator("form[action='/dashboard/templates']")
    add.get_by_label("Tên mẫu").fill(title)
    add.get_by_label("Nội dung").fill(
        "Chào anh/chị,\nmời anh/chị tới nhận kết quả vào thứ Hai.\n<script>alert(1)</script>"
    )
    add.get_by_role("button", name="Thêm mẫu").click()
    expect(desk.locator(".sf-notice")).to_contain_text("Đã thêm mẫu trả lời.")
    item = desk.locator(".sf-templates li", has=desk.get_by_role("heading", name=title))
    expect(item.locator("blockquote")).to_contain_text("<script>alert(1)</script>")  # text, not a script
    template_id = events("template_created", title=title)[0].data["template"]

    item.get_by_text("Sửa hoặc xóa mẫu này").click()
    edit = item.locator(f"form[action='/dashboard/templates/{template_id}']")
    edit.get_by_label("Nội dung").fill("Chào anh/chị, kết quả đã có: mời tới nhận từ thứ Hai.")
    edit.get_by_role("button", name="Lưu thay đổi").click()
    expect(desk.locator(".sf-notice")).to_contain_text("Đã lưu mẫu trả lời.")
    assert template(template_id) == (title, "Chào anh/chị, kết quả đã có: mời tới nhận từ thứ Hai.")
    if sqlite:
        desk.locator(f"#template-{template_id} summary").click()  # open, to see the edit form too
        check_page(desk, "templates_desktop")

    sign_in(page, live_server, "sup.a", PASSWORD, "/dashboard/templates")
    phone_item = page.locator(f"#template-{template_id}")
    phone_item.locator("summary").click()
    if sqlite:
        check_page(page, "templates_phone")
    phone_item.get_by_role("button", name="Xóa mẫu này").click()
    expect(page.locator(".sf-notice")).to_contain_text("Đã xóa mẫu trả lời.")
    assert template(template_id) is None

    # an admin chooses the department
    sign_in(desk, live_server, "boss", PASSWORD, "/dashboard/templates")
    desk.get_by_label("Chọn phòng").select_option("dept-b")
    desk.get_by_role("button", name="Xem").click()
    expect(desk).to_have_url(f"{live_server}/dashboard/templates?department=dept-b")
    expect(desk.locator("main")).to_contain_text("Phòng Đất đai thử")
    if sqlite:
        check_page(desk, "templates_admin_desktop")
