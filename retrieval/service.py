"""Asking the knowledge base: open (or build) the retriever, search, decide, shape the answer."""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.config import Settings, get_settings
from core.progress import progress as progress_lines
from knowledge.service import kb_version
from retrieval.corpus import build_corpus
from retrieval.decision import (
    ANSWERED,
    CLARIFY,
    LARGE_KB,
    THRESHOLDS_FILE,
    Decision,
    Thresholds,
    decide,
    load_thresholds,
)
from retrieval.embedders import Embedder, embedder_id, load_embedder
from retrieval.normalize import DATA_DIR, detect_lang
from retrieval.retriever import INDEX_FORMAT, Retriever, SearchResult, VectorCache

logger = logging.getLogger(__name__)

CANDIDATES = 10
KEEP_INDEX_VERSIONS = 2


@dataclass
class AskResult:
    """The outcome of one question, in the shape of `motcua ask --json`."""

    status: str
    procedure: str | None
    candidates: list[dict[str, Any]]
    lang: str
    latency_ms: float
    offer: int = 0
    search: SearchResult | None = field(default=None, repr=False)
    missing: str | None = None  # a case the question names that no candidate covers (retrieval.decision)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of DESIGN.md."""
        return {
            "status": self.status,
            "procedure": self.procedure,
            "candidates": self.candidates,
            "lang": self.lang,
            "latency_ms": round(self.latency_ms, 2),
        }


class AskService:
    """Answers questions from one loaded retriever; safe to share across threads."""

    def __init__(self, retriever: Retriever, thresholds: Thresholds | None = None) -> None:
        self.retriever = retriever
        name = retriever.embedder.name
        self.thresholds = thresholds or load_thresholds(name)
        # Among thousands of imported look-alike procedures the bot must be surer before it answers
        # than when its best candidate is one of the distinct, hand-written curated procedures.
        large = len(retriever.procedures) >= LARGE_KB
        self.large_thresholds = (thresholds or load_thresholds(name, n_procedures=LARGE_KB)) if large else None

    def ask(self, question: str, *, lang: str | None = None) -> AskResult:
        """Search, decide and shape the answer to a question."""
        started = time.perf_counter()
        lang = lang or detect_lang(question)
        result = self.retriever.search(question, k=CANDIDATES)
        decision = decide(question, result, self.thresholds_for(result))
        if decision.status == CLARIFY and self.large_thresholds is not None and result.curated_only is not None:
            # Among thousands of imported look-alikes a curated card rarely leads by a clear margin; judged among
            # the curated cards alone (with the words checked against the whole knowledge base) it may: the
            # procedures citizens ask most about are the curated ones, written for them.
            among = result.curated_only
            judged = decide(question, among, self.thresholds_for(among))
            leaders = [c.entry.slug for c in result.candidates[:3]]
            if judged.status == ANSWERED and among.candidates[0].entry.slug in leaders:  # and the whole KB agrees
                result, decision = among, judged
        return self._shape(decision, result, lang, started)

    def thresholds_for(self, result: SearchResult) -> Thresholds:
        """The curated-regime thresholds, unless the best candidate is an imported record of a large KB."""
        if self.large_thresholds is None:
            return self.thresholds
        if result.candidates and result.candidates[0].entry.curated:
            # a curated card is still judged as one: only its words are checked against the look-alikes
            return replace(self.thresholds, answer_unexplained=self.large_thresholds.answer_unexplained)
        return self.large_thresholds

    def _shape(self, decision: Decision, result: SearchResult, lang: str, started: float) -> AskResult:
        candidates = [
            {
                "slug": c.entry.slug,
                "code": c.entry.code,
                "title": c.entry.title(lang),
                "score": round(c.score, 5),
            }
            for c in result.candidates
        ]
        procedure = candidates[0]["slug"] if decision.status == ANSWERED and candidates else None
        offer = decision.offer if decision.status in (ANSWERED, CLARIFY) else 0
        latency = (time.perf_counter() - started) * 1000
        return AskResult(decision.status, procedure, candidates, lang, latency, offer, result, decision.missing)


def open_retriever(
    session: Session,
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
    cache: VectorCache | None = None,
) -> Retriever:
    """The retriever of the current knowledge-base version: loaded from disk, or built and persisted."""
    settings = settings or get_settings()
    embedder = embedder or load_embedder(settings.embedder)
    version = index_version(session)
    folder = index_folder(settings.index_dir, embedder, version)
    if not force:
        loaded = Retriever.load(folder, embedder)
        if loaded is not None:
            return loaded
    started = time.perf_counter()
    corpus = build_corpus(session)
    read = time.perf_counter()
    cache = cache or VectorCache(settings.index_dir / "vectors", embedder)
    todo = cache.missing([v.text for v in corpus.views])
    logger.info(
        "building the retrieval index: %d procedures, %d texts, %d of them to embed with %s",
        len(corpus.procedures),
        len(corpus.views),
        todo,
        embedder.name,
    )
    with nullcontext(progress) if progress else progress_lines("embedding", todo, logger=logger) as update:
        retriever = Retriever.build(corpus, embedder, version=version, cache=cache, progress=update)
    indexed = time.perf_counter()
    retriever.save(folder)
    _prune(settings.index_dir, keep=folder)
    logger.info(
        "built index %s: %d procedures, %d views in %.1f s (reading %.2f s, embedding and indexing %.2f s, "
        "saving %.2f s)",
        folder.name,
        len(corpus.procedures),
        len(corpus.views),
        time.perf_counter() - started,
        read - started,
        indexed - read,
        time.perf_counter() - indexed,
    )
    return retriever


def index_folder(index_dir: Path, embedder: Embedder, version: str) -> Path:
    """Where the index of this model and knowledge-base version is saved."""
    return index_dir / f"{embedder_id(embedder)}-{version}"


def index_version(session: Session) -> str:
    """The version an index of the database's knowledge base has: the knowledge base's and the data files'."""
    return f"{kb_version(session)}-{_data_version()}"


@lru_cache(maxsize=1)
def _data_version() -> str:
    """Fingerprint of what shapes an index besides the knowledge base: data files and index format."""
    digest = hashlib.sha256(str(INDEX_FORMAT).encode())
    for path in sorted(DATA_DIR.glob("*.yaml")):
        if path.name != THRESHOLDS_FILE.name:  # thresholds act at question time, not in the index
            digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def _prune(index_dir: Path, keep: Path) -> None:
    """Drop old index versions; the newest few stay for a quick roll-back."""
    versions = sorted(
        (p for p in index_dir.iterdir() if p.is_dir() and (p / "meta.json").exists() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in versions[KEEP_INDEX_VERSIONS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
