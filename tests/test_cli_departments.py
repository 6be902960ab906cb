"""`motcua departments import|list` as a user runs them: a real process on a fresh data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.test_cli import motcua

FILE = {
    "departments": [
        {"slug": "desk", "name": "Bộ phận Một cửa", "default": True},
        {"slug": "civil", "name": "Tư pháp – Hộ tịch", "routes": {"categories": ["civil-status"]}},
        {"slug": "police", "name": "Công an", "routes": {"categories": ["residence"], "authorities": ["Công an"]}},
    ]
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_SEED_NATIONAL"] = "false"  # the national procedures only where a test asks for them
    env.update(MOTCUA_DATA_DIR=str(tmp_path / "var"), MOTCUA_EMBEDDER="hash")
    return env


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_import_dry_run_and_list(env: dict[str, str], tmp_path: Path) -> None:
    assert motcua("departments", "list", env=env).stdout.strip() == "no departments"
    done = motcua("departments", "import", str(write(tmp_path / "d.yaml", FILE)), env=env)
    assert "3 created, 0 updated; 3 routing rules, 0 SLA policies" in done.stdout

    moved = {"departments": [{"slug": "land", "name": "Địa chính", "routes": {"categories": ["residence"]}}]}
    done = motcua("departments", "import", "--dry-run", str(write(tmp_path / "m.yaml", moved)), env=env)
    assert "1 created, 0 updated" in done.stdout
    assert "(dry run: nothing written)" in done.stdout
    assert "moved category 'residence': police -> land" in done.stdout

    lines = motcua("departments", "list", env=env).stdout.splitlines()
    assert lines[0].startswith("desk (default)  Bộ phận Một cửa  [0 users]")
    assert [line.split()[0] for line in lines] == ["desk", "civil", "police"]
    assert "category: residence; authority: Công an" in lines[2]


def test_a_bad_file_exits_2_naming_record_and_field(env: dict[str, str], tmp_path: Path) -> None:
    bad = {"departments": [*FILE["departments"], {"slug": "x", "name": "X", "sla": {"normal": {"ack_hours": 0}}}]}
    done = motcua("departments", "import", str(write(tmp_path / "bad.yaml", bad)), env=env, check=False)
    assert done.returncode == 2
    assert "record 4 (slug 'x'): field 'sla.normal.ack_hours': Input should be greater than 0" in done.stderr
    assert "record 4 (slug 'x'): field 'sla.normal.resolve_hours': Field required" in done.stderr
    assert "Traceback" not in done.stderr
    assert motcua("departments", "list", env=env).stdout.strip() == "no departments"

    missing = motcua("departments", "import", str(tmp_path / "none.json"), env=env, check=False)
    assert missing.returncode == 2
    assert "none.json: no such file" in missing.stderr
