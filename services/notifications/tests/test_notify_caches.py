"""What the Notify API's hot path keeps in memory (keys, verified tokens, template versions)
and the email as built for SMTP: still Notify's rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, cast

import jwt
import pytest
import sqlalchemy as sa

from notifications.adapters.email import OutgoingEmail, build_message
from notifications.application import notify_services, templates
from notifications.application.notify_auth import Caller, KeyCache, authenticate
from notifications.application.notify_send import Sent, TemplateCache, send_notification
from notifications.config import Settings
from notifications.domain.notification import Channel
from notifications.domain.notify import AuthError, BadRequestError, KeyType, split_api_key
from notifications.persistence.notifications import NotificationRepository
from notifications.persistence.notify_services import NotifyServiceRepository
from notifications.persistence.tables import Notification, NotifyApiKey, Template
from notifications.persistence.templates import TemplateRepository
from servicekit.db import Database
from servicekit.errors import NotFound
from servicekit.uow import UnitOfWork


async def _service(db: Database) -> tuple[uuid.UUID, str, uuid.UUID]:
    async with db.session() as s:
        services = NotifyServiceRepository(s)
        service = await notify_services.create_service(
            services, name="MK", email_from="mk@x.example", sms_sender="MK"
        )
        _, key = await notify_services.create_api_key(
            services, service_id=service.id, name="live", key_type=KeyType.LIVE
        )
        view = await templates.create_template(
            TemplateRepository(s),
            services,
            service_id=service.id,
            template_type="email",
            name="T",
            subject="Hi ((name))",
            body="v1",
        )
        await s.commit()
        return service.id, key, view.template.id


def _bearer(api_key: str, iat: float | None = None) -> str:
    service_id, secret = split_api_key(api_key)
    iat = int(time.time()) if iat is None else iat
    return "Bearer " + jwt.encode({"iss": service_id, "iat": iat}, secret, algorithm="HS256")


async def test_a_cached_token_still_checks_its_clock_and_revocation_is_seen_after_the_ttl(
    db: Database,
) -> None:
    _, api_key, _ = await _service(db)
    cache = KeyCache(ttl=60)
    token = _bearer(api_key)
    async with db.read_session() as s:
        caller = await authenticate(NotifyServiceRepository(s), token, cache=cache)
    async with db.session() as s:  # revoked in the database
        await s.execute(sa.update(NotifyApiKey).values(revoked_at=datetime.now(UTC)))
        await s.commit()
    async with db.read_session() as s:
        again = await authenticate(NotifyServiceRepository(s), token, cache=cache)  # within the ttl
        assert again.key.id == caller.key.id
        with pytest.raises(AuthError) as skew:  # the same token, too late
            await authenticate(NotifyServiceRepository(s), token, cache=cache, now=time.time() + 31)
        assert skew.value.message.startswith("Error: Your system clock")
        cache.ttl = 0
        with pytest.raises(AuthError) as revoked:
            await authenticate(NotifyServiceRepository(s), token, cache=cache)
        assert revoked.value.message == "Invalid token: API key revoked"


async def test_a_new_template_version_is_used_at_once(db: Database) -> None:
    service_id, _, template_id = await _service(db)
    cache = TemplateCache()
    async with db.read_session() as s:
        first = await cache.current(
            TemplateRepository(s), template_id=template_id, service_id=service_id
        )
    async with db.session() as s:
        await templates.edit_template(TemplateRepository(s), template_id=template_id, body="v2")
        await s.commit()
    async with db.read_session() as s:
        second = await cache.current(
            TemplateRepository(s), template_id=template_id, service_id=service_id
        )
        assert (first.version.version, second.version.version) == (1, 2)
        assert second.version.body == "v2"
        with pytest.raises(NotFound):  # another service's template
            await cache.current(
                TemplateRepository(s), template_id=template_id, service_id=uuid.uuid4()
            )


async def test_a_send_checks_its_cached_template_version_in_the_insert_itself(db: Database) -> None:
    """Once a template version is cached, an accepted notification is one statement before
    the commit (INSERT ... SELECT: inserted only if that version is still current), and an
    edit, an archive or another service's caller is still seen at once."""
    _, api_key, template_id = await _service(db)
    cache, settings = TemplateCache(), Settings(environment="test")
    async with db.read_session() as s:
        caller = await authenticate(NotifyServiceRepository(s), _bearer(api_key))
    body = {
        "email_address": "a@x.example",
        "template_id": str(template_id),
        "personalisation": {"name": "Ann"},
    }
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    async def send() -> Sent:
        async with UnitOfWork(db, source=settings.cloudevents_source) as uow:
            return await send_notification(
                uow,
                NotificationRepository(uow.db),
                TemplateRepository(uow.db),
                caller,
                Channel.EMAIL,
                body,
                template_cache=cache,
            )

    assert (await send()).notification["template_version"] == 1  # reads the template
    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        sent = await send()
        before_commit = [
            q
            for q in statements
            if "servicekit_outbox" not in q
            and "pg_notify" not in q
            and q.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE")
        ]
        assert len(before_commit) == 1 and before_commit[0].startswith(
            "INSERT INTO notification"
        ), statements
        assert "FROM template" in before_commit[0]
    finally:
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert (sent.notification["subject"], sent.notification["template_version"]) == ("Hi Ann", 1)
    async with db.session() as s:
        await templates.edit_template(
            TemplateRepository(s), template_id=template_id, subject="Hello ((name))", body="v2"
        )
        await s.commit()
    sent = await send()  # the cached guess is refused by the insert: read, render again
    assert (sent.notification["subject"], sent.notification["template_version"]) == ("Hello Ann", 2)
    async with db.session() as s:
        stored = (
            await s.execute(
                sa.select(Notification.subject, Notification.body).where(
                    Notification.id == sent.notification["id"]
                )
            )
        ).one()
        assert tuple(stored) == ("Hello Ann", "v2")
        count = (await s.execute(sa.select(sa.func.count()).select_from(Notification))).scalar_one()
        assert count == 3
        await s.execute(sa.update(Template).where(Template.id == template_id).values(archived=True))
        await s.commit()
    with pytest.raises(BadRequestError, match="Template not found"):
        await send()
    other = Caller(service=caller.service.model_copy(update={"id": uuid.uuid4()}), key=caller.key)
    with pytest.raises(BadRequestError, match="Template not found"):
        async with UnitOfWork(db, source=settings.cloudevents_source) as uow:
            await send_notification(
                uow,
                NotificationRepository(uow.db),
                TemplateRepository(uow.db),
                other,
                Channel.EMAIL,
                body,
                template_cache=cache,
            )
    async with db.session() as s:
        count = (await s.execute(sa.select(sa.func.count()).select_from(Notification))).scalar_one()
        assert count == 3


def test_the_email_as_sent_cannot_be_given_headers_and_keeps_long_links_whole() -> None:
    link = "https://mk.example/api/v1/unsubscribe?token=" + "a" * 150
    raw = build_message(
        OutgoingEmail(
            message_id="<n-1@mk.example>",
            to="resident@example.com",
            subject="Café opening\r\nBcc: someone@evil.example",
            text="Hello é",
            html="<p>Hi</p>",
            headers=(("List-Unsubscribe", f"<{link}>"),),
        ),
        sender="Cöuncil <no-reply@mk.example>",
    )
    assert b"\r\n" in raw and not any(len(line) > 998 for line in raw.split(b"\r\n"))
    msg = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(raw))
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Café opening  Bcc: someone@evil.example"
    assert msg["From"] == "Cöuncil <no-reply@mk.example>"
    assert msg["List-Unsubscribe"] == f"<{link}>"
    assert msg["Message-ID"] == "<n-1@mk.example>"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == "Hello é" and html.get_content() == "<p>Hi</p>"


@pytest.mark.parametrize(
    "subject",
    [
        "Hi\nBcc: someone@evil.example",
        "Hi\rBcc: someone@evil.example",
        "Hi\x0bBcc: someone@evil.example\x0c",
        "Hi\u2028Bcc: someone@evil.example\x85",
        "Ünïcode\r\nBcc: someone@evil.example",
        "S" * 1000,
    ],
)
def test_no_line_break_of_any_kind_makes_a_header(subject: str) -> None:
    raw = build_message(
        OutgoingEmail(
            message_id="<n-2@mk.example>",
            to="resident@example.com",
            subject=subject,
            text="Hello",
            headers=(
                ("List-Unsubscribe", "<https://mk.example/u?token=t>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ),
        ),
        sender='Council "X\r\nBcc: z@evil.example" <no-reply@mk.example>',
    )
    assert raw.count(b"\n") == raw.count(b"\r\n")  # no bare LF
    assert not any(len(line) > 998 for line in raw.split(b"\r\n"))
    msg = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(raw))
    assert msg["Bcc"] is None and msg["From"].addresses[0].addr_spec == "no-reply@mk.example"
    assert (msg["List-Unsubscribe"], msg["List-Unsubscribe-Post"]) == (
        "<https://mk.example/u?token=t>",
        "List-Unsubscribe=One-Click",
    )
    assert msg["Subject"] == re.sub(r"[\r\n\x0b\x0c\x85\u2028]", " ", subject)


async def test_a_key_created_after_its_service_was_cached_works_at_once(db: Database) -> None:
    service_id, api_key, _ = await _service(db)
    cache = KeyCache(ttl=60)
    async with db.read_session() as s:
        await authenticate(NotifyServiceRepository(s), _bearer(api_key), cache=cache)
    async with db.session() as s:
        _, new_key = await notify_services.create_api_key(
            NotifyServiceRepository(s), service_id=service_id, name="new", key_type=KeyType.TEST
        )
        await s.commit()
    async with db.read_session() as s:
        caller = await authenticate(NotifyServiceRepository(s), _bearer(new_key), cache=cache)
        assert caller.key_type is KeyType.TEST
        with pytest.raises(AuthError) as unknown:
            await authenticate(
                NotifyServiceRepository(s), _bearer(f"x-{service_id}-{uuid.uuid4()}"), cache=cache
            )
        assert unknown.value.message == "Invalid token: API key not found"


def test_sending_runs_no_fastapi_dependencies() -> None:
    """Solving dependencies (and a generator dependency's exit stack) was a measured share
    of an accepted email's CPU: the send routes take the request only, and do the caller's
    checks and open the unit of work themselves."""
    from fastapi.routing import APIRoute

    from notifications.api import notify

    routes = {r.path: r for r in notify.router.routes if isinstance(r, APIRoute)}
    for path in ("/v2/notifications/email", "/v2/notifications/sms"):
        assert routes[path].dependant.dependencies == [], path


def _compat32_message(email: OutgoingEmail, *, sender: str, boundary: str, date: str) -> bytes:
    """How the message was built before (the email package), for comparison."""
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    from email.policy import compat32

    from notifications.adapters.email import _address, _header_text

    text = MIMEText(email.text, "plain", "utf-8")
    msg: MIMEText | MIMEMultipart
    if email.html:
        msg = MIMEMultipart("alternative", boundary=boundary)
        msg.attach(text)
        msg.attach(MIMEText(email.html, "html", "utf-8"))
    else:
        msg = text
    msg["From"] = _address(sender)
    msg["To"] = _address(email.to)
    msg["Subject"] = _header_text(email.subject)
    msg["Date"] = date
    msg["Message-ID"] = email.message_id
    for name, value in email.headers:
        msg[name] = _header_text(value)
    return msg.as_bytes(policy=compat32.clone(linesep="\r\n", max_line_length=0))


@pytest.mark.parametrize(
    "sender",
    ["MK Council <no-reply@mk.example>", 'Cöuncil "X\r\nBcc: z@evil.example" <n@mk.example>'],
)
@pytest.mark.parametrize(
    "text", ["Hello\nThere é", "", "x" * 500 + "\n" + "é" * 300, "line\r\nline2\n"]
)
@pytest.mark.parametrize("html", [None, "", "<p>Hi</p>\n<p>é</p>"])
@pytest.mark.parametrize(
    "subject", ["Your card", "Café opening\r\nBcc: x@evil.example", "S" * 1000, ""]
)
def test_the_email_is_written_byte_for_byte_as_the_email_package_wrote_it(
    sender: str, text: str, html: str | None, subject: str
) -> None:
    email = OutgoingEmail(
        message_id="<n-3@mk.example>",
        to="resident@example.com",
        subject=subject,
        text=text,
        html=html,
        headers=(
            ("List-Unsubscribe", "<https://mk.example/u?token=t>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
    )
    raw = build_message(email, sender=sender)
    found = re.search(rb'boundary="([^"]+)"', raw)
    date = re.search(rb"\r\nDate: ([^\r]+)\r\n", raw)
    assert (found is not None) == bool(html) and date is not None
    assert raw == _compat32_message(
        email,
        sender=sender,
        boundary=found.group(1).decode() if found else "",
        date=date.group(1).decode(),
    )


async def test_an_accepted_email_and_its_event_are_one_statement_on_postgresql(
    db: Database,
) -> None:
    """The API's accept (:func:`notify_send.accept`) with the template's version cached: on
    PostgreSQL the notification and its outbox event are ONE statement outside a
    transaction block (no BEGIN, no COMMIT: one round trip, asyncpg's own query log
    counted), written together or not at all, and the relay and the email worker are
    still woken; on SQLite the unit of work's transaction. A wrong
    guess (an archived template) writes neither and answers Notify's error."""
    from notifications.application.notify_send import accept
    from notifications.persistence.notifications import channel_work
    from servicekit.messaging.tables import OutboxMessage

    _, api_key, template_id = await _service(db)
    cache, settings = TemplateCache(), Settings(environment="test")
    async with db.read_session() as s:
        caller = await authenticate(NotifyServiceRepository(s), _bearer(api_key))
    body = {
        "email_address": "a@x.example",
        "template_id": str(template_id),
        "personalisation": {"name": "Ann"},
        "reference": "r-1",
    }
    first = await accept(db, caller, Channel.EMAIL, body, settings=settings, template_cache=cache)
    assert first.notification["subject"] == "Hi Ann"  # read the template, cached it
    woken: list[str] = []
    for name, tables in (
        ("relay", [OutboxMessage.__tablename__]),
        ("email", [channel_work(Channel.EMAIL)]),
        ("sms", [channel_work(Channel.SMS)]),
    ):
        db.on_commit(lambda name=name: woken.append(name), tables=tables)  # type: ignore[misc]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    driver_queries: list[str] = []
    logged: list[Any] = []

    def log_queries(dbapi_connection: Any, *_: Any) -> None:  # asyncpg's own query log
        driver = dbapi_connection.driver_connection
        if db.is_postgres and driver not in logged:
            driver.add_query_logger(lambda q: driver_queries.append(q.query))
            logged.append(driver)

    pool = db.engine.sync_engine.pool
    sa.event.listen(pool, "checkout", log_queries)
    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        sent = await accept(
            db, caller, Channel.EMAIL, body, settings=settings, template_cache=cache
        )
    finally:
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
        sa.event.remove(pool, "checkout", log_queries)
    await asyncio.sleep(0.1)  # asyncpg calls its query loggers soon, not at once
    if db.is_postgres:
        # nothing through SQLAlchemy (no BEGIN, no COMMIT), one statement on the driver
        assert statements == [] and len(driver_queries) == 1, (statements, driver_queries)
        one = " ".join(driver_queries[0].split())
        assert one.startswith("WITH inserted AS (INSERT INTO notification"), one
        assert ") INSERT INTO servicekit_outbox" in one, one
    else:
        assert any(q.startswith("INSERT INTO servicekit_outbox") for q in statements)
    assert sorted(woken) == ["email", "relay"]

    async def stored() -> tuple[int, int, list[str]]:
        async with db.read_session() as s:
            notifications = (
                await s.execute(sa.select(sa.func.count()).select_from(Notification))
            ).scalar_one()
            events = (
                await s.execute(sa.select(OutboxMessage.message_key, OutboxMessage.payload))
            ).all()
        return notifications, len(events), [key for key, _ in events]

    n, events, keys = await stored()
    assert (n, events) == (2, 2)
    nid = str(sent.notification["id"])
    assert nid in keys and str(first.notification["id"]) in keys
    async with db.read_session() as s:
        row = (
            await s.execute(
                sa.select(Notification.subject, Notification.reference, Notification.status).where(
                    Notification.id == sent.notification["id"]
                )
            )
        ).one()
        payload = (
            await s.execute(
                sa.select(OutboxMessage.payload).where(OutboxMessage.message_key == nid)
            )
        ).scalar_one()
    assert tuple(row) == ("Hi Ann", "r-1", "created")
    assert '"status":"created"' in payload.replace(" ", "")
    async with db.session() as s:
        await s.execute(sa.update(Template).where(Template.id == template_id).values(archived=True))
        await s.commit()
    with pytest.raises(BadRequestError, match="Template not found"):
        await accept(db, caller, Channel.EMAIL, body, settings=settings, template_cache=cache)
    assert (await stored())[:2] == (2, 2)


async def test_concurrent_accepts_return_their_connections_to_a_small_pool(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The one-statement accept takes a driver connection from the engine's pool and gives
    it back (an overflow connection is closed then, a failed one discarded) as SQLAlchemy
    would: many concurrent sends through a pool of one (plus one overflow) all land, and
    a statement that fails leaves the pool usable; the pool never fails to close one
    (outside a greenlet the asyncpg adapter cannot)."""
    from notifications.application.notify_send import accept
    from notifications.main import MIGRATIONS
    from servicekit.migrations import upgrade
    from servicekit.problems import UNSTORABLE_TEXT_SQLSTATES

    db = Database(database_url, pool_size=1)
    try:
        await upgrade(db, MIGRATIONS)
        _, api_key, template_id = await _service(db)
        cache, settings = TemplateCache(), Settings(environment="test")
        async with db.read_session() as s:
            caller = await authenticate(NotifyServiceRepository(s), _bearer(api_key))

        def body(n: int) -> dict[str, Any]:
            return {
                "email_address": f"a{n}@x.example",
                "template_id": str(template_id),
                "personalisation": {"name": "Ann"},
            }

        await accept(db, caller, Channel.EMAIL, body(0), settings=settings, template_cache=cache)
        sent = await asyncio.gather(
            *(
                accept(db, caller, Channel.EMAIL, body(n), settings=settings, template_cache=cache)
                for n in range(1, 21)
            )
        )
        assert len({s.notification["id"] for s in sent}) == 20
        if db.is_postgres:  # a statement refused (a duplicate id): the pool still works
            from notifications.persistence.notifications import insert_with_event_if_current

            duplicate = {**sent[0].notification}
            assert not await insert_with_event_if_current(
                db,
                duplicate,
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "t",
                    "topic": "t",
                    "message_key": "k",
                    "envelope": "{}",
                    "payload": "{}",
                    "created_at": datetime.now(UTC),
                    "published_at": None,
                    "attempts": 0,
                    "last_error": None,
                },
                template_id=template_id,
                template_version=1,
                service_id=caller.service.id,
            )
            # a value PostgreSQL cannot store: refused as on every write path (the unit
            # of work's DBAPIError, which servicekit answers with a 400), nothing written
            nul = {**body(99), "personalisation": {"name": "A\x00nn"}}
            with pytest.raises(sa.exc.DBAPIError) as refused:
                await accept(
                    db, caller, Channel.EMAIL, nul, settings=settings, template_cache=cache
                )
            assert refused.value.orig.sqlstate in UNSTORABLE_TEXT_SQLSTATES  # type: ignore[union-attr]
        more = await asyncio.gather(
            *(
                accept(db, caller, Channel.EMAIL, body(n), settings=settings, template_cache=cache)
                for n in range(21, 26)
            )
        )
        assert len(more) == 5
        async with db.read_session() as s:
            count = (
                await s.execute(sa.select(sa.func.count()).select_from(Notification))
            ).scalar_one()
        assert count == 26
    finally:
        await db.dispose()
    # the pool logs (and leaks) a connection it could not close: none of that
    pool_errors = [r for r in caplog.records if r.name.startswith("sqlalchemy.pool")]
    assert pool_errors == [], [r.getMessage() for r in pool_errors]
