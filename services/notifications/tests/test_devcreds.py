"""``python -m notifications.devcreds``: the four NOTIFY_* lines, other lines kept, stable keys."""

from __future__ import annotations

import stat
from pathlib import Path

from notifications.devcreds import main, read_env, write_dev_notify_credentials
from notifications.domain.notify import split_api_key

VARIABLES = {
    "NOTIFY_API_KEY",
    "NOTIFY_TEST_API_KEY",
    "NOTIFY_EMAIL_TEMPLATE_ID",
    "NOTIFY_SMS_TEMPLATE_ID",
}


async def test_appends_its_lines_keeps_others_and_is_idempotent(
    database_url: str, tmp_path: Path
) -> None:
    env = tmp_path / "dev-credentials.env"
    env.write_text("# tokens\nSTAFF_TOKEN=abc\nNOTIFY_API_KEY=stale\n")
    first = await write_dev_notify_credentials(tmp_path, database_url)
    assert set(first) == VARIABLES
    assert env.read_text().startswith("# tokens\nSTAFF_TOKEN=abc\n")
    assert read_env(env) == {"STAFF_TOKEN": "abc", **first}
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    service_id, secret = split_api_key(first["NOTIFY_API_KEY"])
    assert len(service_id) == 36 and len(secret) == 36
    assert first["NOTIFY_API_KEY"] != first["NOTIFY_TEST_API_KEY"]

    assert await write_dev_notify_credentials(tmp_path, database_url) == first
    env.write_text("STAFF_TOKEN=new\n")  # gateway.devcreds rewrote the file
    assert await write_dev_notify_credentials(tmp_path, database_url) == first
    assert read_env(env) == {"STAFF_TOKEN": "new", **first}


def test_command_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NOTIFICATIONS_DATABASE_URL", f"sqlite:///{tmp_path}/n.sqlite3")
    assert main(["--var", str(tmp_path / "var")]) == 0
    assert set(read_env(tmp_path / "var" / "dev-credentials.env")) == VARIABLES
