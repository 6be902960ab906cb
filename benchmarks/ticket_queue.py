"""Queue-endpoint benchmark: GET /api/tickets with 100,000 tickets, over HTTP, on SQLite and PostgreSQL.

Fills a fresh database with the bundled departments and N tickets (statuses, deadlines and assignees
spread like a busy desk; deadlines already past marked missed, as the scheduler would have), starts the
real app with `motcua serve --workers N` in its own process, then measures:

* latency — one client, sequential requests for several typical queue views (p50/p95 per view);
* throughput — `wrk` (Debian package) with 32 connections for a fixed time on the busiest view.

    python benchmarks/ticket_queue.py                                 # SQLite and PostgreSQL, 100,000 tickets
    python benchmarks/ticket_queue.py --databases sqlite --tickets 20000 --seconds 10

Needs `wrk` (apt-get install -y wrk) and, for PostgreSQL, the server at 127.0.0.1:5432 (user postgres).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

PG_ADMIN = os.environ.get("MOTCUA_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STATUS_MIX = [
    ("new", 0.25),
    ("acknowledged", 0.2),
    ("answered", 0.25),
    ("closed", 0.25),
    ("reopened", 0.03),
    ("transferred", 0.02),
]
CHUNK = 5000
WRK_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("WRK p50=%.3f p95=%.3f p99=%.3f\\n", latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fill(tickets: int, seed: int) -> dict[str, str]:
    """Seed departments, users and `tickets` tickets in the configured database; returns bearer tokens by role."""
    from sqlalchemy import insert, select
    from tqdm import tqdm

    from bot.models import Conversation
    from core.config import get_settings
    from core.db import session_scope
    from helpdesk.accounts import create_user, issue_token
    from helpdesk.departments import ensure_departments_seeded
    from helpdesk.models import Department, Ticket, User
    from knowledge.models import utcnow

    rng = random.Random(seed)
    now = utcnow()
    with session_scope() as session:
        ensure_departments_seeded(session, get_settings())
    with session_scope() as session:
        departments = list(session.scalars(select(Department.slug).order_by(Department.id)))
        home = departments[1]
        admin = create_user(session, username="bench.admin", password="bench-password-1", role="admin")
        official = create_user(
            session, username="bench.official", password="bench-password-1", role="official", department=home
        )
        session.flush()
        tokens = {
            "admin": issue_token(session, admin, name="bench", now=now)[1],
            "official": issue_token(session, official, name="bench", now=now)[1],
        }
        for department in departments:  # one more official a department, for the inbox benchmark's watcher
            create_user(
                session,
                username=f"bench.watch.{department}",
                password="bench-password-1",
                role="official",
                department=department,
            )
        officials = {d: list(session.scalars(select(User.id).where(User.department == d))) for d in departments}
        conversation_rows = [
            {
                "channel": "telegram",
                "user_key": str(10_000_000 + i),
                "state": {},
                "lang": None,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(max(tickets // 10, 1))
        ]
        session.execute(insert(Conversation), conversation_rows)
        first_conversation = session.scalar(select(Conversation.id).order_by(Conversation.id))
    statuses, weights = zip(*STATUS_MIX, strict=True)
    with tqdm(total=tickets, desc="tickets", unit="ticket") as bar:
        for start in range(0, tickets, CHUNK):
            rows = []
            for i in range(start, min(start + CHUNK, tickets)):
                created = now - dt.timedelta(minutes=rng.randint(0, 60 * 24 * 120))
                department = rng.choice(departments)
                status = rng.choices(statuses, weights)[0]
                deadline = created + dt.timedelta(hours=rng.choice([8, 16, 40, 72]))
                held = status in ("acknowledged", "answered", "closed") and officials[department]
                # Steady state: a deadline already past was marked missed (and apologised for) when it passed,
                # so the app's breach scheduler has nothing to catch up on while it is measured.
                missed = deadline < now and status in ("new", "acknowledged", "reopened", "transferred")
                rows.append(
                    {
                        "code": f"MC-B{i:07d}",
                        "conversation_id": first_conversation + i % max(tickets // 10, 1),
                        "channel": "telegram",
                        "lang": "vi",
                        "question": f"Câu hỏi thử số {i} về thủ tục hành chính",
                        "search_text": f"mc-b{i:07d} cau hoi thu so {i} ve thu tuc hanh chinh",
                        "excerpt": [],
                        "candidates": [],
                        "reason": "low_confidence",
                        "status": status,
                        "department": department,
                        "deadline": deadline,
                        "ack_deadline": deadline,
                        "resolve_deadline": deadline + dt.timedelta(hours=32),
                        "created_at": created,
                        "updated_at": created,
                        "urgency": "urgent" if rng.random() < 0.1 else "normal",
                        "apologies": int(missed),
                        "ack_breached_at": deadline if missed and status != "acknowledged" else None,
                        "resolve_breached_at": deadline if missed and status == "acknowledged" else None,
                        "assignee_id": rng.choice(officials[department]) if held else None,
                        "category": None,
                        "procedure_slug": None,
                    }
                )
            with session_scope() as session:
                session.execute(insert(Ticket), rows)
            bar.update(len(rows))
    return tokens


def start_app(env: dict[str, str], port: int, log: Path, workers: int) -> subprocess.Popen[bytes]:
    """The real app as `motcua serve --workers N` runs it, in its own process."""
    command = [sys.executable, "-m", "core.cli", "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, cwd=str(REPO), stdout=out, stderr=subprocess.STDOUT)
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited at start-up; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("the app did not become ready within 300 s")


VIEWS = {
    "official: own department, open (default)": ("official", "/api/tickets"),
    "official: own department, overdue": ("official", "/api/tickets?overdue=true"),
    "official: assigned to me": ("official", "/api/tickets?assignee=me"),
    "admin: all open": ("admin", "/api/tickets"),
    "admin: one department, status=new": ("admin", "/api/tickets?status=new&department={home}"),
    "admin: all statuses, page 100 (offset 5000)": (
        "admin",
        "/api/tickets?status=new,acknowledged,answered,closed,reopened,transferred&offset=5000",
    ),
    "admin: page size 200": ("admin", "/api/tickets?limit=200"),
}


def measure(base: str, tokens: dict[str, str], home: str, requests: int) -> list[tuple[str, float, float, int]]:
    """p50/p95 (ms) of sequential requests per view, and the view's total count."""
    import httpx

    results = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, (role, path) in VIEWS.items():
            path = path.format(home=home)
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            for _ in range(5):  # warm-up
                client.get(path, headers=headers).raise_for_status()
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                response = client.get(path, headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
            results.append((name, statistics.median(times), percentile(times, 95), response.json()["count"]))
    return results


def run_wrk(url: str, token: str, seconds: int, connections: int, workdir: Path) -> dict[str, float]:
    """wrk's requests/s and latency percentiles on one URL."""
    script = workdir / "p95.lua"
    script.write_text(WRK_LUA)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(script),
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50, p95, p99 = (float(x) for x in re.search(r"WRK p50=([\d.]+) p95=([\d.]+) p99=([\d.]+)", out).groups())
    return {"rps": rate, "p50": p50, "p95": p95, "p99": p99, "errors": int(errors.group(1)) if errors else 0}


def bench(kind: str, args: argparse.Namespace, root: Path) -> dict[str, object]:
    """Fill one database, serve it, measure."""
    from sqlalchemy import create_engine, text

    data_dir = root / kind
    data_dir.mkdir()
    pg_name = None
    if kind == "sqlite":
        url = f"sqlite:///{(data_dir / 'motcua.db').resolve()}"
    else:
        pg_name = f"motcua_bench_queue_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}"
    env = {
        **os.environ,
        "MOTCUA_DATA_DIR": str(data_dir),
        "MOTCUA_DATABASE_URL": url,
        "MOTCUA_EMBEDDER": "hash",
        "MOTCUA_LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    from core.config import get_settings
    from core.db import dispose_engines

    get_settings.cache_clear()
    try:
        t0 = time.monotonic()
        tokens = fill(args.tickets, args.seed)
        filled = time.monotonic() - t0
        dispose_engines()
        if kind == "postgres":
            # What autovacuum does on a live database after a bulk load: statistics, and the visibility map
            # that lets counts be answered from the indexes alone.
            with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text("VACUUM ANALYZE"))
        from sqlalchemy import select

        from core.db import session_scope
        from helpdesk.models import User

        with session_scope() as session:
            home = session.scalar(select(User.department).where(User.username == "bench.official"))
        dispose_engines()
        port = free_port()
        server = start_app(env, port, data_dir / "server.log", args.workers)
        try:
            base = f"http://127.0.0.1:{port}"
            views = measure(base, tokens, home, args.requests)
            load = run_wrk(f"{base}/api/tickets", tokens["official"], args.seconds, args.connections, data_dir)
            load_admin = run_wrk(f"{base}/api/tickets", tokens["admin"], args.seconds, args.connections, data_dir)
        finally:
            server.terminate()
            server.wait(30)
        return {"kind": kind, "filled": filled, "views": views, "wrk": load, "wrk_admin": load_admin}
    finally:
        dispose_engines()
        if pg_name:
            with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))


def main() -> int:
    """Run the benchmark and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000, help="tickets in the database (default 100000)")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite and/or postgres (default both)")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per view (default 200)")
    parser.add_argument("--seconds", type=int, default=20, help="wrk duration (default 20)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--workers", type=int, default=2, help="`motcua serve --workers` (default 2: one per core)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    if not kinds or set(kinds) - {"sqlite", "postgres"}:
        parser.error("--databases takes sqlite and/or postgres")
    if args.tickets < 10:
        parser.error("--tickets must be at least 10")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install -y wrk")
    command = shlex.join(["python", os.path.relpath(__file__, REPO), *sys.argv[1:]])
    load = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="motcua-queue-bench-"))
    results = [bench(kind, args, root) for kind in kinds]
    print(f"\nQueue endpoint GET /api/tickets — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, load before {load[0]:.2f}; app: motcua serve --workers {args.workers}; "
        f"{args.tickets:,} tickets\n"
    )
    print(f"```bash\n{command}\n```\n")
    print("| database | view | matching tickets | p50 ms | p95 ms |\n|---|---|---|---|---|")
    for r in results:
        for name, p50, p95, count in r["views"]:
            print(f"| {r['kind']} | {name} | {count:,} | {p50:.1f} | **{p95:.1f}** |")
    print(
        f"\n| database | wrk ({args.connections} connections, {args.seconds} s) | requests/s | p50 ms | p95 ms "
        "| p99 ms | non-2xx |\n|---|---|---|---|---|---|---|"
    )
    for r in results:
        for label, w in (("official, default view", r["wrk"]), ("admin, all open", r["wrk_admin"])):
            print(
                f"| {r['kind']} | {label} | **{w['rps']:.0f}** | {w['p50']:.1f} | {w['p95']:.1f} | "
                f"{w['p99']:.1f} | {w['errors']} |"
            )
    print("\nfill times: " + ", ".join(f"{r['kind']} {r['filled']:.0f} s" for r in results))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
