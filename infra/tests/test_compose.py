"""``compose.yaml``: valid against the Compose Specification's JSON schema, and every reference
in it resolves (Dockerfiles, mounted files, settings, ``.env.example``, scrape targets, topics).
There is no container engine here, so the stack itself is not started; its PostgreSQL init
script is run against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import pytest
import yaml
from sqlalchemy.engine import make_url

from mkinfra.deploy import DEPLOYABLES, ROOT, kafka_topics_script, parse_dockerfile
from mkinfra.envexample import COMPOSE_VARIABLES, all_env_names
from mkinfra.postgres import find_postgres_bin

COMPOSE = ROOT / "compose.yaml"
SCHEMA = Path(__file__).parent / "data" / "compose-spec" / "compose-spec.json"
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def platform(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from the repository's Dockerfiles, by name."""
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def env_example_names() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_check_is_live(compose: dict[str, Any]) -> None:
    """A misspelt key and a wrong type are refused by the same validator."""
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["gateway"]["depends_on"]["postgres"]["condition"] = "service_ready"
    broken["services"]["redis"]["helthcheck"] = {}
    messages = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(broken)]
    assert len(messages) >= 2, messages


def test_every_deployable_is_built_from_its_dockerfile(
    platform: dict[str, dict[str, Any]],
) -> None:
    assert set(platform) == {d.name for d in DEPLOYABLES}
    for d in DEPLOYABLES:
        svc = platform[d.name]
        assert svc["build"]["context"] == "."
        dockerfile = ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]
        assert dockerfile.resolve() == d.dockerfile
        assert dockerfile.exists()
        assert svc["image"] == d.image


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        image = svc["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image}"


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
        for env_file in svc.get("env_file", []):
            path = env_file["path"] if isinstance(env_file, dict) else env_file
            required = env_file.get("required", True) if isinstance(env_file, dict) else True
            assert not required or (ROOT / path).exists(), f"{name}: {path}"


def test_dependencies_exist_and_wait_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    dockerfiles = {d.name: parse_dockerfile(d.dockerfile)[-1] for d in DEPLOYABLES}
    for name, svc in services.items():
        for dep, rule in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            condition = rule["condition"]
            if condition == "service_healthy":
                has_check = "healthcheck" in services[dep] or (
                    dep in dockerfiles and dockerfiles[dep].all("HEALTHCHECK")
                )
                assert has_check, f"{name} waits for {dep}'s health, which has no check"
    gateway = services["gateway"]["depends_on"]
    for d in DEPLOYABLES:
        if d.name not in ("gateway", "citizen-portal", "staff-console"):  # the front-ends: below
            assert gateway[d.name]["condition"] == "service_healthy"
            deps = services[d.name]["depends_on"]
            assert deps["kafka"]["condition"] == "service_healthy"
            assert deps["postgres"]["condition"] == "service_healthy"
            assert deps["kafka-topics"]["condition"] == "service_completed_successfully"
    for frontend in ("citizen-portal", "staff-console"):  # the gateway's API only
        assert services[frontend]["depends_on"] == {"gateway": {"condition": "service_healthy"}}


def test_platform_environment_is_real_settings_documented_in_env_example(
    platform: dict[str, dict[str, Any]],
) -> None:
    settings = all_env_names()
    documented = env_example_names()
    for name, svc in platform.items():
        for variable in svc.get("environment", {}):
            assert variable in settings, f"{name}: {variable} is not a setting of any component"
            assert variable in documented, f"{name}: {variable} is not in .env.example"


def test_every_interpolated_variable_is_documented() -> None:
    used = {m.group(1): m.group(2) for m in INTERPOLATION.finditer(COMPOSE.read_text())}
    assert used
    documented = env_example_names()
    compose_vars = {v.name: v for v in COMPOSE_VARIABLES}
    settings = all_env_names()
    for variable, operator in used.items():
        assert variable in documented, f"${{{variable}}} is not in .env.example"
        assert variable in compose_vars or variable in settings, variable
        if operator == ":?" and variable in compose_vars:
            assert compose_vars[variable].required, f"{variable} is required by compose.yaml"
    # and .env.example lists no compose variable compose.yaml does not use
    assert set(compose_vars) <= set(used)


def test_prometheus_scrapes_every_deployable() -> None:
    config = yaml.safe_load((ROOT / "infra/compose/prometheus.yml").read_text())
    targets = {
        (job["job_name"], target, job.get("metrics_path", "/metrics"))
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for d in DEPLOYABLES:
        if d.metrics:
            assert (d.name, f"{d.name}:{d.port}", "/metrics") in targets


def test_grafana_provisions_the_dashboards_folder(compose: dict[str, Any]) -> None:
    provider = yaml.safe_load(
        (ROOT / "infra/compose/grafana/provisioning/dashboards/platform.yaml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./infra/grafana/dashboards:{path}:ro" in mounts
    datasources = yaml.safe_load(
        (ROOT / "infra/compose/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    (source,) = datasources["datasources"]
    assert source["uid"] == "prometheus" and source["url"] == "http://prometheus:9090"


def test_services_export_traces_to_the_collector(platform: dict[str, dict[str, Any]]) -> None:
    collector = yaml.safe_load((ROOT / "infra/compose/otel-collector.yaml").read_text())
    http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http.endswith(":4318")
    for name, svc in platform.items():
        assert svc["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_kafka_topics_script_matches_the_topic_registry() -> None:
    script = ROOT / "infra/compose/kafka/create-topics.sh"
    assert script.read_text() == kafka_topics_script(), (
        "run `python -m mkinfra.deploy kafka-topics > infra/compose/kafka/create-topics.sh`"
    )
    out = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# --------------------------------------------------------------------------- PostgreSQL init


ROLES = ("citizen_services", "inclusion", "notifications", "gateway")


@pytest.mark.postgres
async def test_postgres_init_script_creates_one_isolated_database_per_component(
    postgres_admin_url: str,
) -> None:
    url = make_url(postgres_admin_url)
    # passwords psql must quote, never the shell or SQL
    passwords = {role: f"pw'; DROP ROLE x; -- $HOME {uuid.uuid4().hex}" for role in ROLES}
    env = {
        **os.environ,
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "postgres",
        **{f"{role.upper()}_DB_PASSWORD": pw for role, pw in passwords.items()},
    }
    if url.password:
        env["PGPASSWORD"] = url.password
    bin_dir = find_postgres_bin()  # psql beside the server mkinfra runs, if not on PATH
    if bin_dir is not None:
        env["PATH"] = f"{env['PATH']}:{bin_dir}"
    script = ROOT / "infra/compose/postgres/init-databases.sh"
    admin = await asyncpg.connect(postgres_admin_url, timeout=30)
    try:
        for _ in range(2):  # and again: it is idempotent
            out = await asyncio.to_thread(
                subprocess.run,
                ["bash", str(script)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert out.returncode == 0, out.stdout + out.stderr
        for role in ROLES:
            owner = await admin.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", role
            )
            assert owner == role
            stored = await admin.fetchval(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role
            )
            assert stored and stored.startswith(("SCRAM-SHA-256$", "md5"))
        # each role works in its own database and cannot connect to another's
        base = url.set(username="citizen_services", password=passwords["citizen_services"])
        own = await asyncpg.connect(
            base.set(database="citizen_services").render_as_string(hide_password=False),
            timeout=30,
        )
        await own.execute("CREATE TABLE t (id int)")
        await own.close()
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            other = await asyncpg.connect(
                base.set(database="inclusion").render_as_string(hide_password=False),
                timeout=30,
            )
            await other.close()
        # a missing password stops it with a message, not a role without one
        env.pop("GATEWAY_DB_PASSWORD")
        out = await asyncio.to_thread(
            subprocess.run, ["bash", str(script)], env=env, capture_output=True, text=True
        )
        assert out.returncode != 0 and "no password for gateway" in out.stderr
    finally:
        for role in ROLES:
            await admin.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
