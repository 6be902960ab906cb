"""Hybrid retrieval: lexical and dense rankings fused into one list of candidate procedures."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.corpus import Corpus, ProcedureEntry, View
from retrieval.embedders import Embedder
from retrieval.indexes import DenseIndex, LexicalIndex
from retrieval.normalize import clean, tokens

logger = logging.getLogger(__name__)

# Reciprocal-rank-fusion constant: 60 is the value of Cormack et al. (2009) that haystack and most
# hybrid search engines keep; it damps the head so that one ranker's first place cannot dominate.
RRF_K = 60
EMBED_BATCH = 64
INDEX_FORMAT = 1


@dataclass
class Candidate:
    """One procedure in a ranked result."""

    index: int
    entry: ProcedureEntry
    score: float
    dense: float
    lexical: float


@dataclass
class SearchResult:
    """A ranked list plus the signals the answer decision reads."""

    candidates: list[Candidate]
    query_tokens: list[str]
    known_token_share: float  # share of the query's words that occur anywhere in the knowledge base
    dense_by_rank: dict[str, list[int]] = field(default_factory=dict)
    embed_ms: float = 0.0


class Retriever:
    """Built once from a corpus; answers searches without touching the database."""

    def __init__(
        self,
        procedures: list[ProcedureEntry],
        documents: list[str],
        views: list[View],
        vectors: np.ndarray,
        embedder: Embedder,
        version: str = "",
    ) -> None:
        self.procedures = procedures
        self.documents = documents
        self.views = views
        self.embedder = embedder
        self.version = version
        n = len(procedures)
        self.dense = DenseIndex(vectors, [v.procs for v in views], n)
        self.lexical = LexicalIndex(documents, [[i] for i in range(n)], n)
        lexical_views = [v for v in views if v.kind in ("faq", "title", "alias")]
        self.lexical_views = LexicalIndex([v.text for v in lexical_views], [v.procs for v in lexical_views], n)
        self.by_slug = {p.slug: i for i, p in enumerate(procedures)}

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        embedder: Embedder,
        *,
        version: str = "",
        cache: VectorCache | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Retriever:
        """Embed every view (reusing cached vectors) and build the indexes."""
        texts = [v.text for v in corpus.views]
        vectors = (cache or VectorCache(None, embedder)).embed(texts, progress=progress)
        return cls(corpus.procedures, corpus.documents, corpus.views, vectors, embedder, version)

    def save(self, folder: Path) -> None:
        """Persist what is needed to restart without re-embedding."""
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "vectors.npy", self.dense.vectors)
        meta = {
            "format": INDEX_FORMAT,
            "version": self.version,
            "embedder": self.embedder.name,
            "procedures": [p.__dict__ for p in self.procedures],
            "documents": self.documents,
            "views": [[v.procs, v.kind, v.text] for v in self.views],
        }
        tmp = folder / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        tmp.replace(folder / "meta.json")  # written last and atomically: a folder with meta.json is complete

    @classmethod
    def load(cls, folder: Path, embedder: Embedder) -> Retriever | None:
        """A persisted retriever, or None when the folder holds none for this embedder."""
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            vectors = np.load(folder / "vectors.npy")
        except (OSError, ValueError):
            return None
        if meta.get("format") != INDEX_FORMAT or meta.get("embedder") != embedder.name:
            return None
        procedures = [ProcedureEntry(**p) for p in meta["procedures"]]
        views = [View(list(p), k, t) for p, k, t in meta["views"]]
        return cls(procedures, meta["documents"], views, vectors, embedder, meta.get("version", ""))

    def embed_query(self, question: str) -> np.ndarray:
        """The query vector."""
        return self.embedder.embed_queries([question])[0]

    def search(
        self, question: str, k: int = 10, *, mode: str = "hybrid", query_vector: np.ndarray | None = None
    ) -> SearchResult:
        """Rank procedures for a question: RRF of dense views, BM25 documents and BM25 views.

        mode 'lexical' or 'dense' ranks by that side alone (for evaluation); query_vector skips embedding.
        """
        question = clean(question)
        query_tokens = tokens(question)
        n = len(self.procedures)
        t0 = time.perf_counter()
        if mode == "lexical" or not question:
            dense = np.zeros(n, dtype=np.float32)
        else:
            vector = query_vector if query_vector is not None else self.embed_query(question)
            dense = self.dense.scores(vector)
        embed_ms = (time.perf_counter() - t0) * 1000
        zeros = np.zeros(n, dtype=np.float32)
        lexical = zeros if mode == "dense" else self.lexical.scores(query_tokens)
        lexical_views = zeros if mode == "dense" else self.lexical_views.scores(query_tokens)
        fused = np.zeros(n, dtype=np.float64)
        rankings: dict[str, list[int]] = {}
        for name, scores, weight in (("dense", dense, 1.0), ("lexical", lexical, 1.0), ("views", lexical_views, 1.0)):
            if not np.any(scores > 0):
                continue  # a ranker that found nothing must not vote with an arbitrary order
            order = np.argsort(-scores, kind="stable")
            rankings[name] = order[:k].tolist()
            ranks = np.empty(len(order), dtype=np.int64)
            ranks[order] = np.arange(1, len(order) + 1)
            fused += weight / (RRF_K + ranks)
        top = np.argsort(-fused, kind="stable")[:k]
        words = [t for t in query_tokens if "_" not in t]
        known = sum(1 for t in words if t in self.lexical._vocab) / len(words) if words else 0.0
        candidates = [
            Candidate(int(i), self.procedures[int(i)], float(fused[i]), float(dense[i]), float(lexical[i])) for i in top
        ]
        return SearchResult(candidates, query_tokens, known, rankings, embed_ms)


class VectorCache:
    """Embeddings keyed by (embedder, text) on disk, so rebuilding after an edit embeds only new texts."""

    def __init__(self, folder: Path | None, embedder: Embedder) -> None:
        self.embedder = embedder
        self.folder = folder
        self._vectors: dict[str, np.ndarray] = {}
        if folder is not None:
            self._load()

    @staticmethod
    def key(text: str) -> str:
        """A short stable key of a text."""
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def _paths(self) -> tuple[Path, Path]:
        assert self.folder is not None
        return self.folder / f"{self.embedder.name}.keys.json", self.folder / f"{self.embedder.name}.npy"

    def _load(self) -> None:
        keys_path, vec_path = self._paths()
        try:
            keys = json.loads(keys_path.read_text(encoding="utf-8"))
            vectors = np.load(vec_path)
        except (OSError, ValueError):
            return
        if len(keys) == len(vectors):
            self._vectors = dict(zip(keys, vectors, strict=True))

    def _save(self) -> None:
        if self.folder is None or not self._vectors:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keys_path, vec_path = self._paths()
        keys = list(self._vectors)
        np.save(vec_path.with_suffix(".tmp.npy"), np.stack([self._vectors[k] for k in keys]))
        vec_path.with_suffix(".tmp.npy").replace(vec_path)
        keys_path.write_text(json.dumps(keys), encoding="utf-8")

    def embed(self, texts: list[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Vectors for texts as passages, embedding only those not cached."""
        keys = [self.key(t) for t in texts]
        todo = list(dict.fromkeys(k for k in keys if k not in self._vectors))
        text_of = dict(zip(keys, texts, strict=True))
        for start in range(0, len(todo), EMBED_BATCH):
            batch = todo[start : start + EMBED_BATCH]
            for key, vector in zip(batch, self.embedder.embed_passages([text_of[k] for k in batch]), strict=True):
                self._vectors[key] = vector
            if progress:
                progress(min(start + EMBED_BATCH, len(todo)), len(todo))
        if todo:
            self._save()
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)
