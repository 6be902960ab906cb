"""Two `motcua serve` processes on one PostgreSQL database, each with a data folder of its own (two machines): a
change published through one is answered by both within 2 s, and so is a `motcua kb import` from a shell."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.db import dispose_engines, session_scope
from helpdesk.accounts import create_user
from retrieval.builder import builder_running
from tests.conftest import free_port

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "kb live test password"
WITHIN = 2.0


def serve(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "not ready"
        time.sleep(0.2)


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_SEED_NATIONAL"] = "false"  # the national procedures only where a test asks for them
    env.update(MOTCUA_DATABASE_URL=database_url, MOTCUA_EMBEDDER="hash", MOTCUA_KB_POLL_SECONDS="0.25")
    processes = []
    try:
        for name in ("machine-a", "machine-b"):  # one after the other: the first start seeds the database
            processes.append(serve({**env, "MOTCUA_DATA_DIR": str(tmp_path / name)}))
        with session_scope() as session:
            create_user(session, username="kb.live.admin", password=PASSWORD, role="admin")
        dispose_engines()
        yield [base for _, base in processes], {**env, "MOTCUA_DATA_DIR": str(tmp_path / "shell")}
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            process.communicate(timeout=30)


def card(base: str, question: str) -> str:
    session = f"live-{uuid.uuid4().hex}"
    body = httpx.post(f"{base}/api/chat", json={"session": session, "text": question}, timeout=30).json()
    if body["status"] == "clarify":
        first = body["replies"][0]["buttons"][0]["payload"]
        body = httpx.post(f"{base}/api/chat", json={"session": session, "button": first}, timeout=30).json()
    return "\n".join(r["text"] for r in body["replies"])


def seconds_until(check) -> float:  # noqa: ANN001
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < 30, "never"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_publication_on_one_machine_is_answered_by_both_within_two_seconds(two_servers) -> None:  # noqa: ANN001
    (a, b), shell_env = two_servers
    token = httpx.post(f"{a}/api/auth/token", data={"username": "kb.live.admin", "password": PASSWORD}).json()
    with httpx.Client(base_url=a, timeout=30, headers={"Authorization": f"Bearer {token['access_token']}"}) as admin:
        publish_and_import(admin, a, b, shell_env)


def publish_and_import(admin: httpx.Client, a: str, b: str, shell_env: dict[str, str]) -> None:
    """Publish through machine a; import from a shell; both machines answer from each within 2 s."""
    for data_dir in (Path(shell_env["MOTCUA_DATA_DIR"]).parent / name for name in ("machine-a", "machine-b")):
        seconds_until(lambda d=data_dir: builder_running(d / "index"))  # each machine's index builder is up
    question = "lệ phí đăng ký kết hôn"
    got = admin.get("/api/kb/procedures/marriage-registration")
    record = got.json()["record"]
    record["vi"]["fees"] = "Lệ phí: 77.777 đồng (biểu phí mới)"
    published = admin.put(
        "/api/kb/procedures/marriage-registration",
        json={"record": record, "reason": "new fee", "publish": True},
        headers={"If-Match": got.headers["etag"]},
    )
    assert published.status_code == 200, published.text
    published_at = time.monotonic()
    on_a = seconds_until(lambda: "77.777 đồng" in card(a, question))
    seconds_until(lambda: "77.777 đồng" in card(b, question))
    total_b = time.monotonic() - published_at
    assert on_a <= WITHIN, f"the publishing machine answered after {on_a:.2f} s"
    assert total_b <= WITHIN, f"the other machine answered after {total_b:.2f} s"

    # a shell on a third machine imports a file into the same database: both servers answer from it too
    new = Path(shell_env["MOTCUA_DATA_DIR"]).parent / "fishing.yaml"
    new.write_text(
        "- slug: fishing-licence\n  vi: {title: Cấp giấy phép khai thác thủy sản, aliases: [giấy phép đánh cá]}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "kb", "import", str(new)],
        cwd=REPO, env=shell_env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    imported_at = time.monotonic()
    for base in (a, b):
        seconds_until(lambda base=base: "khai thác thủy sản" in card(base, "xin giấy phép đánh cá"))
    assert time.monotonic() - imported_at <= WITHIN + 1.0  # two servers asked one after the other
