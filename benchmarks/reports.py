"""Reports benchmark: every report endpoint over real HTTP on 1,000,000 logged messages and 100,000 tickets.

For each database (a fresh SQLite file, and a fresh PostgreSQL database `motcua_bench_reports_<random>` on
127.0.0.1:5432 created and dropped here) it

1. migrates the schema, seeds the curated knowledge base, and bulk-loads a year of history: departments,
   officials, conversations, chat messages (a citizen's message and the bot's timed reply, statuses and
   latencies as the engine logs them), 👍/👎 feedback, tickets with first-response / resolution hours,
   missed deadlines, apologies, ratings, and their audit-trail events (executemany on SQLite, COPY on
   PostgreSQL), then builds the reports' rollups of the chat log with the app's own function (timed apart);
   PostgreSQL then gets VACUUM ANALYZE, as autovacuum would do; SQLite gets no ANALYZE, as the app never runs
   it (the query plans must be good without statistics);
2. starts the real app (`motcua serve`) in a subprocess with MOTCUA_EMBEDDER=hash (the retrieval index
   builds in seconds; reports do not use it) and MOTCUA_SEED_DEPARTMENTS=false (the departments are ours);
3. logs in as an admin and as a supervisor through `POST /api/auth/token` and times each endpoint: a few
   warm-up requests, then `--requests` sequential requests, over the default period (the last 30 days), over
   90 days, and over the whole history (`from` = `--days` ago).

Prints a Markdown table of p50/p95 per endpoint per database; the target is p95 ≤ 300 ms.

    python benchmarks/reports.py                                 # 1,000,000 messages, 100,000 tickets, both databases
    python benchmarks/reports.py --messages 100000 --tickets 10000 --databases sqlite --requests 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path; the repository root must come first instead.
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402
from tqdm import tqdm  # noqa: E402

from benchmarks.machine import cpu_model  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get(
    "MOTCUA_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "bench-password-123"  # noqa: S105 - a throw-away database
DEPARTMENTS = [
    ("ho-tich", "Hộ tịch", "Civil status"),
    ("cu-tru", "Cư trú (Công an xã)", "Residence (commune police)"),
    ("dat-dai", "Đất đai – Xây dựng", "Land and construction"),
    ("kinh-doanh", "Đăng ký kinh doanh", "Business registration"),
    ("xa-hoi", "Lao động – Xã hội", "Labour and social affairs"),
    ("giao-duc", "Giáo dục", "Education"),
    ("tu-phap", "Tư pháp – Chứng thực", "Justice and certification"),
    ("one-stop", "Bộ phận Một cửa", "One-stop desk"),
]
OFFICIALS_PER_DEPARTMENT = 6
STATUSES = ["answered", "clarify", "escalated", "declined", "help", "topics", "forwarded", "feedback"]
STATUS_P = [0.55, 0.14, 0.09, 0.09, 0.04, 0.03, 0.03, 0.03]
CHUNK = 50_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000, help="chat messages (half citizens', half bot's)")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365, help="the history spans this many days up to now")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per endpoint and period")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the SQLite folder and the PostgreSQL database")
    return parser.parse_args(argv)


# -- the history ---------------------------------------------------------------------------------------------


class History:
    """A year of generated rows, as tuples in each table's column order (times as naive UTC datetimes)."""

    def __init__(self, args: argparse.Namespace, slugs: dict[str, str], now: dt.datetime) -> None:
        self.rng = np.random.default_rng(args.seed)
        self.random = random.Random(args.seed)
        self.now = now.replace(tzinfo=None)
        self.start = self.now - dt.timedelta(days=args.days)
        self.slugs = slugs  # procedure slug -> category
        self.n_messages = args.messages
        self.n_tickets = args.tickets
        self.n_conversations = max(1, args.messages // 10)

    def times(self, n: int) -> np.ndarray:
        """n sorted moments in the history, as seconds from its start."""
        span = (self.now - self.start).total_seconds()
        return np.sort(self.rng.uniform(0, span, n))

    def at(self, seconds: float) -> dt.datetime:
        return self.start + dt.timedelta(seconds=float(seconds))

    def departments(self) -> list[tuple[Any, ...]]:
        return [
            (i + 1, slug, name, name_en, slug == "one-stop", self.start)
            for i, (slug, name, name_en) in enumerate(DEPARTMENTS)
        ]

    def users(self, password_hash: str) -> list[tuple[Any, ...]]:
        rows = [(1, "bench.admin", "Quản trị", password_hash, "admin", None, True, self.start)]
        for slug, _, _ in DEPARTMENTS:
            rows.append(
                (
                    len(rows) + 1,
                    f"{slug}.truongphong",
                    f"Trưởng phòng {slug}",
                    password_hash,
                    "supervisor",
                    slug,
                    True,
                    self.start,
                )
            )
            for k in range(OFFICIALS_PER_DEPARTMENT):
                rows.append(
                    (len(rows) + 1, f"{slug}.canbo{k}", f"Cán bộ {slug} {k}", "!", "official", slug, True, self.start)
                )
        return rows

    def officials(self) -> dict[str, list[int]]:
        by_department: dict[str, list[int]] = {}
        for user_id, _, _, _, role, department, _, _ in self.users("!"):
            if role == "official":
                by_department.setdefault(department, []).append(user_id)
        return by_department

    def conversations(self) -> Iterator[tuple[Any, ...]]:
        channels = ("telegram", "zalo", "web")
        for i in range(self.n_conversations):
            yield (i + 1, channels[i % 3], f"bench-{i}", None, "{}", self.start, self.start)

    def messages(self) -> Iterator[tuple[Any, ...]]:
        """A citizen's message and the bot's reply, n_messages rows in all; the feedback rows are kept aside."""
        pairs = self.n_messages // 2
        moments = self.times(pairs)
        statuses = self.rng.choice(len(STATUSES), size=pairs, p=STATUS_P)
        latencies = np.round(self.rng.lognormal(mean=np.log(140), sigma=0.6, size=pairs), 1)
        conversations = self.rng.integers(1, self.n_conversations + 1, size=pairs)
        slugs = list(self.slugs)
        procedures = self.rng.integers(0, len(slugs), size=pairs)
        self.feedback_rows: list[tuple[Any, ...]] = []
        thumbs = self.rng.random(pairs)
        for i in range(pairs):
            asked = self.at(moments[i])
            replied = asked + dt.timedelta(milliseconds=float(latencies[i]))
            status = STATUSES[statuses[i]]
            conversation = int(conversations[i])
            procedure = slugs[procedures[i]] if status == "answered" else None
            yield (2 * i + 1, conversation, "in", "citizen", "câu hỏi", "[]", asked, None, None, None, None, None)
            yield (
                2 * i + 2,
                conversation,
                "out",
                "bot",
                "trả lời",
                "[]",
                replied,
                None,
                status,
                procedure,
                float(latencies[i]),
                None,
            )
            if procedure is not None and thumbs[i] < 0.08:
                self.feedback_rows.append(
                    (
                        len(self.feedback_rows) + 1,
                        2 * i + 2,
                        conversation,
                        1 if thumbs[i] < 0.055 else -1,
                        replied + dt.timedelta(seconds=40),
                    )
                )

    def tickets_and_events(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Tickets in every state, with the events an official's work leaves."""
        officials = self.officials()
        weights = [0.22, 0.2, 0.14, 0.12, 0.1, 0.08, 0.08, 0.06]
        slugs = list(self.slugs)
        moments = self.times(self.n_tickets)
        tickets, events = [], []
        r = self.random
        for i in range(self.n_tickets):
            created = self.at(moments[i])
            department = r.choices(DEPARTMENTS, weights)[0][0]
            procedure = r.choice(slugs)
            age_days = (self.now - created).total_seconds() / 86400
            first_hours = round(r.lognormvariate(1.2, 0.8), 2)
            resolve_hours = round(first_hours + r.lognormvariate(1.8, 0.9), 2)
            apologies = r.choices((0, 1, 2), (0.85, 0.12, 0.03))[0]
            assignee = r.choice(officials[department])
            ticket_id = i + 1
            row: dict[str, Any] = {
                "status": "answered",
                "assignee": assignee,
                "first_at": None,
                "first_hours": None,
                "resolved_at": None,
                "resolve_hours": None,
                "deadline": created + dt.timedelta(days=5),
                "acknowledged_at": None,
                "ack_breached": None,
                "resolve_breached": None,
                "paused": None,
                "rating": None,
                "apologies": apologies,
            }
            events.append((ticket_id, created, "created", "bot", None, department))
            open_ticket = age_days < 3 or r.random() < 0.03
            if open_ticket and r.random() < 0.4:
                row.update(status="new", assignee=None, deadline=created + dt.timedelta(days=1))
                if row["deadline"] < self.now:  # overdue: the breach is already marked (and apologised for)
                    row.update(ack_breached=row["deadline"], apologies=max(1, apologies))
            else:
                acknowledged = created + dt.timedelta(hours=first_hours * 0.7)
                row["acknowledged_at"] = acknowledged
                events.append((ticket_id, acknowledged, "claimed", "official", assignee, department))
                if open_ticket:
                    row["status"] = "acknowledged"
                    if r.random() < 0.2:
                        row["paused"] = acknowledged
                    elif row["deadline"] < self.now:
                        row.update(resolve_breached=row["deadline"], apologies=max(1, apologies))
                else:
                    first_at = created + dt.timedelta(hours=first_hours * 2.5)
                    resolved_at = created + dt.timedelta(hours=resolve_hours * 2.5)
                    row.update(
                        status=r.choice(("answered", "closed")),
                        first_at=first_at,
                        first_hours=first_hours,
                        resolved_at=resolved_at,
                        resolve_hours=resolve_hours,
                    )
                    events.append((ticket_id, first_at, "replied", "official", assignee, department))
                    if r.random() < 0.35:
                        row["rating"] = r.choices((1, 2, 3, 4, 5), (0.05, 0.07, 0.15, 0.33, 0.4))[0]
                        events.append(
                            (ticket_id, resolved_at + dt.timedelta(minutes=5), "rated", "citizen", None, department)
                        )
            for k in range(row["apologies"]):
                missed = created + dt.timedelta(hours=20 + 16 * k)
                events.append((ticket_id, missed, "breached", "system", None, department))
                events.append((ticket_id, missed, "apology_sent", "system", None, department))
            tickets.append(
                (
                    ticket_id,
                    f"BR-{ticket_id:07d}",
                    r.randint(1, self.n_conversations),
                    r.choice(("telegram", "zalo")),
                    "vi",
                    "câu hỏi của công dân",
                    "[]",
                    "[]",
                    "low_confidence",
                    row["status"],
                    department,
                    row["deadline"],
                    row["resolved_at"],
                    row["rating"],
                    created,
                    created,
                    self.slugs[procedure],
                    procedure,
                    "normal",
                    row["assignee"],
                    created + dt.timedelta(days=1),
                    created + dt.timedelta(days=5),
                    row["acknowledged_at"],
                    row["first_at"],
                    row["resolved_at"] if row["status"] == "closed" else None,
                    row["paused"],
                    row["ack_breached"],
                    row["resolve_breached"],
                    None,
                    row["apologies"],
                    row["resolved_at"],
                    row["first_hours"],
                    row["resolve_hours"],
                )
            )
        return tickets, [(n + 1, *event, "{}") for n, event in enumerate(events)]


COLUMNS = {
    "departments": "id, slug, name, name_en, is_default, created_at",
    "users": "id, username, full_name, password_hash, role, department, active, created_at",
    "conversations": "id, channel, user_key, lang, state, created_at, updated_at",
    "chat_messages": "id, conversation_id, direction, author, text, buttons, at, inbound_id, status, procedure, "
    "latency_ms, ticket_code",
    "feedback": "id, message_id, conversation_id, value, at",
    "tickets": "id, code, conversation_id, channel, lang, question, excerpt, candidates, reason, status, department, "
    "deadline, answered_at, rating, created_at, updated_at, category, procedure_slug, urgency, assignee_id, "
    "ack_deadline, resolve_deadline, acknowledged_at, first_response_at, closed_at, paused_at, ack_breached_at, "
    "resolve_breached_at, expected_at, apologies, resolved_at, first_response_hours, resolution_hours",
    "ticket_events": "id, ticket_id, at, kind, actor, user_id, department, data",
}


def load(url: str, args: argparse.Namespace) -> tuple[dict[str, int], float]:
    """Create the schema, fill it with a generated year and build the reports' rollups as the app's leader does
    (helpdesk.rollups); returns rows per table and the seconds the rollups took."""
    from core.db import make_engine, migrate
    from helpdesk.accounts import hash_password
    from helpdesk.rollups import refresh_bot_rollups
    from knowledge.models import Procedure, utcnow
    from knowledge.service import ensure_seeded

    engine = make_engine(url)
    migrate(engine)
    from sqlalchemy.orm import Session

    with Session(engine) as session, session.begin():
        ensure_seeded(session)
        slugs = dict(session.execute(select(Procedure.slug, Procedure.category)).all())
    history = History(args, slugs, utcnow())
    postgres = engine.dialect.name == "postgresql"
    counts: dict[str, int] = {}
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if not postgres:
            cursor.execute("PRAGMA synchronous=OFF")

        def put(table: str, rows: Any, total: int) -> None:
            columns = COLUMNS[table]
            bar = tqdm(total=total, desc=f"{table:>13}", unit="row", unit_scale=True, leave=True)
            n = 0
            if postgres:
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([_pg(value) for value in row])
                        n += 1
                        if n % CHUNK == 0:
                            bar.update(CHUNK)
            else:
                marks = ", ".join("?" * len(columns.split(",")))
                batch: list[tuple[Any, ...]] = []
                for row in rows:
                    batch.append(tuple(_sqlite(value) for value in row))
                    if len(batch) == CHUNK:
                        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", batch)  # noqa: S608
                        n += len(batch)
                        bar.update(len(batch))
                        batch = []
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", batch)  # noqa: S608
                n += len(batch)
            bar.update(n - bar.n)
            bar.close()
            counts[table] = n

        put("departments", history.departments(), len(DEPARTMENTS))
        users = history.users(hash_password(PASSWORD))
        put("users", users, len(users))
        put("conversations", history.conversations(), history.n_conversations)
        put("chat_messages", history.messages(), history.n_messages // 2 * 2)
        put("feedback", history.feedback_rows, len(history.feedback_rows))
        tickets, events = history.tickets_and_events()
        put("tickets", tickets, len(tickets))
        put("ticket_events", events, len(events))
        if postgres:
            for table in COLUMNS:
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        raw.commit()
    finally:
        raw.close()
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        days = refresh_bot_rollups(session, utcnow())
    rollups = time.perf_counter() - started
    print(f"  report rollups: {days} days summarised in {rollups:.1f} s")
    if postgres:  # what autovacuum does after a bulk load; the app never runs ANALYZE on SQLite, nor do we
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        print(f"  vacuum analyze: {time.perf_counter() - started:.1f} s")
    engine.dispose()
    return counts, rollups


def _sqlite(value: Any) -> Any:
    return value.isoformat(sep=" ", timespec="microseconds") if isinstance(value, dt.datetime) else value


def _pg(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds") + "+00"
    if isinstance(value, bool):
        return "t" if value else "f"
    return value


# -- timing over HTTP ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The real app (`motcua serve`) on a free port, once /readyz says it is ready."""
    port = free_port()
    env = {
        **os.environ,
        "MOTCUA_DATABASE_URL": url,
        "MOTCUA_DATA_DIR": str(data_dir),
        "MOTCUA_EMBEDDER": "hash",
        "MOTCUA_SEED_DEPARTMENTS": "false",
        "MOTCUA_LOG_LEVEL": "WARNING",
    }
    command = [str(Path(sys.executable).parent / "motcua"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = (data_dir.parent / f"{data_dir.name}.log").open("wb")  # the app's own log, out of the table's way
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the app exited during start-up ({process.returncode}); see {log.name}")
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise SystemExit("the app did not become ready within 300 s")


def token(client: httpx.Client, username: str) -> str:
    response = client.post("/api/auth/token", data={"username": username, "password": PASSWORD})
    response.raise_for_status()
    return str(response.json()["access_token"])


def endpoints(today: dt.date, days: int) -> list[tuple[str, str, str]]:
    """(label, who, path) of every request timed."""
    quarter = (today - dt.timedelta(days=89)).isoformat()
    whole = (today - dt.timedelta(days=days)).isoformat()
    periods = [("30 days", ""), ("90 days", f"from={quarter}"), (f"{days + 1} days: all", f"from={whole}")]
    found = []
    for label, period in periods:
        q = f"?{period}&" if period else "?"
        found += [
            (f"departments ({label})", "admin", f"/api/reports/departments{q}".rstrip("?&")),
            (f"departments CSV ({label})", "admin", f"/api/reports/departments{q}format=csv"),
            (f"departments, own ({label})", "supervisor", f"/api/reports/departments{q}department=ho-tich"),
            (f"officials ({label})", "admin", f"/api/reports/officials{q}".rstrip("?&")),
            (f"officials, own ({label})", "supervisor", f"/api/reports/officials{q}department=ho-tich"),
            (f"bot ({label})", "admin", f"/api/reports/bot{q}".rstrip("?&")),
            (f"categories ({label})", "admin", f"/api/reports/categories{q}".rstrip("?&")),
            (f"timeseries day ({label})", "admin", f"/api/reports/timeseries{q}bucket=day"),
            (f"timeseries week ({label})", "admin", f"/api/reports/timeseries{q}bucket=week"),
            (f"timeseries month ({label})", "admin", f"/api/reports/timeseries{q}bucket=month"),
            (f"tickets behind: missed ({label})", "admin", f"/api/reports/tickets{q}figure=missed&limit=200"),
            (f"public transparency JSON ({label})", "public", f"/api/public/transparency{q}".rstrip("?&")),
            (f"public /transparency HTML ({label})", "public", f"/transparency{q}".rstrip("?&")),
        ]
    found += [
        ("ranking (last month)", "admin", "/api/reports/ranking"),
        ("overdue now (first 100)", "admin", "/api/reports/overdue"),
        ("overdue now, own (first 100)", "supervisor", "/api/reports/overdue?department=ho-tich"),
    ]
    return found


def time_endpoints(base: str, args: argparse.Namespace, today: dt.date) -> dict[str, tuple[float, float]]:
    """p50 and p95 in ms of each endpoint."""
    results: dict[str, tuple[float, float]] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        headers = {
            "admin": {"Authorization": f"Bearer {token(client, 'bench.admin')}"},
            "supervisor": {"Authorization": f"Bearer {token(client, 'ho-tich.truongphong')}"},
            "public": {},
        }
        for label, who, path in tqdm(endpoints(today, args.days), desc="      endpoints", unit="endpoint"):
            for _ in range(args.warmup):
                response = client.get(path, headers=headers[who])
                if response.status_code != 200:
                    raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
            samples = []
            for _ in range(args.requests):
                started = time.perf_counter()
                response = client.get(path, headers=headers[who])
                samples.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            results[label] = (percentile(samples, 50), percentile(samples, 95))
    return results


def percentile(samples: list[float], pct: int) -> float:
    """Nearest rank, as the reports themselves."""
    ordered = sorted(samples)
    return ordered[max(0, -(-len(ordered) * pct // 100) - 1)]


# -- main -----------------------------------------------------------------------------------------------------


def run(
    database: str, args: argparse.Namespace, workdir: Path
) -> tuple[dict[str, tuple[float, float]], dict[str, int], float]:
    """Load one database, serve the app on it, time the endpoints; the database is dropped unless --keep."""
    admin = None
    if database == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        name = f"motcua_bench_reports_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    print(f"{database}: loading {url}")
    try:
        started = time.perf_counter()
        counts, rollups = load(url, args)
        print(f"  loaded in {time.perf_counter() - started:.0f} s: {counts}")
        process, base = serve(url, workdir / f"var-{database}")
        try:
            from helpdesk.sla import VN
            from knowledge.models import utcnow

            today = utcnow().astimezone(VN).date()
            return time_endpoints(base, args, today), counts, rollups
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        if admin is not None:
            if not args.keep:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="motcua-bench-reports-"))
    results: dict[str, dict[str, tuple[float, float]]] = {}
    counts: dict[str, int] = {}
    loads: list[str] = []
    rollups: list[str] = []
    try:
        for database in databases:
            results[database], counts, seconds = run(database, args, workdir)
            loads.append(f"{database} {os.getloadavg()[0]:.1f}")
            rollups.append(f"{database} {seconds:.1f} s")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}; load average during the timings: {', '.join(loads)}"
    )
    print(f"Data: {counts}")
    print(f"Report rollups built after the load (helpdesk.rollups.refresh_bot_rollups): {', '.join(rollups)}")
    print(f"Command: python benchmarks/reports.py {shlex.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    print(f"Requests: {args.warmup} warm-up then {args.requests} timed, sequential, one keep-alive client")
    print()
    header = "| endpoint | " + " | ".join(f"{d} p50 ms | {d} p95 ms" for d in databases) + " |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(databases)))
    missed = 0
    for label in results[databases[0]]:
        cells = []
        for database in databases:
            p50, p95 = results[database][label]
            missed += p95 > 300
            cells.append(f"{p50:.0f} | {p95:.0f}{' ✗' if p95 > 300 else ''}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print("all p95 ≤ 300 ms" if not missed else f"{missed} endpoint(s) above 300 ms at p95")
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
