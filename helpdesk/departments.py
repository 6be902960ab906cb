"""Departments, the routing table that sends tickets to them, their SLA policies, and the bundled seed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import Invalid, NotFound
from core.text import fold
from core.yamlfiles import load_yaml
from helpdesk.models import Department, RoutingRule, SlaPolicy, User
from helpdesk.sla import URGENCIES
from knowledge.io import read_text
from knowledge.models import Procedure, utcnow

logger = logging.getLogger(__name__)

SEED_FILE = Path(__file__).resolve().parent / "seed" / "departments.yaml"
CREDENTIALS_FILE = "demo-credentials.txt"
KINDS = ("procedure", "category", "authority")  # most specific first
ROUTE_FIELDS = {"procedures": "procedure", "categories": "category", "authorities": "authority"}
MAX_ERRORS_SHOWN = 20
_WORD = re.compile(r"\w+")

Slug = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=80)]
RuleValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Hours = Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TargetsIn(_Strict):
    """Working hours to acknowledge and to resolve."""

    ack_hours: Hours
    resolve_hours: Hours

    @model_validator(mode="after")
    def _resolve_after_ack(self) -> TargetsIn:
        if self.resolve_hours < self.ack_hours:
            raise ValueError("resolve_hours must not be less than ack_hours")
        return self


class UrgencyTargetsIn(_Strict):
    """Targets by urgency; a missing urgency falls back to the next less specific policy."""

    normal: TargetsIn | None = None
    urgent: TargetsIn | None = None


class SlaIn(UrgencyTargetsIn):
    """A department's targets for every category, and per category."""

    categories: dict[RuleValue, UrgencyTargetsIn] = Field(default_factory=dict)


class RoutesIn(_Strict):
    """What a department answers: procedure slugs, categories and words of the authority text."""

    categories: list[RuleValue] = Field(default_factory=list)
    authorities: list[RuleValue] = Field(default_factory=list)
    procedures: list[RuleValue] = Field(default_factory=list)


class OfficialIn(_Strict):
    """A demo account the first-start seeding creates for the department."""

    username: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{2,79}$")]  # as helpdesk.accounts
    full_name: Annotated[str, StringConstraints(max_length=200)] = ""
    role: Literal["official", "supervisor"] = "official"


class DepartmentIn(_Strict):
    """One record of a departments file."""

    slug: Slug
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    name_en: Annotated[str, StringConstraints(max_length=200)] = ""
    default: bool = False
    routes: RoutesIn = Field(default_factory=RoutesIn)
    sla: SlaIn = Field(default_factory=SlaIn)
    officials: list[OfficialIn] = Field(default_factory=list)

    def rules(self) -> list[tuple[str, str]]:
        """(kind, value) of every routing rule of the record."""
        return [(kind, value) for name, kind in ROUTE_FIELDS.items() for value in getattr(self.routes, name)]

    def policies(self) -> list[tuple[str, str, TargetsIn]]:
        """(category, urgency, targets) of every SLA policy of the record; category "*" is every category."""
        scopes = [("*", self.sla), *self.sla.categories.items()]
        return [
            (category, urgency, targets)
            for category, by_urgency in scopes
            for urgency in URGENCIES
            if (targets := getattr(by_urgency, urgency)) is not None
        ]


@dataclass
class ImportReport:
    """What an import did (or, dry, would do)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    rules: int = 0
    policies: int = 0
    moved: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def __str__(self) -> str:
        text = (
            f"{len(self.created)} created, {len(self.updated)} updated; "
            f"{self.rules} routing rules, {self.policies} SLA policies"
        )
        if self.dry_run:
            text += " (dry run: nothing written)"
        lines = [f"moved {line}" for line in self.moved] + self.notes
        return text + "".join(f"\n  {line}" for line in lines)


@dataclass(frozen=True)
class DepartmentSummary:
    """A department as the admin API and the CLI list it."""

    slug: str
    name: str
    name_en: str
    is_default: bool
    routes: dict[str, list[str]]  # kind -> values
    sla: list[tuple[str, str, float, float]]  # (category, urgency, ack_hours, resolve_hours)
    users: int


def rule_key(kind: str, value: str) -> str:
    """The identity of a rule value: authority words compare without case, accents or punctuation."""
    return " ".join(_WORD.findall(fold(value))) if kind == "authority" else value.strip()


# --- reading and validating ----------------------------------------------------------------------------------------


def read_departments(path: Path) -> list[dict[str, Any]]:
    """Raw records of a YAML or JSON departments file: a list, or `{departments: [...]}`."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise Invalid(f"{path}: unknown format {suffix or '(no suffix)'!r}; use .yaml, .yml or .json")
    text = read_text(path)
    try:
        data = json.loads(text) if suffix == ".json" else load_yaml(text)
    except json.JSONDecodeError as exc:
        raise Invalid(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        raise Invalid(f"{path}: invalid YAML: {exc}") from None
    if isinstance(data, dict) and set(data) == {"departments"}:
        data = data["departments"]
    if not isinstance(data, list):
        raise Invalid(f"{path}: expected a list of departments (or 'departments:' and a list)")
    for index, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise Invalid(f"{path}: record {index}: expected a mapping of fields, got {type(item).__name__}")
    return data


def validate_departments(records: list[dict[str, Any]], source: str) -> list[DepartmentIn]:
    """Validate every record and their consistency; one Invalid names each bad record (index, slug) and field."""
    errors: list[str] = []
    items: list[tuple[str, DepartmentIn]] = []
    for index, raw in enumerate(records, 1):
        slug = raw.get("slug") if isinstance(raw, dict) else None
        label = f"record {index}" + (f" (slug {slug!r})" if slug else "")
        try:
            items.append((label, DepartmentIn.model_validate(raw)))
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(part) for part in err["loc"]) or "record"
                errors.append(f"{source}: {label}: field {where!r}: {err['msg']}")
    slugs: dict[str, str] = {}
    rules: dict[tuple[str, str], str] = {}
    usernames: dict[str, str] = {}
    default: str | None = None
    for label, item in items:
        if item.slug in slugs:
            errors.append(f"{source}: {label}: field 'slug': {item.slug!r} is already {slugs[item.slug]}")
        slugs.setdefault(item.slug, label)
        if item.default:
            if default is not None:
                errors.append(
                    f"{source}: {label}: field 'default': only one default department; {default} is one already"
                )
            default = default or label
        for kind, value in item.rules():
            key = (kind, rule_key(kind, value))
            if not key[1]:
                errors.append(f"{source}: {label}: field 'routes': {kind} {value!r} has no letters or digits")
            elif key in rules:
                errors.append(f"{source}: {label}: field 'routes': {kind} {value!r} is already routed by {rules[key]}")
            rules.setdefault(key, label)
        for category in item.sla.categories:
            if category == "*":
                errors.append(f"{source}: {label}: field 'sla.categories': '*' is written as sla.normal and sla.urgent")
        for official in item.officials:
            if official.username in usernames:
                errors.append(
                    f"{label}: field 'officials': {official.username!r} is already in {usernames[official.username]}"
                )
            usernames.setdefault(official.username, label)
    _raise_all(errors)
    return [item for _label, item in items]


def _raise_all(errors: list[str]) -> None:
    """One Invalid listing the errors (the first MAX_ERRORS_SHOWN), if any."""
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f"\n  … and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise Invalid(f"{len(errors)} error(s), nothing imported:\n  " + "\n  ".join(shown) + more)


# --- importing -----------------------------------------------------------------------------------------------------


def import_departments(
    session: Session,
    records: list[dict[str, Any]],
    *,
    source: str,
    now: dt.datetime,
    dry_run: bool = False,
) -> ImportReport:
    """Create or update the file's departments and replace their routing rules and SLA policies, in the caller's
    transaction; everything is checked before anything is written. A rule another department held moves."""
    items = validate_departments(records, source)
    slugs = [item.slug for item in items]
    existing = {d.slug: d for d in session.scalars(select(Department).where(Department.slug.in_(slugs)))}
    other_defaults = list(
        session.scalars(select(Department.slug).where(Department.is_default, Department.slug.not_in(slugs)))
    )
    _check_default(items, other_defaults, source)

    report = ImportReport(dry_run=dry_run)
    for item in items:
        (report.updated if item.slug in existing else report.created).append(item.slug)
    new_rules = {
        (kind, rule_key(kind, value)): (kind, value, item.slug) for item in items for kind, value in item.rules()
    }
    old_rules = {(rule.kind, rule_key(rule.kind, rule.value)): rule for rule in session.scalars(select(RoutingRule))}
    for key, (kind, value, slug) in new_rules.items():
        old = old_rules.get(key)
        if old is not None and old.department != slug:
            report.moved.append(f"{kind} {value!r}: {old.department} -> {slug}")
    report.rules = len(new_rules)
    report.policies = sum(len(item.policies()) for item in items)
    officials = sum(len(item.officials) for item in items)
    if officials:
        report.notes.append(
            f"{officials} official(s) listed: an import creates no accounts (`motcua users create` does)"
        )
    if dry_run:
        return report

    for item in items:
        department = existing.get(item.slug)
        if department is None:
            department = Department(slug=item.slug, created_at=now)
            session.add(department)
        department.name, department.name_en, department.is_default = item.name, item.name_en, item.default
    session.flush()
    for key, rule in old_rules.items():
        if rule.department in existing or key in new_rules:
            session.delete(rule)
    for policy in session.scalars(select(SlaPolicy).where(SlaPolicy.department.in_(slugs))):
        session.delete(policy)
    session.flush()  # the unique (kind, value) and scope constraints must see the deletions first
    session.add_all(RoutingRule(kind=kind, value=value, department=slug) for kind, value, slug in new_rules.values())
    session.add_all(
        SlaPolicy(
            department=item.slug,
            category=category,
            urgency=urgency,
            ack_hours=targets.ack_hours,
            resolve_hours=targets.resolve_hours,
        )
        for item in items
        for category, urgency, targets in item.policies()
    )
    session.flush()
    logger.info("departments imported from %s: %s", source, str(report).splitlines()[0])
    return report


def _check_default(items: list[DepartmentIn], other_defaults: list[str], source: str) -> None:
    """Exactly one default department once the file is in, counting the defaults the file does not list."""
    marked = [(index, item) for index, item in enumerate(items, 1) if item.default]
    if marked and other_defaults:
        index, item = marked[0]
        raise Invalid(
            f"{source}: record {index} (slug {item.slug!r}): field 'default': {other_defaults[0]!r} is the default "
            "department already; list it in this file with default: false to move the default; nothing imported"
        )
    if not marked and not other_defaults:
        raise Invalid(
            f"{source}: no default department: set default: true on the one that gets what no rule routes; "
            "nothing imported"
        )


# --- routing -------------------------------------------------------------------------------------------------------


def route_department(
    session: Session,
    *,
    procedure_slug: str | None = None,
    category: str | None = None,
    authority: str | None = None,
) -> str:
    """The department of a ticket: a procedure rule, else a category rule, else an authority rule (its words found
    in the authority text, without case or accents), else the default department. NotFound: no department."""
    if procedure_slug and (category is None or authority is None):
        known = session.execute(
            select(Procedure.category, Procedure.authority).where(Procedure.slug == procedure_slug)
        ).first()
        if known is not None:
            category = known.category if category is None else category
            authority = known.authority if authority is None else authority
    wanted = [RoutingRule.kind == "authority"] if authority else []
    if procedure_slug:
        wanted.append((RoutingRule.kind == "procedure") & (RoutingRule.value == procedure_slug))
    if category:
        wanted.append((RoutingRule.kind == "category") & (RoutingRule.value == category))
    by_kind: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if wanted:
        columns = select(RoutingRule.kind, RoutingRule.value, RoutingRule.department)
        for kind, value, department in session.execute(columns.where(or_(*wanted))):
            by_kind[kind].append((value, department))
    if by_kind["procedure"]:
        return by_kind["procedure"][0][1]
    if by_kind["category"]:
        return by_kind["category"][0][1]
    if authority and by_kind["authority"]:
        found = _authority_match(authority, by_kind["authority"])
        if found is not None:
            return found
    fallback = session.scalar(select(Department.slug).order_by(Department.is_default.desc(), Department.id).limit(1))
    if fallback is None:
        raise NotFound("no department: import one with `motcua departments import`")
    return fallback


def _authority_match(authority: str, rules: list[tuple[str, str]]) -> str | None:
    """The department of the rule whose words come first in the authority text (the longest on a tie)."""
    text = f" {' '.join(_WORD.findall(fold(authority)))} "
    best: tuple[int, int, str] | None = None
    for value, department in rules:
        words = rule_key("authority", value)
        at = text.find(f" {words} ") if words else -1
        if at >= 0 and (best is None or (at, -len(words)) < best[:2]):
            best = (at, -len(words), department)
    return best[2] if best else None


# --- admin operations ----------------------------------------------------------------------------------------------


def list_departments(session: Session) -> list[DepartmentSummary]:
    """Every department, the default first, with its rules, SLA policies and number of active users."""
    rules: dict[str, dict[str, list[str]]] = defaultdict(lambda: {kind: [] for kind in KINDS})
    for rule in session.scalars(select(RoutingRule).order_by(RoutingRule.kind, RoutingRule.value)):
        rules[rule.department][rule.kind].append(rule.value)
    policies: dict[str, list[tuple[str, str, float, float]]] = defaultdict(list)
    for p in session.scalars(select(SlaPolicy).order_by(SlaPolicy.category, SlaPolicy.urgency)):
        policies[p.department].append((p.category, p.urgency, p.ack_hours, p.resolve_hours))
    users = dict(
        session.execute(
            select(User.department, func.count())
            .where(User.active, User.department.is_not(None))
            .group_by(User.department)
        ).all()
    )
    departments = session.scalars(select(Department).order_by(Department.is_default.desc(), Department.slug))
    return [
        DepartmentSummary(
            slug=d.slug,
            name=d.name,
            name_en=d.name_en,
            is_default=d.is_default,
            routes=rules[d.slug],
            sla=policies[d.slug],
            users=users.get(d.slug, 0),
        )
        for d in departments
    ]


def set_routing_rule(session: Session, kind: str, value: str, department: str) -> RoutingRule:
    """Send `kind` `value` to department, taking the rule over from any other department."""
    if kind not in KINDS:
        raise Invalid(f"field 'kind': {kind!r} is not one of {', '.join(KINDS)}")
    value = value.strip()
    key = rule_key(kind, value)
    if not key or len(value) > 200:
        raise Invalid(f"field 'value': {value!r} must have letters or digits and at most 200 characters")
    if session.scalar(select(Department.id).where(Department.slug == department)) is None:
        raise NotFound(f"department {department!r} does not exist")
    rule = _find_rule(session, kind, value)
    if rule is None:
        rule = RoutingRule(kind=kind, value=value, department=department)
        session.add(rule)
    else:
        if rule.department != department:
            logger.info("routing rule %s %r moved: %s -> %s", kind, value, rule.department, department)
        rule.value, rule.department = value, department
    session.flush()
    return rule


def delete_routing_rule(session: Session, kind: str, value: str) -> None:
    """Remove a routing rule; what it routed goes to the next matching rule or the default department."""
    rule = _find_rule(session, kind, value)
    if rule is None:
        raise NotFound(f"no routing rule {kind} {value!r}")
    session.delete(rule)
    session.flush()


def _find_rule(session: Session, kind: str, value: str) -> RoutingRule | None:
    """The rule of kind whose value is value (for authorities: the same words without case or accents)."""
    if kind != "authority":
        return session.scalar(select(RoutingRule).where(RoutingRule.kind == kind, RoutingRule.value == value.strip()))
    key = rule_key(kind, value)
    rules = session.scalars(select(RoutingRule).where(RoutingRule.kind == "authority"))
    return next((rule for rule in rules if rule_key(kind, rule.value) == key), None)


# --- first-start seed ----------------------------------------------------------------------------------------------


def ensure_departments_seeded(session: Session, settings: Settings) -> list[tuple[str, str]]:
    """On a database without departments, import the bundled ones and create their demo officials with random
    passwords, written to data_dir/demo-credentials.txt (mode 0600); returns the (username, password) pairs."""
    if not settings.seed_departments or session.scalar(select(Department.id).limit(1)) is not None:
        return []
    from helpdesk.accounts import create_user  # the accounts module is the one place that hashes passwords

    records = read_departments(SEED_FILE)
    import_departments(session, records, source=str(SEED_FILE), now=utcnow())
    taken = set(session.scalars(select(User.username)))
    created: list[tuple[str, str, str, str]] = []  # username, role, department, password
    for item in validate_departments(records, str(SEED_FILE)):
        for official in item.officials:
            if official.username in taken:  # an admin made this account before the first start: keep it
                continue
            password = secrets.token_urlsafe(12)
            create_user(
                session,
                username=official.username,
                password=password,
                role=official.role,
                department=item.slug,
                full_name=official.full_name,
            )
            created.append((official.username, official.role, item.slug, password))
    if created:
        path = _write_credentials(settings.data_dir / CREDENTIALS_FILE, created)
        logger.info("demo departments and %d accounts created; their passwords are in %s", len(created), path)
    return [(username, password) for username, _role, _department, password in created]


def _write_credentials(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    """Write the demo accounts' passwords to a file only its owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Demo accounts created on first start. Change their passwords or deactivate them before production use.",
        "# username\trole\tdepartment\tpassword",
        *("\t".join(row) for row in rows),
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an older file keeps its mode through O_CREAT: set it again
        handle.write("\n".join(lines) + "\n")
    return path
