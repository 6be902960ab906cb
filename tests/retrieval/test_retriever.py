"""Hybrid retrieval over a small real knowledge base (hash embedder): ranking, persistence, caching."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import session_scope
from knowledge.service import import_file
from retrieval.corpus import build_corpus
from retrieval.embedders import HashEmbedder
from retrieval.retriever import Retriever, VectorCache
from retrieval.service import AskService, open_retriever
from tests.factories import procedure_record

KB = [
    procedure_record(
        "passport",
        code="1.000001",
        vi={
            "title": "Cấp hộ chiếu phổ thông",
            "aliases": ["làm hộ chiếu", "passport"],
            "documents": ["Tờ khai"],
        },
        en={"title": "Ordinary passport issuance", "aliases": ["get a passport"]},
        faq=[{"lang": "vi", "questions": ["Làm hộ chiếu mất bao lâu?"], "answer": "8 ngày."}],
    ),
    procedure_record(
        "birth",
        vi={"title": "Đăng ký khai sinh", "aliases": ["giấy khai sinh", "làm khai sinh cho con"]},
        en={"title": "Birth registration", "aliases": ["register a newborn"]},
    ),
    procedure_record(
        "marriage",
        vi={"title": "Đăng ký kết hôn", "aliases": ["giấy đăng ký kết hôn", "cưới"]},
        en={"title": "Marriage registration"},
    ),
    procedure_record("residence", vi={"title": "Đăng ký tạm trú", "aliases": ["thuê trọ tạm trú"]}),
    procedure_record("land", vi={"title": "Cấp giấy chứng nhận quyền sử dụng đất", "aliases": ["sổ đỏ"]}),
    procedure_record(
        "business", vi={"title": "Đăng ký hộ kinh doanh", "aliases": ["mở quán", "kinh doanh cá thể"]}
    ),
]


class CountingEmbedder(HashEmbedder):
    """The real hash embedder, counting how many passages it embeds."""

    def __init__(self) -> None:
        super().__init__(256)
        self.passages = 0

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self.passages += len(texts)
        return super().embed_queries(texts)


@pytest.fixture
def kb(session: Session, tmp_path: Path) -> Session:
    path = tmp_path / "kb.yaml"
    path.write_text(yaml.safe_dump(KB, allow_unicode=True), encoding="utf-8")
    import_file(session, path)
    return session


@pytest.mark.parametrize(
    ("question", "slug"),
    [
        ("làm hộ chiếu ở đâu", "passport"),
        ("lam ho chieu o dau", "passport"),
        ("How do I get a passport?", "passport"),
        ("khai sinh cho con", "birth"),
        ("dang ky ket hon can gi", "marriage"),
        ("mở quán cà phê cần đăng ký gì", "business"),
        ("làm sổ đỏ", "land"),
    ],
)
def test_question_ranks_its_procedure_first(kb: Session, question: str, slug: str) -> None:
    retriever = Retriever.build(build_corpus(kb), HashEmbedder(256))
    result = retriever.search(question)
    assert result.candidates[0].entry.slug == slug
    assert len(result.candidates) == len(KB)


def test_faq_questions_are_searchable_views(kb: Session) -> None:
    corpus = build_corpus(kb)
    passport = next(i for i, p in enumerate(corpus.procedures) if p.slug == "passport")
    faq_views = [v for v in corpus.views if v.kind == "faq" and v.procs == [passport]]
    assert {v.text for v in faq_views} == {"Làm hộ chiếu mất bao lâu?", "lam ho chieu mat bao lau?"}


def test_each_ranker_alone_and_fused(kb: Session) -> None:
    retriever = Retriever.build(build_corpus(kb), HashEmbedder(256))
    for mode in ("lexical", "dense", "hybrid"):
        assert retriever.search("đăng ký tạm trú", mode=mode).candidates[0].entry.slug == "residence"
    assert retriever.search("đăng ký tạm trú", mode="lexical").candidates[0].dense == 0.0


def test_empty_and_unknown_words_do_not_crash(kb: Session) -> None:
    retriever = Retriever.build(build_corpus(kb), HashEmbedder(256))
    assert retriever.search("").known_token_share == 0.0
    result = retriever.search("🙂🙂🙂")
    assert result.query_tokens == []
    assert retriever.search("zzqx wvut").known_token_share == 0.0


def test_persisted_retriever_loads_without_embedding(kb: Session, tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    built = Retriever.build(build_corpus(kb), embedder, version="v1")
    built.save(tmp_path / "idx")
    embedder.passages = 0
    loaded = Retriever.load(tmp_path / "idx", embedder)
    assert loaded is not None
    assert embedder.passages == 0
    assert loaded.version == "v1"
    question = "thue tro tam tru"
    assert [c.entry.slug for c in loaded.search(question).candidates] == [
        c.entry.slug for c in built.search(question).candidates
    ]
    assert Retriever.load(tmp_path / "idx", HashEmbedder(128)) is None  # another embedder's index is not used
    assert Retriever.load(tmp_path / "missing", embedder) is None


def test_vector_cache_embeds_only_new_texts(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    first = VectorCache(tmp_path, embedder).embed(["một", "hai"])
    assert embedder.passages == 2
    again = VectorCache(tmp_path, embedder).embed(["hai", "ba", "một"])
    assert embedder.passages == 3  # only "ba" was new
    assert np.allclose(again[2], first[0])


def test_open_retriever_rebuilds_when_the_knowledge_base_changes(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "kb.yaml"
    path.write_text(yaml.safe_dump(KB[:3], allow_unicode=True), encoding="utf-8")
    with session_scope() as session:
        import_file(session, path)
    with session_scope() as session:
        first = open_retriever(session)
        assert open_retriever(session).version == first.version
    path.write_text(yaml.safe_dump(KB[3:4], allow_unicode=True), encoding="utf-8")
    with session_scope() as session:
        import_file(session, path)
    with session_scope() as session:
        second = open_retriever(session)
    assert second.version != first.version
    assert "residence" in second.by_slug
    assert AskService(second).ask("đăng ký tạm trú").candidates[0]["slug"] == "residence"


def test_ask_result_follows_the_json_contract(kb: Session) -> None:
    service = AskService(Retriever.build(build_corpus(kb), HashEmbedder(256)))
    payload = service.ask("làm hộ chiếu ở đâu").to_json()
    assert set(payload) == {"status", "procedure", "candidates", "lang", "latency_ms"}
    assert payload["status"] in {"answered", "clarify", "escalated", "declined"}
    assert payload["lang"] == "vi"
    assert len(payload["candidates"]) >= 5
    first = payload["candidates"][0]
    assert first == {
        "slug": "passport",
        "code": "1.000001",
        "title": "Cấp hộ chiếu phổ thông",
        "score": first["score"],
    }
    scores = [c["score"] for c in payload["candidates"]]
    assert scores == sorted(scores, reverse=True)
    assert (
        service.ask("How do I get a passport?").to_json()["candidates"][0]["title"]
        == "Ordinary passport issuance"
    )


def test_a_build_says_what_it_builds_and_how_far_it_got(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kb.yaml"
    path.write_text(yaml.safe_dump(KB, allow_unicode=True), encoding="utf-8")
    with session_scope() as session:
        import_file(session, path)
    ticks = iter(float(t) for t in range(0, 10_000, 3))  # three seconds pass between two looks at the clock
    monkeypatch.setattr("core.progress.time.monotonic", lambda: next(ticks))
    monkeypatch.setattr("retrieval.retriever.EMBED_BATCH", 8)
    embedder = CountingEmbedder()
    with caplog.at_level(logging.INFO, logger="retrieval.service"), session_scope() as session:
        retriever = open_retriever(session, embedder=embedder)
    messages = [r.getMessage() for r in caplog.records if r.name == "retrieval.service"]
    assert embedder.passages > 50
    assert messages[0] == (
        f"building the retrieval index: {len(retriever.procedures)} procedures, {len(retriever.views)} texts, "
        f"{embedder.passages} of them to embed with hash256"
    )
    progress = messages[1:-1]
    assert len(progress) >= 5  # a line every few (simulated) seconds, then the last one
    for line in progress[:-1]:
        assert re.fullmatch(r"embedding: \d+/\d+ \(\d+ %\), [\d.]+/s, ETA \d+ s", line), line
    done = embedder.passages
    assert re.fullmatch(rf"embedding: {done}/{done} \(100 %\), [\d.]+/s, done in \d+ s", progress[-1])
    assert messages[-1].startswith("built index ")
