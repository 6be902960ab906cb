"""Operations metrics at GET /metrics (Prometheus text format), one registry per app.

Requests are timed by a small ASGI middleware labelled with the route *template* (`/api/tickets/{code}`), never
the raw path, so that ticket codes and chat sessions cannot blow up the number of series. Ticket, outbox and
index figures are read from the database at scrape time by a collector running a few cheap indexed queries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.models import ChatMessage
from core.db import session_scope
from helpdesk import outbox
from helpdesk.models import Ticket
from helpdesk.service import OPEN_STATUSES
from knowledge.models import utcnow

logger = logging.getLogger(__name__)

# Chat answers take tens of milliseconds, retrieval on a cold cache up to a few seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "(unmatched)"  # 404s and refused bodies: one label for every path no route matched
NO_DEPARTMENT = "(none)"


class AppMetrics:
    """The app's registry with its request metrics and the database collector."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "motcua_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status class",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "motcua_http_requests",
            "HTTP requests answered, by method, route template and status class",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(app))
        ProcessCollector(registry=self.registry)  # memory, CPU, open files of this process
        GCCollector(registry=self.registry)


class DatabaseCollector(Collector):
    """Figures read at scrape time: open and overdue tickets, outbox depth, index version, bot replies."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._lock = threading.Lock()
        # Replies are counted from this process's first scrape on, by primary key. A reply whose transaction
        # commits after one with a higher id was read may be missed: fine for a rate, not for accounting.
        self._last_reply_id: int | None = None
        self._replies: dict[str, int] = {}

    def describe(self) -> Iterable[Metric]:
        """Nothing to describe up front: registering must not touch the database."""
        return []

    def collect(self) -> Iterable[Metric]:
        """Query the database; on failure say so in a gauge instead of failing the whole scrape."""
        up = GaugeMetricFamily("motcua_database_up", "1 when the database answered the metrics queries")
        try:
            metrics = list(self._from_database())
        except Exception:  # noqa: BLE001 - a scrape must still show the request metrics when the database is down
            logger.exception("metrics: database queries failed")
            up.add_metric([], 0)
            metrics = []
        else:
            up.add_metric([], 1)
        yield up
        yield from metrics
        yield from self._index()

    def _from_database(self) -> Iterable[Metric]:
        now = utcnow()
        open_tickets = GaugeMetricFamily(
            "motcua_tickets_open", "Tickets not yet answered or closed", labels=["department"]
        )
        overdue = GaugeMetricFamily(
            "motcua_tickets_overdue", "Open tickets, clock running, past their deadline", labels=["department"]
        )
        depth = GaugeMetricFamily("motcua_outbox_depth", "Messages waiting in the outbox to reach a citizen")
        replies = CounterMetricFamily(
            "motcua_bot_replies", "Bot replies since the first scrape of this process, by status", labels=["status"]
        )
        with session_scope() as session:
            is_open = Ticket.status.in_(OPEN_STATUSES)
            for department, count in session.execute(
                select(Ticket.department, func.count()).where(is_open).group_by(Ticket.department)
            ):
                open_tickets.add_metric([department or NO_DEPARTMENT], count)
            late = (is_open, Ticket.paused_at.is_(None), Ticket.deadline < now)
            for department, count in session.execute(
                select(Ticket.department, func.count()).where(*late).group_by(Ticket.department)
            ):
                overdue.add_metric([department or NO_DEPARTMENT], count)
            depth.add_metric([], outbox.depth(session))
            with self._lock:
                self._count_replies(session)
                for status, count in sorted(self._replies.items()):
                    replies.add_metric([status], count)
        return [open_tickets, overdue, depth, replies]

    def _count_replies(self, session: Any) -> None:
        """Add the bot replies logged since the last scrape (a primary-key range: cheap however long the log)."""
        if self._last_reply_id is None:
            self._last_reply_id = session.scalar(select(func.max(ChatMessage.id))) or 0
            return
        rows = session.execute(
            select(ChatMessage.status, func.count(), func.max(ChatMessage.id))
            .where(ChatMessage.id > self._last_reply_id, ChatMessage.author == "bot")
            .group_by(ChatMessage.status)
        ).all()
        for status, count, last in rows:
            self._replies[status or "other"] = self._replies.get(status or "other", 0) + count
            self._last_reply_id = max(self._last_reply_id, last)

    def _index(self) -> Iterable[Metric]:
        engine = getattr(self.app.state, "engine", None)
        retriever = getattr(getattr(engine, "asker", None), "retriever", None)
        if retriever is None:
            return
        info = InfoMetricFamily("motcua_index", "The retrieval index loaded (knowledge-base and data version)")
        info.add_metric([], {"version": str(retriever.version)})
        yield info
        procedures = GaugeMetricFamily("motcua_index_procedures", "Procedures in the loaded retrieval index")
        procedures.add_metric([], len(retriever.procedures))
        yield procedures


class MetricsMiddleware:
    """Times every HTTP request and counts it under its route template and status class (2xx, 4xx…)."""

    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; record its duration once the response started (or failed)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app raises before answering
        start = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            labels = (scope["method"], getattr(route, "path", None) or UNMATCHED, f"{status // 100}xx")
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)
            self.metrics.requests.labels(*labels).inc()


def install(app: FastAPI) -> AppMetrics:
    """Give the app its own registry, the timing middleware and GET /metrics."""
    metrics = AppMetrics(app)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=True, tags=["operations"])
    def prometheus_metrics(request: Request) -> Response:
        """Operations metrics in the Prometheus text format."""
        registry = request.app.state.metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
