"""The API-key CLI (as a subprocess, like an operator runs it) and the dev credentials."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.auth import AuthFailed
from gateway.auth import cli as cli_module
from gateway.auth.settings import AuthSettings
from gateway.auth.testing import auth_settings, running_authenticator
from gateway.devcreds import DEV_KEYS, DEV_TOKENS, ensure_dev_credentials, read_env_file
from gateway.routes import AuthMode, Route
from servicekit.identity import AuthMethod, Role

ROUTE = Route("/api/v1/events", "citizen-services")
OPEN311 = Route("/open311/v2", "citizen-services", auth=AuthMode.OPEN311)


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "gateway.auth.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_cli_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/gateway.sqlite3"
    created = await asyncio.to_thread(
        cli,
        url,
        "create",
        "--name",
        "FixMyStreet MK",
        "--role",
        "partner",
        "--scope",
        "open311",
        "--scope",
        "events:read",
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("mk_") and "\n" not in key  # stdout: the key and nothing else
    key_id = key.split("_")[1]
    assert key_id in created.stderr and key not in created.stderr

    async with running_authenticator(auth_settings(url)) as auth:
        principal = await auth.authenticate({}, f"api_key={key}", OPEN311)
        assert principal.key_id == key_id and principal.scopes == {"open311", "events:read"}

        listed = await asyncio.to_thread(cli, url, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [row] = [json.loads(line) for line in listed.stdout.splitlines()]
        assert row["id"] == key_id and row["name"] == "FixMyStreet MK"
        assert row["scopes"] == ["open311", "events:read"] and row["revoked_at"] is None
        assert key.split("_", 2)[2] not in listed.stdout

        revoked = await asyncio.to_thread(cli, url, "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        with pytest.raises(AuthFailed, match="revoked"):
            await auth.authenticate({"x-api-key": key}, "", ROUTE)

    # The rest in-process (same code, without paying for a Python start each time).
    settings = AuthSettings(database_url=url)

    async def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await cli_module.run(cli_module._parser().parse_args(args), settings)
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await run("list")
    assert code == 0 and key_id in out and "FixMyStreet MK" in out
    assert (await run("revoke", key_id))[0] == 0  # idempotent
    code, out, _ = await run("list", "--json")
    assert json.loads(out)["revoked_by"] == "cli"
    assert (await run("list", "--active", "--json"))[1] == ""
    code, _, err = await run("revoke", "nokey000")
    assert code == 1 and "no API key" in err
    code, _, err = await run("create", "--name", "x", "--scope", "NOT OK")
    assert code == 2 and "Scopes" in err


async def test_devcreds_writes_working_credentials(tmp_path: Path) -> None:
    var = tmp_path / "var"
    db_url = f"sqlite:///{var}/gateway/gateway.sqlite3"
    creds = await ensure_dev_credentials(var, AuthSettings(database_url=db_url))
    path = var / "dev-credentials.env"
    assert creds.path == path and file_mode(path) == 0o600
    assert file_mode(var / "dev-issuer" / "signing-key.pem") == 0o600
    text = path.read_text()
    assert text.startswith("#")
    values = read_env_file(path)
    expected = {
        "GATEWAY_JWT_JWKS_FILE",
        "GATEWAY_JWT_ISSUER",
        "GATEWAY_JWT_AUDIENCE",
        "STAFF_TOKEN",
        "CITIZEN_TOKEN",
        "CITIZEN2_TOKEN",
        "ADMIN_TOKEN",
        "PARTNER_API_KEY",
        "OPEN311_API_KEY",
    }
    assert set(values) == expected and values == creds.values

    # The gateway configured from the file accepts every credential in it.
    settings = AuthSettings(
        database_url=db_url,
        api_key_cache_seconds=0,
        jwt_jwks_file=Path(values["GATEWAY_JWT_JWKS_FILE"]),
        jwt_issuer=values["GATEWAY_JWT_ISSUER"],
        jwt_audience=values["GATEWAY_JWT_AUDIENCE"],
    )
    async with running_authenticator(settings) as auth:
        subjects = {}
        for token in DEV_TOKENS:
            principal = await auth.authenticate(
                {"authorization": f"Bearer {values[token.variable]}"}, "", ROUTE
            )
            assert principal.method is AuthMethod.JWT and principal.roles == set(token.roles)
            subjects[token.variable] = principal.subject
        assert subjects == {
            "STAFF_TOKEN": "staff-dev-1",
            "CITIZEN_TOKEN": "citizen-dev-1",
            "CITIZEN2_TOKEN": "citizen-dev-2",
            "ADMIN_TOKEN": "admin-dev-1",
        }
        partner = await auth.authenticate({"x-api-key": values["PARTNER_API_KEY"]}, "", ROUTE)
        assert partner.roles == {Role.PARTNER} and partner.scopes == {
            "events:subscribe",
            "events:catalogue",
            "events:service-requests",
        }
        open311 = await auth.authenticate({}, f"api_key={values['OPEN311_API_KEY']}", OPEN311)
        assert open311.scopes == {"open311"}

    # Run again: the keys are kept, the tokens are fresh.
    again = await ensure_dev_credentials(var, AuthSettings(database_url=db_url))
    for spec in DEV_KEYS:
        assert again.values[spec.variable] == values[spec.variable]

    # Lose the env file: new keys, and the old ones (whose secrets are gone) revoked.
    path.unlink()
    fresh = await ensure_dev_credentials(var, AuthSettings(database_url=db_url))
    async with running_authenticator(settings) as auth:
        for spec in DEV_KEYS:
            assert fresh.values[spec.variable] != values[spec.variable]
            assert await auth.authenticate({"x-api-key": fresh.values[spec.variable]}, "", ROUTE)
            with pytest.raises(AuthFailed, match="revoked"):
                await auth.authenticate({"x-api-key": values[spec.variable]}, "", ROUTE)
        active = await auth.store.list_keys(include_revoked=False)
        assert sorted(k.name for k in active) == ["dev open311", "dev partner"]


def test_devcreds_command_prints_no_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_DATABASE_URL"] = f"sqlite:///{tmp_path}/var/gateway/gateway.sqlite3"
    done = subprocess.run(
        [sys.executable, "-m", "gateway.devcreds", "--var", "var"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    values = read_env_file(tmp_path / "var" / "dev-credentials.env")
    output = done.stdout + done.stderr
    assert "dev-credentials.env" in output
    for name, value in values.items():
        if not name.startswith("GATEWAY_"):
            assert value not in output
    assert Path(values["GATEWAY_JWT_JWKS_FILE"]).is_absolute()
