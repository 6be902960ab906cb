"""Outbox benchmark: throughput and reliability of Telegram delivery against a local Bot API stand-in.

Queues N messages for many chats into a fresh SQLite database and drains them with the real
`OutboxWorker({"telegram": TelegramSender(bot)})`, `bot` a real `telegram.Bot` talking HTTP to a stand-in
of the Bot API on 127.0.0.1. The worker always runs in its own process; the stand-in (a small ASGI app
on uvicorn) runs in a thread of this process, records every message it accepts and survives the worker.

Two runs, each on its own fresh database:

* throughput  — no 429s, no kill: how fast the outbox drains (target ≥ 200 msg/s on 2 cores);
* reliability — a random `--rate-429` of sendMessage calls answered 429 (retry after 1 s), and the worker
  killed with SIGKILL once, when about half the messages are delivered, then restarted on the same database
  until the queue is empty. Counts lost messages (queued, never delivered) and duplicates.

Also counts messages delivered out of order (after a message queued later for the same chat).
Exits non-zero if any message is lost (or the queue does not empty). Prints a Markdown table.

    python benchmarks/outbox.py                                   # 10,000 messages, 500 chats, 2 % 429s
    python benchmarks/outbox.py --messages 2000 --chats 100 --rate-429 0.05 --no-kill
    python benchmarks/outbox.py --runs throughput --concurrency 8 --keep

Why not tests/bot/telegram_standin.py: it answers each request in two writes on a socket without TCP_NODELAY,
so every call waits ~40 ms for a delayed ACK (about 230 requests/s with 32 in flight, before any PTB or
database work) — it would measure itself, not the outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path; the repository root must come first instead.
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

TOKEN = "123456789:BENCH-stand-in-token-for-motcua-outbox_0123456789"
BOT_ID = 777000111
CHAT_BASE = 100_000_000  # chat ids CHAT_BASE + 0 .. CHAT_BASE + chats - 1
FILLER = (
    " Hồ sơ đăng ký khai sinh gồm: tờ khai theo mẫu, giấy chứng sinh, giấy tờ tùy thân của người đi đăng ký."
    " Nộp tại Ủy ban nhân dân cấp xã nơi cư trú; thời hạn giải quyết: ngay trong ngày làm việc."
)  # about the size of a real reply, so the HTTP bodies are realistic
WORKER_TIMEOUT = 600.0  # seconds; a worker still running then has hung


# -- the Bot API stand-in ----------------------------------------------------------------------------------


class Standin:
    """`POST /bot{token}/getMe` and `/sendMessage`, with Telegram's JSON shapes; 429s at random.

    Runs on uvicorn in a daemon thread (its own event loop), so it outlives any worker process. Every
    accepted sendMessage is recorded as (monotonic time, chat id, message number parsed from "msg-NNNNNN").
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without it every
        # response (headers and body written apart) waits ~40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.reset(0.0, 0)

    @property
    def base_url(self) -> str:
        """What PTB's `base_url` needs: the token is appended to it."""
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}/bot"

    def reset(self, rate_429: float, seed: int) -> None:
        """Forget everything recorded; answer a fraction `rate_429` of sendMessage calls with 429 from now on."""
        with self._lock:
            self.rate_429 = rate_429
            self._rng = random.Random(seed)
            self.deliveries: list[tuple[float, int, int]] = []
            self.calls: list[float] = []  # time of every sendMessage call, 429s included
            self.get_me: list[float] = []
            self.throttled = 0
            self.errors = 0
            self._message_id = 0

    def delivered_count(self) -> int:
        """How many sendMessage calls were accepted so far."""
        with self._lock:
            return len(self.deliveries)

    def snapshot(self) -> dict[str, Any]:
        """Copies of what was recorded."""
        with self._lock:
            return {"deliveries": list(self.deliveries), "calls": list(self.calls), "get_me": list(self.get_me),
                    "throttled": self.throttled, "errors": self.errors}

    def start(self) -> None:
        """Serve in a background thread; returns once the server listens."""
        import uvicorn

        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", http="h11",
                                interface="asgi3", loop="asyncio", timeout_keep_alive=30, backlog=1024)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="bot-api-standin", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Bot API stand-in did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(5)

    # -- the API ---------------------------------------------------------------------------------------

    def answer(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of one Bot API call."""
        now = time.monotonic()
        if method == "getMe":
            with self._lock:
                self.get_me.append(now)
            return 200, {"ok": True, "result": {"id": BOT_ID, "is_bot": True, "first_name": "Một cửa",
                                                 "username": "motcua_bench_bot", "can_join_groups": False}}
        if method != "sendMessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        text = params.get("text", "")
        try:
            chat_id = int(params["chat_id"])
            number = int(text[4:].split(" ", 1)[0]) if text.startswith("msg-") else -1
        except (KeyError, ValueError):
            with self._lock:
                self.errors += 1
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        with self._lock:
            self.calls.append(now)
            if self.rate_429 and self._rng.random() < self.rate_429:
                self.throttled += 1
                return 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                             "parameters": {"retry_after": 1}}
            self.deliveries.append((now, chat_id, number))
            self._message_id += 1
            message_id = self._message_id
        return 200, {"ok": True, "result": {
            "message_id": message_id, "date": int(time.time()), "text": text,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Một cửa"}}}

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A bare ASGI app: cheaper than a framework, so the CPU goes to the outbox being measured."""
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        prefix = f"/bot{TOKEN}/"
        path: str = scope["path"]
        if scope["method"] != "POST" or not path.startswith(prefix):
            status, payload = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        else:
            content_type = dict(scope["headers"]).get(b"content-type", b"")
            if content_type.startswith(b"application/json"):
                params = {k: str(v) for k, v in json.loads(body or b"{}").items()}
            else:
                params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            status, payload = self.answer(path[len(prefix):], params)
        data = json.dumps(payload).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})


# -- the worker process ------------------------------------------------------------------------------------


def worker_main(base_url: str, concurrency: int | None) -> int:
    """The real outbox worker with the real TelegramSender, until the queue is empty (run in a subprocess)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from telegram import Bot

    from bot.telegram import TelegramSender
    from core.db import session_scope
    from helpdesk.outbox import OutboxWorker, depth

    def pending() -> int:
        with session_scope() as session:
            return depth(session)

    async def main() -> None:
        async with Bot(TOKEN, base_url=base_url) as bot:
            options = {"concurrency": concurrency} if concurrency else {}
            worker = OutboxWorker({"telegram": TelegramSender(bot)}, **options)
            stop = asyncio.Event()
            # SIGTERM is how a service manager stops `motcua serve`: finish what is in flight, then exit.
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

            async def watch() -> None:
                while not stop.is_set():
                    await asyncio.sleep(0.1)
                    if await asyncio.to_thread(pending) == 0:
                        stop.set()

            await asyncio.gather(worker.run(stop), watch())

    asyncio.run(main())
    return 0


# -- one measured run --------------------------------------------------------------------------------------


@dataclass
class Result:
    """The figures of one run."""

    name: str
    messages: int
    chats: int
    rate_429: float
    kills: int
    stop_signal: str = "–"  # how the worker was stopped half-way, if it was
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    extra_sends: int = 0
    out_of_order: int = 0
    misrouted: int = 0
    throttled: int = 0
    elapsed: float = 0.0
    wall: float = 0.0
    worker_cpu: float = 0.0  # CPU seconds of the worker process(es), start-up included
    gap: float | None = None  # from the kill to the restarted worker's first sendMessage
    unrecorded: int | None = None  # at the kill: messages the stand-in accepted that the database calls pending
    pending: int = 0
    failed: int = 0
    worker_rcs: tuple[int, ...] = ()
    log_lines: int = 0

    @property
    def throughput(self) -> float:
        """Distinct messages delivered per second, first sendMessage call to last delivery."""
        return self.delivered / self.elapsed if self.elapsed > 0 else 0.0


def queue_messages(url: str | None, messages: int, chats: int, seed: int) -> dict[int, int]:
    """Queue `messages` texts "msg-NNNNNN ..." for random chats, in number order; returns number -> chat."""
    from sqlalchemy import insert

    from core.db import session_scope
    from helpdesk.models import OutboxMessage
    from knowledge.models import utcnow

    rng = random.Random(seed)
    recipients = {i: CHAT_BASE + rng.randrange(chats) for i in range(messages)}
    now = utcnow()
    rows = [{"channel": "telegram", "recipient": str(chat), "text": f"msg-{i:06d}{FILLER}", "buttons": [],
             "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for i, chat in recipients.items()]
    with session_scope(url) as session:
        for start in range(0, len(rows), 2000):
            session.execute(insert(OutboxMessage), rows[start:start + 2000])
    return recipients


def sent_numbers(url: str) -> set[int]:
    """Numbers of the messages the database records as sent."""
    from sqlalchemy import select

    from core.db import session_scope
    from helpdesk.models import OutboxMessage

    with session_scope(url) as session:
        texts = session.scalars(select(OutboxMessage.text).where(OutboxMessage.status == "sent"))
        return {int(text[4:].split(" ", 1)[0]) for text in texts}


def outbox_state(url: str) -> Counter[str]:
    """How many outbox rows are in each status."""
    from sqlalchemy import func, select

    from core.db import session_scope
    from helpdesk.models import OutboxMessage

    with session_scope(url) as session:
        return Counter(dict(session.execute(
            select(OutboxMessage.status, func.count(OutboxMessage.id)).group_by(OutboxMessage.status)).all()))


def run_once(name: str, root: Path, standin: Standin, args: argparse.Namespace, *, rate_429: float,
             kill: signal.Signals | None) -> Result:
    """Queue, drain with a worker process (stopped once by `kill` if given), and count what the stand-in received."""
    data_dir = root / name
    data_dir.mkdir()
    url = f"sqlite:///{(data_dir / 'motcua.db').resolve()}"
    recipients = queue_messages(url, args.messages, args.chats, args.seed)
    standin.reset(rate_429, args.seed + 1)
    env = {**os.environ, "MOTCUA_DATA_DIR": str(data_dir), "MOTCUA_DATABASE_URL": url, "PTB_TIMEDELTA": "true"}
    log_path = data_dir / "worker.log"
    rcs: list[int] = []

    def spawn() -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", standin.base_url]
            if args.concurrency:
                command += ["--concurrency", str(args.concurrency)]
            return subprocess.Popen(command, env=env, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT)

    result = Result(name, args.messages, args.chats, rate_429, kills=0)
    cpu_before = _children_cpu()
    started = time.monotonic()
    worker = spawn()
    killed_at = None
    try:
        if kill:
            half = args.messages // 2
            while worker.poll() is None and standin.delivered_count() < half:
                time.sleep(0.01)
            if worker.poll() is None:
                os.kill(worker.pid, kill)
                killed_at = time.monotonic()
                rcs.append(worker.wait())
                result.kills = 1
                result.stop_signal = kill.name
                # Accepted by "Telegram" but not recorded as sent: what the restarted worker will send again.
                accepted = {number for _, _, number in standin.snapshot()["deliveries"]}
                result.unrecorded = len(accepted - sent_numbers(url))
                worker = spawn()
        rcs.append(worker.wait(timeout=WORKER_TIMEOUT))
    except subprocess.TimeoutExpired:
        print(f"[{name}] the worker still ran after {WORKER_TIMEOUT:.0f} s: killed", file=sys.stderr)
    finally:
        if worker.poll() is None:  # timed out, or this benchmark was interrupted
            worker.kill()
            rcs.append(worker.wait())
    result.wall = time.monotonic() - started
    result.worker_cpu = _children_cpu() - cpu_before
    result.worker_rcs = tuple(rcs)

    seen = standin.snapshot()
    deliveries: list[tuple[float, int, int]] = seen["deliveries"]
    counts = Counter(number for _, _, number in deliveries)
    result.delivered = sum(1 for number in counts if number in recipients)
    result.lost = sum(1 for number in recipients if number not in counts)
    result.duplicated = sum(1 for c in counts.values() if c > 1)
    result.extra_sends = sum(c - 1 for c in counts.values())
    result.misrouted = sum(1 for _, chat, number in deliveries if recipients.get(number) != chat)
    result.throttled = seen["throttled"]
    result.out_of_order = out_of_order(deliveries)
    if seen["calls"] and deliveries:
        result.elapsed = deliveries[-1][0] - seen["calls"][0]
    if killed_at is not None:
        # Requests the killed worker had already written may still be answered after the kill: the restart
        # is the first sendMessage after the new worker's getMe.
        restarted = [t for t in seen["get_me"] if t > killed_at]
        after = [t for t in seen["calls"] if restarted and t > restarted[0]]
        result.gap = (after[0] - killed_at) if after else None
    state = outbox_state(url)
    result.pending, result.failed = state.get("pending", 0), state.get("failed", 0)
    text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    result.log_lines = sum(1 for line in text.splitlines() if " WARNING " in line or " ERROR " in line)
    if result.log_lines or any(rc not in (0, -signal.SIGKILL) for rc in rcs):
        tail = "\n".join(text.splitlines()[-20:])
        print(f"[{name}] worker exit codes {rcs}; last lines of {log_path}:\n{tail}", file=sys.stderr)
    return result


def _children_cpu() -> float:
    """CPU seconds (user + system) of the worker processes waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def out_of_order(deliveries: list[tuple[float, int, int]]) -> int:
    """First deliveries that reached a chat after a message queued later for the same chat."""
    latest: dict[int, int] = defaultdict(lambda: -1)
    done: set[int] = set()
    late = 0
    for _, chat, number in deliveries:
        if number in done:
            continue  # a duplicate: counted as such, not as disorder
        done.add(number)
        if number < latest[chat]:
            late += 1
        latest[chat] = max(latest[chat], number)
    return late


# -- report ------------------------------------------------------------------------------------------------


def machine() -> str:
    """Cores, CPU model, Python."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"{usable} cores usable ({os.cpu_count()} online), {model}, Python {platform.python_version()}, "
            f"load average before the run {load}")


def table(results: list[Result]) -> str:
    """The Markdown table."""
    head = ("| run | messages / chats | 429 rate | stopped by | delivered | lost | duplicated | out of order "
            "| 429s served | elapsed s | msg/s | wall s | restart gap s | unrecorded at kill | worker CPU ms/msg |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        gap = f"{r.gap:.2f}" if r.gap is not None else "–"
        unrecorded = str(r.unrecorded) if r.unrecorded is not None else "–"
        dup = f"{r.duplicated}" + (f" (+{r.extra_sends} sends)" if r.extra_sends != r.duplicated else "")
        lines.append(
            f"| {r.name} | {r.messages:,} / {r.chats} | {r.rate_429:.1%} | {r.stop_signal} | {r.delivered:,} "
            f"| **{r.lost}** | {dup} | {r.out_of_order} | {r.throttled} | {r.elapsed:.1f} "
            f"| **{r.throughput:.0f}** | {r.wall:.1f} | {gap} | {unrecorded} "
            f"| {1000 * r.worker_cpu / max(r.delivered, 1):.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark (or, with --worker, be the worker process)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="messages queued per run (default 10000)")
    parser.add_argument("--chats", type=int, default=500, help="distinct recipients (default 500)")
    parser.add_argument("--rate-429", type=float, default=0.02,
                        help="fraction of sendMessage calls answered 429 in the reliability run (default 0.02)")
    parser.add_argument("--no-kill", action="store_true", help="do not SIGKILL the worker in the reliability run")
    parser.add_argument("--runs", default="throughput,reliability,graceful",
                        help="which runs, comma-separated (default: throughput,reliability,graceful; graceful is "
                             "the reliability run with SIGTERM, how a service manager stops the worker)")
    parser.add_argument("--concurrency", type=int,
                        help="sends in flight in the worker (default: OutboxWorker's own default, 32)")
    parser.add_argument("--keep", action="store_true", help="keep the databases and worker logs")
    parser.add_argument("--seed", type=int, default=1, help="seed of recipients and 429s (default 1)")
    parser.add_argument("--worker", metavar="BASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args.worker, args.concurrency)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if not runs or set(runs) - {"throughput", "reliability", "graceful"}:
        parser.error("--runs takes throughput, reliability and/or graceful")
    if args.messages < 1 or args.chats < 1 or not 0 <= args.rate_429 < 1 or (args.concurrency or 1) < 1:
        parser.error("--messages, --chats and --concurrency must be positive, --rate-429 in [0, 1)")

    command = shlex.join([Path(sys.executable).name if "python" in sys.executable else sys.executable,
                          os.path.relpath(__file__, REPO), *sys.argv[1:]])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    host = machine()
    root = Path(tempfile.mkdtemp(prefix="motcua-outbox-bench-"))
    os.environ["MOTCUA_DATA_DIR"] = str(root)  # before any project module reads the settings
    os.environ["PTB_TIMEDELTA"] = "true"

    standin = Standin()
    standin.start()
    results: list[Result] = []
    try:
        for name in runs:
            if name == "throughput":
                result = run_once(name, root, standin, args, rate_429=0.0, kill=None)
            else:
                stop_signal = signal.SIGTERM if name == "graceful" else signal.SIGKILL
                result = run_once(name, root, standin, args, rate_429=args.rate_429,
                                  kill=None if args.no_kill else stop_signal)
            results.append(result)
            print(f"[{name}] delivered {result.delivered:,}/{result.messages:,}, lost {result.lost}, "
                  f"duplicated {result.duplicated}, {result.throughput:.0f} msg/s", file=sys.stderr)
    finally:
        standin.stop()
        from core.db import dispose_engines

        dispose_engines()

    print(f"\nOutbox delivery to a local Bot API stand-in over HTTP — {when}")
    print(f"Machine: {host}")
    print(f"Worker: OutboxWorker defaults (batch 200), concurrency {args.concurrency or 'default (32)'}; "
          f"stand-in: uvicorn (h11) in a thread of the benchmark process; SQLite (WAL) in a temporary folder\n")
    print(f"```bash\n{command}\n```\n")
    print(table(results))
    print("\nelapsed: first sendMessage call to last delivery (worker start-up excluded, restart included); "
          "msg/s: distinct messages delivered / elapsed; wall: first worker launch to the last worker's exit; "
          "out of order: first deliveries that reached a chat after a message queued later for that chat; "
          "unrecorded at kill: messages the stand-in had accepted but the database still had pending when the "
          "worker died (the ones a restart sends again).")
    for r in results:
        if r.pending or r.failed or r.misrouted:
            print(f"\n{r.name}: outbox left {r.pending} pending, {r.failed} failed; {r.misrouted} misrouted")
    bad = any(r.lost or r.pending or r.misrouted for r in results)
    if args.keep or bad:
        print(f"\nDatabases and worker logs: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
