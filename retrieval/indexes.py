"""The two kinds of index: BM25 over folded tokens (lexical) and FAISS inner product (dense)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from retrieval.normalize import tokens

logger = logging.getLogger(__name__)


class VectorIndex(Protocol):
    """Nearest neighbours by inner product over L2-normalised vectors."""

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row ids) of the k best rows, best first."""
        ...


class FaissIndex:
    """Exact inner-product search: at a few tens of thousands of rows it is faster than any approximation."""

    def __init__(self, vectors: np.ndarray) -> None:
        import faiss

        self.size = int(vectors.shape[0])
        self._index = faiss.IndexFlatIP(int(vectors.shape[1]))
        if self.size:
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row ids) of the k best rows, best first."""
        k = min(k, self.size)
        if k == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores, ids = self._index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        return scores[0], ids[0]


class RowsToProcedures:
    """Maps index rows (views) to procedures, several rows per procedure, a row possibly to several."""

    def __init__(self, row_procs: Sequence[Sequence[int]], n_procs: int) -> None:
        self.n_procs = n_procs
        # CSR layout: the procedures of row r are flat[ptr[r] : ptr[r] + lens[r]].
        self.lens = np.array([len(p) for p in row_procs], dtype=np.int64)
        self.ptr = (
            np.concatenate([[0], np.cumsum(self.lens)[:-1]]).astype(np.int64) if len(row_procs) else self.lens
        )
        self.flat = np.array([proc for procs in row_procs for proc in procs], dtype=np.int64)

    def max_pool(self, row_ids: np.ndarray, row_scores: np.ndarray, floor: float) -> np.ndarray:
        """Per-procedure best score among the given rows; procedures with no row get floor."""
        out = np.full(self.n_procs, floor, dtype=np.float32)
        keep = row_ids >= 0  # FAISS pads missing neighbours with -1
        row_ids, row_scores = row_ids[keep], row_scores[keep]
        lens = self.lens[row_ids]
        if not lens.sum():
            return out
        offsets = np.repeat(self.ptr[row_ids] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        np.maximum.at(out, self.flat[offsets], np.repeat(row_scores, lens).astype(np.float32))
        return out


class DenseIndex:
    """Procedure scores from the best-matching view of each procedure."""

    # Views looked at per query; past a few hundred the remaining procedures only get the floor score.
    TOP_VIEWS = 400

    def __init__(self, vectors: np.ndarray, row_procs: Sequence[Sequence[int]], n_procs: int) -> None:
        self.vectors = vectors
        self._index = FaissIndex(vectors)
        self._rows = RowsToProcedures(row_procs, n_procs)

    def scores(self, query_vector: np.ndarray) -> np.ndarray:
        """Cosine of the best view per procedure."""
        scores, ids = self._index.search(query_vector, self.TOP_VIEWS)
        floor = float(scores[-1]) if len(scores) else 0.0
        return self._rows.max_pool(ids, scores, floor)


class LexicalIndex:
    """BM25 (bm25s) over folded syllables and bigrams; a row may belong to several procedures."""

    def __init__(
        self, texts: Sequence[str], row_procs: Sequence[Sequence[int]], n_procs: int, *, saved: Path | None = None
    ) -> None:
        import bm25s

        if saved is not None:  # what save() wrote: no tokenising, no indexing
            self._bm25 = bm25s.BM25.load(str(saved), show_progress=False)
        else:
            self._bm25 = bm25s.BM25()
            corpus = [tokens(t) or ["_"] for t in texts]
            self._bm25.index(corpus, show_progress=False)
        self.vocab = set(self._bm25.vocab_dict)
        self._rows = RowsToProcedures(row_procs, n_procs)
        self._identity = (
            all(len(p) == 1 and p[0] == i for i, p in enumerate(row_procs)) and len(texts) == n_procs
        )

    def save(self, folder: Path) -> None:
        """Write the BM25 index into a new folder (it must not exist)."""
        self._bm25.save(str(folder), show_progress=False)

    def known_share(self, query_tokens: list[str]) -> float:
        """Share of the query's word pairs the index knows (of its words, for a one-word query).

        Pairs tell the domain apart far better than single syllables: 'doi', 'tuyen' and 'gio' all occur
        in procedures, 'doi_tuyen' (national team) does not.
        """
        pairs = [t for t in query_tokens if "_" in t]
        units = pairs or query_tokens
        return sum(1 for t in units if t in self.vocab) / len(units) if units else 0.0

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score per procedure (best row)."""
        known = [t for t in query_tokens if t in self.vocab]
        if not known:
            return np.zeros(self._rows.n_procs, dtype=np.float32)
        row_scores = np.asarray(self._bm25.get_scores(known), dtype=np.float32)
        if self._identity:
            return row_scores
        hits = np.flatnonzero(row_scores > 0)
        return self._rows.max_pool(hits, row_scores[hits], 0.0)
