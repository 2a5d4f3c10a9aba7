"""Notifications: GOV.UK Notify's ``POST /v2/notifications/email`` accepted per second, and
emails delivered to an SMTP server per second.

Set-up, as deployed: Kafka and PostgreSQL (``bench/_infra.py``), the dev SMTP sink
(``mkinfra.smtp_sink``, its own process, one ``.eml`` file a message), the notifications
service on PostgreSQL (``BENCH_NOTIFICATIONS_DATABASE=sqlite`` for its SQLite file) with its
relay, consumer and delivery workers, and the gateway, each in its own process. A live API
key and the dev email template come from ``notifications.devcreds``. Requests carry a
Notify JWT (HS256, ``iss`` the service id, ``iat`` now) made once a second, as the official
client's tokens are (one per request, identical within a second).

(a) accepted: at a steady 50/s (Notify's 3,000 a minute per key type), open loop — each
    request is timed from when it was due, so a slow answer cannot hide the ones queued
    behind it — p50/p95/p99, direct to the service and through the gateway. Goal: p95 <
    20 ms at 50/s. Then the maximum with wrk (16 connections, ``BENCH_NOTIFICATIONS_MAX_
    SECONDS``, 5 s each), alternating the same service's ``GET /health/live``, posts direct
    and posts through the gateway. Goal: accepted/s through the gateway >= 0.15x the
    service's ``/health/live`` requests/s in the same run. The service's CPU time per
    request (``/proc``) is printed beside each: it includes the delivery workers sending
    what was accepted, as they would deployed.
(b) delivered: after the backlog has drained, N emails (``BENCH_NOTIFICATIONS_EMAILS``,
    5,000) are queued in one transaction through the API's own ``send_notification``
    (rendered, stored ``created``, an outbox event each), one more is posted to the API so
    its commit wakes the worker, and the clock runs from that commit until the sink holds
    all of them. Baseline, same run, same sink: a bare aiosmtplib loop sending N copies of
    a message the service delivered (same size, a fresh Message-ID each: the sink names its
    files by it) over as many reused connections as the service's
    ``delivery_concurrency``, timed the same way. Goal: >= 0.5x the bare loop. Then, for
    comparison, N more are posted to the API (16 at a time, direct) and timed from the
    first post until the sink holds them all (accepting and delivering at once).

Rate limits: the maximum-throughput phase is far over Notify's 3,000 a minute, and every
phase sends with the same key, so the run raises the limits rather than spreading the load
over keys (the service's limit is per service and key type: more keys of one type would not
help): ``NOTIFICATIONS_NOTIFY_RATE_LIMIT_PER_MINUTE`` and the gateway's ``notify`` and
``anonymous`` classes (through the gateway a ``/v2`` caller is anonymous to it, limited per
client address) are set to a million a minute. The limiters still run on every request.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from bench import _infra, _report
from bench._procs import ROOT, Processes, cpu_seconds, dev_credentials, ensure_wrk, run_wrk
from mkinfra._proc import free_port, terminate_group

STEADY_RATE = 50.0  # 3,000 a minute
STEADY_SECONDS = float(os.environ.get("BENCH_NOTIFICATIONS_STEADY_SECONDS", "10"))
MAX_SECONDS = int(os.environ.get("BENCH_NOTIFICATIONS_MAX_SECONDS", "5"))
EMAILS = int(os.environ.get("BENCH_NOTIFICATIONS_EMAILS", "5000"))
DRAIN_SECONDS = float(os.environ.get("BENCH_NOTIFICATIONS_DRAIN_SECONDS", "180"))
DATABASE = os.environ.get("BENCH_NOTIFICATIONS_DATABASE", "postgresql")
MAX_CONNECTIONS = 16
ACCEPT_GOAL = 0.15  # accepted/s through the gateway, against /health/live's requests/s
DELIVERY_GOAL = 0.5  # delivered/s, against a bare aiosmtplib loop's
LIMIT = "1000000/60s"
PATH = "/v2/notifications/email"


class Tokens:
    """A Notify JWT per second (the official client's tokens are identical within one)."""

    def __init__(self, api_key: str) -> None:
        self.service_id, self.secret = api_key[-73:-37], api_key[-36:]
        self._second = 0
        self._token = ""

    def at(self, second: int) -> str:
        return jwt.encode({"iss": self.service_id, "iat": second}, self.secret, algorithm="HS256")

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second, self._token = second, self.at(second)
        return self._token


def email_body(template_id: str, n: int) -> dict[str, Any]:
    return {
        "email_address": f"resident+{n}@example.com",
        "template_id": template_id,
        "reference": f"bench-{n}",
        "personalisation": {
            "name": "Ann",
            "reference": f"MK-{n}",
            "status": "in progress",
            "details": ["We have inspected the site", "A crew is booked"],
            "show_help": "yes",
        },
    }


def sink_count(maildir: Path) -> int:
    with os.scandir(maildir) as it:
        return sum(1 for e in it if e.name.endswith(".eml"))


async def wait_delivered(
    maildir: Path, before: int, expected: int, *, deadline: float, poll: float
) -> int:
    """How many messages the sink holds beyond ``before``, once that is ``expected`` or
    the ``time.perf_counter()`` ``deadline`` has passed."""
    while (delivered := sink_count(maildir) - before) < expected:
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(poll)
    return delivered


async def steady(
    base: str, tokens: Tokens, template_id: str, *, rate: float, seconds: float, first: int
) -> dict[str, Any]:
    """Open loop at ``rate``/s; latency from when each request was due."""
    latencies: list[float] = []
    failures: list[int] = []
    total = int(rate * seconds)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64, force_close=False)
    ) as http:

        async def one(n: int, due: float) -> None:
            headers = {"Authorization": f"Bearer {tokens.now()}"}
            async with http.post(
                base + PATH, json=email_body(template_id, n), headers=headers
            ) as r:
                await r.read()
                if r.status == 201:
                    latencies.append((time.perf_counter() - due) * 1000)
                else:
                    failures.append(r.status)

        tasks = []
        start = time.perf_counter() + 0.05
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(first + i, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {
        "accepted": len(latencies),
        "failures": len(failures),
        "failure_statuses": sorted(set(failures)),
        "rate": len(latencies) / elapsed,
        "p50": _infra.percentile(latencies, 50),
        "p95": _infra.percentile(latencies, 95),
        "p99": _infra.percentile(latencies, 99),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
    }


def wrk_script(tokens: Tokens, template_id: str, seconds: int) -> str:
    """Lua for wrk: post the email with the token of the current second."""
    now = int(time.time())
    table = ",\n".join(f'  [{s}] = "{tokens.at(s)}"' for s in range(now - 5, now + seconds))
    body = json.dumps(email_body(template_id, 0)).replace("\\", "\\\\").replace("'", "\\'")
    return f"""local tokens = {{
{table}
}}
local body = '{body}'
request = function()
  local headers = {{}}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. tokens[os.time()]
  return wrk.format("POST", "{PATH}", headers, body)
end
"""


async def delivery(
    base: str,
    tokens: Tokens,
    template_id: str,
    maildir: Path,
    *,
    emails: int,
    first: int,
    timeout: float,
) -> dict[str, Any]:
    """Send ``emails`` as fast as they are accepted; time until the sink holds them all."""
    before = sink_count(maildir)
    accepted = 0
    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as http:
        queue = iter(range(first, first + emails))

        async def sender() -> None:
            nonlocal accepted
            for n in queue:
                headers = {"Authorization": f"Bearer {tokens.now()}"}
                async with http.post(
                    base + PATH, json=email_body(template_id, n), headers=headers
                ) as r:
                    await r.read()
                    accepted += r.status == 201

        await asyncio.gather(*(sender() for _ in range(16)))
    accepted_in = time.perf_counter() - start
    at_accepted = sink_count(maildir) - before
    delivered = await wait_delivered(
        maildir, before, accepted, deadline=time.perf_counter() + timeout, poll=0.05
    )
    elapsed = time.perf_counter() - start
    drain = elapsed - accepted_in
    return {
        "emails": accepted,
        "delivered": delivered,
        "seconds": elapsed,
        "accepted_per_s": accepted / accepted_in,
        "emails_per_s": delivered / elapsed,
        "delivered_while_accepting": at_accepted,
        "drain_per_s": (delivered - at_accepted) / drain if drain > 0.05 else float("nan"),
    }


async def queue_emails(db_url: str, api_key: str, template_id: str, emails: int) -> None:
    """``emails`` notifications in one transaction, as the API stores each."""
    from notifications.application.notify_auth import authenticate, read_keys
    from notifications.application.notify_send import TemplateCache, send_notification
    from notifications.config import Settings
    from notifications.domain.notification import Channel
    from notifications.persistence.notifications import NotificationRepository
    from notifications.persistence.templates import TemplateRepository
    from servicekit.db import Database
    from servicekit.uow import UnitOfWork

    settings = Settings(database_url=db_url)
    db = Database(db_url)
    try:
        caller = await authenticate(read_keys(db), f"Bearer {Tokens(api_key).now()}")
        cache = TemplateCache()
        async with UnitOfWork(db, source=settings.cloudevents_source) as uow:
            for n in range(emails):
                await send_notification(
                    uow,
                    NotificationRepository(uow.db),
                    TemplateRepository(uow.db),
                    caller,
                    Channel.EMAIL,
                    email_body(template_id, n),
                    template_cache=cache,
                )
    finally:
        await db.dispose()


async def delivery_from_queue(
    db_url: str,
    base: str,
    api_key: str,
    template_id: str,
    maildir: Path,
    *,
    emails: int,
    timeout: float,
) -> dict[str, Any]:
    before = sink_count(maildir)
    await queue_emails(db_url, api_key, template_id, emails)
    start = time.perf_counter()
    tokens = Tokens(api_key)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            base + PATH,
            json=email_body(template_id, 0),
            headers={"Authorization": f"Bearer {tokens.now()}"},
        ) as r,
    ):
        assert r.status == 201, await r.text()
    expected = emails + 1
    delivered = await wait_delivered(maildir, before, expected, deadline=start + timeout, poll=0.05)
    elapsed = time.perf_counter() - start
    return {
        "emails": expected,
        "delivered": delivered,
        "seconds": elapsed,
        "emails_per_s": delivered / elapsed,
    }


async def bare_smtp(
    port: int, maildir: Path, sample: bytes, *, emails: int, concurrency: int, timeout: float
) -> dict[str, Any]:
    """The baseline: ``emails`` copies of ``sample`` (a message the service delivered, each
    with a fresh Message-ID of the same length) sent with aiosmtplib over ``concurrency``
    reused connections; timed until the sink holds them all."""
    import re
    import uuid

    import aiosmtplib

    head, sep, rest = sample.partition(b"\r\n\r\n")
    found = re.search(rb"(?im)^Message-ID:[ \t]*<([^>]*)>", head)
    assert found, "the sample has no Message-ID"
    width = len(found.group(1))

    def message(n: int) -> bytes:
        mid = f"{n}.{uuid.uuid4().hex}".ljust(width, "0")[: max(width, 34)].encode()
        return head[: found.start(1)] + mid + head[found.end(1) :] + sep + rest

    messages = [message(n) for n in range(emails)]  # built before the clock starts
    before = sink_count(maildir)
    queue = iter(messages)
    start = time.perf_counter()

    async def sender() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await client.connect()
        try:
            for raw in queue:
                await client.sendmail("bench@example.org", ["resident@example.com"], raw)
        finally:
            client.close()

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    delivered = await wait_delivered(maildir, before, emails, deadline=start + timeout, poll=0.02)
    elapsed = time.perf_counter() - start
    return {
        "emails": emails,
        "delivered": delivered,
        "seconds": elapsed,
        "emails_per_s": delivered / elapsed,
        "size": len(messages[0]),
    }


async def wait_drained(base: str, tokens: Tokens, timeout: float) -> bool:
    """Until no email is pending (created or sending), as Notify's API tells."""
    deadline = time.perf_counter() + timeout
    async with aiohttp.ClientSession() as http:
        while time.perf_counter() < deadline:
            async with http.get(
                base + "/v2/notifications",
                params={"status": "pending", "template_type": "email"},
                headers={"Authorization": f"Bearer {tokens.now()}"},
            ) as r:
                if r.status == 200 and not (await r.json())["notifications"]:
                    return True
            await asyncio.sleep(0.5)
    return False


def run() -> dict[str, Any]:
    print(
        f"\n== Notifications: Notify API accepted/s, emails delivered/s ({DATABASE}) ==", flush=True
    )
    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="mk-bench-notify-"))
    maildir = tmp / "mail"
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        bootstrap = stack.enter_context(_infra.kafka())
        db_url = _infra.fresh_database(
            stack, DATABASE, tmp, sqlite_file="notifications.sqlite3", name="bench_notifications"
        )
        procs = Processes(tmp)
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        stack.callback(procs.close)
        smtp_port, port = free_port(), free_port()
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "NOTIFICATIONS_DATABASE_URL": db_url,
            "NOTIFICATIONS_PORT": str(port),
            "NOTIFICATIONS_SMTP_PORT": str(smtp_port),
            "NOTIFICATIONS_LOG_LEVEL": "WARNING",
            "NOTIFICATIONS_SMS_SINK_DIR": str(tmp / "sms"),
            "NOTIFICATIONS_NOTIFY_RATE_LIMIT_PER_MINUTE": "1000000",
        }
        sink = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mkinfra.smtp_sink",
                "--dir",
                str(maildir),
                "--port",
                str(smtp_port),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        stack.callback(terminate_group, sink, 10)
        creds = dev_credentials("notifications", tmp, env)
        direct = procs.service("notifications", env, port=port)
        gateway, _ = procs.gateway(
            env, {"NOTIFICATIONS": direct}, limits={"notify": LIMIT, "anonymous": LIMIT}
        )
        tokens = Tokens(creds["NOTIFY_API_KEY"])
        template_id = creds["NOTIFY_EMAIL_TEMPLATE_ID"]
        sent = 0

        def steady_at(base: str) -> dict[str, Any]:
            nonlocal sent
            r = asyncio.run(
                steady(
                    base, tokens, template_id, rate=STEADY_RATE, seconds=STEADY_SECONDS, first=sent
                )
            )
            sent += r["accepted"] + r["failures"]
            return r

        # warm-up: connections, caches, first calls
        for base in (direct, gateway):
            asyncio.run(steady(base, tokens, template_id, rate=50, seconds=2, first=sent))
            sent += 100
        print(f"  (a) steady {STEADY_RATE:.0f}/s for {STEADY_SECONDS:.0f} s, open loop", flush=True)
        results["steady_direct"] = steady_at(direct)
        results["steady_gateway"] = steady_at(gateway)
        print(
            f"  (a) maximum: wrk -c{MAX_CONNECTIONS} -d{MAX_SECONDS}s: GET /health/live, "
            f"POST {PATH} direct, through the gateway",
            flush=True,
        )
        script = wrk_script(tokens, template_id, 4 * MAX_SECONDS + 120)
        pid = procs.pids["notifications"]
        for name, base, path, lua in (
            ("health", direct, "/health/live", None),
            ("max_direct", direct, PATH, script),
            ("max_gateway", gateway, PATH, script),
        ):
            cpu = cpu_seconds(pid)
            results[name] = run_wrk(
                wrk, base + path, {}, connections=MAX_CONNECTIONS, duration=MAX_SECONDS, script=lua
            )
            results[name]["cpu_us"] = (
                (cpu_seconds(pid) - cpu) * 1e6 / max(1.0, results[name]["requests"])
            )
        print("  waiting for the backlog to be delivered …", flush=True)
        results["drained"] = asyncio.run(wait_drained(direct, tokens, DRAIN_SECONDS))
        print(f"  (b) delivery: {EMAILS} emails queued in one transaction", flush=True)
        results["queued"] = asyncio.run(
            delivery_from_queue(
                db_url,
                direct,
                creds["NOTIFY_API_KEY"],
                template_id,
                maildir,
                emails=EMAILS,
                timeout=DRAIN_SECONDS,
            )
        )
        print(f"  (b) baseline: {EMAILS} emails, bare aiosmtplib, same sink", flush=True)
        sample = next(maildir.glob("*.eml")).read_bytes()
        from notifications.config import Settings

        concurrency = Settings().delivery_concurrency
        results["bare"] = asyncio.run(
            bare_smtp(
                smtp_port,
                maildir,
                sample,
                emails=EMAILS,
                concurrency=concurrency,
                timeout=DRAIN_SECONDS,
            )
        )
        results["bare"]["concurrency"] = concurrency
        print(f"  (b) delivery: {EMAILS} emails posted to the API", flush=True)
        results["delivery"] = asyncio.run(
            delivery(
                direct,
                tokens,
                template_id,
                maildir,
                emails=EMAILS,
                first=sent + 1,
                timeout=DRAIN_SECONDS,
            )
        )
    _print(results)
    return results


def _print(r: dict[str, Any]) -> None:
    sd, sg = r["steady_direct"], r["steady_gateway"]
    md, mg = r["max_direct"], r["max_gateway"]

    def row(label: str, a: str, b: str) -> str:
        return f"  {label:<38}{a:>13}{b:>13}"

    print(row("", "direct", "gateway"))
    print(row("steady 50/s: accepted/s", f"{sd['rate']:.1f}", f"{sg['rate']:.1f}"))
    # A refused request is not in the percentiles: with any, the goal is not met.
    p95_met = all(s["failures"] == 0 and s["p95"] < 20 for s in (sd, sg))
    for p in ("p50", "p95", "p99"):
        goal = f"   (goal p95 < 20 ms: {'met' if p95_met else 'NOT met'})" if p == "p95" else ""
        print(row(f"steady 50/s: {p} ms", f"{sd[p]:.1f}", f"{sg[p]:.1f}") + goal)
    if sd["failures"] or sg["failures"]:
        print(
            f"  steady failures: direct {sd['failures']} {sd['failure_statuses']}, "
            f"gateway {sg['failures']} {sg['failure_statuses']}"
        )
    # wrk's Requests/sec counts refusals too; accepted/s is the 2xx answers' rate.
    ratio = mg["ok_rps"] / md["ok_rps"] if md["ok_rps"] else float("nan")
    h = r["health"]
    print(
        row(f"/health/live ({MAX_CONNECTIONS} conn.): req/s", f"{h['ok_rps']:.0f}", "")
        + f"   CPU {h['cpu_us']:.0f} us/request"
    )
    print(
        row(
            f"maximum ({MAX_CONNECTIONS} conn.): accepted/s",
            f"{md['ok_rps']:.0f}",
            f"{mg['ok_rps']:.0f}",
        )
        + f"   gateway/direct {ratio:.2f}x"
    )
    print(
        row("maximum: service CPU us/request", f"{md['cpu_us']:.0f}", f"{mg['cpu_us']:.0f}")
        + "   (delivery included)"
    )
    print(
        row(
            "maximum: p50 / p95 / p99 ms",
            f"{md['p50']:.0f}/{md['p95']:.0f}/{md['p99']:.0f}",
            f"{mg['p50']:.0f}/{mg['p95']:.0f}/{mg['p99']:.0f}",
        )
    )
    if md["errors"] or mg["errors"]:
        print(f"  maximum: non-2xx direct {md['errors']:.0f}, gateway {mg['errors']:.0f}")
    if md["socket_errors"] or mg["socket_errors"]:
        print(
            f"  maximum: socket errors direct {md['socket_errors']:.0f}, "
            f"gateway {mg['socket_errors']:.0f}"
        )
    accept = mg["ok_rps"] / h["ok_rps"] if h["ok_rps"] else float("nan")
    _report.goal(
        "notifications",
        f"Notify accepted/s (gateway) >= {ACCEPT_GOAL}x health",
        f"{accept:.3f}x ({mg['ok_rps']:.0f} / {h['ok_rps']:.0f}/s)",
        accept >= ACCEPT_GOAL and not mg["errors"],
    )
    d = r["delivery"]
    if not r["drained"]:
        print(f"  the backlog was not delivered within {DRAIN_SECONDS:.0f} s")
    q = r["queued"]
    # With a backlog left over, the sink's count includes older emails: no verdict then.
    verdict = (
        "not judged: backlog left over"
        if not r["drained"]
        else "met"
        if q["delivered"] == q["emails"] and q["emails_per_s"] >= 200
        else "NOT met"
    )
    print(
        f"  (b) queued: {q['delivered']} of {q['emails']} emails in the sink in "
        f"{q['seconds']:.1f} s: {q['emails_per_s']:.0f} emails/s (goal >= 200: {verdict})"
    )
    b = r["bare"]
    print(
        f"  (b) bare aiosmtplib ({b['concurrency']} connections, {b['size']} bytes a "
        f"message): {b['delivered']} of {b['emails']} in {b['seconds']:.1f} s: "
        f"{b['emails_per_s']:.0f} emails/s"
    )
    ratio_b = q["emails_per_s"] / b["emails_per_s"] if b["emails_per_s"] else float("nan")
    _report.goal(
        "notifications",
        f"delivered/s >= {DELIVERY_GOAL}x bare aiosmtplib",
        f"{ratio_b:.2f}x ({q['emails_per_s']:.0f} / {b['emails_per_s']:.0f}/s)",
        None if not r["drained"] else q["delivered"] == q["emails"] and ratio_b >= DELIVERY_GOAL,
    )
    print(
        f"  (b) via the API: {d['delivered']} of {d['emails']} emails in the sink in "
        f"{d['seconds']:.1f} s: {d['emails_per_s']:.0f} emails/s; accepted at "
        f"{d['accepted_per_s']:.0f}/s, {d['delivered_while_accepting']} delivered meanwhile,"
        f" then {d['drain_per_s']:.0f}/s"
    )
