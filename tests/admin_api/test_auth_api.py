"""Sign-in over real HTTP against the real app: the password flow, /api/me, bearer tokens, roles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from admin_api import errors
from admin_api.auth_routes import require_role
from core.db import session_scope
from helpdesk import accounts
from helpdesk.accounts import Actor
from helpdesk.models import Department
from knowledge.models import utcnow
from tests.conftest import running_app

pytestmark = pytest.mark.e2e
PASSWORD = "a long enough password"
MISSING = "not authenticated: send Authorization: Bearer <token>"


@pytest.fixture
def live_server(database_url: str, data_dir: Path) -> Iterator[str]:
    """The real app, started once the test's data is in place."""
    with running_app() as base:
        yield base


@pytest.fixture
def client(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as c:
        yield c


@pytest.fixture
def official(database_url: str) -> str:
    """An official of a department of our own; returns the username."""
    with session_scope() as session:
        session.add(Department(slug="test-desk", name="Bàn thử"))
        session.flush()
        accounts.create_user(
            session, username="mai.tran", password=PASSWORD, role="official", department="test-desk", full_name="Mai"
        )
    return "mai.tran"


def login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/api/auth/token", data={"username": username, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_password_login_me_and_docs(client: httpx.Client, official: str) -> None:
    response = login(client, official, PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type"}
    assert body["token_type"] == "bearer"
    me = client.get("/api/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == {"username": "mai.tran", "role": "official", "department": "test-desk", "full_name": "Mai"}
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]  # /docs: the Authorize button
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/auth/token"


def test_api_token_works_and_role_changes_apply_at_once(client: httpx.Client, official: str) -> None:
    access = login(client, official, PASSWORD).json()["access_token"]
    with session_scope() as session:
        row, token = accounts.issue_token(session, accounts.get_user(session, official), name="script", now=utcnow())
    assert client.get("/api/me", headers=bearer(token)).json()["role"] == "official"
    with session_scope() as session:
        assert session.get(type(row), row.id).last_used_at is not None
        accounts.get_user(session, official).role = "supervisor"
    assert client.get("/api/me", headers=bearer(token)).json()["role"] == "supervisor"
    assert client.get("/api/me", headers=bearer(access)).json()["role"] == "supervisor"


def test_wrong_credentials_get_the_same_401(client: httpx.Client, official: str) -> None:
    wrong = login(client, official, "not the password")
    unknown = login(client, "nobody", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json() == {"detail": "wrong username or password"}
        assert response.headers["www-authenticate"] == "Bearer"
    missing = client.post("/api/auth/token", data={"username": official})
    assert missing.status_code == 422
    assert "password" in missing.json()["detail"]


def test_missing_bad_expired_revoked_and_deactivated_tokens_get_401(client: httpx.Client, official: str) -> None:
    access = login(client, official, PASSWORD).json()["access_token"]
    past = utcnow() - dt.timedelta(days=2)
    with session_scope() as session:
        user = accounts.get_user(session, official)
        expired = accounts.issue_token(session, user, expires_at=past + dt.timedelta(days=1), now=past)[1]
        row, revoked = accounts.issue_token(session, user, now=utcnow())
        accounts.revoke_token(session, row.prefix, utcnow())
    cases = [
        ({}, MISSING),
        ({"Authorization": "Basic bWFpOnBhc3M="}, MISSING),
        (bearer("not-a-token"), "malformed access token"),
        (bearer(access[:-4] + "AAAA"), "invalid access token: bad signature"),
        (bearer("mct_" + "x" * 43), "unknown API token"),
        (bearer(expired), "expired"),
        (bearer(revoked), "was revoked"),
    ]
    for headers, detail in cases:
        response = client.get("/api/me", headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert detail in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"
    with session_scope() as session:
        accounts.deactivate_user(session, official)
    response = client.get("/api/me", headers=bearer(access))
    assert response.status_code == 401
    assert response.json() == {"detail": "account 'mai.tran' is deactivated"}
    assert login(client, official, PASSWORD).status_code == 401


def test_require_role_lets_only_those_roles_through(official: str) -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/admins-only")
    def admins_only(actor: Annotated[Actor, Depends(require_role("admin", "supervisor"))]) -> dict[str, str]:
        return {"you": actor.username}

    with session_scope() as session:
        accounts.create_user(session, username="boss", password=PASSWORD, role="admin")
    with session_scope() as session:
        tokens = {
            name: accounts.create_access_token(accounts.get_user(session, name), utcnow())
            for name in ("boss", official)
        }
    with TestClient(app) as test_client:
        assert test_client.get("/admins-only", headers=bearer(tokens["boss"])).json() == {"you": "boss"}
        denied = test_client.get("/admins-only", headers=bearer(tokens[official]))
        assert denied.status_code == 403
        assert denied.json() == {"detail": "this needs the role admin or supervisor; you are official"}
        assert test_client.get("/admins-only").status_code == 401
    with pytest.raises(ValueError, match="require_role needs roles"):
        require_role("root")
