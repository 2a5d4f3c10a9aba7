"""The citizen portal's server time per page: each page through the portal, which calls the
gateway, which calls the services (all processes, SQLite, seed data), at 16 concurrent users.

Two loads per page, with a signed-in citizen's session cookie (signed in through the
gateway's dev OIDC provider, as a browser does): 16 users, each asking for the page, reading
it for a second and asking again (``ROUNDS`` times), which gives the server time per page
judged by the goal (issue 16: p95 <= 50 ms for every page); then wrk with 16 connections and
no pause, the pages' throughput when saturated (its latency there is mostly queueing: 16 /
throughput). Pages: the start page (no API call), search, a service page, help near me and
my reports.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from bench import _procs, _report
from bench._procs import Processes, ensure_wrk, request_json, wait_http
from gateway.auth.devissuer import DEV_AUDIENCE, ensure_dev_issuer
from mkinfra._proc import free_port

DURATION = int(os.environ.get("BENCH_PORTAL_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_PORTAL_ROUNDS", "10"))
THINK_SECONDS = 1.0
USERS = 16
GOAL_P95_MS = 50.0
CLIENT_SECRET = "dev-only-client-secret-change-me-0123456789"


def _sign_in(portal: str, subject: str) -> str:
    """The portal's session cookie for ``subject``, through the dev provider's pages."""
    with httpx.Client(base_url=portal, timeout=30) as browser:
        to_provider = browser.get("/sign-in?next=/")
        authorize = to_provider.headers["location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        chosen = httpx.post(authorize.split("?")[0], data={**query, "subject": subject})
        back = browser.get(chosen.headers["location"])
        assert back.status_code == 303, back.text
        return f"mk_session={browser.cookies['mk_session']}"


async def _users(url: str, cookie: str) -> list[float]:
    """``USERS`` users, each loading ``url`` then reading for ``THINK_SECONDS``, ``ROUNDS``
    times (starts spread over the first second); the time of each answer, in ms."""
    times: list[float] = []
    limits = httpx.Limits(max_connections=USERS, max_keepalive_connections=USERS)
    async with httpx.AsyncClient(headers={"Cookie": cookie}, limits=limits, timeout=30) as http:

        async def user(n: int) -> None:
            await asyncio.sleep(n / USERS)
            for _ in range(ROUNDS):
                start = time.perf_counter()
                answer = await http.get(url)
                times.append((time.perf_counter() - start) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"{url}: {answer.status_code}")
                await asyncio.sleep(THINK_SECONDS)

        await asyncio.gather(*(user(n) for n in range(USERS)))
    return times


def _p(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run() -> dict[str, dict[str, float]]:
    print("\n== Citizen portal: server time per page at 16 users ==", flush=True)
    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="mk-bench-portal-"))
    ports = {name: free_port() for name in ("cs", "inclusion", "portal")}
    base = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = Processes(tmp)
    results: dict[str, dict[str, float]] = {}
    try:
        cs = procs.service(
            "citizen_services",
            {
                **base,
                "CITIZEN_SERVICES_PORT": str(ports["cs"]),
                "CITIZEN_SERVICES_DATABASE_URL": f"sqlite:///{tmp}/cs.sqlite3",
                "CITIZEN_SERVICES_MESSAGING_ENABLED": "false",
                "CITIZEN_SERVICES_LOG_LEVEL": "WARNING",
            },
            port=ports["cs"],
        )
        inclusion = procs.service(
            "inclusion",
            {
                **base,
                "INCLUSION_PORT": str(ports["inclusion"]),
                "INCLUSION_DATABASE_URL": f"sqlite:///{tmp}/inclusion.sqlite3",
                "INCLUSION_MESSAGING_ENABLED": "false",
                "INCLUSION_LOG_LEVEL": "WARNING",
            },
            port=ports["inclusion"],
        )
        portal_url = f"http://127.0.0.1:{ports['portal']}"
        clients = {
            "citizen-portal": {
                "redirect_uris": [portal_url + "/auth/callback"],
                "secret": CLIENT_SECRET,
                "roles": ["citizen"],
            }
        }
        # the gateway on its own port, trusting the dev issuer at that port's /dev-issuer
        gw_port = free_port()
        gw = f"http://127.0.0.1:{gw_port}"
        issuer = ensure_dev_issuer(tmp / "dev-issuer")
        procs.start(
            ["-m", "gateway"],
            {
                **base,
                "GATEWAY_PORT": str(gw_port),
                "GATEWAY_LOG_LEVEL": "WARNING",
                "GATEWAY_DATABASE_URL": f"sqlite:///{tmp}/gateway.sqlite3",
                "GATEWAY_JWT_JWKS_FILE": str(issuer.jwks_path),
                "GATEWAY_JWT_ISSUER": gw + "/dev-issuer",
                "GATEWAY_JWT_AUDIENCE": DEV_AUDIENCE,
                "GATEWAY_DEV_OIDC_CLIENTS": json.dumps(clients),
                "GATEWAY_CITIZEN_SERVICES_URL": cs,
                "GATEWAY_INCLUSION_URL": inclusion,
                "GATEWAY_RATE_LIMITS_ENABLED": "false",
            },
        )
        wait_http(gw + "/openapi.json")
        procs.start(
            ["-m", "citizen_portal"],
            {
                **base,
                "CITIZEN_PORTAL_PORT": str(ports["portal"]),
                "CITIZEN_PORTAL_PUBLIC_URL": portal_url,
                "CITIZEN_PORTAL_GATEWAY_URL": gw,
                "CITIZEN_PORTAL_OIDC_ISSUER": gw + "/dev-issuer",
                "CITIZEN_PORTAL_LOG_LEVEL": "WARNING",
            },
        )
        wait_http(portal_url + "/health")
        cookie = _sign_in(portal_url, "citizen-dev-1")
        services = request_json("GET", gw + "/api/v1/services?q=bins")["items"]
        pages = {
            "start page": "/",
            "search": "/services?q=bins",
            "a service": f"/services/{services[0]['id']}",
            "help near me": "/help?postcode=MK9",
            "my reports": "/requests",
        }
        headers = {"Cookie": cookie}
        print(
            f"  {USERS} users, {ROUNDS} pages each, {THINK_SECONDS:.0f} s between; then "
            f"wrk -t2 -c{USERS} -d{DURATION}s (saturated)",
            flush=True,
        )
        print(
            f"  {'page':<16}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
            f"{'sat. req/s':>12}{'sat. p95':>10}{'errors':>8}"
        )
        for name, path in pages.items():
            times = asyncio.run(_users(portal_url + path, cookie))
            figures = _procs.run_wrk(
                wrk, portal_url + path, headers, duration=DURATION, connections=USERS, script=""
            )
            results[name] = {
                "p50": _p(times, 50),
                "p95": _p(times, 95),
                "max": max(times),
                "saturated_rps": figures["rps"],
                "saturated_p95": figures["p95"],
                "errors": figures["errors"] + figures["socket_errors"],
            }
            r = results[name]
            print(
                f"  {name:<16}{r['p50']:>9.1f}{r['p95']:>9.1f}{r['max']:>9.1f}"
                f"{r['saturated_rps']:>12.0f}{r['saturated_p95']:>10.1f}{r['errors']:>8.0f}",
                flush=True,
            )
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)
    worst = max(results.items(), key=lambda item: item[1]["p95"])
    clean = all(r["errors"] == 0 for r in results.values())
    _report.goal(
        "portal",
        f"every page p95 <= {GOAL_P95_MS:.0f} ms, {USERS} users (via the gateway)",
        f"worst: {worst[0]} {worst[1]['p95']:.1f} ms",
        worst[1]["p95"] <= GOAL_P95_MS and clean,
    )
    return results
