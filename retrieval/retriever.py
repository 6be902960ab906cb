"""Hybrid retrieval: lexical and dense rankings fused into one list of candidate procedures."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from retrieval import acronyms
from retrieval.corpus import OFF_TOPIC, Corpus, ProcedureEntry, View
from retrieval.embedders import Embedder, embedder_id
from retrieval.indexes import DenseIndex, LexicalIndex
from retrieval.normalize import clean, tokens

logger = logging.getLogger(__name__)

# Fusion adds each ranker's scores as z-scores. Scores below the FUSION_TOP-th best are raised to it
# first, so that the long tail of plainly unrelated procedures does not set the scale. Measured on
# the portal questions (both halves of the dev FAQ), this beat reciprocal-rank fusion by 4-6 points of
# Recall@1; weights likewise: the dense side carries most, BM25 over whole documents corrects names
# and numbers, BM25 over single questions and titles adds exact phrasings.
FUSION_TOP = 100
WEIGHTS = {"dense": 1.0, "lexical": 0.5, "views": 0.25}
EMBED_BATCH = 64
INDEX_FORMAT = 8  # 5: BM25, acronyms; 6: texts in a file of their own; 7: our own BM25 arrays; 8: title pairs
TEXTS_FILE = "texts.json"
LEXICAL_DOCUMENTS, LEXICAL_VIEWS = "bm25-documents", "bm25-views"
# Vectors of the bundled knowledge base, one file per model and version (scripts/bundle_vectors.py).
BUNDLED_VECTORS = Path(__file__).resolve().parent / "data" / "vectors"


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
    known_token_share: float  # share of the query's word pairs (or words) found anywhere in the knowledge base
    off_topic: float = 0.0  # cosine of the closest out-of-scope example
    embed_ms: float = 0.0
    unexplained: float = 0.0  # of the first candidate (Retriever.unexplained)
    # The same ranking among the curated procedures alone, in a knowledge base that also holds imported ones.
    curated_only: SearchResult | None = None


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
        *,
        saved: Path | None = None,
        acronym_table: dict[str, str] | None = None,
        title_pairs: list[str] | None = None,
    ) -> None:
        self.procedures = procedures
        self.documents = documents
        self.views = views
        self._texts_in: Path | None = None  # where a loaded retriever's texts wait (see load)
        self.embedder = embedder
        self.version = version
        n = len(procedures)
        self.dense = DenseIndex(vectors, [v.procs for v in views], n)
        documents_saved = saved / LEXICAL_DOCUMENTS if saved is not None else None
        views_saved = saved / LEXICAL_VIEWS if saved is not None else None
        self.lexical = LexicalIndex(documents, [[i] for i in range(n)], n, saved=documents_saved)
        lexical_views = [v for v in views if v.kind in ("faq", "title", "alias")]
        off_rows = [i for i, v in enumerate(views) if v.kind == OFF_TOPIC]
        self.off_topic_vectors = vectors[off_rows] if off_rows else np.zeros((0, vectors.shape[1]), np.float32)
        self.lexical_views = LexicalIndex(
            [v.text for v in lexical_views], [v.procs for v in lexical_views], n, saved=views_saved
        )
        self.by_slug = {p.slug: i for i, p in enumerate(procedures)}
        self._curated = np.array([p.curated for p in procedures], dtype=bool)
        # Word pairs that name procedures (of every title): what a question can name another procedure by.
        self.title_pairs = set(
            title_pairs
            if title_pairs is not None
            else (t for p in procedures for title in p.titles.values() for t in tokens(title) if "_" in t)
        )
        self.acronyms = (
            acronym_table
            if acronym_table is not None
            else acronyms.mine(v.text for v in views if v.kind in ("title", "alias"))
        )

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
        # Files of our own name, then renamed: two workers of one data folder may save the same version at once,
        # and another may be loading it meanwhile.
        own = f".{os.getpid()}.{threading.get_ident()}.tmp"
        vectors = folder / f"vectors{own}.npy"
        np.save(vectors, self.dense.vectors)
        vectors.replace(folder / "vectors.npy")
        for name, index in ((LEXICAL_DOCUMENTS, self.lexical), (LEXICAL_VIEWS, self.lexical_views)):
            tmp_dir = folder / f"{name}{own}"
            index.save(tmp_dir)
            try:
                tmp_dir.replace(folder / name)
            except OSError:  # another worker saved the same version first: theirs is as good
                shutil.rmtree(tmp_dir, ignore_errors=True)
        self._read_texts()
        texts = {"documents": self.documents, "views": [v.text for v in self.views]}
        tmp = folder / f"texts{own}"
        tmp.write_bytes(orjson.dumps(texts))
        tmp.replace(folder / TEXTS_FILE)
        meta = {
            "format": INDEX_FORMAT,
            "version": self.version,
            "embedder": embedder_id(self.embedder),
            "procedures": [p.__dict__ for p in self.procedures],
            "views": [[v.procs, v.kind] for v in self.views],
            "acronyms": self.acronyms,
            "title_pairs": sorted(self.title_pairs),
        }
        tmp = folder / f"meta{own}"
        tmp.write_bytes(orjson.dumps(meta))
        tmp.replace(folder / "meta.json")  # written last and atomically: a folder with meta.json is complete

    @classmethod
    def load(cls, folder: Path, embedder: Embedder) -> Retriever | None:
        """A persisted retriever, or None when the folder holds none for this embedder."""
        try:
            meta = orjson.loads((folder / "meta.json").read_bytes())
            vectors = np.load(folder / "vectors.npy")
        except (OSError, ValueError):
            return None
        if meta.get("format") != INDEX_FORMAT or meta.get("embedder") != embedder_id(embedder):
            return None
        procedures = [ProcedureEntry(**p) for p in meta["procedures"]]
        # Searching needs no text: the documents and view texts (most of the saved bytes) stay on disk until a save
        # wants them, so that swapping in a new index holds the interpreter lock as briefly as possible.
        views = [View(list(p), k, "") for p, k in meta["views"]]
        try:
            loaded = cls(
                procedures,
                [],
                views,
                vectors,
                embedder,
                meta.get("version", ""),
                saved=folder,
                acronym_table=meta["acronyms"],
                title_pairs=meta["title_pairs"],
            )
        except (OSError, ValueError, KeyError):  # a folder of an older layout, or half pruned: build it again
            return None
        loaded._texts_in = folder / TEXTS_FILE
        return loaded

    def _read_texts(self) -> None:
        """Fill in the documents and view texts a loaded retriever left on disk."""
        if self._texts_in is None:
            return
        texts = orjson.loads(self._texts_in.read_bytes())
        self.documents = texts["documents"]
        for view, text in zip(self.views, texts["views"], strict=True):
            view.text = text
        self._texts_in = None

    def unexplained(self, query_tokens: list[str], procedure: int) -> float:
        """Share of the query's word pairs that name procedures (weighted by rarity) that neither the procedure's
        document nor its titles, aliases or FAQ questions contain.

        "giải thể công ty" asks about something the enterprise-registration card never mentions, though every other
        word of the question points to it: a pair the card lacks and other procedures have is a sign the question
        is about one of those.
        """
        pairs = [t for t in dict.fromkeys(query_tokens) if "_" in t and t in self.title_pairs]
        weights = {t: self.lexical.idf(t) for t in pairs}
        known = {t: w for t, w in weights.items() if w > 0}
        total = sum(known.values())
        if not total:
            return 0.0
        missed = sum(
            w
            for t, w in known.items()
            if not self.lexical.has(t, procedure) and not self.lexical_views.has(t, procedure)
        )
        return missed / total

    def title_of(self, slug: str, lang: str) -> str | None:
        """A procedure's title in a language (None for a procedure this index does not hold)."""
        found = self.by_slug.get(slug)
        return self.procedures[found].title(lang) if found is not None else None

    def embed_query(self, question: str) -> np.ndarray:
        """The query vector."""
        return self.embedder.embed_queries([question])[0]

    def search(
        self, question: str, k: int = 10, *, mode: str = "hybrid", query_vector: np.ndarray | None = None
    ) -> SearchResult:
        """Rank procedures for a question: fused dense views, BM25 documents and BM25 views.

        mode 'lexical' or 'dense' ranks by that side alone (for evaluation); query_vector skips embedding.
        """
        question = clean(question)
        expansions = acronyms.expand(question, self.acronyms, self.lexical.vocab)
        if expansions:
            question = f"{question} ({'; '.join(expansions)})"
        query_tokens = tokens(question)
        n = len(self.procedures)
        t0 = time.perf_counter()
        off_topic = 0.0
        if mode == "lexical" or not question:
            dense = np.zeros(n, dtype=np.float32)
        else:
            vector = query_vector if query_vector is not None else self.embed_query(question)
            dense = self.dense.scores(vector)
            if len(self.off_topic_vectors):
                off_topic = float(np.max(self.off_topic_vectors @ vector))
        embed_ms = (time.perf_counter() - t0) * 1000
        zeros = np.zeros(n, dtype=np.float32)
        lexical = zeros if mode == "dense" else self.lexical.scores(query_tokens)
        lexical_views = zeros if mode == "dense" else self.lexical_views.scores(query_tokens)
        fused = np.zeros(n, dtype=np.float64)
        for name, scores in (("dense", dense), ("lexical", lexical), ("views", lexical_views)):
            if np.any(scores > 0):  # a ranker that found nothing must not vote with an arbitrary order
                fused += WEIGHTS[name] * _z_scores(scores)
        known = self.lexical.known_share(query_tokens)
        result = self._result(fused, dense, lexical, k, query_tokens, known, off_topic, embed_ms, mode)
        if mode == "hybrid" and self._curated.any() and not self._curated.all():
            among = np.where(self._curated, fused, -np.inf)
            result.curated_only = self._result(among, dense, lexical, k, query_tokens, known, off_topic, embed_ms, mode)
        return result

    def _result(  # noqa: PLR0913 - the parts of one search
        self,
        fused: np.ndarray,
        dense: np.ndarray,
        lexical: np.ndarray,
        k: int,
        query_tokens: list[str],
        known: float,
        off_topic: float,
        embed_ms: float,
        mode: str,
    ) -> SearchResult:
        top = [int(i) for i in np.argsort(-fused, kind="stable")[:k] if np.isfinite(fused[i])]
        candidates = [
            Candidate(i, self.procedures[i], float(fused[i]), float(dense[i]), float(lexical[i])) for i in top
        ]
        unexplained = self.unexplained(query_tokens, candidates[0].index) if candidates and mode == "hybrid" else 0.0
        return SearchResult(candidates, query_tokens, known, off_topic, embed_ms, unexplained)


def _z_scores(scores: np.ndarray) -> np.ndarray:
    """Standardised scores after raising the tail to the FUSION_TOP-th best."""
    scores = scores.astype(np.float64)
    if len(scores) > FUSION_TOP:
        scores = np.maximum(scores, np.partition(scores, -FUSION_TOP)[-FUSION_TOP])
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


class VectorCache:
    """Embeddings keyed by model, model version and text, so a rebuild after an edit embeds only new texts.

    Two layers: vectors shipped with the package for the bundled knowledge base (read-only, made by
    scripts/bundle_vectors.py), and the data folder's own for everything embedded here since. A text
    that changed has another key, and another model version another key space: nothing stale is used.
    """

    def __init__(self, folder: Path | None, embedder: Embedder, *, bundled: Path | None = BUNDLED_VECTORS) -> None:
        self.embedder = embedder
        self.folder = folder
        self._vectors: dict[str, np.ndarray] = {}
        self._bundled = read_vector_file(bundled / f"{embedder_id(embedder)}.npz") if bundled else {}
        if folder is not None:
            self._load()

    @staticmethod
    def key(text: str) -> str:
        """A short stable key of a text."""
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def _paths(self) -> tuple[Path, Path]:
        assert self.folder is not None
        stem = embedder_id(self.embedder)
        return self.folder / f"{stem}.keys.json", self.folder / f"{stem}.npy"

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
        # Both files are replaced, never rewritten in place: a reader sees the old pair or the new one (a
        # half-replaced pair differs in length and is ignored), and a file linked elsewhere is left alone.
        own = f".{os.getpid()}.{threading.get_ident()}.tmp"  # two workers of one data folder may save at once
        vec_tmp, keys_tmp = vec_path.with_suffix(f"{own}.npy"), keys_path.with_suffix(own)
        np.save(vec_tmp, np.stack([self._vectors[k] for k in keys]))
        vec_tmp.replace(vec_path)
        keys_tmp.write_text(json.dumps(keys), encoding="utf-8")
        keys_tmp.replace(keys_path)

    def _cached(self, key: str) -> np.ndarray | None:
        found = self._vectors.get(key)
        return found if found is not None else self._bundled.get(key)

    def missing(self, texts: list[str]) -> int:
        """How many distinct texts of these have no vector yet (what a build would embed)."""
        return sum(1 for k in dict.fromkeys(map(self.key, texts)) if self._cached(k) is None)

    def embed(self, texts: list[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Vectors for texts as passages, embedding only those not cached."""
        keys = [self.key(t) for t in texts]
        todo = [k for k in dict.fromkeys(keys) if self._cached(k) is None]
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
        return np.stack([self._cached(k) for k in keys]).astype(np.float32)


def read_vector_file(path: Path) -> dict[str, np.ndarray]:
    """The vectors of a bundled vector file by text key; none when there is no file for this model."""
    try:
        with np.load(path) as data:
            keys, vectors = data["keys"], data["vectors"]
    except (OSError, ValueError, KeyError):
        return {}
    return dict(zip(keys.tolist(), vectors, strict=True))


def write_vector_file(path: Path, vectors: dict[str, np.ndarray]) -> None:
    """Write vectors by text key, sorted by key so that the same vectors give the same file."""
    keys = sorted(vectors)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, keys=np.array(keys), vectors=np.stack([vectors[k] for k in keys]).astype(np.float32))
    tmp.replace(path)
