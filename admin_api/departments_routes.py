"""Departments and the routing table over HTTP: everyone signed in may read them, admins edit the rules."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from admin_api.auth_routes import current_actor
from core.db import session_scope
from core.errors import PermissionDenied
from helpdesk.accounts import Actor
from helpdesk.departments import delete_routing_rule, list_departments, set_routing_rule

router = APIRouter(prefix="/api", tags=["departments"])
ActorDep = Annotated[Actor, Depends(current_actor)]


class RuleIn(BaseModel):
    """A routing rule: tickets about this procedure, category or authority go to the department."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["procedure", "category", "authority"]
    value: Annotated[str, Field(min_length=1, max_length=200)]
    department: Annotated[str, Field(min_length=1, max_length=80)]


class RuleOut(BaseModel):
    """A routing rule as stored."""

    kind: str
    value: str
    department: str


def _admin(actor: Actor) -> None:
    if actor.role != "admin":
        raise PermissionDenied("only admins edit the routing table")


@router.get("/departments", dependencies=[Depends(current_actor)])
def departments() -> list[dict[str, Any]]:
    """Every department with its routing rules, SLA targets and number of active users."""
    with session_scope() as session:
        return [asdict(d) for d in list_departments(session)]


@router.put("/routing", response_model=RuleOut)
def put_rule(body: RuleIn, actor: ActorDep) -> dict[str, str]:
    """Create or move a routing rule (admins); new tickets follow it at once."""
    _admin(actor)
    with session_scope() as session:
        rule = set_routing_rule(session, body.kind, body.value, body.department)
        return {"kind": rule.kind, "value": rule.value, "department": rule.department}


@router.delete("/routing/{kind}/{value}", status_code=204)
def delete_rule(kind: Literal["procedure", "category", "authority"], value: str, actor: ActorDep) -> None:
    """Remove a routing rule (admins); its tickets fall through to the next rule or the default department."""
    _admin(actor)
    with session_scope() as session:
        delete_routing_rule(session, kind, value)
