"""Import and export of procedure files: formats, validation errors, all-or-nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import session_scope
from core.errors import Invalid
from knowledge.models import FaqEntry, Procedure
from knowledge.service import export_procedures, import_file, procedure_record
from tests.factories import procedure_record as record


def write_yaml(path: Path, records: list[dict]) -> Path:
    path.write_text(yaml.safe_dump(records, allow_unicode=True), encoding="utf-8")
    return path


def count(session: Session) -> int:
    return session.scalar(select(func.count(Procedure.id))) or 0


def test_import_creates_then_updates_by_slug(session: Session, tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "a.yaml", [record("a-proc"), record("b-proc")])
    report = import_file(session, path)
    assert (report.created, report.updated) == (2, 0)
    changed = record("a-proc")
    changed["vi"]["fees"] = "50.000 đồng"
    report = import_file(session, write_yaml(tmp_path / "b.yaml", [changed]))
    assert (report.created, report.updated) == (0, 1)
    proc = session.scalar(select(Procedure).where(Procedure.slug == "a-proc"))
    assert proc is not None
    assert proc.text("vi").fees == "50.000 đồng"
    # FAQ entries written with a procedure are replaced, not duplicated, on update.
    assert len(proc.faqs) == 1
    assert session.scalar(select(func.count(FaqEntry.id))) == 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["vi"].pop("title"), "record 2 (slug 'bad-proc'): field 'vi.title': Field required"),
        (lambda r: r["vi"].update(steps="one string"), "field 'vi.steps': Input should be a valid list"),
        (lambda r: r.update(slug="Bad Slug!"), "field 'slug': String should match pattern"),
        (lambda r: r.update(code="abc"), "field 'code': Value error, national code must look like 1.001193"),
        (lambda r: r.update(colour="red"), "field 'colour': Extra inputs are not permitted"),
        (lambda r: r["faq"][0].update(questions=[]), "field 'faq.0.questions'"),
    ],
)
def test_bad_record_is_named_and_nothing_is_imported(
    session: Session, tmp_path: Path, mutate, message: str
) -> None:
    bad = record("bad-proc")
    mutate(bad)
    path = write_yaml(tmp_path / "bad.yaml", [record("good-proc"), bad, record("other-proc")])
    with pytest.raises(Invalid) as info:
        import_file(session, path)
    assert message in str(info.value)
    assert "nothing imported" in str(info.value)
    assert count(session) == 0


def test_duplicate_slug_in_file_is_rejected(session: Session, tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "dup.yaml", [record("same"), record("same")])
    with pytest.raises(Invalid, match=r"record 2 \(slug 'same'\): field 'slug': duplicate of record 1"):
        import_file(session, path)
    assert count(session) == 0


def test_non_utf8_file_is_rejected_with_offset(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("- slug: thu-tuc\n  vi: {title: 'Đăng ký'}\n".encode("utf-16"))
    with pytest.raises(Invalid, match="not UTF-8 text"):
        import_file(session, path)


def test_invalid_json_names_line_and_column(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"slug": "x",\n "vi": }]', encoding="utf-8")
    with pytest.raises(Invalid, match=r"invalid JSON at line 2, column 8"):
        import_file(session, path)


def test_top_level_must_be_a_list(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "scalar.yaml"
    path.write_text("just a string\n", encoding="utf-8")
    with pytest.raises(Invalid, match="expected a list of procedure records, got str"):
        import_file(session, path)


def test_unknown_format_and_missing_file(session: Session, tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="unknown format 'txt'"):
        import_file(session, tmp_path / "x.txt")
    with pytest.raises(Invalid, match="no such file"):
        import_file(session, tmp_path / "missing.yaml")


def test_conflict_found_while_writing_rolls_back_everything(settings, tmp_path: Path) -> None:
    with session_scope() as session:
        import_file(session, write_yaml(tmp_path / "one.yaml", [record("holder", code="1.000001")]))
    clash = [record("new-one"), record("thief", code="1.000001")]
    path = write_yaml(tmp_path / "two.yaml", clash)
    expected = "'thief': field 'code': 1.000001 already belongs to 'holder'"
    with pytest.raises(Invalid, match=expected), session_scope() as session:
        import_file(session, path)
    with session_scope() as session:
        assert sorted(session.scalars(select(Procedure.slug))) == ["holder"]


@pytest.mark.parametrize("fmt", ["yaml", "json", "jsonl", "csv"])
def test_export_then_import_round_trips(settings, tmp_path: Path, fmt: str) -> None:
    original = [record("a-proc", code="1.000123"), record("b-proc")]
    with session_scope() as session:
        import_file(session, write_yaml(tmp_path / "in.yaml", original))
        exported = tmp_path / f"out.{fmt}"
        assert export_procedures(session, exported) == 2
        before = [procedure_record(p) for p in session.scalars(select(Procedure).order_by(Procedure.slug))]
    with session_scope() as session:
        for proc in session.scalars(select(Procedure)):
            session.delete(proc)
        for faq in session.scalars(select(FaqEntry)):
            session.delete(faq)
    with session_scope() as session:
        import_file(session, exported)
        after = [procedure_record(p) for p in session.scalars(select(Procedure).order_by(Procedure.slug))]
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)
