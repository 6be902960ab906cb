"""A clone runs alone: nothing refers to a folder beside the repository, and a lone clone collects every test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# Written in two pieces so that this file does not match itself.
OUTSIDE = re.compile(r"\.\." + r"[/\\]shared\b|/\s*[\"']shared[\"']")
CHECKED_FOLDERS = (
    *("tests", "benchmarks", "scripts", ".ci"),
    *("core", "knowledge", "retrieval", "bot", "helpdesk", "admin_api"),
)
CHECKED_FILES = ("README.md", "DESIGN.md", "BENCHMARKS.md", "pyproject.toml", "Dockerfile", "docker-compose.yml")
TEXT_SUFFIXES = {".py", ".sh", ".md", ".toml", ".yaml", ".yml", ".json", ".jsonl", ".ini", ".txt", ".html", ".js", ""}


def git(*args: str, cwd: Path = REPO) -> str:
    """Output of a git command in the repository; a missing git or work tree fails the test."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()} (the tests need a git checkout)")
    return done.stdout


def project_files() -> list[Path]:
    """The files a clone of the working tree holds (tracked and new ones, not ignored ones)."""
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    return [REPO / name for name in listed if name and (REPO / name).is_file()]


def test_no_file_refers_to_a_folder_outside_the_repository() -> None:
    offenders = []
    for path in project_files():
        rel = path.relative_to(REPO)
        if rel.parts[0] not in CHECKED_FOLDERS and rel.as_posix() not in CHECKED_FILES:
            continue
        if path.suffix not in TEXT_SUFFIXES:
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{rel}:{lineno}: {line.strip()[:100]}")
    assert not offenders, "these lines reach outside the repository:\n" + "\n".join(offenders)
    assert len(project_files()) > 100  # the walk saw the project, not an empty listing


def test_the_readme_commands_stay_inside_the_repository() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = "\n".join(re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S))
    assert "motcua kb import-national" in commands
    assert "../" not in commands
    for path in re.findall(r"\b(?:tests|benchmarks|scripts)/[\w./-]+\.\w+", commands):
        assert (REPO / path).is_file(), f"README names {path}, which is not in the repository"


def test_the_checker_catches_references_outside() -> None:
    assert OUTSIDE.search('SHARED = REPO.parent / "' + 'shared"')
    assert OUTSIDE.search("motcua eval .." + "/shared/eval/questions_dev.jsonl")
    assert OUTSIDE.search("Path(__file__).resolve().parents[2].parent / '" + "shared' / 'data'")
    assert not OUTSIDE.search("figures and citizens' questions stay out of shared caches")


def test_a_clone_alone_in_an_empty_folder_collects_every_test_and_runs_some(tmp_path: Path) -> None:
    alone = tmp_path / "empty" / "motcua"
    alone.parent.mkdir()
    git("clone", "--quiet", "--no-hardlinks", str(REPO), str(alone))
    # The working tree as it would be committed: changed and new files over the clone, deleted ones gone.
    changed = git("diff", "--name-only", "--diff-filter=d", "-z", "HEAD")
    changed += git("ls-files", "--others", "--exclude-standard", "-z")
    for name in filter(None, changed.split("\0")):
        (alone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, alone / name)
    for name in filter(None, git("diff", "--name-only", "--diff-filter=D", "-z", "HEAD").split("\0")):
        (alone / name).unlink(missing_ok=True)
    assert sorted(p.name for p in alone.parent.iterdir()) == ["motcua"]  # nothing beside it
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_SEED_NATIONAL"] = "false"  # the national procedures only where a test asks for them
    where = subprocess.run(
        [sys.executable, "-c", "import knowledge, tests.conftest as c; print(knowledge.__file__, c.REPO)"],
        cwd=alone, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert all(Path(p).resolve().is_relative_to(alone.resolve()) for p in where), where  # the clone's code
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=alone, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert "error" not in collected.stdout.lower().split("\n")[-2]
    count = int(re.search(r"(\d+) tests? collected", collected.stdout).group(1))
    assert count > 800
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/knowledge/test_national.py",
         "tests/test_self_contained.py::test_no_file_refers_to_a_folder_outside_the_repository"],
        cwd=alone, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert " passed" in ran.stdout.splitlines()[-1]
