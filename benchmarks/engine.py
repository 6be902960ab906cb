"""Conversation-engine benchmark: latency under concurrent chats, and the highest sustained rate.

Simulates chat adapters: N chats, each sending a question every P seconds, handled on a pool of worker
threads like the Telegram/Zalo/web adapters do (asyncio.to_thread). Latency is measured from the
moment a message arrives (before it is stored) to its reply being queued, so it includes waiting for a
free core. Runs on the embedded SQLite database with the bundled knowledge base and the default model.

    python benchmarks/engine.py                      # 50 chats every 5 s, then a rate ramp
    python benchmarks/engine.py --chats 50 --period 5 --seconds 60 --ramp 10,20,30,40,50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

QUESTIONS = REPO / "benchmarks" / "data" / "calibration_questions.jsonl"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")
    )


async def load(engine, questions: list[str], rate: float, seconds: float, chats: int) -> dict[str, float]:  # noqa: ANN001
    """Send `rate` questions per second spread over `chats` chats for `seconds`; time each one."""
    from bot.engine import Inbound
    from core.db import session_scope

    latencies: list[float] = []
    engine_ms: list[float] = []
    pending: list[asyncio.Task[None]] = []
    lock = {c: asyncio.Lock() for c in range(chats)}  # sequential per chat, as the adapters are

    def handle(chat: int, text: str) -> float:
        with session_scope() as session:
            outcome = engine.handle(session, Inbound(channel="telegram", user=f"bench-{chat}", text=text))
        return float(len(outcome.replies))

    async def one(chat: int, text: str, arrived: float) -> None:
        async with lock[chat]:
            t0 = time.perf_counter()
            await asyncio.to_thread(handle, chat, text)
            engine_ms.append((time.perf_counter() - t0) * 1000)
        latencies.append((time.perf_counter() - arrived) * 1000)

    interval = 1.0 / rate
    start = time.perf_counter()
    sent = 0
    while time.perf_counter() - start < seconds:
        due = start + sent * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(one(sent % chats, random.choice(questions), time.perf_counter())))
        sent += 1
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - start
    return {
        "rate": rate,
        "sent": sent,
        "achieved_rate": sent / elapsed,
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 95),
        "engine_p95_ms": percentile(engine_ms, 95),
    }


def main() -> None:
    """Run the steady load and the ramp; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--period", type=float, default=5.0, help="seconds between a chat's questions")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ramp", default="10,15,20,25,30,40", help="questions/s to try, ascending")
    parser.add_argument("--ramp-seconds", type=float, default=20.0)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="motcua-bench-engine-")
    os.environ["MOTCUA_DATA_DIR"] = tmp
    os.environ.setdefault("MOTCUA_LOG_LEVEL", "WARNING")
    from admin_api.app import load_engine

    engine = load_engine()
    questions = [
        json.loads(line)["q"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    random.seed(7)
    steady = asyncio.run(load(engine, questions, args.chats / args.period, args.seconds, args.chats))
    print(f"steady: {args.chats} chats, one question every {args.period} s each, {args.seconds} s")
    print(json.dumps(steady))
    rows = []
    for rate in (float(r) for r in args.ramp.split(",")):
        result = asyncio.run(load(engine, questions, rate, args.ramp_seconds, args.chats))
        rows.append(result)
        print(json.dumps(result))
        if result["p95_ms"] > 1000:
            break
    sustained = max((r["rate"] for r in rows if r["p95_ms"] <= 1000), default=0.0)
    print("\n| load | questions/s sent | p50 (ms) | p95 arrival→queued (ms) | p95 in engine (ms) |")
    print("|---|---|---|---|---|")
    for label, r in [("steady", steady)] + [(f"ramp {r['rate']:.0f}/s", r) for r in rows]:
        print(
            f"| {label} | {r['achieved_rate']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['engine_p95_ms']:.0f} |"
        )
    print(f"\nhighest sustained rate with p95 ≤ 1 s: {sustained:.0f} questions/s")


if __name__ == "__main__":
    main()
