"""Retrieval benchmark: index build time and memory, restart time, ask latency and throughput.

Runs at two sizes: the bundled curated knowledge base, and the national one (2,642 procedures plus
the even half of the portal FAQ). Each phase runs in its own process so that build memory and
restart time are measured cold. Prints a Markdown table for BENCHMARKS.md.

    python benchmarks/retrieval.py                 # both sizes
    python benchmarks/retrieval.py --kb curated    # one size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# `retrieval` package; the repository root must come first instead.
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]
DEV_QUESTIONS = REPO / "tests" / "data" / "questions_dev.jsonl"
NATIONAL = REPO / "knowledge" / "data" / "national_procedures.jsonl.gz"  # the bundled file
PORTAL_FAQ = REPO / "tests" / "data" / "portal_faq_dev.jsonl.gz"
ROUNDS = 5  # passes over the question set for latency percentiles


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _questions(path: Path, key: str = "q") -> list[str]:
    return [json.loads(line)[key] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _portal_questions() -> list[str]:
    """Real citizens' questions of the odd faq_id half (the ones not imported)."""
    from knowledge.io import iter_jsonl

    return [row["question"] for _, row in iter_jsonl(PORTAL_FAQ) if int(row["faq_id"]) % 2 == 1][:200]


def phase_prepare(kb: str) -> dict[str, float]:
    """Fill the database of the size asked for."""
    from core.db import session_scope
    from knowledge import service

    started = time.perf_counter()
    with session_scope() as session:
        service.ensure_seeded(session)
        if kb == "national":
            service.import_national(session, NATIONAL)
            service.import_portal_faq(session, PORTAL_FAQ, parity="even")
    return {"import_s": time.perf_counter() - started}


def phase_open() -> dict[str, float]:
    """Open the retriever (builds it when nothing is persisted) and report time and peak memory."""
    from core.db import session_scope
    from retrieval.service import open_retriever

    started = time.perf_counter()
    with session_scope() as session:
        retriever = open_retriever(session)
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": _peak_rss_mb(),
        "procedures": len(retriever.procedures),
        "views": len(retriever.views),
    }


def phase_latency() -> dict[str, float]:
    """Warm, in-process latency of ask() and of embedding alone; throughput with 1 and 2 workers."""
    from core.db import session_scope
    from retrieval.service import AskService, open_retriever

    with session_scope() as session:
        service = AskService(open_retriever(session))
    out: dict[str, float] = {}
    for name, questions in (("chat", _questions(DEV_QUESTIONS)), ("portal", _portal_questions())):
        for q in questions[:10]:  # warm caches and the allocator
            service.ask(q)
        ask_ms, embed_ms = [], []
        for _ in range(ROUNDS):
            for q in questions:
                t0 = time.perf_counter()
                service.retriever.embed_query(q)
                embed_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                service.ask(q)
                ask_ms.append((time.perf_counter() - t0) * 1000)
        out[f"{name}_ask_p50"] = statistics.median(ask_ms)
        out[f"{name}_ask_p95"] = _percentile(ask_ms, 95)
        out[f"{name}_embed_p50"] = statistics.median(embed_ms)
        for workers in (1, 2):
            t0 = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(service.ask, questions * 2))
            out[f"{name}_qps_{workers}"] = len(questions) * 2 / (time.perf_counter() - t0)
    return out


def _run_phase(phase: str, kb: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--kb", kb],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(kb: str) -> dict[str, float]:
    """All phases for one knowledge-base size, in a fresh data folder."""
    with tempfile.TemporaryDirectory(prefix=f"motcua-bench-{kb}-") as tmp:
        env = {**os.environ, "MOTCUA_DATA_DIR": tmp, "MOTCUA_LOG_LEVEL": "WARNING"}
        env.pop("MOTCUA_DATABASE_URL", None)
        result = _run_phase("prepare", kb, env)
        cold = _run_phase("open", kb, env)
        warm = _run_phase("open", kb, env)
        result.update(
            procedures=cold["procedures"],
            views=cold["views"],
            cold_build_s=cold["seconds"],
            cold_build_peak_rss_mb=cold["peak_rss_mb"],
            restart_s=warm["seconds"],
            restart_peak_rss_mb=warm["peak_rss_mb"],
        )
        result.update(_run_phase("latency", kb, env))
    return result


def markdown(results: dict[str, dict[str, float]]) -> str:
    """The results as a Markdown table, one column per size."""
    rows = [
        ("procedures / indexed views", lambda r: f"{r['procedures']:.0f} / {r['views']:.0f}"),
        ("cold index build (s)", lambda r: f"{r['cold_build_s']:.1f}"),
        ("cold build peak RSS (MB)", lambda r: f"{r['cold_build_peak_rss_mb']:.0f}"),
        ("restart with persisted index (s)", lambda r: f"{r['restart_s']:.2f}"),
        ("chat question: ask p50 / p95 (ms)", lambda r: f"{r['chat_ask_p50']:.1f} / {r['chat_ask_p95']:.1f}"),
        ("chat question: embed alone p50 (ms)", lambda r: f"{r['chat_embed_p50']:.1f}"),
        ("chat questions/s, 1 / 2 workers", lambda r: f"{r['chat_qps_1']:.0f} / {r['chat_qps_2']:.0f}"),
        (
            "portal question: ask p50 / p95 (ms)",
            lambda r: f"{r['portal_ask_p50']:.1f} / {r['portal_ask_p95']:.1f}",
        ),
        ("portal question: embed alone p50 (ms)", lambda r: f"{r['portal_embed_p50']:.1f}"),
        ("portal: ask p50 / embed p50", lambda r: f"{r['portal_ask_p50'] / r['portal_embed_p50']:.2f}"),
        ("portal questions/s, 1 / 2 workers", lambda r: f"{r['portal_qps_1']:.0f} / {r['portal_qps_2']:.0f}"),
    ]
    names = list(results)
    lines = ["| measure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(fmt(results[n]) for n in names) + " |" for label, fmt in rows]
    return "\n".join(lines)


def main() -> None:
    """Parse arguments; run one phase (internal) or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", choices=["curated", "national", "both"], default="both")
    parser.add_argument("--phase", choices=["prepare", "open", "latency"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = {"prepare": lambda: phase_prepare(args.kb), "open": phase_open, "latency": phase_latency}[
            args.phase
        ]()
        print(json.dumps(result))
        return
    sizes = ["curated", "national"] if args.kb == "both" else [args.kb]
    results = {kb: bench(kb) for kb in sizes}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}"
    )
    print(markdown(results))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
