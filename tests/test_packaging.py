"""Packaging without containers: `make run` installs the runtime only, the Dockerfile installs
with the same script, and compose.yaml and the systemd units use settings that exist, agree
with each other and are the ones docs/deployment.md documents."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from anigraph.cli import app
from anigraph.settings import env_name, load

ROOT = Path(__file__).resolve().parents[1]
INSTALL = "scripts/install-venv.sh"


def _dry_run(target: str, venv: Path) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_run_installs_the_runtime_only(tmp_path: Path) -> None:
    commands = _dry_run("run", tmp_path / "venv")
    assert f"{INSTALL} {tmp_path / 'venv'} -e ." in commands
    assert "[dev]" not in commands
    assert f"{tmp_path / 'venv'}/bin/anigraph serve" in commands


def test_make_test_installs_the_dev_extras(tmp_path: Path) -> None:
    commands = _dry_run("test", tmp_path / "venv")
    assert f"{INSTALL} {tmp_path / 'venv'} -e '.[dev]'" in commands
    assert "pytest" in commands


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            rows.append((word.upper(), rest.strip()))
    return rows


def _docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in _dockerfile():
        if word == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def test_dockerfile_is_a_lean_non_root_runtime_image() -> None:
    rows = _dockerfile()
    runs = [rest for word, rest in rows if word == "RUN"]
    assert any(rest == f"sh {INSTALL} /opt/anigraph ." for rest in runs), runs
    assert not any("[dev]" in rest for rest in runs)
    env = _docker_env()
    users = [rest for word, rest in rows if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    volumes = [rest for word, rest in rows if word == "VOLUME"]
    assert volumes and env["ANIGRAPH_DATA_DIR"] in volumes[-1]
    (health,) = [rest for word, rest in rows if word == "HEALTHCHECK"]
    assert "/healthz" in health and "ANIGRAPH_PORT" in health
    assert ("EXPOSE", env["ANIGRAPH_PORT"]) in rows
    # Every ANIGRAPH_ variable of the image is a real setting, and they load.
    settings_env = {k: v for k, v in env.items() if k.startswith("ANIGRAPH_")}
    assert settings_env
    _load_env(settings_env)


def _load_env(env: dict[str, str]) -> Any:
    import os

    known = {env_name(name) for name in load().__dataclass_fields__}
    unknown = sorted(set(env) - known)
    assert not unknown, f"not settings: {unknown}"
    saved = {k: os.environ.get(k) for k in env}
    try:
        os.environ.update(env)
        return load()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _interpolate(value: Any) -> Any:
    """Compose's ${NAME:-default} with nothing set, and $$ as a literal $."""
    if isinstance(value, str):
        value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return dict(_interpolate(loaded)["services"])


def _anigraph_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose.items() if s.get("build") == "."}


def test_compose_runs_the_documented_stack(compose: dict[str, Any]) -> None:
    assert set(compose) == {
        "postgres", "redis", "minio", "bucket", "api", "celery-worker", "worker"
    }  # fmt: skip
    services = _anigraph_services(compose)
    assert set(services) == {"api", "celery-worker", "worker"}
    commands = {name: s["command"][0] for name, s in services.items()}
    assert commands == {"api": "serve", "celery-worker": "celery-worker", "worker": "worker"}
    for name, command in commands.items():
        assert command in app.commands, (name, command)
    for backend in ("postgres", "redis", "minio"):
        assert "healthcheck" in compose[backend], backend


def test_compose_settings_agree_with_the_backends(compose: dict[str, Any]) -> None:
    postgres = compose["postgres"]["environment"]
    minio = compose["minio"]["environment"]
    bucket_command = " ".join(compose["bucket"]["command"])
    for name, service in _anigraph_services(compose).items():
        env = {k: str(v) for k, v in service["environment"].items()}
        settings = _load_env({k: v for k, v in env.items() if k.startswith("ANIGRAPH_")})
        db = urlsplit(settings.db)
        assert db.scheme == "postgresql+psycopg", name
        assert (db.hostname, db.username, db.password, db.path) == (
            "postgres",
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            "/" + postgres["POSTGRES_DB"],
        ), name
        assert urlsplit(settings.queue).hostname == "redis", name
        store = urlsplit(settings.store)
        assert store.scheme == "s3" and f"mb --ignore-existing store/{store.netloc}" in (
            bucket_command
        )
        endpoint = urlsplit(parse_qs(store.query)["endpoint_url"][0])
        assert endpoint.hostname == "minio", name
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
            minio["MINIO_ROOT_USER"],
            minio["MINIO_ROOT_PASSWORD"],
        ), name
        depends = service["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["bucket"]["condition"] == "service_completed_successfully"
        if name != "api":
            assert service["healthcheck"] == {"disable": True}, "workers have no /healthz"
            assert settings.worker_slots >= 1
    api = compose["api"]
    merged = {**_docker_env(), **{k: str(v) for k, v in api["environment"].items()}}
    settings = _load_env({k: v for k, v in merged.items() if k.startswith("ANIGRAPH_")})
    assert settings.serve_slots == 0, "with a queue, the API runs no workers"
    (published,) = api["ports"]
    host_ip, host_port, container_port = published.split(":")
    assert host_ip == "127.0.0.1" and int(container_port) == settings.port
    assert urlsplit(settings.public_url).port == int(host_port)
    assert any(v.endswith(":" + str(settings.data_dir)) for v in api["volumes"])


def test_deployment_doc_documents_the_compose_settings(compose: dict[str, Any]) -> None:
    doc = (ROOT / "docs" / "deployment.md").read_text()
    for name, service in compose.items():
        assert f"`{name}`" in doc, name
        for key in service.get("environment") or {}:
            assert f"`{key}`" in doc, (name, key)
    for path in ("compose.yaml", "Dockerfile", "deploy/systemd/", INSTALL):
        assert path in doc, path


@pytest.mark.parametrize("unit", ["anigraph.service", "anigraph-worker.service"])
def test_systemd_units(unit: str) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "deploy" / "systemd" / unit)
    service = parser["Service"]
    assert service["User"] not in ("root", "0")
    binary, command = shlex.split(service["ExecStart"])
    assert binary == "/opt/anigraph/venv/bin/anigraph" and command in app.commands
    assert service["EnvironmentFile"] == "/etc/anigraph/anigraph.env"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > load().task_deadline_seconds
    env = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / "systemd" / "anigraph.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    settings = _load_env({k: v for k, v in env.items() if k.startswith("ANIGRAPH_")})
    assert str(settings.data_dir) == "/var/lib/" + service["StateDirectory"]
