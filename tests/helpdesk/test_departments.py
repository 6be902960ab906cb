"""Departments on the real database: import, re-import, moved rules, validation, routing, the first-start seed."""

from __future__ import annotations

import copy
import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import Invalid, NotFound
from helpdesk import departments
from helpdesk.accounts import verify_password
from helpdesk.departments import (
    SEED_FILE,
    delete_routing_rule,
    ensure_departments_seeded,
    import_departments,
    list_departments,
    read_departments,
    route_department,
    set_routing_rule,
    validate_departments,
)
from helpdesk.models import Department, RoutingRule, SlaPolicy, User
from helpdesk.sla import SlaTargets, sla_targets
from knowledge.models import Procedure

NOW = dt.datetime(2026, 11, 23, 2, tzinfo=dt.UTC)


def dept(slug: str, **overrides: Any) -> dict[str, Any]:
    """A valid department record."""
    record: dict[str, Any] = {"slug": slug, "name": f"Phòng {slug}"}
    record.update(overrides)
    return record


def base() -> list[dict[str, Any]]:
    """A small valid file: a default desk, civil status and police."""
    return [
        dept("desk", default=True),
        dept(
            "civil",
            routes={"categories": ["civil-status"], "procedures": ["birth-registration"]},
            sla={
                "normal": {"ack_hours": 6, "resolve_hours": 30},
                "categories": {"civil-status": {"urgent": {"ack_hours": 2, "resolve_hours": 8}}},
            },
        ),
        dept("police", routes={"categories": ["residence"], "authorities": ["Công an"]}),
    ]


def rules(session: Session) -> set[tuple[str, str, str]]:
    return {(r.kind, r.value, r.department) for r in session.scalars(select(RoutingRule))}


def run_import(session: Session, records: list[dict[str, Any]], **kw: Any) -> departments.ImportReport:
    return import_departments(session, records, source="depts.yaml", now=NOW, **kw)


def test_import_creates_departments_rules_and_policies(session: Session) -> None:
    report = run_import(session, base())
    assert report.created == ["desk", "civil", "police"]
    assert (report.rules, report.policies) == (4, 2)
    assert rules(session) == {
        ("category", "civil-status", "civil"),
        ("procedure", "birth-registration", "civil"),
        ("category", "residence", "police"),
        ("authority", "Công an", "police"),
    }
    assert session.scalar(select(Department.slug).where(Department.is_default)) == "desk"
    assert sla_targets(session, "civil", "civil-status", "urgent") == SlaTargets(2, 8)
    assert sla_targets(session, "civil", "civil-status", "normal") == SlaTargets(6, 30)
    assert sla_targets(session, "civil", "other", "urgent") == SlaTargets(4, 16)


def test_reimport_replaces_the_departments_rules_and_policies(session: Session) -> None:
    run_import(session, base())
    again = base()
    again[1]["routes"] = {"categories": ["justice"]}
    again[1]["sla"] = {"urgent": {"ack_hours": 3, "resolve_hours": 12}}
    again[1]["name"] = "Tư pháp – Hộ tịch"
    report = run_import(session, again)
    assert report.created == []
    assert report.updated == ["desk", "civil", "police"]
    assert {r for r in rules(session) if r[2] == "civil"} == {("category", "justice", "civil")}
    scopes = set(session.execute(select(SlaPolicy.category, SlaPolicy.urgency).where(SlaPolicy.department == "civil")))
    assert scopes == {("*", "urgent")}
    assert session.scalar(select(Department.name).where(Department.slug == "civil")) == "Tư pháp – Hộ tịch"
    assert session.scalar(select(Department.created_at).where(Department.slug == "civil")) == NOW


def test_a_rule_owned_by_another_department_moves(session: Session) -> None:
    run_import(session, base())
    report = run_import(session, [dept("land", routes={"categories": ["residence"], "authorities": ["CÔNG AN"]})])
    assert report.moved == ["category 'residence': police -> land", "authority 'CÔNG AN': police -> land"]
    assert "moved category 'residence': police -> land" in str(report)
    assert ("category", "residence", "land") in rules(session)
    assert ("authority", "CÔNG AN", "land") in rules(session)
    assert not [r for r in rules(session) if r[2] == "police"]


def test_dry_run_writes_nothing(session: Session) -> None:
    run_import(session, base())
    report = run_import(session, [dept("land", routes={"categories": ["residence"]})], dry_run=True)
    assert report.created == ["land"]
    assert report.moved == ["category 'residence': police -> land"]
    assert "dry run" in str(report)
    assert session.scalar(select(Department).where(Department.slug == "land")) is None
    assert ("category", "residence", "police") in rules(session)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r[1]["sla"]["normal"].update(ack_hours=0), "record 2 (slug 'civil'): field 'sla.normal.ack_hours'"),
        (
            lambda r: r[1]["sla"]["normal"].update(ack_hours=50),
            "record 2 (slug 'civil'): field 'sla.normal': Value error, resolve_hours must not be less than ack_hours",
        ),
        (lambda r: r[1]["sla"].update(asap={}), "record 2 (slug 'civil'): field 'sla.asap': Extra inputs"),
        (lambda r: r[2].update(slug="Công An"), "record 3 (slug 'Công An'): field 'slug': String should match"),
        (lambda r: r[2].pop("name"), "record 3 (slug 'police'): field 'name': Field required"),
        (lambda r: r[2].update(routes={"categories": [""]}), "record 3 (slug 'police'): field 'routes.categories.0'"),
        (lambda r: r[2].update(rutes={}), "record 3 (slug 'police'): field 'rutes': Extra inputs are not permitted"),
        (
            lambda r: r[2].update(slug="civil"),
            "record 3 (slug 'civil'): field 'slug': 'civil' is already record 2 (slug 'civil')",
        ),
        (
            lambda r: r[2].update(default=True),
            "record 3 (slug 'police'): field 'default': only one default department; record 1 (slug 'desk') is one",
        ),
        (
            lambda r: r[2]["routes"]["categories"].append("civil-status"),
            "field 'routes': category 'civil-status' is already routed by record 2 (slug 'civil')",
        ),
        (
            lambda r: r[1]["routes"].update(authorities=["cong an"]),
            "record 3 (slug 'police'): field 'routes': authority 'Công an' is already routed by record 2",
        ),
        (
            lambda r: r[2].update(officials=[{"username": "x.y", "role": "admin"}]),
            "record 3 (slug 'police'): field 'officials.0.role'",
        ),
        (
            lambda r: (r[1].update(officials=[{"username": "ha.le"}]), r[2].update(officials=[{"username": "ha.le"}])),
            "record 3 (slug 'police'): field 'officials': 'ha.le' is already in record 2 (slug 'civil')",
        ),
        (lambda r: r[0].update(default=False), "depts.yaml: no default department"),
    ],
)
def test_validation_errors_name_the_record_and_field(session: Session, mutate: Any, message: str) -> None:
    records = base()
    mutate(records)
    with pytest.raises(Invalid) as caught:
        run_import(session, records)
    assert message in str(caught.value)
    assert "nothing imported" in str(caught.value)
    assert session.scalar(select(Department.id)) is None


def test_every_error_is_listed_at_once() -> None:
    records = base()
    records[0]["slug"] = "BAD SLUG"
    records[2]["sla"] = {"normal": {"ack_hours": "x", "resolve_hours": 8}}
    with pytest.raises(Invalid) as caught:
        validate_departments(records, "f.json")
    assert str(caught.value).startswith("2 error(s), nothing imported:")
    assert "f.json: record 1 (slug 'BAD SLUG'): field 'slug'" in str(caught.value)
    assert "f.json: record 3 (slug 'police'): field 'sla.normal.ack_hours'" in str(caught.value)


def test_nothing_is_half_imported(session: Session) -> None:
    run_import(session, base())
    before = rules(session)
    records = [dept("land", routes={"categories": ["residence"]}), dept("x", routes={"categories": ["civil-status"]})]
    records[1]["sla"] = {"urgent": {"ack_hours": -1, "resolve_hours": 1}}
    with pytest.raises(Invalid, match=r"record 2 \(slug 'x'\): field 'sla.urgent.ack_hours'"):
        run_import(session, records)
    assert rules(session) == before
    assert session.scalar(select(Department).where(Department.slug == "land")) is None


def test_one_default_overall_counting_the_database(session: Session) -> None:
    run_import(session, base())
    with pytest.raises(Invalid, match="record 1 \\(slug 'new'\\): field 'default': 'desk' is the default department"):
        run_import(session, [dept("new", default=True)])
    report = run_import(session, [dept("new", default=True), dept("desk", default=False)])
    assert report.created == ["new"]
    assert list(session.scalars(select(Department.slug).where(Department.is_default))) == ["new"]
    with pytest.raises(Invalid, match="no default department"):
        run_import(session, [dept("new")])


def test_read_departments_files(tmp_path: Path) -> None:
    as_json = tmp_path / "d.json"
    as_json.write_text(json.dumps({"departments": base()}, ensure_ascii=False), encoding="utf-8")
    assert read_departments(as_json) == base()
    with pytest.raises(Invalid, match="unknown format '.csv'"):
        read_departments(tmp_path / "d.csv")
    bad = tmp_path / "d.yaml"
    bad.write_text("- slug: a\n- [1, 2]\n", encoding="utf-8")
    with pytest.raises(Invalid, match="d.yaml: record 2: expected a mapping"):
        read_departments(bad)
    bad.write_text("slug: a\n", encoding="utf-8")
    with pytest.raises(Invalid, match="expected a list of departments"):
        read_departments(bad)


@pytest.fixture
def routed(session: Session) -> Session:
    records = base()
    records.append(dept("social", routes={"authorities": ["Bảo hiểm xã hội", "BHXH"]}))
    run_import(session, records)
    session.add(Procedure(slug="lost-card", category="identity", authority="Công an cấp Xã"))
    session.flush()
    return session


def test_routing_precedence(routed: Session) -> None:
    route = lambda **kw: route_department(routed, **kw)  # noqa: E731
    # procedure rule beats the category and authority rules
    assert route(procedure_slug="birth-registration", category="residence", authority="Công an") == "civil"
    assert route(procedure_slug="other", category="residence", authority="Bảo hiểm xã hội") == "police"
    assert route(category="unknown", authority="BẢO HIỂM XÃ HỘI cấp Tỉnh") == "social"  # case and accents
    assert route(category="unknown", authority="bao hiem xa hoi, cong an tinh") == "social"  # first named wins
    assert route(authority="Phòng BHXHVN") == "desk"  # whole words only
    assert route(category="unknown", authority="Ủy ban nhân dân cấp xã") == "desk"
    assert route() == "desk"
    # a procedure of the knowledge base brings its own authority text
    assert route(procedure_slug="lost-card") == "police"
    assert route(procedure_slug="lost-card", authority="") == "desk"


def test_routing_takes_at_most_three_queries(routed: Session) -> None:
    statements: list[str] = []
    engine = routed.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert route_department(routed, procedure_slug="lost-card") == "police"
        assert len(statements) == 2
        statements.clear()
        assert route_department(routed, procedure_slug="nothing-known") == "desk"
        assert len(statements) == 3
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def test_no_department_at_all(session: Session) -> None:
    with pytest.raises(NotFound, match="no department"):
        route_department(session, category="civil-status")


def test_admin_edits_of_the_routing_table(routed: Session) -> None:
    set_routing_rule(routed, "category", "land-construction", "civil")
    assert route_department(routed, category="land-construction") == "civil"
    set_routing_rule(routed, "authority", "cong an", "social")  # the same words as "Công an": taken over
    assert route_department(routed, authority="Công an xã") == "social"
    assert ("authority", "cong an", "social") in rules(routed)
    delete_routing_rule(routed, "authority", "CÔNG AN")
    assert route_department(routed, authority="Công an xã") == "desk"
    with pytest.raises(NotFound, match="no routing rule"):
        delete_routing_rule(routed, "authority", "Công an")
    with pytest.raises(NotFound, match="department 'nope'"):
        set_routing_rule(routed, "category", "x", "nope")
    with pytest.raises(Invalid, match="field 'kind'"):
        set_routing_rule(routed, "ministry", "x", "desk")
    with pytest.raises(Invalid, match="field 'value'"):
        set_routing_rule(routed, "authority", " - ", "desk")


def test_list_departments(routed: Session) -> None:
    listed = list_departments(routed)
    assert [d.slug for d in listed] == ["desk", "civil", "police", "social"]
    civil = listed[1]
    assert civil.routes == {"procedure": ["birth-registration"], "category": ["civil-status"], "authority": []}
    assert civil.sla == [("*", "normal", 6, 30), ("civil-status", "urgent", 2, 8)]
    assert (listed[0].is_default, civil.users) == (True, 0)


def test_the_bundled_file_routes_every_knowledge_base_category(session: Session) -> None:
    report = run_import(session, read_departments(SEED_FILE))
    assert len(report.created) == 7
    assert "14 official(s) listed" in str(report)
    expected = {
        "civil-status": "civil-status",
        "justice": "justice",
        "residence": "police",
        "identity": "police",
        "foreigners": "police",
        "transport": "police",
        "land-construction": "land-construction",
        "business": "business",
        "social": "social",
        "education": "social",
        "e-government": "one-stop",
    }
    for category, department in expected.items():
        assert route_department(session, category=category) == department
    assert route_department(session, procedure_slug="criminal-record-certificate", category="justice") == "police"
    assert route_department(session, authority="Chi nhánh Văn phòng đăng ký đất đai") == "land-construction"
    assert route_department(session, authority="Ngân hàng Nhà nước Việt Nam") == "one-stop"


def test_seeding_creates_two_accounts_per_department_once(session: Session, settings: Settings) -> None:
    pairs = ensure_departments_seeded(session, settings)
    assert len(pairs) == 14
    users = list(session.scalars(select(User).order_by(User.username)))
    per_department: dict[str | None, list[str]] = {}
    for user in users:
        per_department.setdefault(user.department, []).append(user.role)
    assert len(per_department) == 7
    assert all(sorted(roles) == ["official", "supervisor"] for roles in per_department.values())
    assert {u.username for u in users} >= {"hotich.canbo", "hotich.truongphong", "congan.canbo"}
    assert next(u for u in users if u.username == "hotich.canbo").full_name == "Lê Thị Hoa"

    path = settings.data_dir / "demo-credentials.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    assert "Change their passwords or deactivate them" in text
    for username, password in pairs:
        assert f"{username}\t" in text
        assert password in text
        assert len(password) >= 16
    by_name = {user.username: user for user in users}
    for username, password in pairs:
        assert verify_password(password, by_name[username].password_hash)
        assert by_name[username].password_hash not in text
    assert "scrypt$" not in text

    assert ensure_departments_seeded(session, settings) == []
    assert len(list(session.scalars(select(User)))) == 14


def test_seeding_is_off_or_skipped(session: Session, settings: Settings) -> None:
    off = copy.copy(settings)
    off.seed_departments = False
    assert ensure_departments_seeded(session, off) == []
    assert session.scalar(select(Department.id)) is None
    run_import(session, base())
    assert ensure_departments_seeded(session, settings) == []
    assert session.scalar(select(User.id)) is None
    assert not (settings.data_dir / "demo-credentials.txt").exists()
