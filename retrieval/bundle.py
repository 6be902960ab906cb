"""Vectors of the bundled knowledge bases, shipped with the package so that a first start embeds nothing.

Two knowledge bases ship with the package: the curated procedures, which every start seeds, and the same
plus the 2,642 national procedures of `motcua kb import-national`. The vector file holds every text the
index of either embeds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, migrate
from knowledge.national import BUNDLED_NATIONAL_FILE
from knowledge.service import ensure_seeded, import_national
from retrieval.corpus import build_corpus
from retrieval.embedders import Embedder, embedder_id
from retrieval.retriever import BUNDLED_VECTORS, VectorCache, read_vector_file, write_vector_file


@dataclass
class BundleCheck:
    """How a bundled vector file compares with the texts of the bundled knowledge bases."""

    path: Path
    texts: int
    missing: int
    stale: int

    @property
    def ok(self) -> bool:
        """Every text has its vector and the file holds nothing else."""
        return not self.missing and not self.stale


def bundled_texts(*, national: bool = True) -> list[str]:
    """Every text the indexes of the bundled knowledge bases embed, read from a throw-away SQLite database.

    national=False: the curated knowledge base only, the one every start seeds.
    """
    with tempfile.TemporaryDirectory(prefix="motcua-bundle-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bundle.db'}")
        try:
            migrate(engine)
            with sessionmaker(bind=engine)() as session:
                texts = seeded_texts(session)
                if national:
                    import_national(session, BUNDLED_NATIONAL_FILE)
                    texts += corpus_texts(session)
                return list(dict.fromkeys(texts))
        finally:
            engine.dispose()


def seeded_texts(session: Session) -> list[str]:
    """The texts of an empty database's index once the bundled curated procedures are seeded into it."""
    ensure_seeded(session)
    return corpus_texts(session)


def corpus_texts(session: Session) -> list[str]:
    """The distinct texts the index of this database's knowledge base embeds."""
    session.flush()
    return list(dict.fromkeys(v.text for v in build_corpus(session).views))


def bundle_path(embedder: Embedder, folder: Path = BUNDLED_VECTORS) -> Path:
    """Where the bundled vectors of this model and version live."""
    return folder / f"{embedder_id(embedder)}.npz"


def check_bundle(embedder: Embedder, texts: list[str], folder: Path = BUNDLED_VECTORS) -> BundleCheck:
    """Compare the bundled vector file of this embedder with these texts."""
    path = bundle_path(embedder, folder)
    keys = {VectorCache.key(t) for t in texts}
    stored = set(read_vector_file(path))
    return BundleCheck(path, len(keys), len(keys - stored), len(stored - keys))


def write_bundle(
    embedder: Embedder,
    texts: list[str],
    folder: Path = BUNDLED_VECTORS,
    progress: Callable[[int, int], None] | None = None,
) -> BundleCheck:
    """Embed what the bundled file lacks and rewrite it with exactly these texts."""
    texts = list(dict.fromkeys(texts))
    vectors = VectorCache(None, embedder, bundled=folder).embed(texts, progress=progress)
    by_key = {VectorCache.key(t): v for t, v in zip(texts, vectors, strict=True)}
    write_vector_file(bundle_path(embedder, folder), by_key)
    return check_bundle(embedder, texts, folder)
