"""One process per data folder holds the background lock; another process sees it taken until it is released."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.leader import become_leader, step_down

REPO = Path(__file__).resolve().parents[2]


def other_process_becomes_leader(data_dir: Path) -> bool:
    code = f"from core.leader import become_leader; print(become_leader(__import__('pathlib').Path({str(data_dir)!r})))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.strip() == "True"


def test_only_one_process_leads_a_data_folder(tmp_path: Path) -> None:
    assert become_leader(tmp_path)
    assert become_leader(tmp_path)  # asking again in the same process keeps it
    assert not other_process_becomes_leader(tmp_path)
    assert other_process_becomes_leader(tmp_path / "elsewhere")  # another data folder has its own lock
    step_down(tmp_path)
    assert other_process_becomes_leader(tmp_path)
