"""The dashboard: server-rendered pages behind a login cookie; every figure from helpdesk.reports, linked to tickets.

Who sees what (also on the pages and in the README):
- admin: every department — the overview, any department's and official's page, every ticket.
- supervisor: their own department — its page, its officials' pages, its overdue list and tickets; another
  department's page is refused (403) and the refusal is audited.
- official: the overdue list and the tickets of their own department, but no reports (figures on departments
  and colleagues are for supervisors and admins).
Pages work without JavaScript (links, GET forms, POST forms); a small script of our own (static/dashboard.js) adds
live updates, the collision notice and template insertion. Every POST form carries a CSRF token bound to a cookie
of its own (and the Origin check stays); action forms carry a one-time key so a double press acts once.
"""

from __future__ import annotations

import base64
import contextvars
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from admin_api import charts
from core.config import get_settings
from core.db import session_scope
from core.errors import Invalid, MotcuaError, NotFound, PermissionDenied, Unauthenticated
from helpdesk import reports
from helpdesk.accounts import (
    WRONG_CREDENTIALS,
    Actor,
    actor_from_bearer,
    authenticate,
    create_access_token,
    signing_key,
)
from helpdesk.events import record_denial
from helpdesk.reports import Period
from helpdesk.sla import VN
from helpdesk.tickets import list_scope, unread_count
from knowledge.models import utcnow

logger = logging.getLogger(__name__)

COOKIE = "motcua_dashboard"
CSRF_COOKIE = "motcua_csrf"
CSRF_HEADER = "x-csrf-token"  # the dashboard's script sends the token in this header on its POSTs
PREFIX = "/dashboard"
TEMPLATES = FilePath(__file__).resolve().parent / "templates"
OVERDUE_ROWS = 200  # the overdue page; the department page shows the first few
OVERDUE_ON_DEPARTMENT_PAGE = 10
ROLE_VI = {"admin": "Quản trị viên", "supervisor": "Giám sát", "official": "Cán bộ"}
STATUS_VI = {
    "new": "Mới",
    "acknowledged": "Đã tiếp nhận",
    "answered": "Đã trả lời",
    "closed": "Đã đóng",
    "reopened": "Mở lại",
    "transferred": "Đã chuyển",
}
BOT_STATUS_VI = {
    "all": "Tất cả",
    "answered": "Trả lời được",
    "clarify": "Hỏi lại để làm rõ",
    "escalated": "Chuyển cán bộ",
    "declined": "Ngoài phạm vi",
    "other": "Khác",
}
FIGURE_LABELS = {  # figure of helpdesk.reports.tickets_behind → (Vietnamese, English)
    "volume": ("Yêu cầu mới", "Tickets opened"),
    "first_response": ("Đã phản hồi lần đầu", "First responses given"),
    "resolved": ("Đã giải quyết", "Resolved"),
    "decided": ("Đã xét hạn", "Decided: resolved, or late and open"),
    "on_time": ("Đúng hạn", "Resolved on time"),
    "missed": ("Trễ hạn", "Missed a deadline"),
    "overdue": ("Đang quá hạn", "Overdue now"),
    "apologies": ("Đã gửi lời xin lỗi", "Apologised to the citizen"),
    "rated": ("Được đánh giá", "Rated by the citizen"),
}
SECURITY_HEADERS = {
    # Script, styles and requests only from our own origin (no inline script); forms only to ourselves.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # figures and citizens' questions stay out of shared caches
}


class LoginRequired(Exception):
    """No valid dashboard cookie: the page redirects to the login form."""


_request: contextvars.ContextVar[Request | None] = contextvars.ContextVar("dashboard_request", default=None)


# -- CSRF --------------------------------------------------------------------------------------------------


def _csrf_seed(request: Request) -> str:
    """The browser's CSRF cookie; a new one (set on the response) when it has none yet."""
    seed = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_seed", None)
    if not seed:
        seed = secrets.token_urlsafe(32)
        request.state.new_csrf_seed = seed
    return seed


def _csrf_for(seed: str) -> str:
    """The token forms carry: an HMAC of the cookie, so a site that can plant cookies still cannot forge it."""
    mac = hmac.new(signing_key().encode(), b"csrf:" + seed.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_token() -> str:
    """The CSRF token of the page being rendered."""
    request = _request.get()
    return _csrf_for(_csrf_seed(request)) if request is not None else ""


def guard_form(request: Request, token: str | None) -> None:
    """Refuse (403) a POST from another site or without this browser's CSRF token."""
    if not _same_origin(request):
        raise PermissionDenied("cross-site form refused")
    seed = request.cookies.get(CSRF_COOKIE)
    token = token or request.headers.get(CSRF_HEADER) or ""
    if not seed or not hmac.compare_digest(token.encode(), _csrf_for(seed).encode()):
        raise PermissionDenied("the form's security token is missing or out of date; reload the page and try again")


CsrfField = Annotated[str, Form(max_length=100)]


# -- templates ---------------------------------------------------------------------------------------------


def _local(value: str | dt.datetime | None) -> str:
    """An ISO timestamp as Vietnam local time, dd/mm/yyyy HH:MM."""
    if value is None or value == "":
        return "—"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(VN).strftime("%d/%m/%Y %H:%M")


def _num(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{charts.fmt(float(value))}{(' ' + unit) if unit else ''}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(local=_local, num=_num, pct=_pct)
ENV.globals.update(FIGURE_LABELS=FIGURE_LABELS, STATUS_VI=STATUS_VI, BOT_STATUS_VI=BOT_STATUS_VI)


def render(
    template: str,
    actor: Actor | None,
    *,
    title: tuple[str, str],
    status: int = 200,
    current: str = "",
    **context: Any,
) -> HTMLResponse:
    """A page: the template with the header for the signed-in actor, and the security headers."""
    html = ENV.get_template(template).render(
        actor=actor,
        role_vi=ROLE_VI.get(actor.role, actor.role) if actor else "",
        nav=_nav(actor, current),
        unread=_unread(actor),
        csrf=csrf_token(),
        title_vi=title[0],
        title_en=title[1],
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def fragment(template: str, **context: Any) -> HTMLResponse:
    """A part of a page, for the live updates of dashboard.js (escaped like every page)."""
    html = ENV.get_template(template).render(csrf=csrf_token(), **context)
    return HTMLResponse(html, headers=SECURITY_HEADERS)


def _unread(actor: Actor | None) -> int:
    """The signed-in user's unread notifications, for the header's badge."""
    if actor is None:
        return 0
    with session_scope() as session:
        return unread_count(session, actor)


NAV = (  # key, path, Vietnamese, English, roles that see it
    ("overview", "", "Tổng quan", "Overview", ("admin",)),
    ("department", "/departments/{department}", "Phòng của tôi", "My department", ("supervisor",)),
    ("inbox", "/inbox", "Hộp yêu cầu", "Inbox", ("official", "supervisor", "admin")),
    ("overdue", "/overdue", "Quá hạn", "Overdue", ("official", "supervisor", "admin")),
    ("templates", "/templates", "Mẫu trả lời", "Reply templates", ("supervisor", "admin")),
    ("kb", "/kb", "Thủ tục", "Procedures", ("official", "supervisor", "admin")),
    ("staff", "/staff", "Cán bộ", "Staff", ("admin",)),
    ("notifications", "/notifications", "Thông báo", "Notifications", ("official", "supervisor", "admin")),
    ("account", "/account", "Tài khoản", "Account", ("official", "supervisor", "admin")),
)


def _nav(actor: Actor | None, current: str) -> list[dict[str, Any]]:
    if actor is None:
        return []
    return [
        {"key": key, "href": PREFIX + path.format(department=actor.department), "vi": vi, "en": en,
         "current": key == current}
        for key, path, vi, en, roles in NAV
        if actor.role in roles and (actor.department or "{department}" not in path)
    ]


# -- errors as pages ---------------------------------------------------------------------------------------

ERROR_TITLES = {
    401: ("Cần đăng nhập", "Sign-in needed"),
    403: ("Không có quyền truy cập", "Access denied"),
    404: ("Không tìm thấy", "Not found"),
    409: ("Xung đột", "Conflict"),
    422: ("Dữ liệu không hợp lệ", "Invalid input"),
}


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The error as a page of the dashboard (the JSON API keeps its `{"detail"}` bodies)."""
    actor = getattr(request.state, "dashboard_actor", None)
    title = ERROR_TITLES.get(status, ("Lỗi", "Error"))
    return render("error.html", actor, title=title, status=status, code=status, message=message)


def _login_redirect(request: Request) -> RedirectResponse:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': wanted})}", status_code=303)


class PageRoute(APIRoute):
    """Dashboard routes answer with pages: a missing login redirects, domain errors render the error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so that errors become pages instead of JSON."""
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            _request.set(request)
            response = await self._answer(handler, request)
            seed = getattr(request.state, "new_csrf_seed", None)
            if seed and CSRF_COOKIE not in request.cookies:
                response.set_cookie(
                    CSRF_COOKIE,
                    seed,
                    path=PREFIX,
                    httponly=True,
                    samesite="strict",
                    secure=request.url.scheme == "https",
                )
            return response

        return page_handler

    @staticmethod
    async def _answer(handler: Callable[[Request], Coroutine[Any, Any, Response]], request: Request) -> Response:
        """The page, or the login redirect or error page its failure calls for."""
        try:
            return await handler(request)
        except LoginRequired:
            return _login_redirect(request)
        except RequestValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err.get('loc', ()) if p not in ('query', 'path', 'body'))}: "
                f"{err.get('msg')}"
                for err in exc.errors()
            )
            return error_page(request, 422, problems)
        except MotcuaError as exc:
            status = {NotFound: 404, PermissionDenied: 403, Invalid: 422, Unauthenticated: 401}
            code = next((c for cls, c in status.items() if isinstance(exc, cls)), 409)
            return error_page(request, code, str(exc))


router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=PageRoute)


# -- who is asking -----------------------------------------------------------------------------------------


def page_actor(request: Request) -> Actor:
    """The signed-in user of the dashboard cookie, or a redirect to the login form."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired
    try:
        with session_scope() as session:
            actor = actor_from_bearer(session, token, utcnow())
    except Unauthenticated:
        raise LoginRequired from None
    request.state.dashboard_actor = actor
    return actor


ActorDep = Annotated[Actor, Depends(page_actor)]
DateParam = Annotated[str | None, Query(alias="from", max_length=10)]
ToParam = Annotated[str | None, Query(alias="to", max_length=10)]
BucketParam = Annotated[str | None, Query(max_length=5)]


def deny(actor: Actor, department: str | None, action: str, reason: str) -> PermissionDenied:
    """Audit a refused page and return the error to raise."""
    record_denial(
        None, department, actor=actor.username, user_id=actor.user_id, action=action, reason=reason, now=utcnow()
    )
    return PermissionDenied(f"{reason}; you are {actor.role} of {actor.department or 'no department'}")


def reports_allowed(actor: Actor, department: str | None, action: str) -> None:
    """Reports: admins any department, supervisors their own; officials none."""
    if actor.role == "admin":
        return
    if actor.role == "supervisor" and department is not None and department == actor.department:
        return
    if actor.role == "official":
        raise deny(actor, department, action, "reports are for supervisors and admins")
    raise deny(actor, department, action, f"department {department or '(all)'} is not yours")


def ticket_scope(actor: Actor, department: str | None, action: str) -> list[str] | None:
    """The departments whose tickets a list may show (helpdesk.tickets.list_scope): admins any (None: all)."""
    scope = list_scope(actor, department, action, utcnow())
    return None if scope is None else [scope]


# -- log in and out ----------------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a dashboard path on this site (no scheme, no host, no //evil.example)."""
    if not target:
        return PREFIX
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(PREFIX) or target.startswith(f"{PREFIX}/login"):
        return PREFIX
    return target


def _same_origin(request: Request) -> bool:
    """A form POST from our own pages (browsers send Origin on POST); the SameSite cookie does the rest."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "")


@router.get("/login")
def login_form(then: Annotated[str | None, Query(alias="next", max_length=500)] = None) -> HTMLResponse:
    """The sign-in form."""
    return render("login.html", None, title=("Đăng nhập", "Sign in"), next=_safe_next(then), username="", error=None)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=200)],
    then: Annotated[str, Form(alias="next", max_length=500)] = PREFIX,
    csrf: CsrfField = "",
) -> Response:
    """Check the password; on success set the HttpOnly, SameSite=Strict session cookie and go on."""
    if not _same_origin(request):
        return error_page(request, 403, "cross-site sign-in refused")
    guard_form(request, csrf)
    now = utcnow()
    try:
        with session_scope() as session:
            user = authenticate(session, username.strip(), password)
            token = create_access_token(user, now)
    except Unauthenticated as exc:
        wrong = str(exc) == WRONG_CREDENTIALS  # otherwise the password was right and the account is deactivated
        error = {
            "vi": "Sai tên đăng nhập hoặc mật khẩu." if wrong else "Tài khoản không đăng nhập được.",
            "en": "Wrong username or password." if wrong else f"{str(exc)[:1].upper()}{str(exc)[1:]}.",
        }
        return render(
            "login.html",
            None,
            title=("Đăng nhập", "Sign in"),
            status=401,
            next=_safe_next(then),
            username=username,
            error=error,
        )
    response = RedirectResponse(_safe_next(then), status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=get_settings().jwt_minutes * 60,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: CsrfField = "") -> Response:
    """Forget the cookie and return to the sign-in form."""
    if not _same_origin(request):
        return error_page(request, 403, "cross-site sign-out refused")
    guard_form(request, csrf)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


# -- report pages ------------------------------------------------------------------------------------------


def _bucket_for(period: Period, wanted: str | None) -> str:
    """The bucket asked for, else one that keeps a chart readable (days up to two months, then weeks, months)."""
    if wanted:
        if wanted not in reports.BUCKETS:
            raise Invalid(f"bucket: {wanted!r}; one of {', '.join(reports.BUCKETS)}")
        return wanted
    if period.days <= 62:
        return "day"
    return "week" if period.days <= 190 else "month"


def tickets_href(figure: str, period: Period | None, **filters: str | None) -> str:
    """The ticket list behind one figure."""
    query: dict[str, str] = {"figure": figure}
    if period is not None:
        query.update({"from": period.start.isoformat(), "to": period.end.isoformat()})
    query.update({key: value for key, value in filters.items() if value is not None})
    return f"{PREFIX}/tickets?{urlencode(query)}"


def figure_href(figure: str, period: Period, filters: dict[str, str | None] | None) -> str | None:
    """A figure's link for the templates: None when it has no ticket list (filters None); overdue has no period."""
    if filters is None:
        return None
    return tickets_href(figure, None if figure == "overdue" else period, **filters)


ENV.globals.update(figure_href=figure_href, month_period=Period.month)


def _chart_label(label: str, bucket: str, period: Period) -> str:
    """A bucket's label as Vietnamese readers write dates: 29/10 (29/10/26 across years), or 10/2026."""
    day = dt.date.fromisoformat(label)
    if bucket == "month":
        return day.strftime("%m/%Y")
    return day.strftime("%d/%m" if period.start.year == period.end.year else "%d/%m/%y")


def _time_charts(
    rows: list[dict[str, Any]], period: Period, bucket: str, department: str | None
) -> list[dict[str, Any]]:
    """Volume and response time over time, each point linked to the tickets it counts."""
    labels = [_chart_label(row["bucket"], bucket, period) for row in rows]
    spans = [reports.bucket_period(row["bucket"], bucket, period) for row in rows]
    per_vi = {"day": "ngày", "week": "tuần", "month": "tháng"}[bucket]
    volume = (
        f"Số yêu cầu theo {per_vi}",
        f"Tickets per {bucket}",
        charts.line_chart(
            f"Số yêu cầu theo {per_vi} · Tickets per {bucket}",
            labels,
            [
                charts.Series(
                    "Mới · Opened",
                    [row["tickets"] for row in rows],
                    [tickets_href("volume", span, department=department) for span in spans],
                ),
                charts.Series(
                    "Giải quyết · Resolved",
                    [row["resolved"] for row in rows],
                    [tickets_href("resolved", span, department=department) for span in spans],
                ),
            ],
            desc=f"Tickets opened and resolved per {bucket}, {period.start} to {period.end}",
            unit="yêu cầu · tickets",
        ),
    )
    response = (
        f"Thời gian phản hồi đầu tiên (trung vị) theo {per_vi}",
        f"Median first response time per {bucket}",
        charts.line_chart(
            f"Thời gian phản hồi đầu tiên theo {per_vi} · Median first response per {bucket}",
            labels,
            [
                charts.Series(
                    "Trung vị · Median",
                    [row["first_response_median_hours"] for row in rows],
                    [tickets_href("first_response", span, department=department) for span in spans],
                )
            ],
            desc=f"Median working hours from opening to the first official reply, per {bucket}",
            unit="giờ làm việc · working hours",
        ),
    )
    # charts.py escapes every label itself: its SVG goes into the page as it is
    return [{"vi": vi, "en": en, "svg": Markup(svg)} for vi, en, svg in (volume, response)]  # noqa: S704


def _ranking_chart(rows: list[dict[str, Any]], month: str) -> Markup:
    """The month's departments by on-time rate, best first, each bar linked to the tickets decided."""
    period = Period.month(month)
    bars = [
        charts.Bar(
            f"{row['rank']}. {row['name'] or row['department']}",
            round(row["on_time_rate"] * 100, 1),
            tickets_href("decided", period, department=row["department"]),
        )
        for row in rows
        if row["on_time_rate"] is not None
    ]
    svg = charts.bar_chart(
        f"Xếp hạng tháng {month}: tỉ lệ đúng hạn · Ranking {month}: on-time rate",
        bars,
        desc="Departments ranked by the share of decided tickets resolved on time",
        unit="%",
    )
    return Markup(svg)  # noqa: S704 - charts.py escapes every label itself


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts added over departments (each ticket belongs to one), and the on-time rate of the sums."""
    keys = (
        "tickets",
        "first_responses",
        "resolved",
        "decided",
        "on_time",
        "missed",
        "overdue_now",
        "apologies",
        "ratings",
    )
    total = {key: sum(row[key] for row in rows) for key in keys}
    total["on_time_rate"] = total["on_time"] / total["decided"] if total["decided"] else None
    return total


def _figure_tiles(figures: dict[str, Any], period: Period, **filters: str | None) -> list[dict[str, Any]]:
    """The key figures, each with its link."""
    tiles = [
        ("volume", figures["tickets"]),
        ("first_response", figures["first_responses"]),
        ("resolved", figures["resolved"]),
        ("on_time", figures["on_time"]),
        ("missed", figures["missed"]),
        ("overdue", figures["overdue_now"]),
        ("apologies", figures["apologies"]),
        ("rated", figures["ratings"]),
    ]
    return [
        {
            "vi": FIGURE_LABELS[figure][0],
            "en": FIGURE_LABELS[figure][1],
            "value": value,
            "href": tickets_href(figure, None if figure == "overdue" else period, **filters),
            "figure": figure,
        }
        for figure, value in tiles
    ]


def _month_of(period: Period, month: str | None) -> str:
    if month:
        Period.month(month)  # validates
        return month
    return period.end.strftime("%Y-%m")


@router.get("")
def overview(
    request: Request,
    actor: ActorDep,
    start: DateParam = None,
    end: ToParam = None,
    bucket: BucketParam = None,
    month: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    """Admins: every department; supervisors go to their department, officials to their inbox."""
    if actor.role == "supervisor" and actor.department:
        target = f"{PREFIX}/departments/{actor.department}"
        return RedirectResponse(target + (f"?{request.url.query}" if request.url.query else ""), status_code=303)
    if actor.role != "admin":
        return RedirectResponse(f"{PREFIX}/inbox", status_code=303)
    period = Period.parse(start, end)
    chosen = _bucket_for(period, bucket)
    ranking_month = _month_of(period, month)
    now = utcnow()
    with session_scope() as session:
        departments = reports.department_report(session, period, None, now=now)
        series = reports.timeseries(session, period, None, bucket=chosen)
        ranking = reports.monthly_ranking(session, ranking_month, now=now)
        bot = reports.bot_report(session, period)
        categories = reports.category_report(session, period, None, now=now)
    totals = _totals(departments)
    return render(
        "overview.html",
        actor,
        title=("Tổng quan", "Overview"),
        current="overview",
        period=period,
        bucket=chosen,
        figure_tiles=_figure_tiles(totals, period),
        on_time_rate=totals["on_time_rate"],
        time_charts=_time_charts(series, period, chosen, None),
        departments=departments,
        ranking=ranking,
        ranking_chart=_ranking_chart(ranking, ranking_month),
        month=ranking_month,
        bot=bot,
        categories=categories,
    )


@router.get("/departments/{slug}")
def department_page(
    slug: Annotated[str, Path(max_length=80)],
    actor: ActorDep,
    start: DateParam = None,
    end: ToParam = None,
    bucket: BucketParam = None,
) -> Response:
    """One department: its figures over time, its officials, categories and what is overdue now."""
    reports_allowed(actor, slug, "dashboard:department")
    period = Period.parse(start, end)
    chosen = _bucket_for(period, bucket)
    month = period.end.strftime("%Y-%m")
    now = utcnow()
    with session_scope() as session:
        rows = reports.department_report(session, period, [slug], now=now)
        if not rows or not rows[0]["name"]:
            raise NotFound(f"no department {slug!r}")
        series = reports.timeseries(session, period, [slug], bucket=chosen)
        officials = reports.official_report(session, period, [slug], now=now)
        categories = reports.category_report(session, period, [slug], now=now)
        overdue = reports.overdue_tickets(session, [slug], now, OVERDUE_ON_DEPARTMENT_PAGE)
        ranking = reports.monthly_ranking(session, month, [slug], now=now)
    department = rows[0]
    return render(
        "department.html",
        actor,
        title=(department["name"], department["name_en"] or slug),
        current="department",
        period=period,
        bucket=chosen,
        department=department,
        figure_tiles=_figure_tiles(department, period, department=slug),
        filters={"department": slug},
        time_charts=_time_charts(series, period, chosen, slug),
        officials=[row for row in officials if row["department"] == slug or row["tickets"] or row["resolved"]],
        categories=categories,
        overdue=overdue,
        ranking=ranking[0] if ranking else None,
        month=month,
    )


@router.get("/officials/{username}")
def official_page(
    username: Annotated[str, Path(max_length=80)],
    actor: ActorDep,
    start: DateParam = None,
    end: ToParam = None,
) -> Response:
    """One official's figures: what they hold, how fast they answer, how citizens rate them."""
    if actor.role == "official":
        raise deny(actor, actor.department, "dashboard:official", "reports are for supervisors and admins")
    period = Period.parse(start, end)
    now = utcnow()
    with session_scope() as session:
        rows = reports.official_report(session, period, None, now=now)
    row = next((r for r in rows if r["official"] == username), None)
    if row is None:
        raise NotFound(f"no official {username!r}")
    reports_allowed(actor, row["department"], "dashboard:official")
    return render(
        "official.html",
        actor,
        title=(row["full_name"] or username, username),
        current="department",
        period=period,
        official=row,
        figure_tiles=_figure_tiles(row, period, official=username),
        filters={"official": username},
    )


@router.get("/overdue")
def overdue_page(
    actor: ActorDep,
    department: Annotated[str | None, Query(max_length=80)] = None,
) -> Response:
    """What is late right now, the longest-late first: every role, within its departments."""
    scope = ticket_scope(actor, department, "dashboard:overdue")
    now = utcnow()
    with session_scope() as session:
        rows = reports.overdue_tickets(session, scope, now, OVERDUE_ROWS)
    return render(
        "overdue.html",
        actor,
        title=("Yêu cầu quá hạn", "Overdue tickets"),
        current="overdue",
        rows=rows,
        scope=scope,
        limit=OVERDUE_ROWS,
        now=now,
    )


@router.get("/tickets")
def ticket_list(
    actor: ActorDep,
    figure: Annotated[str, Query(max_length=20)] = "volume",
    department: Annotated[str | None, Query(max_length=80)] = None,
    official: Annotated[str | None, Query(max_length=80)] = None,
    category: Annotated[str | None, Query(max_length=200)] = None,
    start: DateParam = None,
    end: ToParam = None,
) -> Response:
    """The tickets behind one figure, with the same conditions as the report that counted them."""
    if figure not in reports.FIGURES:
        raise Invalid(f"figure: {figure!r}; one of {', '.join(reports.FIGURES)}")
    scope = ticket_scope(actor, department, "dashboard:tickets")
    period = Period.parse(start, end)
    now = utcnow()
    with session_scope() as session:
        rows = reports.tickets_behind(session, scope, figure, period, now=now, official=official, category=category)
    return render(
        "tickets.html",
        actor,
        title=FIGURE_LABELS[figure],
        current="tickets",
        figure=figure,
        period=period,
        department=department or (scope[0] if scope else None),
        official=official,
        category=category,
        rows=rows,
        limit=reports.MAX_TICKET_ROWS,
    )
