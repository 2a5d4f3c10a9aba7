"""The proof of issue 13: two replicas of every service behind the gateway, on a 3-broker
Kafka cluster and PostgreSQL, under a bounded mixed load; part way through one broker and
one replica of each service are SIGKILLed and started again a little later.

At the end every command that got a 2xx has its effects exactly once (the email in the SMTP
sink, the notification row, the enrolment, the report, the partner's webhook, the inbox rows
of every event), nothing is duplicated, and 5xx answers happened only inside the failover
window and stayed under 0.5% of requests. The figures are printed (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mkinfra.kafka import KafkaCluster
from mkinfra.smtp_sink import SmtpSink
from notifications.devcreds import write_dev_notify_credentials
from notifications.domain.notify import split_api_key
from notifications.messaging.subscriptions import SUBSCRIPTIONS as NOTIFICATIONS_CONSUMES
from servicekit.db import Database
from servicekit.messaging.tables import InboxMessage, OutboxMessage
from servicekit.testing import eventually, running_app

from .conftest import Platform, run_platform_processes

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(720)]

LOAD_SECONDS = 120.0
KILL_AT = 40.0
DOWN_FOR = 20.0
#: after the last restart is ready, 5xx are still the failover's (breakers, health checks)
GRACE = 15.0
CLIENTS = 6
#: each client's pause between requests: the load stays bounded on a shared 2-core machine
PAUSE = 0.12
FORM = {"content-type": "application/x-www-form-urlencoded"}
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
INBOX = InboxMessage.__table__  # type: ignore[attr-defined]
CONSUMED = {cls.event_type() for cls in NOTIFICATIONS_CONSUMES}


@dataclass
class Result:
    at: float
    kind: str
    status: int  # 0: no answer (a transport error)
    ident: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Receiver:
    """The partner's webhook endpoint: records every call (no verification needed here: the
    webhook e2e test verifies signatures)."""

    calls: list[tuple[str, str]] = field(default_factory=list)  # (webhook-id, service id)

    async def endpoint(self, request: Request) -> Response:
        payload = (await request.json())["data"]
        self.calls.append((request.headers["webhook-id"], str(payload.get("service_id"))))
        return Response(status_code=200)


@dataclass
class Setup:
    staff: dict[str, str]
    open311_key: str
    report_code: str
    read_ids: list[str]
    session_id: str
    notify_service: str
    notify_secret: str
    email_template: str


async def _setup(platform: Platform, http: httpx.AsyncClient, tmp: Path) -> Setup:
    staff = platform.bearer("STAFF_TOKEN")
    tag = uuid.uuid4().hex[:8]
    created = await http.post(
        "/api/v1/services",
        headers=staff,
        json={
            "name": f"Report a damaged bench {tag}",
            "service_code": f"bench-{tag}",
            "attributes": [
                {"code": "seats", "datatype": "number", "order": 1, "description": "Seats?"}
            ],
        },
    )
    assert created.status_code == 201, created.text
    read_ids = [created.json()["id"]]
    published = await http.post(f"/api/v1/services/{read_ids[0]}/publish", headers=staff)
    assert published.status_code == 200, published.text
    programme = await http.post(
        "/api/v1/programmes",
        headers=staff,
        json={"title": f"Scale drop-in {tag}", "kind": "drop-in-help", "delivered_by": "MK"},
    )
    assert programme.status_code == 201, programme.text
    status = await http.post(
        f"/api/v1/programmes/{programme.json()['id']}/status",
        headers=staff,
        json={"status": "published"},
    )
    assert status.status_code == 200, status.text
    venue = await http.post(
        "/api/v1/venues",
        headers=staff,
        json={
            "name": "Fishermead Trinity Centre",
            "address": "Fishermead Boulevard",
            "postcode": "MK6 2LP",
            "ward": "Woughton and Fishermead",
            "latitude": 52.0335,
            "longitude": -0.7455,
        },
    )
    assert venue.status_code == 201, venue.text
    starts = datetime.now(UTC) + timedelta(days=2)
    session = await http.post(
        "/api/v1/sessions",
        headers=staff,
        json={
            "programme_id": programme.json()["id"],
            "venue_id": venue.json()["id"],
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 1000,
        },
    )
    assert session.status_code == 201, session.text
    notify = await write_dev_notify_credentials(tmp, platform.databases["notifications"])
    service_id, secret = split_api_key(notify["NOTIFY_API_KEY"])
    return Setup(
        staff=staff,
        open311_key=platform.credentials["OPEN311_API_KEY"],
        report_code=f"bench-{tag}",
        read_ids=read_ids,
        session_id=session.json()["id"],
        notify_service=str(service_id),
        notify_secret=secret,
        email_template=notify["NOTIFY_EMAIL_TEMPLATE_ID"],
    )


class Load:
    """The bounded load: ``CLIENTS`` clients, each a mix of the platform's traffic."""

    def __init__(self, platform: Platform, http: httpx.AsyncClient, setup: Setup) -> None:
        self.platform = platform
        self.http = http
        self.setup = setup
        self.run = uuid.uuid4().hex[:8]
        self.results: list[Result] = []
        #: the first answer of each refused kind and status, to show in the figures
        self.refusals: dict[str, str] = {}
        self.started = time.monotonic()
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    async def _call(
        self, kind: str, send: Callable[[], Awaitable[httpx.Response]], ident: str | None = None
    ) -> httpx.Response | None:
        try:
            response = await send()
        except httpx.HTTPError:
            self.results.append(Result(time.monotonic() - self.started, kind, 0, ident))
            return None
        self.results.append(
            Result(time.monotonic() - self.started, kind, response.status_code, ident)
        )
        if response.status_code >= 400:
            self.refusals.setdefault(f"{kind} {response.status_code}", response.text[:300])
        return response

    async def read(self) -> None:
        entry = random.choice(self.setup.read_ids)
        await self._call("read", lambda: self.http.get(f"/api/v1/services/{entry}"))

    async def report(self) -> None:
        n = self._next()
        form = urlencode(
            [
                ("service_code", self.setup.report_code),
                ("lat", "52.0406"),
                ("long", "-0.7594"),
                ("description", f"scale-{self.run}-{n}: two slats snapped"),
                ("api_key", self.setup.open311_key),
            ]
        ).encode()
        r = await self._call(
            "report",
            lambda: self.http.post("/open311/v2/requests.json", headers=FORM, content=form),
        )
        if r is not None and r.status_code == 200:
            self.results[-1].ident = r.json()[0]["service_request_id"]

    async def enrol(self) -> None:
        token = self.platform.issuer.mint(f"citizen-{self.run}-{self._next()}", ["citizen"])
        r = await self._call(
            "enrol",
            lambda: self.http.post(
                f"/api/v1/sessions/{self.setup.session_id}/enrolments",
                headers={"Authorization": f"Bearer {token}"},
                json={"consent": True},
            ),
        )
        if r is not None and r.status_code == 201:
            self.results[-1].ident = r.json()["id"]
            self.results[-1].extra["status"] = r.json()["status"]

    async def notify(self) -> None:
        n = self._next()
        address = f"scale-{self.run}-{n}@example.com"
        token = jwt.encode(
            {"iss": self.setup.notify_service, "iat": int(time.time())},
            self.setup.notify_secret,
            algorithm="HS256",
        )
        r = await self._call(
            "notify",
            lambda: self.http.post(
                "/v2/notifications/email",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "email_address": address,
                    "template_id": self.setup.email_template,
                    "reference": f"scale-{self.run}-{n}",
                    "personalisation": {
                        "name": "Ann Resident",
                        "reference": f"MK-{n}",
                        "status": "in progress",
                        "details": ["We have inspected the site"],
                        "show_help": "no",
                    },
                },
            ),
            ident=address,
        )
        if r is not None and r.status_code == 201:
            self.results[-1].extra["notification_id"] = r.json()["id"]

    async def publish(self) -> None:
        staff = self.setup.staff
        n = self._next()
        created = await self._call(
            "publish",
            lambda: self.http.post(
                "/api/v1/services",
                headers=staff,
                json={"name": f"Scale service {self.run} {n}"},
            ),
        )
        if created is None or created.status_code != 201:
            return
        service_id = created.json()["id"]
        r = await self._call(
            "publish",
            lambda: self.http.post(f"/api/v1/services/{service_id}/publish", headers=staff),
            ident=service_id,
        )
        if r is not None and r.status_code == 200:
            self.setup.read_ids.append(service_id)

    async def client(self, seed: int, until: float) -> None:
        rng = random.Random(seed)
        kinds = [self.read] * 8 + [self.report] * 4 + [self.enrol] * 3 + [self.notify] * 3
        kinds += [self.publish] * 2
        while time.monotonic() - self.started < until:
            await rng.choice(kinds)()
            await asyncio.sleep(PAUSE)


async def _rows(db_url: str, query: sa.Select[Any]) -> list[Any]:
    db = Database(db_url)
    try:
        async with db.session() as s:
            return list((await s.execute(query)).all())
    finally:
        await db.dispose()


async def test_scale_out_survives_a_broker_and_a_replica_of_each_service(
    kafka_cluster: KafkaCluster,
    new_postgres_database: Callable[..., str],
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    rx = Receiver()
    receiver_app = Starlette(routes=[Route("/hook", rx.endpoint, methods=["POST"])])
    service_env = {
        "notifications": {
            "NOTIFICATIONS_WEBHOOK_REQUIRE_HTTPS": "false",
            "NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            "NOTIFICATIONS_WEBHOOK_RETRY_SCALE": "0.01",
        }
    }
    async with (
        running_app(receiver_app) as receiver_url,
        run_platform_processes(
            tmp=tmp_path,
            kafka_bootstrap=kafka_cluster.bootstrap_servers,
            smtp_port=smtp_sink.port,
            database=lambda name: new_postgres_database(name.replace("-", "_")),
            replicas=2,
            service_env=service_env,
        ) as platform,
        httpx.AsyncClient(
            base_url=platform.gateway_url, timeout=30, limits=httpx.Limits(max_connections=50)
        ) as http,
    ):
        setup = await _setup(platform, http, tmp_path)
        subscribed = await http.post(
            "/api/v1/webhook-subscriptions",
            headers={"X-API-Key": platform.credentials["PARTNER_API_KEY"]},
            json={"url": f"{receiver_url}/hook", "event_types": ["ServicePublished"]},
        )
        assert subscribed.status_code == 201, subscribed.text

        load = Load(platform, http, setup)
        clients = [asyncio.create_task(load.client(seed, LOAD_SECONDS)) for seed in range(CLIENTS)]
        await asyncio.sleep(KILL_AT)
        broker = kafka_cluster.nodes[1]
        victims = [platform.replicas[name][0] for name in platform.replicas]
        killed_at = time.monotonic() - load.started
        broker.kill()
        for victim in victims:
            victim.kill()
        await asyncio.sleep(DOWN_FOR)
        for victim in victims:
            victim.start()
        await asyncio.to_thread(broker.start)
        for victim in victims:
            await victim.wait_ready()
        restarted_at = time.monotonic() - load.started
        await asyncio.gather(*clients)
        load_ended = time.monotonic()

        results = load.results
        by_kind = Counter(r.kind for r in results)
        statuses = Counter(f"{r.kind} {r.status}" for r in results)
        errors = [r for r in results if r.status >= 500 or r.status == 0]
        window = (killed_at, restarted_at + GRACE)
        outside = [r for r in errors if not window[0] <= r.at <= window[1]]
        recovery = max((r.at for r in errors), default=killed_at) - killed_at
        ok = lambda kind, code: [r for r in results if r.kind == kind and r.status == code]  # noqa: E731

        # -- effects: wait until every event is published and consumed, then count
        cs, inc, nt = (
            platform.databases[n] for n in ("citizen-services", "inclusion", "notifications")
        )

        async def drained() -> bool:
            pending = 0
            for url in (cs, inc, nt):
                pending += len(
                    await _rows(url, sa.select(OUTBOX.c.id).where(OUTBOX.c.published_at.is_(None)))
                )
            if pending:
                return False
            wanted = {
                row.event_id
                for url in (cs, inc)
                for row in await _rows(url, sa.select(OUTBOX.c.event_id, OUTBOX.c.event_type))
                if row.event_type in CONSUMED
            }
            have = {
                row.event_id
                for row in await _rows(
                    nt, sa.select(INBOX.c.event_id).where(INBOX.c.consumer_group == "notifications")
                )
            }
            return wanted <= have

        await eventually(drained, timeout=180, interval=1, message="events not all consumed")
        published_ids = {r.ident for r in ok("publish", 200)}
        sent = {r.ident: r.extra["notification_id"] for r in ok("notify", 201)}

        async def delivered() -> bool:
            hooked = {sid for _, sid in rx.calls}
            mailed = {m["To"] for m in smtp_sink.messages()}
            return published_ids <= hooked and set(sent) <= mailed

        await eventually(delivered, timeout=180, interval=1, message="emails/webhooks missing")
        catch_up = time.monotonic() - load_ended
        await asyncio.sleep(3)  # anything sent twice would arrive by now

        mails = Counter(
            m["To"] for m in smtp_sink.messages() if m["To"].startswith(f"scale-{load.run}-")
        )
        notification_rows = await _rows(
            nt,
            sa.text("SELECT id, reference FROM notification WHERE reference LIKE :p").bindparams(
                p=f"scale-{load.run}-%"
            ),
        )
        enrolments = await _rows(
            inc,
            sa.text("SELECT id, status FROM enrolment WHERE session_id = :s").bindparams(
                s=uuid.UUID(setup.session_id)
            ),
        )
        reports = await _rows(
            cs,
            sa.text("SELECT id FROM service_request WHERE description LIKE :p").bindparams(
                p=f"scale-{load.run}-%"
            ),
        )
        inbox = await _rows(nt, sa.select(INBOX.c.consumer_group, INBOX.c.event_id))
        hook_ids_per_service: dict[str, set[str]] = {}
        for hook_id, sid in rx.calls:
            hook_ids_per_service.setdefault(sid, set()).add(hook_id)

        print(
            f"\nscale-out proof: {len(results)} requests {dict(by_kind)}; "
            f"5xx/no answer {len(errors)} ({100 * len(errors) / len(results):.2f}%), "
            f"{len(outside)} outside the failover window {window[0]:.0f}-{window[1]:.0f}s; "
            f"last error {recovery:.1f}s after the SIGKILLs; broker and replicas back "
            f"{restarted_at - killed_at:.0f}s after them; consumers caught up {catch_up:.1f}s "
            "after "
            f"the load.\nanswers: {dict(sorted(statuses.items()))} {load.refusals}\n"
            f"effects: {len(sent)} Notify sends -> {sum(mails.values())} emails, "
            f"{len(notification_rows)} notification rows; {len(ok('enrol', 201))} enrolments "
            f"-> {len(enrolments)} rows; {len(ok('report', 200))} reports -> {len(reports)} "
            f"rows; {len(published_ids)} publishes -> {len(rx.calls)} webhook calls "
            f"({len(hook_ids_per_service)} events); {len(inbox)} inbox rows"
        )

        # -- the verdict
        assert not outside, f"5xx outside the failover window: {outside[:5]}"
        assert len(errors) < 0.005 * len(results), f"{len(errors)} errors of {len(results)}"
        assert all(count == 1 for count in mails.values()), "an email was sent twice"
        assert set(sent) <= set(mails)
        references = Counter(row.reference for row in notification_rows)
        assert all(count == 1 for count in references.values())
        assert {str(row.id) for row in notification_rows} >= set(sent.values())
        by_id = {str(row.id): row.status for row in enrolments}
        for r in ok("enrol", 201):
            assert by_id.get(str(r.ident)) == r.extra["status"]  # confirmed (or waitlisted)
        assert len(enrolments) <= by_kind["enrol"]  # none twice, none from nowhere
        report_ids = {str(row.id) for row in reports}
        assert {r.ident for r in ok("report", 200)} <= report_ids
        assert len(reports) <= by_kind["report"]
        for sid in published_ids:
            # one event per publish, delivered to the subscription under one webhook-id
            assert len(hook_ids_per_service.get(str(sid), set())) == 1, sid
        assert len(inbox) == len({(row.consumer_group, row.event_id) for row in inbox})
        for task in clients:
            with contextlib.suppress(Exception):
                task.result()
