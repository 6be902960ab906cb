"""The `motcua` command as a user runs it: a real process, the bundled knowledge base, the default model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DEV_QUESTIONS


def motcua(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the console script's entry point in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"motcua {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A data folder shared by this module's runs, with the default embedder (the bundled e5 model)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_SEED_NATIONAL"] = "false"  # the national procedures only where a test asks for them
    env["MOTCUA_DATA_DIR"] = str(tmp_path_factory.mktemp("cli") / "var")
    return env


@pytest.mark.slow
def test_ask_json_answers_the_lost_id_card_question(cli_env: dict[str, str]) -> None:
    out = json.loads(motcua("ask", "lam lai can cuoc bi mat", "--json", env=cli_env).stdout)
    assert out["status"] == "answered"
    assert out["procedure"] == "id-card-reissue"
    assert out["lang"] == "vi"
    assert out["latency_ms"] > 0
    assert len(out["candidates"]) >= 5
    assert out["candidates"][0] == {
        "slug": "id-card-reissue",
        "code": "1.014064",
        "title": out["candidates"][0]["title"],
        "score": out["candidates"][0]["score"],
    }
    card = out["answer"]
    assert card["documents"]
    assert card["fees"]
    assert card["processing_time"]
    assert card["where_to_file"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "status"),
    [("Giá vàng hôm nay thế nào?", "declined"), ("tôi muốn gặp cán bộ", "escalated")],
)
def test_ask_declines_off_topic_and_escalates_person_requests(
    cli_env: dict[str, str], question: str, status: str
) -> None:
    out = json.loads(motcua("ask", question, "--json", env=cli_env).stdout)
    assert out["status"] == status
    assert out["procedure"] is None


@pytest.mark.slow
def test_eval_prints_metrics_and_writes_results_in_order(cli_env: dict[str, str], tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    lines = [
        {"q": "đăng ký khai sinh cho con", "expect": "birth-registration", "lang": "vi"},
        {"q": "How do I renew my driving licence?", "expect": "driving-licence-renewal", "lang": "en"},
        {"q": "mấy giờ rồi", "expect": None, "lang": "vi"},
        {"q": "Đăng ký khai sinh", "expect_codes": ["1.001193"]},
    ]
    questions.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    results = tmp_path / "out.jsonl"
    done = motcua("eval", str(questions), "--results", str(results), env=cli_env)
    for label in ("R@1", "MRR", "ans-wrong", "off-handled", "p95 ms", "bm25 alone", "dense alone"):
        assert label in done.stdout
    rows = [json.loads(x) for x in results.read_text(encoding="utf-8").splitlines()]
    assert [r["q"] for r in rows] == [x["q"] for x in lines]
    assert rows[0]["candidates"][0]["slug"] == "birth-registration"
    assert {"status", "procedure", "candidates", "lang", "latency_ms"} <= set(rows[1])


@pytest.mark.slow
def test_dev_questions_meet_the_curated_targets(cli_env: dict[str, str], tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    motcua("eval", str(DEV_QUESTIONS), "--metrics-json", str(metrics), env=cli_env)
    table = json.loads(metrics.read_text(encoding="utf-8"))
    assert table["vi"]["recall@1"] >= 0.90
    assert table["vi-nodiac"]["recall@1"] >= 0.85
    assert table["en"]["recall@1"] >= 0.85
    assert table["ko+ru+pl"]["recall@1"] >= 0.60
    assert table["all"]["answered_wrong"] <= 0.03
    assert table["all"]["off_topic_handled"] >= 0.90


def test_bad_import_file_exits_2_with_the_reason(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_SEED_NATIONAL"] = "false"  # the national procedures only where a test asks for them
    env.update(MOTCUA_DATA_DIR=str(tmp_path / "var"), MOTCUA_EMBEDDER="hash")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- slug: x-y\n  vi: {summary: no title}\n", encoding="utf-8")
    done = motcua("kb", "import", str(bad), env=env, check=False)
    assert done.returncode == 2
    assert "field 'vi.title': Field required" in done.stderr
    assert "Traceback" not in done.stderr
    stats = json.loads(motcua("kb", "stats", env=env).stdout)
    assert stats["curated"] == 43
    assert "admin" not in stats


def test_import_national_loads_the_bundled_file_and_names_a_missing_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_SEED_NATIONAL"] = "false"  # the national procedures only where a test asks for them
    env.update(MOTCUA_DATA_DIR=str(tmp_path / "var"), MOTCUA_EMBEDDER="hash")
    done = motcua("kb", "import-national", env=env)
    assert "national_procedures.jsonl.gz: 2607 created, 35 updated" in done.stdout  # 35 codes are curated ones
    assert "\r" not in done.stderr  # a pipe gets progress lines, never a terminal's bar
    stats = json.loads(motcua("kb", "stats", env=env).stdout)
    assert (stats["curated"], stats["national"]) == (43, 2607)
    missing = motcua("kb", "import-national", str(tmp_path / "nope.jsonl.gz"), env=env, check=False)
    assert missing.returncode == 2
    assert "nope.jsonl.gz: no such file; nothing imported" in missing.stderr


def test_export_writes_the_bundled_procedures(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_SEED_NATIONAL"] = "false"  # the national procedures only where a test asks for them
    env.update(MOTCUA_DATA_DIR=str(tmp_path / "var"), MOTCUA_EMBEDDER="hash")
    out = tmp_path / "kb.csv"
    assert "43 procedures written" in motcua("kb", "export", str(out), env=env).stdout
    assert out.read_text(encoding="utf-8").startswith("slug,code,category")


def test_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("ask", "eval", "kb", "index", "calibrate"):
        assert command in done.stdout
