"""`motcua users …` and `motcua tokens …` as an admin runs them: real processes on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db import session_scope
from core.errors import Unauthenticated
from helpdesk import accounts
from helpdesk.models import ApiToken, Department
from knowledge.models import utcnow

PASSWORD = "a long enough password"


@pytest.fixture
def env(database_url: str, data_dir: Path) -> dict[str, str]:
    """The environment of a `motcua` process on the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_SEED_NATIONAL"] = "false"  # the national procedures only where a test asks for them
    env.update(MOTCUA_DATA_DIR=str(data_dir), MOTCUA_DATABASE_URL=database_url, MOTCUA_EMBEDDER="hash")
    return env


def motcua(*args: str, env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter, with no terminal on stdin, and check its exit code."""
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == code, f"motcua {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    return done


@pytest.fixture
def desk(database_url: str) -> str:
    with session_scope() as session:
        session.add(Department(slug="desk-a", name="Bàn A"))
    return "desk-a"


def test_users_create_list_and_deactivate(env: dict[str, str], desk: str) -> None:
    done = motcua(
        "users",
        "create",
        "--username",
        "lan",
        "--password",
        PASSWORD,
        "--role",
        "official",
        "--department",
        desk,
        "--full-name",
        "Nguyễn Thị Lan",
        env=env,
    )
    assert done.stdout.strip() == "created official lan of desk-a"
    admin = motcua(
        "users", "create", "--username", "root", "--role", "admin", env={**env, "MOTCUA_NEW_PASSWORD": "xy" * 6}
    )
    assert admin.stdout.strip() == "created admin root"
    for output in (done.stdout + done.stderr, admin.stdout + admin.stderr):
        assert PASSWORD not in output
        assert "xy" * 6 not in output
    with session_scope() as session:
        assert accounts.authenticate(session, "lan", PASSWORD).full_name == "Nguyễn Thị Lan"
        assert accounts.authenticate(session, "root", "xy" * 6).role == "admin"

    lines = motcua("users", "list", env=env).stdout.splitlines()
    assert lines == [
        "username\trole\tdepartment\tactive\tfull name",
        "lan\tofficial\tdesk-a\tyes\tNguyễn Thị Lan",
        "root\tadmin\t-\tyes\t",
    ]
    assert motcua("users", "deactivate", "lan", env=env).stdout.startswith("deactivated lan")
    assert "lan\tofficial\tdesk-a\tno\t" in motcua("users", "list", env=env).stdout
    with session_scope() as session, pytest.raises(Unauthenticated, match="deactivated"):
        accounts.authenticate(session, "lan", PASSWORD)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--username", "Lan!", "--password", PASSWORD, "--role", "admin"], "field 'username': 'Lan!' must be"),
        (["--username", "lan", "--password", "short", "--role", "admin"], "field 'password': at least 8 characters"),
        (["--username", "lan", "--role", "admin"], "no password: give --password, set MOTCUA_NEW_PASSWORD"),
        (["--username", "lan", "--password", PASSWORD, "--role", "official"], "officials and supervisors need a"),
        (
            ["--username", "lan", "--password", PASSWORD, "--role", "official", "--department", "nowhere"],
            "unknown department 'nowhere' (known: desk-a)",
        ),
        (["--username", "lan", "--password", PASSWORD, "--role", "root"], "invalid choice: 'root'"),
    ],
)
@pytest.mark.usefixtures("desk")
def test_users_create_refuses_bad_input_with_one_clear_line(env: dict[str, str], args: list[str], message: str) -> None:
    done = motcua("users", "create", *args, env=env, code=2)
    assert message in done.stderr
    assert done.stdout == ""
    with session_scope() as session:
        assert accounts.list_users(session) == []


def test_duplicates_and_unknown_names_are_refused(env: dict[str, str]) -> None:
    motcua("users", "create", "--username", "hoa", "--password", PASSWORD, "--role", "admin", env=env)
    again = motcua("users", "create", "--username", "hoa", "--password", PASSWORD, "--role", "admin", env=env, code=2)
    assert again.stderr.strip() == "motcua: user 'hoa' already exists"
    assert motcua("users", "deactivate", "ghost", env=env, code=2).stderr.strip() == "motcua: no user 'ghost'"
    assert "no user 'ghost'" in motcua("tokens", "issue", "--username", "ghost", env=env, code=2).stderr
    assert "no API token 'mct_nothere'" in motcua("tokens", "revoke", "mct_nothere", env=env, code=2).stderr


def test_tokens_issue_list_and_revoke(env: dict[str, str], desk: str) -> None:
    motcua(
        "users",
        "create",
        "--username",
        "minh",
        "--password",
        PASSWORD,
        "--role",
        "supervisor",
        "--department",
        desk,
        env=env,
    )
    issued = motcua("tokens", "issue", "--username", "minh", "--name", "reports script", "--days", "30", env=env)
    token = issued.stdout.strip()
    assert token.startswith("mct_")
    assert len(token) == 47
    assert "it will not be shown again" in issued.stderr
    assert token not in issued.stderr
    with session_scope() as session:
        assert accounts.actor_from_bearer(session, token, utcnow()).role == "supervisor"
        row = session.scalar(select(ApiToken))
        assert row.expires_at is not None
        assert 29 < (row.expires_at - utcnow()).total_seconds() / 86400 <= 30
        token_hash = row.token_hash

    never = motcua("tokens", "issue", "--username", "minh", "--days", "0", env=env)
    assert "never expires" in never.stderr
    listing = motcua("tokens", "list", "--username", "minh", env=env).stdout
    assert listing.splitlines()[0] == "id\tprefix\tuser\tname\tcreated\texpires\trevoked\tlast used"
    assert f"\t{token[:12]}\tminh\treports script\t" in listing
    assert len(listing.splitlines()) == 3
    for secret in (token, token_hash, never.stdout.strip()):
        assert secret not in listing

    revoked = motcua("tokens", "revoke", token[:12], env=env)
    assert revoked.stdout.strip() == f"API token {row.id} ({token[:12]}) revoked"
    with session_scope() as session, pytest.raises(Unauthenticated, match="was revoked"):
        accounts.actor_from_bearer(session, token, utcnow())
    rows = [line.split("\t") for line in motcua("tokens", "list", env=env).stdout.splitlines()[1:]]
    assert {row[1]: row[6] != "-" for row in rows} == {token[:12]: True, never.stdout.strip()[:12]: False}


def test_an_official_of_a_bundled_department_before_the_first_start(env: dict[str, str]) -> None:
    motcua("users", "create", "--username", "root", "--password", PASSWORD, "--role", "admin", env=env)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Department)) == 0  # an admin needs no departments
    done = motcua(
        "users",
        "create",
        "--username",
        "thu",
        "--password",
        PASSWORD,
        "--role",
        "official",
        "--department",
        "civil-status",
        env=env,
    )
    assert done.stdout.strip() == "created official thu of civil-status"
    assert "created the bundled departments" in done.stderr
