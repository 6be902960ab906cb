"""Accountability reports over HTTP (JSON or CSV) and the public transparency page: a thin layer over helpdesk.reports.

Who sees what: admins every department; supervisors their own department only (asking for another is refused
with 403 and audited); officials no reports (403). The bot report and the monthly ranking are city-wide: the
ranking shows the same per-department figures as the public transparency page.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from admin_api.auth_routes import current_actor
from core.db import session_scope
from core.errors import PermissionDenied
from helpdesk import reports
from helpdesk.accounts import Actor
from helpdesk.events import record_denial
from helpdesk.reports import Period
from helpdesk.sla import VN
from knowledge.models import utcnow

router = APIRouter(tags=["reports"])
ActorDep = Annotated[Actor, Depends(current_actor)]
Format = Literal["json", "csv"]

DEFINITIONS = (
    "Period: `from`/`to` are Vietnam dates (YYYY-MM-DD), both included; default the last 30 days, at most 400. "
    "A ticket belongs to its current department; its official is its assignee. Volume: tickets created in the "
    "period. First response: working hours to the first official reply, over first replies in the period. "
    "Resolution: working hours to the answer or closing, over tickets resolved in the period. On time: resolved "
    "with no missed deadline (apologies = 0). Decided: resolved in the period, or unresolved with a missed "
    "deadline and created in the period. On-time rate = on time / decided. Overdue now: open, clock not paused, "
    "deadline passed. Apologies: sent in the period. Rating: the citizen's 1-5 rating, over tickets resolved in "
    "the period. Medians, p90 and p95: nearest rank. 👍/👎 are reported per procedure category and overall, "
    "not per department. `department` may repeat or be comma-separated; `format=csv` gives text/csv."
)


@dataclass(frozen=True)
class ReportQuery:
    """What every report request carries: the period, the departments asked for, the format."""

    period: Period
    departments: list[str] | None
    format: Format


def report_query(
    start: Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD (Vietnam time)")] = None,
    end: Annotated[str | None, Query(alias="to", description="last day, YYYY-MM-DD, included")] = None,
    department: Annotated[list[str] | None, Query(description="department slug(s); repeat or comma-separate")] = None,
    format: Annotated[Format, Query(description="json or csv")] = "json",
) -> ReportQuery:
    """Parse the common parameters (bad dates → 422 naming the parameter)."""
    slugs = [part.strip() for value in department or [] for part in value.split(",") if part.strip()]
    return ReportQuery(Period.parse(start, end), slugs or None, format)


QueryDep = Annotated[ReportQuery, Depends(report_query)]


def scope(actor: Actor, asked: list[str] | None, report: str) -> list[str] | None:
    """The departments the actor may see of those asked: admin any, supervisor their own, official none."""
    if actor.role == "admin":
        return asked
    if actor.role != "supervisor":
        _deny(actor, None, report, "reports are for supervisors and admins")
        raise PermissionDenied("reports are for supervisors and admins; officials see their queue instead")
    own = actor.department
    others = [slug for slug in asked or [] if slug != own]
    if others or own is None:
        _deny(actor, others[0] if others else None, report, f"report of department {', '.join(others) or '(none)'}")
        raise PermissionDenied(
            f"you may only read your own department's reports ({own or 'you have no department'}); "
            f"asked for {', '.join(others) or 'every department'}"
        )
    return [own]


def _deny(actor: Actor, department: str | None, report: str, reason: str) -> None:
    record_denial(
        None,
        department,
        actor=actor.username,
        user_id=actor.user_id,
        action=f"report {report}",
        reason=reason,
        now=utcnow(),
    )


def respond(
    name: str,
    rows: list[dict[str, Any]],
    columns: Sequence[str],
    period: Period,
    departments: list[str] | None,
    fmt: Format,
) -> Response:
    """The rows as `{"data", "from", "to", "generated_at", "departments"}` JSON, or as CSV with a header row."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows([["" if row[c] is None else row[c] for c in columns] for row in rows])
        filename = f"motcua-{name}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
        return Response(
            buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return JSONResponse(
        {
            "data": rows,
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "generated_at": utcnow().isoformat(),
            "departments": departments,
        }
    )


def _run(
    actor: Actor,
    query: ReportQuery,
    name: str,
    columns: Sequence[str],
    build: Callable[[Any, list[str] | None], list[dict[str, Any]]],
) -> Response:
    departments = scope(actor, query.departments, name)
    with session_scope() as session:
        reports.check_departments(session, departments)
        rows = build(session, departments)
    return respond(name, rows, columns, query.period, departments, query.format)


@router.get("/api/reports/departments", description=DEFINITIONS)
def department_report(actor: ActorDep, query: QueryDep) -> Response:
    """Per department: volume, median and p90 first-response and resolution hours, on-time rate, overdue now,
    apologies, ratings."""
    return _run(
        actor,
        query,
        "departments",
        reports.DEPARTMENT_COLUMNS,
        lambda session, deps: reports.department_report(session, query.period, deps),
    )


@router.get("/api/reports/officials", description=DEFINITIONS)
def official_report(actor: ActorDep, query: QueryDep) -> Response:
    """Per official (assignee of the department's tickets): the same figures as per department."""
    return _run(
        actor,
        query,
        "officials",
        reports.OFFICIAL_COLUMNS,
        lambda session, deps: reports.official_report(session, query.period, deps),
    )


@router.get("/api/reports/bot", description=DEFINITIONS)
def bot_report(actor: ActorDep, query: QueryDep) -> Response:
    """The bot's replies by status (answered, clarify, escalated, declined, other): count, share of questions,
    p50/p95 latency in ms, 👍/👎 — city-wide."""
    return _run(
        actor, query, "bot", reports.BOT_COLUMNS, lambda session, deps: reports.bot_report(session, query.period, deps)
    )


@router.get("/api/reports/categories", description=DEFINITIONS)
def category_report(actor: ActorDep, query: QueryDep) -> Response:
    """Per procedure category: the bot's answers and their 👍/👎 (city-wide), and the ticket figures."""
    return _run(
        actor,
        query,
        "categories",
        reports.CATEGORY_COLUMNS,
        lambda session, deps: reports.category_report(session, query.period, deps),
    )


@router.get("/api/reports/timeseries", description=DEFINITIONS)
def timeseries(
    actor: ActorDep,
    query: QueryDep,
    bucket: Annotated[Literal["day", "week", "month"], Query(description="day, week (from Monday) or month")] = "day",
) -> Response:
    """By day, week or month: questions by outcome, tickets created and resolved, on time, median first response."""
    return _run(
        actor,
        query,
        f"timeseries-{bucket}",
        reports.TIMESERIES_COLUMNS,
        lambda session, deps: reports.timeseries(session, query.period, deps, bucket=bucket),
    )


@router.get("/api/reports/ranking", description=DEFINITIONS)
def ranking(
    actor: ActorDep,
    query: QueryDep,
    month: Annotated[str | None, Query(description="YYYY-MM; default the previous month")] = None,
) -> Response:
    """Departments ranked over a month by on-time rate, then average rating; unranked when nothing was decided.
    `from`/`to` are ignored: the month is the period."""
    departments = scope(actor, query.departments, "ranking")  # officials and other departments: 403
    if not query.departments:
        departments = None  # the ranking's figures are public on /transparency: everyone in scope sees them all
    month = month or (utcnow().astimezone(VN).date().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    period = Period.month(month)
    with session_scope() as session:
        reports.check_departments(session, departments)
        rows = reports.monthly_ranking(session, month, departments)
    return respond(f"ranking-{month}", rows, reports.RANKING_COLUMNS, period, departments, query.format)


@router.get("/api/reports/overdue", description=DEFINITIONS)
def overdue(
    actor: ActorDep, query: QueryDep, limit: Annotated[int, Query(ge=1, le=reports.MAX_TICKET_ROWS)] = 100
) -> Response:
    """Tickets overdue now, the longest-late first, with how many working hours late (the period is ignored)."""
    return _run(
        actor,
        query,
        "overdue",
        reports.OVERDUE_COLUMNS,
        lambda session, deps: reports.overdue_tickets(session, deps, utcnow(), limit),
    )


@router.get("/api/reports/tickets", description=DEFINITIONS)
def tickets_behind(
    actor: ActorDep,
    query: QueryDep,
    figure: Annotated[str, Query(description=" | ".join(reports.FIGURES))],
    official: Annotated[str | None, Query(description="username: only this official's tickets")] = None,
    category: Annotated[str | None, Query(description="procedure category: only tickets of it")] = None,
    limit: Annotated[int, Query(ge=1, le=reports.MAX_TICKET_ROWS)] = reports.MAX_TICKET_ROWS,
) -> Response:
    """The tickets counted in one figure of the reports (volume, first_response, resolved, decided, on_time,
    missed, overdue, apologies, rated), so that a figure links to its tickets."""
    return _run(
        actor,
        query,
        f"tickets-{figure}",
        reports.TICKET_COLUMNS,
        lambda session, deps: reports.tickets_behind(
            session, deps, figure, query.period, official=official, category=category, limit=limit
        ),
    )


# -- public ------------------------------------------------------------------------------------------------


@router.get("/api/public/transparency", description=DEFINITIONS)
def public_transparency(
    start: Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, Query(alias="to", description="last day, YYYY-MM-DD")] = None,
    format: Annotated[Format, Query(description="json or csv")] = "json",
) -> Response:
    """Public, no login: per department tickets, on-time rate and average rating, and the share of questions the
    bot answered; no names of people and no questions."""
    period = Period.parse(start, end)
    with session_scope() as session:
        rows = reports.transparency(session, period)
    return respond("transparency", rows, reports.TRANSPARENCY_COLUMNS, period, None, format)


@router.get("/transparency", response_class=HTMLResponse)
def transparency_page(
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> HTMLResponse:
    """The public transparency page: on-time rate and satisfaction per department (server-rendered, no script)."""
    period = Period.parse(start, end)
    with session_scope() as session:
        rows = reports.transparency(session, period)
    return HTMLResponse(render_transparency(rows, period))


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _bar(value: float | None, scale: float, css: str) -> str:
    width = 0.0 if value is None else max(0.0, min(100.0, value / scale * 100))
    return f'<div class="track" aria-hidden="true"><div class="bar {css}" style="width:{width:.1f}%"></div></div>'


def render_transparency(rows: list[dict[str, Any]], period: Period) -> str:
    """The page's HTML: a bar per department for the on-time rate and for the average rating (CSS only)."""
    total = next((row for row in rows if row["department"] == reports.ALL), None)
    body = []
    for row in rows:
        if row["department"] == reports.ALL:
            continue
        rating = "–" if row["rating_avg"] is None else f"{row['rating_avg']:.1f} / 5"
        body.append(
            "<tr>"
            f'<th scope="row">{html.escape(row["name"])}<small>{html.escape(row["name_en"])}</small></th>'
            f'<td class="num">{row["tickets"]}</td>'
            f"<td>{_bar(row['on_time_rate'], 1.0, 'ontime')}<span>{_percent(row['on_time_rate'])}</span>"
            f"<small>{row['decided']} đã xử lý / decided</small></td>"
            f"<td>{_bar(row['rating_avg'], 5.0, 'rating')}<span>{rating}</span>"
            f"<small>{row['ratings']} đánh giá / ratings</small></td>"
            "</tr>"
        )
    summary = ""
    if total is not None:
        average = "–" if total["rating_avg"] is None else f"{total['rating_avg']:.1f}"
        summary = (
            '<ul class="summary">'
            f"<li><b>{total['tickets']}</b> yêu cầu chuyển cán bộ<small>tickets for officials</small></li>"
            f"<li><b>{_percent(total['on_time_rate'])}</b> đúng hạn<small>answered on time</small></li>"
            f"<li><b>{average}</b> điểm hài lòng trung "
            "bình<small>average rating (1–5)</small></li>"
            f"<li><b>{_percent(total['bot_answered_share'])}</b> câu hỏi được trợ lý ảo trả lời ngay"
            "<small>questions answered by the bot</small></li>"
            "</ul>"
        )
    start, end = period.start.strftime("%d/%m/%Y"), period.end.strftime("%d/%m/%Y")
    return f"""<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Minh bạch kết quả giải quyết — Transparency</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; color: #1b1b1b; }}
h1 {{ color: #b3261e; font-size: 1.5rem; margin-bottom: 0; }}
small {{ display: block; color: #5f6368; font-size: .8rem; font-weight: normal; }}
.summary {{ display: flex; flex-wrap: wrap; gap: 1rem; list-style: none; padding: 0; }}
.summary li {{ background: #fdf3f2; border-radius: .5rem; padding: .75rem 1rem; flex: 1 1 10rem; }}
.summary b {{ font-size: 1.6rem; color: #b3261e; display: block; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .5rem; border-bottom: 1px solid #e0e0e0; vertical-align: top; }}
td.num {{ text-align: right; }}
.track {{ background: #eee; border-radius: .25rem; height: .8rem; width: 100%; min-width: 6rem; }}
.bar {{ height: 100%; border-radius: .25rem; }}
.ontime {{ background: #1e8e3e; }}
.rating {{ background: #f9ab00; }}
</style>
</head>
<body>
<h1>Minh bạch kết quả giải quyết</h1>
<small>Transparency: how fast and how well each department answers citizens</small>
<p>Từ {start} đến {end}<small>From {start} to {end} (Vietnam time)</small></p>
{summary}
<table>
<thead><tr><th>Đơn vị<small>Department</small></th><th>Yêu cầu<small>Tickets</small></th>
<th>Tỉ lệ đúng hạn<small>On-time rate</small></th><th>Mức hài lòng<small>Satisfaction</small></th></tr></thead>
<tbody>
{"".join(body)}
</tbody>
</table>
<p><small>Đúng hạn: trả lời không trễ hạn nào / on time: answered without missing a deadline.
Số liệu tính tự động từ nhật ký hệ thống / figures computed from the system's logs.</small></p>
</body>
</html>
"""
