"""Previewing an edit not saved yet (``POST /api/v1/templates/{id}/preview`` with ``body``,
``subject`` and ``show_missing``), on SQLite and PostgreSQL: the draft's text is rendered
with the SMS fragment count, placeholders without a value shown as written, nothing stored;
without ``show_missing`` a missing value is still refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mkinfra.smtp_sink import SmtpSink
from notifications.config import Settings
from notifications.main import create_app
from servicekit.testing import identity_headers, running_app


def staff() -> dict[str, str]:
    return identity_headers("staff-test-1", "staff")


@pytest.fixture
async def http(
    database_url: str, smtp_sink: SmtpSink, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        messaging_enabled=False,
        environment="test",
        smtp_port=smtp_sink.port,
        sms_sink_dir=str(tmp_path / "sms"),
        notify_rate_limit_per_minute=0,
    )
    async with running_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_a_draft_previewed_as_typed_and_nothing_stored(http: httpx.AsyncClient) -> None:
    made = await http.post(
        "/api/v1/templates",
        headers=staff(),
        json={"type": "sms", "name": "Bins", "body": "Bins out on ((day))"},
    )
    template = made.json()
    path = f"/api/v1/templates/{template['id']}/preview"

    saved = await http.post(path, headers=staff(), json={"show_missing": True})
    assert saved.json()["body"] == "Bins out on ((day))"
    assert saved.json()["sms"]["fragments"] == 1

    draft = "Hello ((name)), bins out on ((day)). " + "x" * 140
    shown = await http.post(
        path,
        headers=staff(),
        json={"body": draft, "personalisation": {"day": "Monday"}, "show_missing": True},
    )
    assert shown.status_code == 200, shown.text
    preview = shown.json()
    assert preview["body"].startswith("Hello ((name)), bins out on Monday. xxx")
    assert (preview["sms"]["fragments"], preview["sms"]["encoding"]) == (2, "GSM-7")

    refused = await http.post(path, headers=staff(), json={"body": draft})
    assert refused.status_code == 400 and refused.json()["missing"] == ["name", "day"]
    no_subject = await http.post(path, headers=staff(), json={"subject": "Hi", "body": "Hi"})
    assert no_subject.status_code == 400, no_subject.text
    empty = await http.post(path, headers=staff(), json={"body": ""})
    assert empty.status_code == 422

    stored = (await http.get(f"/api/v1/templates/{template['id']}", headers=staff())).json()
    assert (stored["version"], stored["body"]) == (1, "Bins out on ((day))")


async def test_an_email_draft_with_its_subject(http: httpx.AsyncClient) -> None:
    made = await http.post(
        "/api/v1/templates",
        headers=staff(),
        json={"type": "email", "name": "Welcome", "subject": "Hi", "body": "Welcome"},
    )
    path = f"/api/v1/templates/{made.json()['id']}/preview"
    shown = await http.post(
        path,
        headers=staff(),
        json={
            "subject": "Hello ((name))",
            "body": "# Your ((thing))\n\nSee you soon",
            "personalisation": {"thing": "library card"},
            "show_missing": True,
        },
    )
    assert shown.status_code == 200, shown.text
    preview = shown.json()
    assert preview["subject"] == "Hello ((name))"
    assert "Your library card" in preview["html"] and "See you soon" in preview["text"]
    assert preview["sms"] is None
