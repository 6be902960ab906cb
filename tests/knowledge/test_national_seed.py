"""The national procedures bundled with the package are loaded on start: once, curated ones keep their content."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge.models import Procedure
from knowledge.service import ensure_national_seeded, ensure_seeded

REPO = Path(__file__).resolve().parents[2]


def test_the_national_procedures_load_once_and_curated_ones_keep_their_content(session: Session) -> None:
    ensure_seeded(session)
    curated = session.scalar(select(Procedure).where(Procedure.slug == "household-business-registration"))
    title = curated.text("vi").title
    report = ensure_national_seeded(session)
    assert report is not None
    assert report.created > 2500
    national = session.scalar(select(func.count()).where(Procedure.origin == "national"))
    assert national == report.created
    assert curated.origin == "curated"  # the national record of the same code (1.001612) filled nothing over it
    assert curated.text("vi").title == title
    assert session.scalar(select(func.count()).where(Procedure.code == curated.code)) == 1
    assert ensure_national_seeded(session) is None  # up to date: nothing read again


@pytest.mark.e2e
def test_a_fresh_data_folder_answers_about_a_national_procedure(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env.update(MOTCUA_DATA_DIR=str(tmp_path / "var"), MOTCUA_EMBEDDER="hash", MOTCUA_LOG_LEVEL="WARNING")
    question = "giải quyết khiếu nại về quyết định hành chính đối với lực lượng công an nhân dân cấp trung ương"
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "ask", "--json", question],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert any(c["code"] == "1.000178" for c in answer["candidates"][:3]), answer["candidates"][:3]
