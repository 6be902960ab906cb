"""The BM25 index against bm25s (the reference it replaced), and the corpus read as rows against the models."""

from __future__ import annotations

import random
from pathlib import Path

import bm25s
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.models import FaqEntry, Procedure
from knowledge.national import BUNDLED_NATIONAL_FILE
from knowledge.service import ensure_seeded, import_national
from retrieval.corpus import Corpus, build_corpus, corpus_of
from retrieval.indexes import BM25, LexicalIndex, TermCounts
from retrieval.normalize import tokens


@pytest.fixture(scope="module")
def national_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The bundled curated and national knowledge base, as the index builder reads it."""
    from sqlalchemy.orm import sessionmaker

    from core.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'kb.db'}")
    migrate(engine)
    try:
        with sessionmaker(bind=engine).begin() as session:
            ensure_seeded(session)
            import_national(session, BUNDLED_NATIONAL_FILE)
            return build_corpus(session)
    finally:
        engine.dispose()


def _reference(texts: list[str]) -> bm25s.BM25:
    index = bm25s.BM25()
    index.index([tokens(t) or ["_"] for t in texts], show_progress=False)
    return index


@pytest.mark.parametrize("part", ["documents", "views"])
def test_scores_equal_bm25s_on_the_national_knowledge_base(national_corpus: Corpus, part: str) -> None:
    texts = national_corpus.documents if part == "documents" else [v.text for v in national_corpus.views]
    ours, reference = BM25.build(texts, TermCounts()), _reference(texts)
    assert set(ours.vocab) == set(reference.vocab_dict) - {""}  # bm25s keeps an empty token of its own
    rng = random.Random(5)
    questions = [t[:160] for t in rng.sample(texts, 150)] + ["lam ho chieu o dau", "cấp lại căn cước", "_"]
    for question in questions:
        known = [t for t in tokens(question) if t in ours.vocab]
        if known:
            assert np.array_equal(ours.scores(known), np.asarray(reference.get_scores(known))), question


def test_repeated_query_terms_count_again_and_unknown_terms_score_nothing() -> None:
    texts = ["cấp hộ chiếu phổ thông", "đăng ký khai sinh", "hộ chiếu công vụ", ""]
    ours, reference = BM25.build(texts, TermCounts()), _reference(texts)
    twice = [t for t in tokens("hộ chiếu hộ chiếu") if t in ours.vocab]
    assert np.array_equal(ours.scores(twice), np.asarray(reference.get_scores(twice)))
    assert ours.scores(twice)[0] > BM25.build(texts, TermCounts()).scores(twice[:2])[0]
    assert not ours.scores(["khong_co_tu_nay"]).any()
    assert ours.n_docs == 4
    assert ours.scores(["_"])[3] > 0  # an empty text is the placeholder term's document


def test_saved_index_scores_as_built(tmp_path: Path, national_corpus: Corpus) -> None:
    n = len(national_corpus.documents)
    built = LexicalIndex(national_corpus.documents, [[i] for i in range(n)], n)
    built.save(tmp_path / "bm25")
    loaded = LexicalIndex([], [[i] for i in range(n)], n, saved=tmp_path / "bm25")
    query = tokens("thủ tục đăng ký kết hôn có yếu tố nước ngoài")
    assert np.array_equal(built.scores(query), loaded.scores(query))
    assert set(built.vocab) == set(loaded.vocab)
    assert built.known_share(query) == loaded.known_share(query) > 0


def test_a_rebuild_tokenises_only_new_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    import retrieval.indexes as indexes

    counts, seen = TermCounts(), []
    real = indexes.tokens
    monkeypatch.setattr(indexes, "tokens", lambda text: seen.append(text) or real(text))
    BM25.build(["cấp hộ chiếu", "đăng ký khai sinh"], counts)
    BM25.build(["cấp hộ chiếu", "đăng ký khai sinh", "đăng ký kết hôn"], counts)
    assert seen == ["cấp hộ chiếu", "đăng ký khai sinh", "đăng ký kết hôn"]


def test_the_corpus_read_as_rows_equals_the_corpus_of_the_models(session: Session) -> None:
    ensure_seeded(session)
    session.flush()
    procs = session.scalars(select(Procedure).where(Procedure.status != "retired").order_by(Procedure.id)).all()
    faqs = session.scalars(select(FaqEntry).order_by(FaqEntry.id)).all()
    from_models = corpus_of(list(procs), list(faqs), {})
    for faq in from_models.views:
        faq.procs.sort()  # the models' links come in no set order
    from_rows = build_corpus(session)
    assert len(from_rows.procedures) == len(procs) > 40
    assert from_rows.procedures == from_models.procedures
    assert from_rows.documents == from_models.documents
    assert from_rows.views == from_models.views


def test_pairs_a_procedure_never_mentions_are_counted_against_it(national_corpus: Corpus) -> None:
    from retrieval.embedders import HashEmbedder
    from retrieval.retriever import Retriever

    retriever = Retriever.build(national_corpus, HashEmbedder(64))
    enterprise = retriever.by_slug["enterprise-registration"]
    own = tokens("đăng ký thành lập doanh nghiệp công ty trách nhiệm hữu hạn")
    assert retriever.unexplained(own, enterprise) == 0.0
    # dissolving a company: a procedure of its own, which the establishment card never mentions
    other = tokens("thủ tục giải thể doanh nghiệp công ty trách nhiệm hữu hạn một thành viên thực hiện thế nào")
    assert 0.0 < retriever.unexplained(other, enterprise) <= 1.0
    # words that name no procedure ("thế còn … thì sao") count for nothing, either way
    chatty = tokens("thế còn đăng ký thành lập doanh nghiệp thì sao")
    assert retriever.unexplained(chatty, enterprise) == 0.0
    assert "giai_the" in retriever.title_pairs
    assert "thi_sao" not in retriever.title_pairs
    assert retriever.unexplained(tokens("xyzzy plugh"), enterprise) == 0.0  # nothing the knowledge base knows
