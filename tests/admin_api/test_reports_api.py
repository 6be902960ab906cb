"""Report API over real HTTP against the real app: JSON and CSV, filters, who may read what, bad input, and the
public transparency page without personal data."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from bot.models import ChatMessage, Conversation
from core.db import session_scope
from helpdesk import reports
from helpdesk.accounts import create_user
from helpdesk.models import Department, Ticket, TicketEvent, User
from helpdesk.sla import VN
from tests.conftest import running_app

pytestmark = pytest.mark.e2e
PASSWORD = "a long enough password"
TODAY = dt.datetime.now(VN).date()
FIRST, LAST = TODAY - dt.timedelta(days=10), TODAY - dt.timedelta(days=1)
PERIOD = f"from={FIRST.isoformat()}&to={LAST.isoformat()}"
QUESTION = "Tôi muốn hỏi về giấy khai sinh của con tôi"
PEOPLE = ("root.admin", "ht.truong", "ht.canbo", "ct.truong")


def vn(days_ago: int, hour: int) -> dt.datetime:
    """hour o'clock Vietnam time, days_ago days before today, as aware UTC."""
    day = TODAY - dt.timedelta(days=days_ago)
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=VN).astimezone(dt.UTC)


@pytest.fixture(scope="module")
def history(module_database: str) -> None:
    """Two departments with known tickets and bot replies in the period, stored before the app starts.

    ho-tich: A1 answered on time (1 h, rated 5, by ht.canbo), A2 answered late (3 h, one apology, rated 2).
    cu-tru: B1 still new, its deadline missed (marked, apologised), so overdue now.
    The bot: 2 answered, 1 escalated, 1 declined.
    """
    with session_scope() as session:
        session.add_all(
            [
                Department(slug="ho-tich", name="Hộ tịch", name_en="Civil status"),
                Department(slug="cu-tru", name="Cư trú", name_en="Residence"),
            ]
        )
        session.flush()
        for username, role, department in [
            ("root.admin", "admin", None),
            ("ht.truong", "supervisor", "ho-tich"),
            ("ht.canbo", "official", "ho-tich"),
            ("ct.truong", "supervisor", "cu-tru"),
        ]:
            create_user(
                session,
                username=username,
                password=PASSWORD,
                role=role,
                department=department,
                full_name=f"Nguyễn {username}",
            )
        conversation = Conversation(channel="web", user_key="citizen-api", state={})
        session.add(conversation)
        session.flush()
        canbo = session.scalar(select(User.id).where(User.username == "ht.canbo"))
        common = {
            "conversation_id": conversation.id,
            "channel": "web",
            "question": QUESTION,
            "reason": "low_confidence",
        }
        session.add_all(
            [
                Ticket(
                    code="MC-AAAAA1",
                    department="ho-tich",
                    status="answered",
                    created_at=vn(5, 9),
                    deadline=vn(4, 9),
                    first_response_at=vn(5, 10),
                    first_response_hours=1.0,
                    resolved_at=vn(5, 10),
                    resolution_hours=1.0,
                    rating=5,
                    assignee_id=canbo,
                    category="civil-status",
                    apologies=0,
                    **common,
                ),
                Ticket(
                    code="MC-AAAAA2",
                    department="ho-tich",
                    status="closed",
                    created_at=vn(6, 9),
                    deadline=vn(5, 9),
                    first_response_at=vn(4, 9),
                    first_response_hours=3.0,
                    resolved_at=vn(4, 9),
                    resolution_hours=3.0,
                    rating=2,
                    assignee_id=canbo,
                    category="civil-status",
                    apologies=1,
                    **common,
                ),
                Ticket(
                    code="MC-BBBBB1",
                    department="cu-tru",
                    status="new",
                    created_at=vn(3, 9),
                    deadline=vn(2, 9),
                    ack_breached_at=vn(2, 9),
                    apologies=1,
                    category="residence",
                    **common,
                ),
            ]
        )
        for status, latency in [("answered", 120.0), ("answered", 80.0), ("escalated", 300.0), ("declined", 50.0)]:
            session.add(
                ChatMessage(
                    conversation_id=conversation.id,
                    direction="out",
                    author="bot",
                    text="…",
                    at=vn(5, 8),
                    status=status,
                    latency_ms=latency,
                )
            )


@pytest.fixture(scope="module")
def live_server(history: None, module_database: str) -> Iterator[str]:
    """The real app, started once the module's data is in place; its tests only read it."""
    with running_app() as base:
        yield base


@pytest.fixture
def client(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as c:
        yield c


def auth(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_department_report_as_json(client: httpx.Client) -> None:
    response = client.get(f"/api/reports/departments?{PERIOD}", headers=auth(client, "root.admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"]) == (FIRST.isoformat(), LAST.isoformat())
    assert dt.datetime.fromisoformat(body["generated_at"]).tzinfo is not None
    rows = {row["department"]: row for row in body["data"]}
    assert list(rows) == ["cu-tru", "ho-tich"]
    assert list(rows["ho-tich"]) == list(reports.DEPARTMENT_COLUMNS)
    ho_tich, cu_tru = rows["ho-tich"], rows["cu-tru"]
    assert (ho_tich["tickets"], ho_tich["resolved"], ho_tich["on_time"], ho_tich["missed"]) == (2, 2, 1, 1)
    assert (ho_tich["on_time_rate"], ho_tich["rating_avg"], ho_tich["resolution_median_hours"]) == (0.5, 3.5, 1.0)
    assert (cu_tru["tickets"], cu_tru["decided"], cu_tru["on_time_rate"], cu_tru["overdue_now"]) == (1, 1, 0.0, 1)
    assert (cu_tru["apologies"], cu_tru["resolution_median_hours"]) == (1, None)


def test_department_report_as_csv(client: httpx.Client) -> None:
    response = client.get(f"/api/reports/departments?{PERIOD}&format=csv", headers=auth(client, "root.admin"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    filename = f"motcua-departments-{FIRST.isoformat()}-{LAST.isoformat()}.csv"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == list(reports.DEPARTMENT_COLUMNS)
    table = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [(row["department"], row["name"], row["tickets"], row["on_time_rate"]) for row in table] == [
        ("cu-tru", "Cư trú", "1", "0.0"),
        ("ho-tich", "Hộ tịch", "2", "0.5"),
    ]
    assert table[0]["resolution_median_hours"] == ""  # null is an empty cell


def test_filters(client: httpx.Client) -> None:
    admin = auth(client, "root.admin")
    for query in ("department=cu-tru", "department=cu-tru,ho-tich", "department=ho-tich&department=cu-tru"):
        response = client.get(f"/api/reports/departments?{PERIOD}&{query}", headers=admin)
        assert response.status_code == 200, response.text
        wanted = sorted(query.replace("department=", "").replace("&", ",").split(","))
        assert [row["department"] for row in response.json()["data"]] == wanted
        assert response.json()["departments"] == query.replace("department=", "").replace("&", ",").split(",")
    unknown = client.get(f"/api/reports/departments?{PERIOD}&department=nowhere", headers=admin)
    assert unknown.status_code == 422
    assert unknown.json() == {"detail": "department: no department 'nowhere'"}
    # the default period is the last 30 days, today included
    default = client.get("/api/reports/departments", headers=admin).json()
    assert (default["from"], default["to"]) == ((TODAY - dt.timedelta(days=29)).isoformat(), TODAY.isoformat())


def test_supervisor_sees_only_their_department(client: httpx.Client) -> None:
    supervisor = auth(client, "ht.truong")
    own = client.get(f"/api/reports/departments?{PERIOD}", headers=supervisor)
    assert own.status_code == 200, own.text
    assert [row["department"] for row in own.json()["data"]] == ["ho-tich"]
    officials = client.get(f"/api/reports/officials?{PERIOD}&department=ho-tich", headers=supervisor)
    assert officials.status_code == 200, officials.text
    by_name = {row["official"]: row for row in officials.json()["data"]}
    assert set(by_name) == {"ht.truong", "ht.canbo"}
    assert (by_name["ht.canbo"]["resolved"], by_name["ht.canbo"]["on_time_rate"]) == (2, 0.5)
    for path in ("departments?", "officials?", "overdue?", "tickets?figure=volume&"):
        other = client.get(f"/api/reports/{path}department=cu-tru", headers=supervisor)
        assert other.status_code == 403, (path, other.text)
        assert other.json() == {"detail": "you may only read your own department's reports (ho-tich); asked for cu-tru"}
    with session_scope() as session:
        denials = session.scalars(
            select(TicketEvent)
            .where(TicketEvent.kind == "denied", TicketEvent.actor == "ht.truong")
            .order_by(TicketEvent.id)
        ).all()
    assert [(d.actor, d.department, d.data["action"]) for d in denials][:2] == [
        ("ht.truong", "cu-tru", "report departments"),
        ("ht.truong", "cu-tru", "report officials"),
    ]


def test_officials_and_strangers_are_refused(client: httpx.Client) -> None:
    official = auth(client, "ht.canbo")
    for path in ("departments", "officials", "bot", "ranking", "overdue"):
        response = client.get(f"/api/reports/{path}", headers=official)
        assert response.status_code == 403, (path, response.text)
        assert response.json() == {
            "detail": "reports are for supervisors and admins; officials see their queue instead"
        }
    anonymous = client.get("/api/reports/departments")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"detail": "not authenticated: send Authorization: Bearer <token>"}
    forged = client.get("/api/reports/officials", headers={"Authorization": "Bearer nonsense"})
    assert forged.status_code == 401


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("from=2026-13-01", "from: '2026-13-01' is not a date; use YYYY-MM-DD"),
        ("from=01/03/2026", "from: '01/03/2026' is not a date; use YYYY-MM-DD"),
        ("from=2026-03-10&to=2026-03-01", "to: 2026-03-01 is before from: 2026-03-10"),
        ("from=2025-01-01&to=2026-03-01", "from/to: 425 days asked; a report covers at most 400 days"),
        ("format=xml", "query.format: Input should be 'json' or 'csv'"),
    ],
)
def test_bad_input_is_422_with_a_clear_message(client: httpx.Client, query: str, detail: str) -> None:
    response = client.get(f"/api/reports/departments?{query}", headers=auth(client, "root.admin"))
    assert response.status_code == 422
    assert response.json() == {"detail": detail}


def test_every_report_answers(client: httpx.Client) -> None:
    admin = auth(client, "root.admin")
    expected = {
        "bot?": reports.BOT_COLUMNS,
        "categories?": reports.CATEGORY_COLUMNS,
        "timeseries?bucket=week&": reports.TIMESERIES_COLUMNS,
        f"ranking?month={LAST.strftime('%Y-%m')}&": reports.RANKING_COLUMNS,
        "overdue?": reports.OVERDUE_COLUMNS,
        "tickets?figure=missed&": reports.TICKET_COLUMNS,
    }
    for path, columns in expected.items():
        url = f"/api/reports/{path}{PERIOD}"
        response = client.get(url, headers=admin)
        assert response.status_code == 200, (path, response.text)
        data = response.json()["data"]
        assert data, path
        assert list(data[0]) == list(columns), path
        as_csv = client.get(f"{url}&format=csv", headers=admin)
        assert next(csv.reader(io.StringIO(as_csv.text))) == list(columns), path
    bot = {row["status"]: row for row in client.get(f"/api/reports/bot?{PERIOD}", headers=admin).json()["data"]}
    assert (bot["all"]["replies"], bot["all"]["latency_p50_ms"], bot["all"]["latency_p95_ms"]) == (4, 80.0, 300.0)
    assert (bot["answered"]["share"], bot["escalated"]["share"], bot["declined"]["share"]) == (0.5, 0.25, 0.25)
    missed = client.get(f"/api/reports/tickets?{PERIOD}&figure=missed", headers=admin).json()["data"]
    assert [row["code"] for row in missed] == ["MC-AAAAA2", "MC-BBBBB1"]
    overdue = client.get("/api/reports/overdue", headers=admin).json()["data"]
    assert [row["code"] for row in overdue] == ["MC-BBBBB1"]
    month = LAST.strftime("%Y-%m")
    ranking = client.get(f"/api/reports/ranking?month={month}", headers=admin).json()
    assert ranking["from"] == f"{month}-01"
    for bad, detail in [
        (f"tickets?{PERIOD}&figure=everything", "figure: 'everything'; one of " + ", ".join(reports.FIGURES)),
        ("ranking?month=2026-3", "month: '2026-3' is not a month; use YYYY-MM"),
        ("timeseries?bucket=year", "query.bucket: Input should be 'day', 'week' or 'month'"),
    ]:
        response = client.get(f"/api/reports/{bad}", headers=admin)
        assert (response.status_code, response.json()) == (422, {"detail": detail}), bad


def test_supervisors_read_the_city_wide_reports(client: httpx.Client) -> None:
    supervisor = auth(client, "ct.truong")
    ranking = client.get(f"/api/reports/ranking?month={LAST.strftime('%Y-%m')}", headers=supervisor)
    assert ranking.status_code == 200, ranking.text
    assert {row["department"] for row in ranking.json()["data"]} == {"cu-tru", "ho-tich"}  # public figures
    assert client.get(f"/api/reports/bot?{PERIOD}", headers=supervisor).status_code == 200


def test_public_transparency_has_no_personal_data(client: httpx.Client) -> None:
    response = client.get(f"/api/public/transparency?{PERIOD}")
    assert response.status_code == 200, response.text
    rows = {row["department"]: row for row in response.json()["data"]}
    assert list(rows) == ["cu-tru", "ho-tich", "all"]
    assert list(rows["all"]) == list(reports.TRANSPARENCY_COLUMNS)
    assert (rows["ho-tich"]["on_time_rate"], rows["ho-tich"]["rating_avg"]) == (0.5, 3.5)
    assert (rows["all"]["tickets"], rows["all"]["on_time_rate"], rows["all"]["bot_answered_share"]) == (3, 0.3333, 0.5)
    page = client.get(f"/transparency?{PERIOD}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Hộ tịch" in page.text
    assert "Civil status" in page.text
    assert "50%" in page.text
    assert "<script" not in page.text
    assert "http" not in page.text.replace('lang="vi"', "")  # nothing loaded from elsewhere
    as_csv = client.get(f"/api/public/transparency?{PERIOD}&format=csv")
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    for text in (response.text, page.text, as_csv.text):
        for person in PEOPLE:
            assert person not in text
            assert f"Nguyễn {person}" not in text
        assert QUESTION not in text
        assert "MC-" not in text
