"""GET /metrics over real HTTP: Prometheus text that parses, request latency by route template, database gauges."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from admin_api.app import create_app
from admin_api.metrics import UNMATCHED
from bot.models import Conversation
from core.db import session_scope
from helpdesk.models import Department
from helpdesk.outbox import enqueue
from helpdesk.service import open_ticket
from knowledge.models import utcnow
from tests.conftest import running_app

pytestmark = pytest.mark.e2e
_users = itertools.count()


def samples(text: str) -> list[Sample]:
    """Every sample of a scrape (parsing it is the first check)."""
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    found = [s.value for s in samples(text) if s.name == name and labels.items() <= s.labels.items()]
    assert found, f"no sample {name} {labels}"
    return sum(found)


def scrape(client: httpx.Client) -> str:
    """One scrape, checked for the Prometheus content type."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def add_ticket(department: str, *, overdue: bool = False, paused: bool = False, status: str | None = None) -> str:
    """A ticket opened through the help-desk service, then given the state the test needs."""
    now = utcnow()
    with session_scope() as session:
        conversation = Conversation(channel="web", user_key=f"metrics-{next(_users)}", state={})
        session.add(conversation)
        session.flush()
        ticket = open_ticket(
            session,
            conversation_id=conversation.id,
            channel="web",
            question="Hỏi thử",
            reason="asked_for_person",
            lang="vi",
            now=now,
        )
        ticket.department = department
        if overdue:
            ticket.deadline = now - dt.timedelta(hours=2)
        if paused:
            ticket.paused_at = now - dt.timedelta(hours=1)
        if status is not None:
            ticket.status = status
        return ticket.code


@pytest.fixture
def client(database_url: str) -> Iterator[httpx.Client]:
    """A client of the real app (start-up included) on uvicorn, on the test database (SQLite and PostgreSQL)."""
    with running_app() as base, httpx.Client(base_url=base, timeout=30) as c:
        yield c


def test_metrics_parse_and_time_requests_by_route_template(client: httpx.Client) -> None:
    """A route just called shows in the histogram under its template, not its raw path; 404s share one label."""
    assert client.get("/api/chat/metrics-session-1/messages").status_code == 200
    assert client.get("/api/chat/metrics-session-2/messages").status_code == 200
    assert client.get("/no/such/page/42").status_code == 404
    text = scrape(client)
    route = "/api/chat/{sid}/messages"
    assert value(text, "motcua_http_request_duration_seconds_count", method="GET", route=route, status="2xx") == 2
    assert value(text, "motcua_http_request_duration_seconds_bucket", route=route, le="+Inf") == 2
    assert value(text, "motcua_http_requests_total", method="GET", route=route, status="2xx") == 2
    assert value(text, "motcua_http_requests_total", route=UNMATCHED, status="4xx") == 1
    routes = {s.labels.get("route") for s in samples(text) if s.name.startswith("motcua_http_")}
    assert not any("metrics-session" in r or "/no/such" in r for r in routes if r)
    assert value(text, "motcua_database_up") == 1


def test_ticket_and_outbox_gauges_match_the_database(client: httpx.Client) -> None:
    """Open and overdue tickets per department, and the outbox depth, equal what was put in."""
    with session_scope() as session:
        session.add_all([Department(slug="metrics-a", name="Phòng A"), Department(slug="metrics-b", name="Phòng B")])
    for _ in range(3):
        add_ticket("metrics-a")
    add_ticket("metrics-a", overdue=True)
    add_ticket("metrics-a", overdue=True, paused=True)  # waiting for the citizen: the clock is stopped
    add_ticket("metrics-b", overdue=True)
    add_ticket("metrics-b", overdue=True, status="answered")  # not open any more
    add_ticket("metrics-b", status="closed")
    with session_scope() as session:
        enqueue(session, "telegram", "4242", "Xin chào", [], None)
        enqueue(session, "zalo", "987", "Chào bạn", [], None)
    text = scrape(client)
    assert value(text, "motcua_tickets_open", department="metrics-a") == 5
    assert value(text, "motcua_tickets_open", department="metrics-b") == 1
    assert value(text, "motcua_tickets_overdue", department="metrics-a") == 1
    assert value(text, "motcua_tickets_overdue", department="metrics-b") == 1
    assert value(text, "motcua_outbox_depth") == 2


def test_index_version_and_bot_replies(client: httpx.Client) -> None:
    """The loaded index's version is an info metric; bot replies are counted by status after the first scrape."""
    first = scrape(client)
    ready = client.get("/readyz").json()
    info = [s for s in samples(first) if s.name == "motcua_index_info"]
    assert [s.labels["version"] for s in info] == [ready["index"]]
    assert value(first, "motcua_index_procedures") == ready["procedures"]
    assert (
        client.post("/api/chat", json={"session": "metrics-chat", "text": "tôi muốn gặp cán bộ"}).json()["status"]
        == "escalated"
    )
    second = scrape(client)
    assert value(second, "motcua_bot_replies_total", status="escalated") >= 1


def test_each_app_has_its_own_registry() -> None:
    """Two apps in one process do not share (or clash over) their metrics."""
    one, two = create_app(), create_app()
    assert one.state.metrics.registry is not two.state.metrics.registry
    one.state.metrics.requests.labels("GET", "/healthz", "2xx").inc()
    assert (
        two.state.metrics.registry.get_sample_value(
            "motcua_http_requests_total", {"method": "GET", "route": "/healthz", "status": "2xx"}
        )
        is None
    )
