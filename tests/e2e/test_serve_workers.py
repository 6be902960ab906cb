"""`motcua serve --workers 2`: both workers answer the API, one runs the deadline scheduler (one apology)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot.models import ChatMessage, Conversation
from core.db import dispose_engines, session_scope
from helpdesk.accounts import create_user, issue_token
from helpdesk.models import Department, Ticket
from helpdesk.service import open_ticket
from knowledge.models import utcnow
from tests.conftest import free_port

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def test_two_workers_serve_and_one_scheduler_apologises_once(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_SEED_NATIONAL"] = "false"  # the national procedures only where a test asks for them
    env.update(MOTCUA_DATA_DIR=str(data_dir), MOTCUA_EMBEDDER="hash", MOTCUA_BREACH_CHECK_SECONDS="0.5")
    with session_scope() as session:  # a ticket whose acknowledgement deadline passed while nobody ran
        session.add(Department(slug="desk", name="Bàn một cửa", is_default=True))
        session.flush()
        conversation = Conversation(channel="web", user_key="late-1", state={})
        session.add(conversation)
        session.flush()
        long_ago = utcnow().replace(year=2025)
        code = open_ticket(
            session,
            conversation_id=conversation.id,
            channel="web",
            question="Còn ai không?",
            reason="asked_for_person",
            lang="vi",
            now=long_ago,
        ).code
        admin = create_user(session, username="root", password="a long enough password", role="admin")
        session.flush()
        token = issue_token(session, admin, name="t", now=utcnow())[1]
    dispose_engines()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the workers did not get ready"
            time.sleep(0.2)
        workers: dict[int, bool] = {}
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            for _ in range(60):  # new connections are spread over the workers by the kernel
                with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as fresh:
                    response = fresh.get("/api/tickets?status=new")
                    ready = fresh.get("/readyz").json()
                assert response.status_code == 200
                assert response.json()["data"][0]["code"] == code
                workers[ready["worker"]] = ready["leader"]
                if len(workers) == 2:
                    break
            assert sorted(workers.values()) == [False, True], workers  # two workers, one leader
            time.sleep(3)  # several scheduler periods in both workers
            history = client.get(f"/api/tickets/{code}").json()["history"]
        with session_scope() as session:
            apologies = session.scalar(select(func.count()).where(ChatMessage.status == "apology"))
            ticket = session.scalar(select(Ticket).where(Ticket.code == code))
        assert apologies == 1
        assert ticket.apologies == 1
        assert [e["kind"] for e in history].count("breached") == 1
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "Started parent process" in output or "Started server process" in output, output[-2000:]
