"""Dashboard pages: staff accounts (admins), my account (everyone), reply templates (supervisors and admins).

Every POST: Origin and CSRF check first (guard_form), then who may (refusals audited, before anything is written),
then the action in one transaction with the form's once-only key: a second press of the same form does nothing and
redirects as if done. Success redirects (303) to the page with a short notice; bad input shows the page again (422)
with what was typed, never a password. A generated password is shown once, on the response page itself: never in a
URL, a log or the database.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from admin_api.dashboard import PREFIX, ROLE_VI, ActorDep, CsrfField, PageRoute, deny, guard_form, render
from core.db import session_scope
from core.errors import Conflict, Invalid, NotFound
from helpdesk import accounts, reply_templates
from helpdesk.accounts import PASSWORD_POLICY, USERNAME, Actor
from helpdesk.departments import list_departments
from helpdesk.models import Department, User
from helpdesk.submissions import AlreadySubmitted, first_submission, new_submission_key
from knowledge.models import utcnow

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=PageRoute)

# Form fields are bounded generously: the helpdesk rules give the clear message, with the page and what was typed.
Text = Annotated[str, Form(max_length=500)]
LongText = Annotated[str, Form(max_length=20_000)]
Secret = Annotated[str, Form(max_length=1000)]
Key = Annotated[str, Form(max_length=100)]
Slug = Annotated[str, Form(max_length=80)]  # a department: also the audit trail's column width
UsernamePath = Annotated[str, Path(max_length=80)]
TemplateId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # an id beyond PostgreSQL's integer is no template
Done = Annotated[str | None, Query(max_length=30)]

NOTICES = {  # ?done=… after a redirect → (Vietnamese, English); {user} is a checked username
    "created": ("Đã tạo tài khoản {user}.", "Account {user} created."),
    "created-again": (
        "Tài khoản {user} đã được tạo ở lần bấm trước; mật khẩu chỉ hiện ở trang đó. "
        "Nếu chưa kịp ghi lại, hãy đặt lại mật khẩu.",
        "Account {user} was created by the first press; its password showed on that page only. "
        "If you did not note it, reset the password.",
    ),
    "reset-again": (
        "Mật khẩu của {user} đã được đặt lại ở lần bấm trước và chỉ hiện ở trang đó. "
        "Nếu chưa kịp ghi lại, hãy đặt lại lần nữa.",
        "The password of {user} was reset by the first press and showed on that page only. "
        "If you did not note it, reset it again.",
    ),
    "deactivated": (
        "Đã khóa tài khoản {user}; các mã API của tài khoản bị thu hồi.",
        "Account {user} deactivated; its API tokens are revoked.",
    ),
    "reactivated": ("Đã mở lại tài khoản {user}.", "Account {user} reactivated."),
    "password": ("Đã đổi mật khẩu của bạn.", "Your password was changed."),
    "template-created": ("Đã thêm mẫu trả lời.", "Reply template added."),
    "template-updated": ("Đã lưu mẫu trả lời.", "Reply template saved."),
    "template-deleted": ("Đã xóa mẫu trả lời.", "Reply template deleted."),
}
FIELD_VI = {  # the rule of each form field in Vietnamese; the English message of helpdesk says what exactly is wrong
    "username": "Tên đăng nhập: 3–80 ký tự gồm chữ thường không dấu, chữ số, '.', '_' hoặc '-'.",
    "full_name": "Họ tên: tối đa 200 ký tự.",
    "role": "Vai trò: cán bộ hoặc giám sát.",
    "department": "Phòng: chọn một phòng có trong danh sách.",
    "password": f"Mật khẩu: {PASSWORD_POLICY[0][:1].lower()}{PASSWORD_POLICY[0][1:]}",
    "current_password": "Mật khẩu hiện tại không đúng.",
    "repeated": "Hai lần nhập mật khẩu mới không giống nhau.",
    "title": f"Tên mẫu: 1–{reply_templates.MAX_TITLE} ký tự trên một dòng, không trùng tên mẫu khác của phòng.",
    "body": f"Nội dung: 1–{reply_templates.MAX_BODY} ký tự.",
    "submission": "Biểu mẫu đã cũ; hãy tải lại trang rồi gửi lại.",
    "active": "Trạng thái không hợp lệ.",
}
_FIELD = re.compile(r"field '(\w+)'")


def _problem(exc: Invalid | Conflict) -> dict[str, str]:
    """A refusal of the input for the page: the field, its rule in Vietnamese and the exact English message."""
    message = str(exc)
    if isinstance(exc, Conflict):  # the only conflict of these forms: the username is taken
        field, vi = "username", "Tên đăng nhập này đã có người dùng; chọn tên khác."
    elif message.startswith("submission:"):
        field, vi = "submission", FIELD_VI["submission"]
    else:
        found = _FIELD.search(message)
        field = found.group(1) if found else ""
        vi = FIELD_VI.get(field, "Dữ liệu chưa hợp lệ.")
    return {"field": field, "vi": vi, "en": f"{message[:1].upper()}{message[1:]}."}


def _notice(done: str | None, user: str | None) -> tuple[str, str] | None:
    """The confirmation a redirect asked for: fixed texts only, with a username that has a username's shape."""
    if done not in NOTICES:
        return None
    vi, en = NOTICES[done]
    if "{user}" in vi and not (user and USERNAME.fullmatch(user)):  # a hand-made URL: say nothing rather than nonsense
        return None
    return vi.format(user=user), en.format(user=user)


def _redirect(path: str, **query: str | None) -> RedirectResponse:
    """303 to a dashboard page with its notice."""
    wanted = {key: value for key, value in query.items() if value}
    return RedirectResponse(f"{PREFIX}{path}{'?' + urlencode(wanted) if wanted else ''}", status_code=303)


# -- staff (admins) ----------------------------------------------------------------------------------------


def _staff_page(actor: Actor, *, status: int = 200, **context: Any) -> Response:
    """The staff page: every account, the form to create one, and whatever notice, error or password to show."""
    with session_scope() as session:
        users = [
            {
                "username": u.username,
                "full_name": u.full_name,
                "role": u.role,
                "role_vi": ROLE_VI.get(u.role, u.role),
                "department": u.department,
                "active": u.active,
                "created_at": u.created_at,
                "is_self": u.id == actor.user_id,
            }
            for u in accounts.list_users(session)
        ]
        departments = [{"slug": d.slug, "name": d.name, "name_en": d.name_en} for d in list_departments(session)]
    context.setdefault("form", {"username": "", "full_name": "", "role": "official", "department": ""})
    return render(
        "staff.html",
        actor,
        title=("Cán bộ", "Staff"),
        current="staff",
        status=status,
        users=users,
        departments=departments,
        roles=[(role, ROLE_VI[role]) for role in accounts.DEPARTMENT_ROLES],
        password_policy=PASSWORD_POLICY,
        submission_key=new_submission_key,
        **{"error": None, "error_at": "", "notice": None, "secret": None, **context},
    )


@router.get("/staff")
def staff_page(
    actor: ActorDep, done: Done = None, user: Annotated[str | None, Query(max_length=80)] = None
) -> Response:
    """Admins: every account, create one, reset a password, deactivate or reactivate."""
    if actor.role != "admin":
        raise deny(actor, None, "dashboard:staff", "staff accounts are managed by admins")
    return _staff_page(actor, notice=_notice(done, user))


@router.post("/staff")
def create_staff(
    request: Request,
    actor: ActorDep,
    username: Text = "",
    full_name: Text = "",
    role: Text = "official",
    department: Slug = "",
    password: Secret = "",
    submission: Key = "",
    csrf: CsrfField = "",
) -> Response:
    """Create an official or supervisor; a password left empty is generated and shown once on the response page."""
    guard_form(request, csrf)
    now = utcnow()
    accounts.require_admin(actor, "staff:create", now, department or None)
    username = username.strip()
    typed = {"username": username, "full_name": full_name, "role": role, "department": department}
    try:
        with session_scope() as session:
            if not first_submission(session, submission, actor.user_id, now):
                return _redirect("/staff", done="created" if password else "created-again", user=username)
            user, generated = accounts.create_staff(
                session,
                actor,
                username=username,
                full_name=full_name,
                role=role,
                department=department or None,
                password=password or None,
                now=now,
            )
            created = user.username
    except AlreadySubmitted:  # the other press of the same instant is doing it
        return _redirect("/staff", done="created" if password else "created-again", user=username)
    except (Invalid, Conflict) as exc:
        return _staff_page(actor, status=422, form=typed, error=_problem(exc), error_at="create")
    if generated is None:
        return _redirect("/staff", done="created", user=created)
    return _staff_page(
        actor, notice=_notice("created", created), secret={"username": created, "password": generated, "new": True}
    )


@router.post("/staff/{username}/reset")
def reset_password(
    request: Request, actor: ActorDep, username: UsernamePath, submission: Key = "", csrf: CsrfField = ""
) -> Response:
    """Give the user a new random password, shown once on this response page."""
    guard_form(request, csrf)
    now = utcnow()
    accounts.require_admin(actor, "staff:reset_password", now)
    try:
        with session_scope() as session:
            if not first_submission(session, submission, actor.user_id, now):
                return _redirect("/staff", done="reset-again", user=username)
            password = accounts.reset_password(session, actor, username, now)
    except AlreadySubmitted:
        return _redirect("/staff", done="reset-again", user=username)
    except Invalid as exc:
        return _staff_page(actor, status=422, error=_problem(exc))
    return _staff_page(actor, secret={"username": username, "password": password, "new": False})


@router.post("/staff/{username}/active")
def set_active(
    request: Request,
    actor: ActorDep,
    username: UsernamePath,
    active: Annotated[str, Form(max_length=10)] = "",
    submission: Key = "",
    csrf: CsrfField = "",
) -> Response:
    """Deactivate (active=false) or reactivate (active=true) an account: a state, so sending it twice is harmless."""
    guard_form(request, csrf)
    now = utcnow()
    accounts.require_admin(actor, "staff:set_active", now)
    done = {"true": "reactivated", "false": "deactivated"}.get(active)
    try:
        if done is None:
            raise Invalid(f"field 'active': {active!r}; true or false")
        with session_scope() as session:
            if first_submission(session, submission, actor.user_id, now):
                accounts.set_active(session, actor, username, active == "true", now)
    except AlreadySubmitted:
        pass  # the other press of the same instant does it
    except Invalid as exc:
        return _staff_page(actor, status=422, error=_problem(exc))
    return _redirect("/staff", done=done, user=username)


# -- my account (everyone) ---------------------------------------------------------------------------------


def _account_page(actor: Actor, *, status: int = 200, **context: Any) -> Response:
    """Who I am, and the form to change my password."""
    with session_scope() as session:
        user = session.get(User, actor.user_id)
        me = {
            "username": actor.username,
            "full_name": user.full_name if user else "",
            "role": actor.role,
            "role_vi": ROLE_VI.get(actor.role, actor.role),
            "department": actor.department,
            "department_name": session.scalar(select(Department.name).where(Department.slug == actor.department)) or "",
            "created_at": user.created_at if user else None,
        }
    return render(
        "account.html",
        actor,
        title=("Tài khoản của tôi", "My account"),
        current="account",
        status=status,
        me=me,
        password_policy=PASSWORD_POLICY,
        submission_key=new_submission_key,
        **{"error": None, "notice": None, **context},
    )


@router.get("/account")
def account_page(actor: ActorDep, done: Done = None) -> Response:
    """Every role: who I am; change my own password."""
    return _account_page(actor, notice=_notice(done, None))


@router.post("/account/password")
def change_password(
    request: Request,
    actor: ActorDep,
    current_password: Secret = "",
    new_password: Secret = "",
    repeated: Secret = "",
    submission: Key = "",
    csrf: CsrfField = "",
) -> Response:
    """Change my own password: the current one, then the new one twice."""
    guard_form(request, csrf)
    now = utcnow()
    try:
        with session_scope() as session:
            if first_submission(session, submission, actor.user_id, now):
                accounts.change_own_password(
                    session, actor, current=current_password, new=new_password, repeated=repeated, now=now
                )
    except AlreadySubmitted:
        pass
    except Invalid as exc:
        return _account_page(actor, status=422, error=_problem(exc))
    return _redirect("/account", done="password")


# -- reply templates (supervisors: their department; admins: any) -----------------------------------------


def _templates_page(actor: Actor, department: str | None, *, status: int = 200, **context: Any) -> Response:
    """A department's templates with the forms to add, edit and delete them; admins first choose the department."""
    now = utcnow()
    with session_scope() as session:
        departments = [{"slug": d.slug, "name": d.name, "name_en": d.name_en} for d in list_departments(session)]
        if department is None:
            department = actor.department if actor.role != "admin" else next((d["slug"] for d in departments), None)
        reply_templates.check_edit(actor, department, "dashboard:templates", now)
        chosen = next((d for d in departments if d["slug"] == department), None)
        if chosen is None:
            raise NotFound(f"no department {department!r}" if department else "no department yet: import some first")
        rows = [
            {"id": t.id, "title": t.title, "body": t.body, "updated_by": t.updated_by, "updated_at": t.updated_at}
            for t in reply_templates.templates_for(session, actor, chosen["slug"])
        ]
    return render(
        "reply_templates.html",
        actor,
        title=("Mẫu trả lời", "Reply templates"),
        current="templates",
        status=status,
        departments=departments if actor.role == "admin" else [],
        department=chosen,
        templates=rows,
        max_title=reply_templates.MAX_TITLE,
        max_body=reply_templates.MAX_BODY,
        submission_key=new_submission_key,
        **{"error": None, "notice": None, "form": {"title": "", "body": ""}, "editing": None, **context},
    )


@router.get("/templates")
def templates_page(
    actor: ActorDep, department: Annotated[str | None, Query(max_length=80)] = None, done: Done = None
) -> Response:
    """Supervisors: their department's templates; admins: the department they choose. Officials: 403 (audited)."""
    return _templates_page(actor, department or None, notice=_notice(done, None))


@router.post("/templates")
def create_template(
    request: Request,
    actor: ActorDep,
    department: Slug = "",
    title: Text = "",
    body: LongText = "",
    submission: Key = "",
    csrf: CsrfField = "",
) -> Response:
    """Add a template to a department."""
    guard_form(request, csrf)
    now = utcnow()
    reply_templates.check_edit(actor, department, "templates:create", now)
    back = {"department": department, "done": "template-created"}
    try:
        with session_scope() as session:
            if first_submission(session, submission, actor.user_id, now):
                reply_templates.save_template(session, actor, department, title, body, now)
    except AlreadySubmitted:
        pass
    except Invalid as exc:
        return _templates_page(
            actor, department or None, status=422, form={"title": title, "body": body}, error=_problem(exc)
        )
    return _redirect("/templates", **back)


@router.post("/templates/{template_id}")
def update_template(
    request: Request,
    actor: ActorDep,
    template_id: TemplateId,
    title: Text = "",
    body: LongText = "",
    submission: Key = "",
    csrf: CsrfField = "",
) -> Response:
    """Change a template's title and text."""
    guard_form(request, csrf)
    now = utcnow()
    department = None
    try:
        with session_scope() as session:
            # who may is settled before the once-only key is written: a refusal is audited in a transaction of its own
            template = reply_templates.template_to_edit(session, actor, template_id, "templates:update", now)
            department = template.department
            if first_submission(session, submission, actor.user_id, now):
                reply_templates.save_template(session, actor, department, title, body, now, template_id)
    except AlreadySubmitted:
        pass
    except Invalid as exc:
        editing = {"id": template_id, "title": title, "body": body}
        return _templates_page(actor, department, status=422, editing=editing, error=_problem(exc))
    return _redirect("/templates", department=department, done="template-updated")


@router.post("/templates/{template_id}/delete")
def delete_template(
    request: Request,
    actor: ActorDep,
    template_id: TemplateId,
    department: Slug = "",
    submission: Key = "",
    csrf: CsrfField = "",
) -> Response:
    """Delete a template; a second press of the same button finds it gone and redirects as if done."""
    guard_form(request, csrf)
    now = utcnow()
    try:
        with session_scope() as session:
            try:
                template = reply_templates.template_to_edit(session, actor, template_id, "templates:delete", now)
            except NotFound:
                if not first_submission(session, submission, actor.user_id, now):
                    # this very form deleted it: back to the page it was sent from
                    return _redirect("/templates", department=department, done="template-deleted")
                raise
            department = template.department
            if first_submission(session, submission, actor.user_id, now):
                reply_templates.delete_template(session, actor, template_id, now)
    except AlreadySubmitted:
        pass
    except Invalid as exc:
        return _templates_page(actor, None, status=422, error=_problem(exc))
    return _redirect("/templates", department=department, done="template-deleted")
