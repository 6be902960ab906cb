"""Knowledge-base use cases on a real database: bundled seed, national import, portal FAQ, cards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import Invalid
from knowledge.io import read_text
from knowledge.models import FaqEntry, Procedure
from knowledge.national import BUNDLED_NATIONAL_FILE
from knowledge.service import (
    CURATED_DIR,
    counts,
    ensure_seeded,
    import_file,
    import_national,
    import_portal_faq,
    kb_version,
    national_slug,
    procedure_card,
)
from tests.conftest import REQUIRED_PROCEDURES
from tests.factories import procedure_record

REQUIRED = yaml.safe_load(REQUIRED_PROCEDURES.read_text(encoding="utf-8"))


def national_subset(tmp_path: Path, codes: set[str], extra: int = 3) -> Path:
    """A national file of the real records with these codes, plus a few others."""
    lines, others = [], 0
    for line in read_text(BUNDLED_NATIONAL_FILE).splitlines():
        code = json.loads(line)["ma_thu_tuc"].strip()
        if code in codes:
            lines.append(line)
        elif others < extra:
            lines.append(line)
            others += 1
    path = tmp_path / "national.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bundled_seed_covers_every_required_slug_in_both_languages(session: Session) -> None:
    report = ensure_seeded(session)
    assert report is not None
    assert report.created == len(REQUIRED) == 43
    for item in REQUIRED:
        proc = session.scalar(select(Procedure).where(Procedure.slug == item["slug"]))
        assert proc is not None, item["slug"]
        assert proc.category == item["category"]
        langs = {t.lang for t in proc.texts}
        assert {"vi", "en", "ko", "ru", "pl"} <= langs
        vi = proc.text("vi")
        assert vi.documents
        assert vi.fees
        assert vi.processing_time
        assert vi.where_to_file
        assert vi.legal_basis
        questions = [q for f in proc.faqs for q in f.questions]
        assert len(questions) >= 3
    assert ensure_seeded(session) is None  # up to date: nothing to do


def test_changed_seed_is_reapplied_except_to_admin_edits(session: Session, tmp_path: Path) -> None:
    folder = tmp_path / "seed"
    shutil.copytree(CURATED_DIR, folder)
    ensure_seeded(session, folder)
    edited = procedure_record("passport-issuance", vi={"title": "Hộ chiếu (bản của admin)"})
    edits = tmp_path / "edit.yaml"
    edits.write_text(yaml.safe_dump([edited], allow_unicode=True), encoding="utf-8")
    import_file(session, edits)
    identity = folder / "identity.yaml"
    text = identity.read_text(encoding="utf-8")
    identity.write_text(
        text.replace('title: "Cấp lại thẻ căn cước', 'title: "Cấp lại thẻ căn cước (mới)', 1), "utf-8"
    )
    report = ensure_seeded(session, folder)
    assert report is not None
    assert report.skipped == 1
    reissue = session.scalar(select(Procedure).where(Procedure.slug == "id-card-reissue"))
    assert "(mới)" in reissue.text("vi").title
    passport = session.scalar(select(Procedure).where(Procedure.slug == "passport-issuance"))
    assert passport.origin == "admin"
    assert passport.text("vi").title == "Hộ chiếu (bản của admin)"


def test_national_import_merges_with_curated_by_code(session: Session, tmp_path: Path) -> None:
    ensure_seeded(session)
    path = national_subset(tmp_path, {"1.001193", "1.014064"})
    report = import_national(session, path)
    assert (report.created, report.updated) == (3, 2)
    birth = session.scalar(select(Procedure).where(Procedure.code == "1.001193"))
    assert birth.slug == "birth-registration"  # one procedure, the curated slug
    assert birth.origin == "curated"
    assert birth.text("vi").title == "Đăng ký khai sinh"  # curated content wins
    assert birth.ministry  # filled from the national record where curated had nothing
    others = session.scalars(select(Procedure).where(Procedure.origin == "national")).all()
    assert len(others) == 3
    for proc in others:
        assert proc.slug == national_slug(proc.code)
        assert proc.text("vi").title
        assert proc.online_link.startswith("https://")
    assert import_national(session, path).created == 0  # idempotent


def test_curated_seed_adopts_an_already_imported_national_record(session: Session, tmp_path: Path) -> None:
    import_national(session, national_subset(tmp_path, {"1.001193"}, extra=0))
    assert session.scalar(select(Procedure.slug)) == "tthc-1-001193"
    ensure_seeded(session)
    assert session.scalar(select(func.count(Procedure.id)).where(Procedure.code == "1.001193")) == 1
    assert session.scalar(select(Procedure.slug).where(Procedure.code == "1.001193")) == "birth-registration"


def test_national_import_rejects_a_broken_file_and_keeps_nothing(session: Session, tmp_path: Path) -> None:
    path = national_subset(tmp_path, set(), extra=2)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"ma_thu_tuc": "9.999999"\n')
    with pytest.raises(Invalid, match=r"national.jsonl:3.*nothing imported"):
        import_national(session, path)
    assert session.scalar(select(func.count(Procedure.id))) == 0


def test_portal_faq_import_by_parity_ties_entries_to_procedures(session: Session, tmp_path: Path) -> None:
    import_national(session, national_subset(tmp_path, {"1.001193", "1.004873"}, extra=0))
    faq = tmp_path / "faq.jsonl"
    rows = [
        {
            "faq_id": "10",
            "question": "Khai sinh cho con ở đâu?",
            "answer": "Tại UBND xã.",
            "procedures": ["1.001193"],
        },
        {"faq_id": "11", "question": "Lẻ: không nhập", "answer": None, "procedures": ["1.001193"]},
        {
            "faq_id": "12",
            "question": "Hai thủ tục?",
            "answer": None,
            "procedures": ["1.001193", "1.004873", "9.9"],
        },
        {"faq_id": "14", "question": "Mã lạ", "answer": None, "procedures": ["9.9"]},
    ]
    faq.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    report = import_portal_faq(session, faq, parity="even")
    assert (report.created, report.skipped) == (2, 1)
    entries = {f.external_id: f for f in session.scalars(select(FaqEntry))}
    assert set(entries) == {"portal:10", "portal:12"}
    assert sorted(p.code for p in entries["portal:12"].procedures) == ["1.001193", "1.004873"]
    before = kb_version(session)
    assert import_portal_faq(session, faq, parity="even").updated == 2
    assert counts(session)["faq_entries"] == 2
    assert kb_version(session) != before or entries["portal:10"].answer == "Tại UBND xã."


def test_portal_faq_bad_line_names_the_line(session: Session, tmp_path: Path) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text('{"faq_id": "1", "question": "ok", "procedures": []}\n{"faq_id": "2"}\n', encoding="utf-8")
    with pytest.raises(Invalid, match=r"faq.jsonl:2: question: Field required"):
        import_portal_faq(session, faq)


def test_card_in_each_language(session: Session) -> None:
    ensure_seeded(session)
    vi = procedure_card(session, "id-card-reissue", "vi")
    assert (
        vi["lang"] == "vi"
    )
    assert (
        vi["documents"]
    )
    assert (
        vi["fees"]
    )
    assert (
        vi["processing_time"]
    )
    assert (
        vi["where_to_file"]
    )
    en = procedure_card(session, "id-card-reissue", "en")
    assert en["lang"] == "en"
    assert en["title"] != vi["title"]
    ko = procedure_card(session, "id-card-reissue", "ko")
    assert ko["documents"] == en["documents"]  # content in English, title in Korean
    assert any("\uac00" <= ch <= "\ud7af" for ch in ko["title"])


def test_kb_version_changes_with_content(session: Session, tmp_path: Path) -> None:
    first = kb_version(session)
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump([procedure_record("x-proc")], allow_unicode=True), encoding="utf-8")
    import_file(session, path)
    second = kb_version(session)
    changed = procedure_record("x-proc")
    changed["vi"]["fees"] = "khác"
    path.write_text(yaml.safe_dump([changed], allow_unicode=True), encoding="utf-8")
    import_file(session, path)
    assert len({first, second, kb_version(session)}) == 3
