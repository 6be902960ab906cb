"""benchmarks/peers.py on a tiny knowledge base with the hash embedder, so that the comparison cannot silently rot."""

from __future__ import annotations

import pytest

from benchmarks import peers  # before haystack: it turns haystack's telemetry off
from retrieval import evaluate
from retrieval.corpus import OFF_TOPIC, Corpus, ProcedureEntry, View
from retrieval.decision import ANSWERED, CLARIFY
from retrieval.embedders import HashEmbedder
from retrieval.retriever import VectorCache

pytest.importorskip("haystack", reason="haystack-ai is the optional extra 'bench': pip install -e '.[bench]'")

TITLES = {
    "dang-ky-khai-sinh": "Đăng ký khai sinh",
    "cap-ho-chieu": "Cấp hộ chiếu phổ thông",
    "dang-ky-ket-hon": "Đăng ký kết hôn",
    "cap-giay-phep-lai-xe": "Cấp đổi giấy phép lái xe",
}
FAQ = ("Làm hộ chiếu lần đầu cần mang giấy tờ gì?", "cap-ho-chieu")


def tiny_corpus() -> Corpus:
    """Four procedures with a title each, one FAQ question and one out-of-scope example."""
    corpus = Corpus()
    for i, (slug, title) in enumerate(TITLES.items()):
        corpus.procedures.append(ProcedureEntry(slug, f"1.00{i}", "thử", {"vi": title}))
        corpus.documents.append(f"{title} {title} hồ sơ nộp tại ủy ban nhân dân")
        corpus.views.append(View([i], "title", title))
    corpus.views.append(View([list(TITLES).index(FAQ[1])], "faq", FAQ[0]))
    corpus.views.append(View([], OFF_TOPIC, "thời tiết hôm nay thế nào"))
    return corpus


def questions() -> list[evaluate.Question]:
    """Each exact title, and the FAQ question, labelled with its procedure."""
    asked = [evaluate.Question(title, expect=slug) for slug, title in TITLES.items()]
    return [*asked, evaluate.Question(FAQ[0], expect=FAQ[1])]


def test_haystack_ranks_the_procedure_of_an_exact_title_first() -> None:
    embedder = HashEmbedder()
    search = peers.haystack_search(tiny_corpus(), embedder, VectorCache(None, embedder))
    for slug, title in TITLES.items():
        candidates, status = search(title)
        assert status is None  # the peer has no decision step
        assert candidates[0]["slug"] == slug
        slugs = [c["slug"] for c in candidates]
        assert len(slugs) == len(set(slugs)) == len(TITLES)  # texts merged into procedures, nothing lost
        assert candidates[0]["score"] > candidates[1]["score"]  # RRF: found first by both retrievers


@pytest.mark.parametrize("name", list(peers.SYSTEMS))
def test_every_system_finds_every_procedure_and_is_scored(name: str) -> None:
    embedder = HashEmbedder()
    search = peers.open_system(name, tiny_corpus(), embedder, VectorCache(None, embedder))
    asked = questions()
    records = peers.ask_all(search, asked)
    assert [r["rank"] for r in records] == [1] * len(asked)
    assert all(r["ms"] > 0 and r["margin"] > 0 for r in records)
    assert (records[0]["status"] is not None) == (name == "motcua")  # only motcua decides for itself
    scored = peers.summary(asked, records, peers.margin_rule(asked, records))
    assert scored["recall@1"] == scored["recall@5"] == 1.0
    assert scored["precision"] in (None, 1.0)  # whatever it answers is right


def test_the_margin_rule_answers_clear_winners_with_a_threshold_fitted_on_the_other_half() -> None:
    asked = [evaluate.Question(f"q{i}", expect="x") for i in range(40)]
    # A clear lead when the first candidate is right, a narrow one when it is wrong; both kinds in either half.
    records = [
        {"rank": 1, "margin": 2 + i / 100, "ms": 1.0} if i % 4 > 1 else {"rank": 2, "margin": 0.1, "ms": 1.0}
        for i in range(40)
    ]
    statuses = peers.margin_rule(asked, records)
    assert statuses == [ANSWERED if r["rank"] == 1 else CLARIFY for r in records]
    scored = peers.summary(asked, records, statuses)
    assert scored["precision"] == 1.0
    assert scored["answered_all"] == 0.5
