"""The whole national database and portal FAQ, imported into SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge.models import FaqEntry, Procedure, ProcedureText
from knowledge.national import BUNDLED_NATIONAL_FILE as NATIONAL
from knowledge.service import ensure_seeded, import_national, import_portal_faq
from tests.conftest import PORTAL_FAQ


@pytest.mark.slow
def test_all_national_procedures_and_faq_import(session: Session) -> None:
    ensure_seeded(session)
    seen: list[int] = []
    report = import_national(session, NATIONAL, progress=seen.append)
    assert seen[-1] == 2642
    assert report.created + report.updated == 2642
    assert session.scalar(select(func.count(Procedure.id))) == 2642 + 43 - report.updated
    texts = session.scalar(select(func.count(ProcedureText.id)).where(ProcedureText.lang == "vi"))
    assert texts == session.scalar(select(func.count(Procedure.id)))
    documents = session.scalars(select(ProcedureText.documents).where(ProcedureText.lang == "vi")).all()
    assert sum(1 for docs in documents if docs) / texts > 0.95
    faq = import_portal_faq(session, PORTAL_FAQ)
    assert faq.created > 400
    assert session.scalar(select(func.count(FaqEntry.id)).where(FaqEntry.source == "portal")) == faq.created
