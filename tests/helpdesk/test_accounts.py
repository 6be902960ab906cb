"""Accounts on a real database: password hashing, users, API tokens, access tokens and the bearer check."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import stat
from pathlib import Path

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import Settings, get_settings
from core.errors import Conflict, Invalid, NotFound, Unauthenticated
from helpdesk import accounts
from helpdesk.accounts import Actor
from helpdesk.models import ApiToken, Department, User
from knowledge.models import utcnow

PASSWORD = "correct horse battery"
NOW = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def department(session: Session) -> str:
    """A department for officials and supervisors."""
    session.add(Department(slug="civil-status", name="Phòng Tư pháp"))
    session.flush()
    return "civil-status"


@pytest.fixture
def official(session: Session, department: str) -> User:
    return accounts.create_user(
        session, username="lan.nguyen", password=PASSWORD, role="official", department=department, full_name="Lan"
    )


# --- passwords -----------------------------------------------------------------------------------------------------


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = accounts.hash_password(PASSWORD), accounts.hash_password(PASSWORD)
    assert first.startswith("scrypt$16384$8$1$")
    assert len(first.split("$")) == 6
    assert first != second
    assert PASSWORD not in first
    assert accounts.verify_password(PASSWORD, first)
    assert accounts.verify_password(PASSWORD, second)
    assert not accounts.verify_password(PASSWORD + "x", first)
    assert not accounts.verify_password("", first)


def test_unicode_passwords_verify() -> None:
    stored = accounts.hash_password("mật khẩu đủ dài")
    assert accounts.verify_password("mật khẩu đủ dài", stored)
    assert not accounts.verify_password("mat khau du dai", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$1$2$3$YQ==$YQ==",
        "scrypt$x$8$1$YQ==$YQ==",
        "scrypt$16384$8$1$!!$YQ==",
        "scrypt$3$8$1$YQ==$YQ==",
    ],
)
def test_malformed_stored_hashes_never_verify(stored: str) -> None:
    assert not accounts.verify_password(PASSWORD, stored)


# --- users ---------------------------------------------------------------------------------------------------------


def test_create_user_stores_a_hash_never_the_password(session: Session, official: User) -> None:
    row = session.scalar(select(User).where(User.username == "lan.nguyen"))
    assert row is official
    assert (row.role, row.department, row.full_name, row.active) == ("official", "civil-status", "Lan", True)
    assert PASSWORD not in row.password_hash
    assert accounts.verify_password(PASSWORD, row.password_hash)


def test_admin_has_no_department(session: Session) -> None:
    admin = accounts.create_user(session, username="root_1", password=PASSWORD, role="admin")
    assert admin.department is None
    with pytest.raises(Invalid, match="an admin belongs to no department"):
        accounts.create_user(session, username="root_2", password=PASSWORD, role="admin", department="civil-status")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "ab"}, "field 'username': 'ab' must be 3-80 characters"),
        ({"username": "x" * 81}, "field 'username'"),
        ({"username": "Lan"}, "lower-case letters"),
        ({"username": "lan nguyen"}, "field 'username'"),
        ({"username": "lan@x"}, "field 'username'"),
        ({"password": "short12"}, "field 'password': at least 8 characters"),
        ({"password": "p" * 201}, "field 'password': at most 200 characters"),
        ({"role": "root"}, "field 'role': 'root' is not one of official, supervisor, admin"),
        ({"department": None}, "field 'department': officials and supervisors need a department"),
        ({"role": "supervisor", "department": None}, "need a department (role supervisor)"),
        ({"department": "land"}, "unknown department 'land' (known: civil-status)"),
        ({"full_name": "n" * 201}, "field 'full_name'"),
    ],
)
def test_create_user_refuses_bad_fields_clearly(
    session: Session, department: str, fields: dict[str, str | None], message: str
) -> None:
    wanted = {"username": "new.user", "password": PASSWORD, "role": "official", "department": department, **fields}
    with pytest.raises(Invalid, match=re.escape(message)):
        accounts.create_user(session, **wanted)
    assert session.scalar(select(User.id)) is None


def test_duplicate_username_is_a_conflict(session: Session, official: User) -> None:
    with pytest.raises(Conflict, match="user 'lan.nguyen' already exists"):
        accounts.create_user(session, username=official.username, password=PASSWORD, role="admin")


def test_authenticate_checks_password_and_hides_unknown_users(session: Session, official: User) -> None:
    assert accounts.authenticate(session, "lan.nguyen", PASSWORD) is official
    with pytest.raises(Unauthenticated) as wrong:
        accounts.authenticate(session, "lan.nguyen", "wrong password")
    with pytest.raises(Unauthenticated) as unknown:
        accounts.authenticate(session, "nobody", PASSWORD)
    assert str(wrong.value) == str(unknown.value) == "wrong username or password"


def test_set_password_replaces_the_old_one(session: Session, official: User) -> None:
    accounts.set_password(session, "lan.nguyen", "a new password")
    assert accounts.authenticate(session, "lan.nguyen", "a new password") is official
    with pytest.raises(Unauthenticated):
        accounts.authenticate(session, "lan.nguyen", PASSWORD)
    with pytest.raises(Invalid, match="at least 8"):
        accounts.set_password(session, "lan.nguyen", "short")
    with pytest.raises(NotFound, match="no user 'ghost'"):
        accounts.set_password(session, "ghost", "a new password")


def test_deactivated_user_is_refused_everywhere(session: Session, official: User) -> None:
    access = accounts.create_access_token(official, NOW)
    row, api_token = accounts.issue_token(session, official, name="laptop", now=NOW)
    accounts.deactivate_user(session, "lan.nguyen", NOW)
    assert official.active is False
    assert row.revoked_at == NOW  # deactivation revokes the tokens too
    with pytest.raises(Unauthenticated, match="account 'lan.nguyen' is deactivated"):
        accounts.authenticate(session, "lan.nguyen", PASSWORD)
    with pytest.raises(Unauthenticated, match="account 'lan.nguyen' is deactivated"):
        accounts.actor_from_bearer(session, access, NOW)
    with pytest.raises(Unauthenticated, match="revoked"):
        accounts.actor_from_bearer(session, api_token, NOW)
    with pytest.raises(Invalid, match="deactivated"):
        accounts.issue_token(session, official, now=NOW)


def test_actor_of_a_user(official: User) -> None:
    assert Actor.of(official) == Actor(official.id, "lan.nguyen", "official", "civil-status")


# --- API tokens ----------------------------------------------------------------------------------------------------


def test_issued_token_is_stored_only_as_its_sha256(session: Session, official: User) -> None:
    row, token = accounts.issue_token(session, official, name="laptop", now=NOW)
    assert token.startswith("mct_")
    assert len(token) == 47
    assert row.prefix == token[:12]
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {row.name, row.prefix, row.token_hash}
    assert (row.user_id, row.name, row.created_at, row.expires_at) == (official.id, "laptop", NOW, None)
    assert accounts.actor_from_bearer(session, token, NOW) == Actor.of(official)


def test_token_last_used_is_written_at_most_once_a_minute(session: Session, official: User) -> None:
    row, token = accounts.issue_token(session, official, now=NOW)

    def last_used() -> dt.datetime | None:
        return session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == row.id))

    assert last_used() is None
    accounts.actor_from_bearer(session, token, NOW)
    assert last_used() == NOW
    accounts.actor_from_bearer(session, token, NOW + dt.timedelta(seconds=59))
    assert last_used() == NOW
    later = NOW + dt.timedelta(seconds=61)
    accounts.actor_from_bearer(session, token, later)
    assert last_used() == later


def test_expired_token_is_refused(session: Session, official: User) -> None:
    expires = NOW + dt.timedelta(days=1)
    _row, token = accounts.issue_token(session, official, expires_at=expires, now=NOW)
    assert accounts.actor_from_bearer(session, token, expires - dt.timedelta(seconds=1)).username == "lan.nguyen"
    with pytest.raises(Unauthenticated, match=r"API token mct_\S{8} expired"):
        accounts.actor_from_bearer(session, token, expires)
    with pytest.raises(Invalid, match="must be in the future"):
        accounts.issue_token(session, official, expires_at=NOW, now=NOW)


@pytest.mark.parametrize("by", ["id", "prefix", "token"])
def test_revoked_token_is_refused(session: Session, official: User, by: str) -> None:
    row, token = accounts.issue_token(session, official, now=NOW)
    key = {"id": str(row.id), "prefix": row.prefix, "token": token}[by]
    later = NOW + dt.timedelta(hours=1)
    assert accounts.revoke_token(session, key, later) is row
    assert row.revoked_at == later
    assert accounts.revoke_token(session, key, later + dt.timedelta(hours=1)).revoked_at == later  # no-op again
    with pytest.raises(Unauthenticated, match=f"API token {row.prefix} was revoked"):
        accounts.actor_from_bearer(session, token, later)


def test_revoking_an_unknown_token_is_not_found(session: Session, official: User) -> None:
    accounts.issue_token(session, official, now=NOW)
    for key in ("999999", "mct_nothere", "mct_" + "A" * 43):
        with pytest.raises(NotFound, match="no API token"):
            accounts.revoke_token(session, key, NOW)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("mct_" + "A" * 43, "unknown API token"),
        ("mct_short", "malformed API token"),
        ("mct_" + "A" * 42 + "!", "malformed API token"),
    ],
)
def test_unknown_and_malformed_api_tokens_are_refused(
    session: Session, official: User, token: str, message: str
) -> None:
    accounts.issue_token(session, official, now=NOW)
    with pytest.raises(Unauthenticated, match=message):
        accounts.actor_from_bearer(session, token, NOW)


def test_list_tokens_shows_owners_never_the_tokens(session: Session, official: User) -> None:
    admin = accounts.create_user(session, username="admin", password=PASSWORD, role="admin")
    first, _ = accounts.issue_token(session, official, name="one", now=NOW)
    second, _ = accounts.issue_token(session, admin, name="two", now=NOW + dt.timedelta(minutes=1))
    assert accounts.list_tokens(session) == [(second, "admin"), (first, "lan.nguyen")]
    assert accounts.list_tokens(session, "lan.nguyen") == [(first, "lan.nguyen")]
    with pytest.raises(NotFound, match="no user 'ghost'"):
        accounts.list_tokens(session, "ghost")


# --- access tokens (JWT) -------------------------------------------------------------------------------------------


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_access_token_claims_and_lifetime(session: Session, official: User, settings: Settings) -> None:
    token = accounts.create_access_token(official, NOW)
    issued = int(NOW.timestamp())
    assert _claims(token) == {
        "sub": "lan.nguyen",
        "uid": official.id,
        "role": "official",
        "dept": "civil-status",
        "iat": issued,
        "exp": issued + settings.jwt_minutes * 60,
    }
    end = NOW + dt.timedelta(minutes=settings.jwt_minutes)
    assert accounts.actor_from_bearer(session, token, end - dt.timedelta(seconds=1)) == Actor.of(official)
    with pytest.raises(Unauthenticated, match="access token expired; log in again"):
        accounts.actor_from_bearer(session, token, end)


def test_role_and_department_come_from_the_database(session: Session, official: User) -> None:
    token = accounts.create_access_token(official, NOW)
    forged = jwt.encode({**_claims(token), "role": "admin", "dept": None}, accounts.signing_key(), algorithm="HS256")
    assert accounts.actor_from_bearer(session, forged, NOW) == Actor.of(official)  # claims are not trusted
    session.add(Department(slug="land", name="Phòng Tài nguyên"))
    official.role, official.department = "supervisor", "land"  # applies at once to tokens already issued
    session.flush()
    assert accounts.actor_from_bearer(session, token, NOW) == Actor(official.id, "lan.nguyen", "supervisor", "land")


@pytest.mark.parametrize("how", ["tampered payload", "foreign key"])
def test_tampered_or_foreign_access_tokens_are_refused(session: Session, official: User, how: str) -> None:
    token = accounts.create_access_token(official, NOW)
    header, _payload, signature = token.split(".")
    if how == "tampered payload":
        elevated = jwt.encode({**_claims(token), "role": "admin"}, "k" * 40, algorithm="HS256").split(".")[1]
        bad = f"{header}.{elevated}.{signature}"
    else:
        bad = jwt.encode(_claims(token), "another key of at least thirty-two chars", algorithm="HS256")
    with pytest.raises(Unauthenticated, match="invalid access token: bad signature"):
        accounts.actor_from_bearer(session, bad, NOW)


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b.c", "", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJsYW4ubmd1eWVuIn0."],
)
def test_malformed_access_tokens_are_refused(session: Session, official: User, token: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed access token"):
        accounts.actor_from_bearer(session, token, NOW)


def test_access_token_without_a_user_claim_is_refused(session: Session, official: User) -> None:
    claims = {k: v for k, v in _claims(accounts.create_access_token(official, NOW)).items() if k != "uid"}
    token = jwt.encode(claims, accounts.signing_key(), algorithm="HS256")
    with pytest.raises(Unauthenticated, match="no 'uid' claim"):
        accounts.actor_from_bearer(session, token, NOW)


def test_access_token_of_a_deleted_account_is_refused(session: Session, official: User) -> None:
    token = accounts.create_access_token(official, NOW)
    session.delete(official)
    session.flush()
    with pytest.raises(Unauthenticated, match="no longer exists"):
        accounts.actor_from_bearer(session, token, NOW)


def test_generated_signing_key_is_private_and_kept(settings: Settings) -> None:
    key = accounts.signing_key()
    path = Path(settings.data_dir) / "jwt_secret"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32
    accounts._signing_key.cache_clear()  # a new process reads the same file
    assert accounts.signing_key() == key
    assert [p.name for p in path.parent.iterdir() if "jwt" in p.name] == ["jwt_secret"]


def test_configured_secret_is_used_and_must_be_long(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTCUA_JWT_SECRET", "s" * 32)
    get_settings.cache_clear()
    assert accounts.signing_key() == "s" * 32
    assert not (get_settings().data_dir / "jwt_secret").exists()
    monkeypatch.setenv("MOTCUA_JWT_SECRET", "short")
    get_settings.cache_clear()
    with pytest.raises(Invalid, match="MOTCUA_JWT_SECRET is too short"):
        accounts.signing_key()


def test_no_password_or_token_reaches_the_log(
    session: Session, department: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = accounts.create_user(session, username="quiet", password=PASSWORD, role="official", department=department)
    row, token = accounts.issue_token(session, user, now=NOW)
    accounts.authenticate(session, "quiet", PASSWORD)
    access = accounts.create_access_token(user, NOW)
    accounts.actor_from_bearer(session, token, NOW)
    accounts.actor_from_bearer(session, access, NOW)
    accounts.set_password(session, "quiet", "another password")
    accounts.revoke_token(session, token, utcnow())
    assert caplog.records
    for secret in (PASSWORD, "another password", token, token[4:20], access, row.token_hash):
        assert secret not in caplog.text
