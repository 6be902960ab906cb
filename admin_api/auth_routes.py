"""Sign-in for the admin API: the OAuth2 password flow, who am I, and the dependencies that check a bearer token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy.orm import Session

from core.db import session_scope
from core.errors import PermissionDenied, Unauthenticated
from helpdesk import accounts
from helpdesk.accounts import Actor
from knowledge.models import utcnow

router = APIRouter(prefix="/api", tags=["auth"])
# auto_error=False: a missing header gets our own 401 message; /docs still shows the Authorize button.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


class TokenOut(BaseModel):
    """An access token for the Authorization: Bearer header."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


class MeOut(BaseModel):
    """The signed-in user."""

    username: str
    role: str
    department: str | None
    full_name: str


def current_actor(token: Annotated[str | None, Depends(oauth2_scheme)]) -> Actor:
    """The user of the request's bearer token (an access token or an API token), or 401."""
    with session_scope() as session:
        return actor_in(session, token, utcnow())


def actor_in(session: Session, token: str | None, now: dt.datetime) -> Actor:
    """The user of a bearer token, checked in the caller's transaction (busy endpoints save one), or 401."""
    if not token:
        raise Unauthenticated("not authenticated: send Authorization: Bearer <token>")
    return accounts.actor_from_bearer(session, token, now)


ActorDep = Annotated[Actor, Depends(current_actor)]
BearerDep = Annotated[str | None, Depends(oauth2_scheme)]  # the raw token, for endpoints that check it themselves


def require_role(*roles: str) -> Callable[[Actor], Actor]:
    """A dependency letting only users of these roles through (403 for the others)."""
    unknown = [role for role in roles if role not in accounts.ROLES]
    if not roles or unknown:
        raise ValueError(f"require_role needs roles among {accounts.ROLES}, got {roles}")

    def check_role(actor: ActorDep) -> Actor:
        if actor.role not in roles:
            raise PermissionDenied(f"this needs the role {' or '.join(roles)}; you are {actor.role}")
        return actor

    return check_role


@router.post("/auth/token", response_model=TokenOut)
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
    """Exchange a username and password (form fields) for an access token."""
    now = utcnow()
    with session_scope() as session:
        user = accounts.authenticate(session, form.username, form.password)
        return TokenOut(access_token=accounts.create_access_token(user, now))


@router.get("/me", response_model=MeOut)
def me(actor: ActorDep) -> MeOut:
    """The user the bearer token belongs to."""
    with session_scope() as session:
        user = accounts.get_user(session, actor.username)
        return MeOut(username=user.username, role=user.role, department=user.department, full_name=user.full_name)
