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
from core.db import session_scope
from core.errors import Conflict, Invalid, NotFound, PermissionDenied, Unauthenticated
from helpdesk import accounts
from helpdesk.accounts import Actor
from helpdesk.models import ApiToken, Department, TicketEvent, User
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


def test_the_cost_is_a_setting_and_every_hash_verifies_with_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.config import get_settings

    production = accounts.hash_password(PASSWORD)
    monkeypatch.setenv("MOTCUA_PASSWORD_SCRYPT_N", str(2**12))
    get_settings.cache_clear()
    try:
        cheaper = accounts.hash_password(PASSWORD)
        assert cheaper.startswith("scrypt$4096$8$1$")
        assert accounts.verify_password(PASSWORD, production)  # made before the change: checked with 16384
        assert accounts.verify_password(PASSWORD, cheaper)
        monkeypatch.setenv("MOTCUA_PASSWORD_SCRYPT_N", "5000")
        get_settings.cache_clear()
        with pytest.raises(ValueError, match="power of two"):
            get_settings()
    finally:
        monkeypatch.delenv("MOTCUA_PASSWORD_SCRYPT_N")
        get_settings.cache_clear()


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


# --- the password policy and staff management from the dashboard --------------------------------------------------


@pytest.fixture
def admin(session: Session) -> Actor:
    return Actor.of(accounts.create_user(session, username="root", password=PASSWORD, role="admin"))


def _trail(session: Session) -> list[tuple[str, str, str | None, dict[str, object]]]:
    events = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.is_(None)).order_by(TicketEvent.id))
    return [(e.kind, e.actor, e.department, dict(e.data)) for e in events]


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("lan.nguyen", "field 'password': must not be the username"),
        (" LAN.Nguyen ", "field 'password': must not be the username"),
        ("aaaaaaaaaaaa", "field 'password': must not be one character repeated"),
        ("        ", "field 'password': must not be one character repeated"),
        ("short12", "field 'password': at least 8 characters"),
    ],
)
def test_password_policy_refuses_weak_passwords_everywhere(
    session: Session, department: str, official: User, password: str, message: str
) -> None:
    with pytest.raises(Invalid, match=re.escape(message)):
        accounts.create_user(session, username="lan.nguyen", password=password, role="admin")
    with pytest.raises(Invalid, match=re.escape(message)):
        accounts.set_password(session, "lan.nguyen", password)
    assert accounts.authenticate(session, "lan.nguyen", PASSWORD) is official  # the old one still works


def test_the_policy_is_stated_in_both_languages() -> None:
    vi, en = accounts.PASSWORD_POLICY
    assert vi == "Ít nhất 8 ký tự, không trùng tên đăng nhập, không phải một ký tự lặp lại."
    assert en == "At least 8 characters, not the username, not one character repeated."


def test_generated_passwords_are_long_unambiguous_and_distinct() -> None:
    generated = {accounts.generate_password() for _ in range(500)}
    assert len(generated) == 500
    for password in generated:
        assert re.fullmatch(r"[a-km-zA-HJ-NP-Z2-9]{4}(-[a-km-zA-HJ-NP-Z2-9]{4}){3}", password), password
        assert not set(password) & set("0O1lI")
        accounts._check_password(password, "someone")  # it passes the policy it is made for
    # 16 symbols out of 55: about 92 bits, beyond any guessing through a login form
    assert len(accounts.GENERATED_ALPHABET) == 55


def test_an_admin_creates_staff_with_a_generated_or_a_typed_password(
    session: Session, department: str, admin: Actor
) -> None:
    user, generated = accounts.create_staff(
        session,
        admin,
        username="minh",
        full_name="Trần Minh",
        role="supervisor",
        department=department,
        password=None,
        now=NOW,
    )
    assert generated is not None
    assert accounts.authenticate(session, "minh", generated) is user
    assert (user.role, user.department, user.full_name, user.active) == ("supervisor", department, "Trần Minh", True)
    typed, none = accounts.create_staff(
        session,
        admin,
        username="hoa",
        full_name="",
        role="official",
        department=department,
        password=PASSWORD,
        now=NOW,
    )
    assert none is None
    assert accounts.authenticate(session, "hoa", PASSWORD) is typed
    with pytest.raises(Invalid, match="the dashboard creates officials and supervisors"):
        accounts.create_staff(
            session, admin, username="boss", full_name="", role="admin", department=None, password=PASSWORD, now=NOW
        )
    with pytest.raises(Invalid, match="field 'department': officials and supervisors need a department"):
        accounts.create_staff(
            session, admin, username="nodept", full_name="", role="official", department=None, password=None, now=NOW
        )
    with pytest.raises(Conflict, match="user 'minh' already exists"):
        accounts.create_staff(
            session,
            admin,
            username="minh",
            full_name="",
            role="official",
            department=department,
            password=None,
            now=NOW,
        )
    assert [u.username for u in accounts.list_users(session)] == ["hoa", "minh", "root"]
    trail = _trail(session)
    assert trail == [
        ("user_created", "root", department, {"username": "minh", "role": "supervisor", "generated_password": True}),
        ("user_created", "root", department, {"username": "hoa", "role": "official", "generated_password": False}),
    ]


def test_a_reset_password_is_new_random_and_replaces_the_old(session: Session, official: User, admin: Actor) -> None:
    first = accounts.reset_password(session, admin, "lan.nguyen", NOW)
    assert accounts.authenticate(session, "lan.nguyen", first) is official
    with pytest.raises(Unauthenticated):
        accounts.authenticate(session, "lan.nguyen", PASSWORD)
    second = accounts.reset_password(session, admin, "lan.nguyen", NOW)
    assert second != first
    with pytest.raises(Unauthenticated):
        accounts.authenticate(session, "lan.nguyen", first)
    with pytest.raises(Invalid, match="change your own password on the account page"):
        accounts.reset_password(session, admin, "root", NOW)
    with pytest.raises(NotFound, match="no user 'ghost'"):
        accounts.reset_password(session, admin, "ghost", NOW)
    assert [kind for kind, *_ in _trail(session)] == ["password_reset", "password_reset"]
    assert all(first not in str(data) and second not in str(data) for *_, data in _trail(session))


def test_deactivate_and_reactivate_from_the_dashboard(session: Session, official: User, admin: Actor) -> None:
    _row, token = accounts.issue_token(session, official, now=NOW)
    assert accounts.set_active(session, admin, "lan.nguyen", False, NOW) is official
    assert accounts.set_active(session, admin, "lan.nguyen", False, NOW).active is False  # again: no change
    with pytest.raises(Unauthenticated, match="deactivated"):
        accounts.authenticate(session, "lan.nguyen", PASSWORD)
    accounts.set_active(session, admin, "lan.nguyen", True, NOW)
    accounts.set_active(session, admin, "lan.nguyen", True, NOW)
    assert accounts.authenticate(session, "lan.nguyen", PASSWORD) is official
    with pytest.raises(Unauthenticated, match="revoked"):  # reactivation does not bring old API tokens back
        accounts.actor_from_bearer(session, token, NOW)
    with pytest.raises(Invalid, match="you cannot deactivate your own account"):
        accounts.set_active(session, admin, "root", False, NOW)
    with pytest.raises(NotFound, match="no user 'ghost'"):
        accounts.set_active(session, admin, "ghost", False, NOW)
    assert [(kind, actor, dept) for kind, actor, dept, _ in _trail(session)] == [
        ("user_deactivated", "root", "civil-status"),
        ("user_reactivated", "root", "civil-status"),
    ]
    assert accounts.reactivate_user(session, "lan.nguyen").active is True


@pytest.mark.parametrize(
    ("current", "new", "repeated", "message"),
    [
        ("wrong password", "a brand new one", "a brand new one", "field 'current_password': the current password"),
        (PASSWORD, "a brand new one", "a brand new two", "field 'repeated': the two new passwords differ"),
        (PASSWORD, PASSWORD, PASSWORD, "field 'password': the new password must differ from the current one"),
        (PASSWORD, "lan.nguyen", "lan.nguyen", "field 'password': must not be the username"),
        (PASSWORD, "zzzzzzzzz", "zzzzzzzzz", "field 'password': must not be one character repeated"),
        (PASSWORD, "short", "short", "field 'password': at least 8 characters"),
    ],
)
def test_changing_my_password_checks_the_current_one_and_the_policy(
    session: Session, official: User, current: str, new: str, repeated: str, message: str
) -> None:
    me = Actor.of(official)
    with pytest.raises(Invalid, match=re.escape(message)):
        accounts.change_own_password(session, me, current=current, new=new, repeated=repeated, now=NOW)
    assert accounts.authenticate(session, "lan.nguyen", PASSWORD) is official
    assert _trail(session) == []


def test_changing_my_password(session: Session, official: User) -> None:
    me = Actor.of(official)
    accounts.change_own_password(
        session, me, current=PASSWORD, new="a brand new one", repeated="a brand new one", now=NOW
    )
    assert accounts.authenticate(session, "lan.nguyen", "a brand new one") is official
    with pytest.raises(Unauthenticated):
        accounts.authenticate(session, "lan.nguyen", PASSWORD)
    assert _trail(session) == [("password_changed", "lan.nguyen", "civil-status", {"username": "lan.nguyen"})]
    accounts.deactivate_user(session, "lan.nguyen")
    with pytest.raises(Unauthenticated, match="log in again"):
        accounts.change_own_password(session, me, current="a brand new one", new="another one", now=NOW)


def test_staff_management_is_for_admins_and_refusals_are_audited(settings: Settings) -> None:
    # A refusal is audited in a transaction of its own, so the setup is committed first (SQLite has one writer).
    with session_scope() as session:
        session.add_all([Department(slug="civil-status", name="Tư pháp"), Department(slug="land", name="Đất đai")])
        session.flush()
        people = [
            Actor.of(accounts.create_user(session, username=name, password=PASSWORD, role=role, department=dept))
            for name, role, dept in [
                ("lan", "official", "civil-status"),
                ("sam", "supervisor", "civil-status"),
                ("thu", "supervisor", "land"),
            ]
        ]
    for actor in people:
        with session_scope() as session:
            attempts = [
                lambda s, a=actor: accounts.create_staff(
                    s,
                    a,
                    username="new.one",
                    full_name="",
                    role="official",
                    department="civil-status",
                    password=None,
                    now=NOW,
                ),
                lambda s, a=actor: accounts.reset_password(s, a, "lan" if a.username != "lan" else "sam", NOW),
                lambda s, a=actor: accounts.set_active(s, a, "lan" if a.username != "lan" else "sam", False, NOW),
            ]
            for attempt in attempts:
                with pytest.raises(PermissionDenied, match=f"managed by admins; you are {actor.role} of"):
                    attempt(session)
    with session_scope() as session:
        denied = session.scalars(select(TicketEvent).where(TicketEvent.kind == "denied").order_by(TicketEvent.id))
        assert [(e.actor, e.data["action"]) for e in denied] == [
            (actor.username, action)
            for actor in people
            for action in ("staff:create", "staff:reset_password", "staff:set_active")
        ]
        assert [u.username for u in accounts.list_users(session)] == ["lan", "sam", "thu"]
        assert all(u.active for u in accounts.list_users(session))
        assert all(accounts.authenticate(session, u, PASSWORD) for u in ("lan", "sam", "thu"))


def test_no_generated_or_changed_password_reaches_the_log(
    session: Session, department: str, official: User, admin: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _user, generated = accounts.create_staff(
        session, admin, username="minh", full_name="", role="official", department=department, password=None, now=NOW
    )
    reset = accounts.reset_password(session, admin, "minh", NOW)
    accounts.change_own_password(session, Actor.of(official), current=PASSWORD, new="my secret words", now=NOW)
    assert "password of user minh reset by root" in caplog.text
    for secret in (generated, reset, "my secret words", PASSWORD):
        assert secret
        assert secret not in caplog.text
