"""The two kinds of index: BM25 over folded tokens (lexical) and FAISS inner product (dense)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import orjson

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
        self.ptr = np.concatenate([[0], np.cumsum(self.lens)[:-1]]).astype(np.int64) if len(row_procs) else self.lens
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


class TermCounts:
    """Each text's distinct terms (as ids of one growing vocabulary) and their counts, worked out once per text.

    A rebuild after one publication then tokenises only the texts that changed: the builder keeps this for as long
    as it runs, and every other build of the process reuses it too.
    """

    LIMIT = 400_000  # texts remembered; past it the cache starts afresh (a process indexing unrelated corpora)

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.terms: list[str] = []
        self._counts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def of(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, counts) of a text; a text without a term counts as the one placeholder term '_'."""
        known = self._counts.get(text)
        if known is not None:
            return known
        words = tokens(text) or ["_"]
        with self._lock:
            if len(self._counts) >= self.LIMIT:
                self._counts.clear()
            ids = np.fromiter((self._id(w) for w in words), dtype=np.int64, count=len(words))
            unique, counts = np.unique(ids, return_counts=True)
            known = (unique, counts.astype(np.float32))
            self._counts[text] = known
        return known

    def _id(self, term: str) -> int:
        found = self.vocab.get(term)
        if found is None:
            found = self.vocab[term] = len(self.terms)
            self.terms.append(term)
        return found


TERM_COUNTS = TermCounts()


class BM25:
    """Okapi BM25 with Lucene's idf and term weighting (k1 1.5, b 0.75), scores precomputed per term and document.

    The same scores as bm25s' default method (tests compare them), built with array operations from cached term
    counts: at the national size a rebuild takes tens of milliseconds instead of a second.
    """

    K1, B = 1.5, 0.75

    def __init__(self, vocab: dict[str, int], data: np.ndarray, docs: np.ndarray, ptr: np.ndarray, n_docs: int) -> None:
        self.vocab = vocab  # term -> column
        self.data, self.docs, self.ptr = data, docs, ptr  # column t: documents docs[ptr[t]:ptr[t+1]], scores data[...]
        self.n_docs = n_docs

    @classmethod
    def build(cls, texts: Sequence[str], counts: TermCounts = TERM_COUNTS) -> BM25:
        """Index the texts (one document each)."""
        per_text = [counts.of(t) for t in texts]
        n = len(per_text)
        if not n:
            return cls({}, np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(1, np.int64), 0)
        lengths = np.array([len(ids) for ids, _ in per_text], dtype=np.int64)
        ids = np.concatenate([ids for ids, _ in per_text])
        tf = np.concatenate([c for _, c in per_text])
        doc = np.repeat(np.arange(n, dtype=np.int32), lengths)
        doc_len = np.array([c.sum() for _, c in per_text], dtype=np.float64)
        present = np.zeros(len(counts.terms), dtype=bool)
        present[ids] = True
        used = np.flatnonzero(present)  # the vocabulary's terms found here, renumbered 0.. in their order
        column = (np.cumsum(present) - 1)[ids]
        df = np.bincount(column, minlength=len(used)).astype(np.float64)
        # In float64, rounded once at the end, as bm25s does (its idf table alone is float32).
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32).astype(np.float64)
        norm = cls.K1 * ((1 - cls.B) + cls.B * doc_len / doc_len.mean())
        scores = idf[column] * (tf / (norm[doc] + tf))
        # by term, documents ascending within a term (a stable sort of small integers is a radix sort)
        order = np.argsort(column.astype(np.uint16 if len(used) <= 1 << 16 else np.int64), kind="stable")
        ptr = np.zeros(len(used) + 1, dtype=np.int64)
        np.cumsum(df.astype(np.int64), out=ptr[1:])
        vocab = dict(zip([counts.terms[i] for i in used.tolist()], range(len(used)), strict=True))
        return cls(vocab, scores[order].astype(np.float32), doc[order], ptr, n)

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        """Score of every document: the sum over the query's terms (a repeated term counts again)."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        for term in terms:
            t = self.vocab.get(term)
            if t is not None:
                start, end = self.ptr[t], self.ptr[t + 1]
                out[self.docs[start:end]] += self.data[start:end]  # one entry per document in a column
        return out

    def documents_with(self, term: str) -> np.ndarray:
        """The documents that contain a term, ascending."""
        t = self.vocab.get(term)
        return self.docs[self.ptr[t] : self.ptr[t + 1]] if t is not None else self.docs[:0]

    def idf(self, term: str) -> float:
        """The term's inverse document frequency (0 for a term no document has)."""
        df = len(self.documents_with(term))
        return float(np.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))) if df else 0.0

    def save(self, folder: Path) -> None:
        """Write the index into a new folder (it must not exist)."""
        folder.mkdir(parents=True)
        np.savez(folder / "scores.npz", data=self.data, docs=self.docs, ptr=self.ptr, n=np.array([self.n_docs]))
        (folder / "vocab.json").write_bytes(orjson.dumps(list(self.vocab)))

    @classmethod
    def load(cls, folder: Path) -> BM25:
        """What save wrote."""
        terms = orjson.loads((folder / "vocab.json").read_bytes())
        vocab = dict(zip(terms, range(len(terms)), strict=True))
        with np.load(folder / "scores.npz") as arrays:
            return cls(vocab, arrays["data"], arrays["docs"], arrays["ptr"], int(arrays["n"][0]))


class LexicalIndex:
    """BM25 over folded syllables and bigrams; a row may belong to several procedures."""

    def __init__(
        self, texts: Sequence[str], row_procs: Sequence[Sequence[int]], n_procs: int, *, saved: Path | None = None
    ) -> None:
        # what save() wrote, else built: no tokenising of a text seen before
        self._bm25 = BM25.load(saved) if saved is not None else BM25.build(texts)
        self.vocab = self._bm25.vocab.keys()
        self._rows = RowsToProcedures(row_procs, n_procs)
        self._identity = all(len(p) == 1 and p[0] == i for i, p in enumerate(row_procs)) and len(row_procs) == n_procs
        self._by_procedure: tuple[np.ndarray, np.ndarray] | None = None

    def save(self, folder: Path) -> None:
        """Write the BM25 index into a new folder (it must not exist)."""
        self._bm25.save(folder)

    def known_share(self, query_tokens: list[str]) -> float:
        """Share of the query's word pairs the index knows (of its words, for a one-word query).

        Pairs tell the domain apart far better than single syllables: 'doi', 'tuyen' and 'gio' all occur
        in procedures, 'doi_tuyen' (national team) does not.
        """
        pairs = [t for t in query_tokens if "_" in t]
        units = pairs or query_tokens
        return sum(1 for t in units if t in self.vocab) / len(units) if units else 0.0

    def has(self, term: str, procedure: int) -> bool:
        """Whether one of the procedure's rows contains the term (binary searches, no set of every row built)."""
        rows = self._bm25.documents_with(term)
        if not len(rows):
            return False
        mine = [procedure] if self._identity else self._rows_of(procedure)
        at = np.searchsorted(rows, mine)
        return bool(np.any((at < len(rows)) & (rows[np.minimum(at, len(rows) - 1)] == mine)))

    def _rows_of(self, procedure: int) -> np.ndarray:
        if self._by_procedure is None:  # rows per procedure, made on the first question that needs them
            order = np.argsort(self._rows.flat, kind="stable")
            owners = np.repeat(np.arange(len(self._rows.lens)), self._rows.lens)[order]
            bounds = np.searchsorted(self._rows.flat[order], np.arange(self._rows.n_procs + 1))
            self._by_procedure = (owners, bounds)
        owners, bounds = self._by_procedure
        return owners[bounds[procedure] : bounds[procedure + 1]]

    def idf(self, term: str) -> float:
        """The term's inverse document frequency among the rows."""
        return self._bm25.idf(term)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score per procedure (best row)."""
        known = [t for t in query_tokens if t in self.vocab]
        if not known:
            return np.zeros(self._rows.n_procs, dtype=np.float32)
        row_scores = self._bm25.scores(known)
        if self._identity:
            return row_scores
        hits = np.flatnonzero(row_scores > 0)
        return self._rows.max_pool(hits, row_scores[hits], 0.0)
