"""Accounts of officials, supervisors and admins: passwords, personal API tokens, access tokens (JWT)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.config import Settings, get_settings
from core.errors import Conflict, Invalid, NotFound, PermissionDenied, Unauthenticated
from helpdesk.events import record_denial, record_event
from helpdesk.models import ApiToken, Department, User
from knowledge.models import utcnow

logger = logging.getLogger(__name__)

ROLES = ("official", "supervisor", "admin")
DEPARTMENT_ROLES = ("official", "supervisor")  # an admin works for no department
USERNAME = re.compile(r"[a-z0-9._-]{3,80}")
MIN_PASSWORD = 8
MAX_PASSWORD = 200  # the dashboard's login form takes no more
MAX_FULL_NAME = 200
PASSWORD_POLICY = (  # the rules of _check_password as the pages say them: Vietnamese, English
    f"Ít nhất {MIN_PASSWORD} ký tự, không trùng tên đăng nhập, không phải một ký tự lặp lại.",
    f"At least {MIN_PASSWORD} characters, not the username, not one character repeated.",
)
# Generated passwords are read off a screen and typed by hand: no 0/O, 1/l/I. 55 symbols x 16 = about 92 bits.
GENERATED_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GENERATED_GROUPS, GENERATED_GROUP_CHARS = 4, 4
# scrypt with N=2^14 (MOTCUA_PASSWORD_SCRYPT_N), r=8, p=1: 16 MiB and ~50 ms per hash, the interactive-login
# parameters of the scrypt paper. Stored in the hash itself, so they can be raised later without breaking existing
# passwords (each is checked with the parameters it was made with).
SCRYPT_R, SCRYPT_P = 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
HASH_BYTES = 32
TOKEN_PREFIX = "mct_"  # noqa: S105 - a marker, not a secret
TOKEN_SHOWN_CHARS = 12  # "mct_" and 8 random characters: enough to recognise a token in a list
_TOKEN_SHAPE = re.compile(r"mct_[A-Za-z0-9_-]{43}")  # token_urlsafe(32) is 43 characters
# last_used_at is a hint for admins, not an audit log: one write a minute per token, not one per request.
LAST_USED_EVERY = dt.timedelta(minutes=1)
JWT_ALGORITHM = "HS256"
JWT_SECRET_FILE = "jwt_secret"  # noqa: S105 - a file name
MIN_JWT_SECRET = 32  # HS256 wants a key at least as long as its 256-bit output (RFC 7518 §3.2)
WRONG_CREDENTIALS = "wrong username or password"


# --- passwords -----------------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """A salted scrypt hash, "scrypt$N$r$p$<salt b64>$<hash b64>"."""
    salt = secrets.token_bytes(16)
    n = get_settings().password_scrypt_n
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=HASH_BYTES)


def verify_password(password: str, stored: str) -> bool:
    """Whether password matches the stored hash (compared in constant time); False for a malformed hash."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
        return hmac.compare_digest(digest, base64.b64decode(expected, validate=True))
    except (ValueError, TypeError):  # wrong field count, bad base64 or numbers, parameters scrypt refuses
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to check unknown usernames against, so they take as long as known ones and do not reveal themselves."""
    return hash_password(secrets.token_urlsafe(16))


def _check_password(password: str, username: str | None = None) -> None:
    """Refuse a new password that is too short or long, the username itself, or one character repeated."""
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"field 'password': at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise Invalid(f"field 'password': at most {MAX_PASSWORD} characters")
    if len(set(password)) == 1:
        raise Invalid("field 'password': must not be one character repeated")
    if username and password.strip().casefold() == username.casefold():
        raise Invalid("field 'password': must not be the username")


def generate_password() -> str:
    """A random password of four dash-separated groups of four unambiguous characters, e.g. 'k7Qm-x3Tp-…'."""
    groups = (
        "".join(secrets.choice(GENERATED_ALPHABET) for _ in range(GENERATED_GROUP_CHARS))
        for _ in range(GENERATED_GROUPS)
    )
    return "-".join(groups)


# --- users ---------------------------------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    department: str | None = None,
    full_name: str = "",
) -> User:
    """A new active user; officials and supervisors belong to an existing department, admins to none."""
    if not USERNAME.fullmatch(username):
        raise Invalid(
            f"field 'username': {username!r} must be 3-80 characters of lower-case letters, digits, '.', '_' or '-'"
        )
    _check_password(password, username)
    if role not in ROLES:
        raise Invalid(f"field 'role': {role!r} is not one of {', '.join(ROLES)}")
    if len(full_name) > MAX_FULL_NAME:
        raise Invalid(f"field 'full_name': at most {MAX_FULL_NAME} characters")
    if role in DEPARTMENT_ROLES:
        if not department:
            raise Invalid(f"field 'department': officials and supervisors need a department (role {role})")
        if session.scalar(select(Department.id).where(Department.slug == department)) is None:
            known = ", ".join(session.scalars(select(Department.slug).order_by(Department.slug))) or "none yet"
            raise Invalid(f"field 'department': unknown department {department!r} (known: {known})")
    elif department:
        raise Invalid("field 'department': an admin belongs to no department")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        department=department if role in DEPARTMENT_ROLES else None,
        full_name=full_name.strip(),
        active=True,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # created by someone else since the check above
        raise Conflict(f"user {username!r} already exists") from None
    logger.info("user %s created (%s%s)", username, role, f", {department}" if user.department else "")
    return user


def get_user(session: Session, username: str) -> User:
    """The user with this username, active or not."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    """Every user, by username."""
    return list(session.scalars(select(User).order_by(User.username)))


def set_password(session: Session, username: str, password: str) -> User:
    """Give the user a new password."""
    _check_password(password, username)
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    session.flush()
    logger.info("password of user %s changed", username)
    return user


def deactivate_user(session: Session, username: str, now: dt.datetime | None = None) -> User:
    """Refuse the user from now on: every login and token, and revoke their API tokens."""
    user = get_user(session, username)
    user.active = False
    revoked_at = now or utcnow()
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)))
    for token in tokens:
        token.revoked_at = revoked_at
    session.flush()
    logger.info("user %s deactivated", username)
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    """The active user with this username and password; the same error for an unknown user and a wrong password."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        verify_password(password, _dummy_hash())  # as slow as a known user: no timing hint that the name is free
        raise Unauthenticated(WRONG_CREDENTIALS)
    if not verify_password(password, user.password_hash):
        raise Unauthenticated(WRONG_CREDENTIALS)
    if not user.active:
        raise Unauthenticated(f"account {username!r} is deactivated; ask an admin")
    return user


@dataclass(frozen=True)
class Actor:
    """Who makes a request: the user's id, name, role and department as the database has them now."""

    user_id: int
    username: str
    role: str
    department: str | None

    @classmethod
    def of(cls, user: User) -> Actor:
        """The actor of a user row."""
        return cls(user_id=user.id, username=user.username, role=user.role, department=user.department)


# --- staff from the dashboard: admins manage accounts, everyone changes their own password ------------------------


def reactivate_user(session: Session, username: str) -> User:
    """Let a deactivated user log in again; the API tokens revoked at deactivation stay revoked."""
    user = get_user(session, username)
    user.active = True
    session.flush()
    logger.info("user %s reactivated", username)
    return user


def require_admin(actor: Actor, action: str, now: dt.datetime, department: str | None = None) -> None:
    """Refuse (audited) anyone but an admin; call it before the action's transaction writes anything."""
    if actor.role == "admin":
        return
    reason = "staff accounts are managed by admins"
    record_denial(None, department, actor=actor.username, user_id=actor.user_id, action=action, reason=reason, now=now)
    raise PermissionDenied(f"{reason}; you are {actor.role} of {actor.department or 'no department'}")


def _audit(session: Session, actor: Actor, kind: str, user: User, now: dt.datetime, **data: Any) -> None:
    """An account change in the audit trail, under the department of the account changed."""
    event = record_event(
        session, None, kind, actor=actor.username, user_id=actor.user_id, now=now, username=user.username, **data
    )
    event.department = user.department


def create_staff(
    session: Session,
    actor: Actor,
    *,
    username: str,
    full_name: str,
    role: str,
    department: str | None,
    password: str | None,
    now: dt.datetime,
) -> tuple[User, str | None]:
    """An official or supervisor made by an admin; without a password one is generated and returned (once)."""
    require_admin(actor, "staff:create", now, department)
    if role not in DEPARTMENT_ROLES:
        # an admin account is the keys to everything: it is made at the server, not by a click
        raise Invalid(
            f"field 'role': {role!r}; the dashboard creates officials and supervisors "
            "(an admin is created with `motcua users create --role admin`)"
        )
    generated = None if password else generate_password()
    user = create_user(
        session,
        username=username,
        password=password or generated or "",
        role=role,
        department=department,
        full_name=full_name,
    )
    _audit(session, actor, "user_created", user, now, role=role, generated_password=generated is not None)
    return user, generated


def reset_password(session: Session, actor: Actor, username: str, now: dt.datetime) -> str:
    """Give a user a new random password and return it: the only time it exists outside its hash. Admins only."""
    require_admin(actor, "staff:reset_password", now)
    if username == actor.username:
        raise Invalid("field 'username': change your own password on the account page (it asks for the current one)")
    user = get_user(session, username)
    password = generate_password()
    user.password_hash = hash_password(password)
    session.flush()
    _audit(session, actor, "password_reset", user, now)
    logger.info("password of user %s reset by %s", username, actor.username)
    return password


def set_active(session: Session, actor: Actor, username: str, active: bool, now: dt.datetime) -> User:
    """Deactivate or reactivate a user (admins only); asking for the state it is in already changes nothing."""
    require_admin(actor, "staff:set_active", now)
    if username == actor.username and not active:
        raise Invalid("field 'username': you cannot deactivate your own account; another admin can")
    user = get_user(session, username)
    if user.active == active:
        return user
    if active:
        reactivate_user(session, username)
    else:
        deactivate_user(session, username, now)
    _audit(session, actor, "user_reactivated" if active else "user_deactivated", user, now)
    return user


def change_own_password(
    session: Session, actor: Actor, *, current: str, new: str, repeated: str | None = None, now: dt.datetime
) -> User:
    """Change the actor's own password after checking the current one (and that the new one was typed twice alike)."""
    user = session.get(User, actor.user_id)
    if user is None or user.username != actor.username or not user.active:
        raise Unauthenticated("this account no longer exists or is deactivated; log in again")
    if not verify_password(current, user.password_hash):
        raise Invalid("field 'current_password': the current password is wrong")
    if repeated is not None and new != repeated:
        raise Invalid("field 'repeated': the two new passwords differ")
    if new == current:
        raise Invalid("field 'password': the new password must differ from the current one")
    _check_password(new, user.username)
    user.password_hash = hash_password(new)
    session.flush()
    _audit(session, actor, "password_changed", user, now)
    logger.info("user %s changed their password", user.username)
    return user


# --- personal API tokens -------------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    session: Session, user: User, *, name: str = "", expires_at: dt.datetime | None = None, now: dt.datetime
) -> tuple[ApiToken, str]:
    """A new API token of the user: its row and the token itself, which is never stored and shown only once."""
    if not user.active:
        raise Invalid(f"user {user.username!r} is deactivated")
    if expires_at is not None and expires_at <= now:
        raise Invalid("field 'expires_at': must be in the future")
    if len(name) > 120:
        raise Invalid("field 'name': at most 120 characters")
    if user.id is None:
        session.flush()
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name.strip(),
        prefix=plaintext[:TOKEN_SHOWN_CHARS],
        token_hash=_token_hash(plaintext),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    logger.info("API token %s issued to %s", token.id, user.username)
    return token, plaintext


def revoke_token(session: Session, token_id_or_prefix: str | int, now: dt.datetime) -> ApiToken:
    """Revoke a token named by its id, its prefix or the whole token; revoking it again changes nothing."""
    key = str(token_id_or_prefix).strip()
    if key.isdigit():
        matches = list(session.scalars(select(ApiToken).where(ApiToken.id == int(key))))
    elif len(key) > TOKEN_SHOWN_CHARS:
        matches = list(session.scalars(select(ApiToken).where(ApiToken.token_hash == _token_hash(key))))
    else:
        matches = list(session.scalars(select(ApiToken).where(ApiToken.prefix == key)))
    if not matches:
        raise NotFound(f"no API token {key[:TOKEN_SHOWN_CHARS]!r}")
    if len(matches) > 1:
        raise Conflict(f"{len(matches)} API tokens start with {key!r}; name the one by its id")
    token = matches[0]
    if token.revoked_at is None:
        token.revoked_at = now
        session.flush()
        logger.info("API token %s revoked", token.id)
    return token


def list_tokens(session: Session, username: str | None = None) -> list[tuple[ApiToken, str]]:
    """Every API token (or one user's) with its owner's username, newest first; never the tokens themselves."""
    stmt = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
    if username is not None:
        stmt = stmt.where(User.id == get_user(session, username).id)
    rows = session.execute(stmt.order_by(ApiToken.created_at.desc(), ApiToken.id.desc()))
    return [(token, owner) for token, owner in rows]


# --- access tokens and bearer checks -------------------------------------------------------------------------------


def signing_key(settings: Settings | None = None) -> str:
    """The key of access tokens: MOTCUA_JWT_SECRET, else a random one created once in data_dir/jwt_secret."""
    settings = settings or get_settings()
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret is not None else None
    return _signing_key(secret, settings.data_dir)  # no resolve(): this runs on every request


@lru_cache(maxsize=8)
def _signing_key(secret: str | None, data_dir: Path) -> str:
    """Read (or create) the key once per process, not on every request."""
    if secret is not None:
        if len(secret) < MIN_JWT_SECRET:
            raise Invalid(f"MOTCUA_JWT_SECRET is too short: at least {MIN_JWT_SECRET} characters")
        return secret
    path = data_dir / JWT_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written to a private temporary file, then linked into place: another process starting at the same
        # moment either wins the link or reads the complete file, never a half-written one.
        temp = data_dir / f".{JWT_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(temp, path)
            logger.info("created a random access-token key in %s", path)
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    key = path.read_text(encoding="ascii").strip()
    if len(key) < MIN_JWT_SECRET:
        raise Invalid(f"{path} holds a key shorter than {MIN_JWT_SECRET} characters; delete it to make a new one")
    return key


def create_access_token(user: User, now: dt.datetime) -> str:
    """A signed access token (JWT, HS256) for the user, valid for MOTCUA_JWT_MINUTES."""
    settings = get_settings()
    issued = int(now.timestamp())
    claims = {
        "sub": user.username,
        "uid": user.id,
        "role": user.role,
        "dept": user.department,
        "iat": issued,
        "exp": issued + settings.jwt_minutes * 60,
    }
    return jwt.encode(claims, signing_key(settings), algorithm=JWT_ALGORITHM)


# Plain columns, not ORM entities: this runs on every API request, and a row of columns is three times cheaper.
_ACTOR_COLUMNS = (User.id, User.username, User.role, User.department, User.active)
_TOKEN_COLUMNS = (ApiToken.id, ApiToken.prefix, ApiToken.expires_at, ApiToken.revoked_at, ApiToken.last_used_at)


def actor_from_bearer(session: Session, token: str, now: dt.datetime) -> Actor:
    """The actor of a bearer token (an API token "mct_…" or an access token); role and department from the database."""
    if token.startswith(TOKEN_PREFIX):
        return _actor_from_api_token(session, token, now)
    uid, username = _access_claims(token, now)
    user = session.execute(select(*_ACTOR_COLUMNS).where(User.id == uid)).first()
    if user is None or user.username != username:  # deleted (and its id perhaps reused)
        raise Unauthenticated("the account of this access token no longer exists")
    if not user.active:
        raise Unauthenticated(f"account {user.username!r} is deactivated")
    return Actor(user_id=user.id, username=user.username, role=user.role, department=user.department)


def _actor_from_api_token(session: Session, token: str, now: dt.datetime) -> Actor:
    if not _TOKEN_SHAPE.fullmatch(token):
        raise Unauthenticated("malformed API token")
    row = session.execute(
        select(*_TOKEN_COLUMNS, *_ACTOR_COLUMNS)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _token_hash(token))
    ).first()
    if row is None:
        raise Unauthenticated("unknown API token")
    token_id, prefix, expires_at, revoked_at, last_used_at, user_id, username, role, department, active = row
    if revoked_at is not None:
        raise Unauthenticated(f"API token {prefix} was revoked")
    if expires_at is not None and expires_at <= now:
        raise Unauthenticated(f"API token {prefix} expired")
    if not active:
        raise Unauthenticated(f"account {username!r} is deactivated")
    if last_used_at is None or now - last_used_at >= LAST_USED_EVERY:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return Actor(user_id=user_id, username=username, role=role, department=department)


def _access_claims(token: str, now: dt.datetime) -> tuple[int, str]:
    """The user id and username of a verified access token; its expiry is checked against `now`, not the clock."""
    try:
        claims = jwt.decode(
            token,
            signing_key(),
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "uid", "exp", "iat"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError:
        raise Unauthenticated("invalid access token: bad signature") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"invalid access token: no {exc.claim!r} claim") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("malformed access token") from None
    exp, uid, sub = claims.get("exp"), claims.get("uid"), claims.get("sub")
    if type(exp) is not int or type(uid) is not int or not isinstance(sub, str):
        raise Unauthenticated("malformed access token")
    if exp <= now.timestamp():
        raise Unauthenticated("access token expired; log in again")
    return uid, sub
