"""The citizen portal's server time per page: each page through the portal, which calls the
gateway, which calls the services (all processes, SQLite, seed data), at 16 concurrent users.

Two loads per page, with a signed-in citizen's session cookie (signed in through the
gateway's dev OIDC provider, as a browser does): 16 users, each asking for the page, reading
it for a second and asking again (``ROUNDS`` times), which gives the server time per page
judged by the goal (issue 16: p95 <= 50 ms for every page); then wrk with 16 connections and
no pause, the pages' throughput when saturated (its latency there is mostly queueing: 16 /
throughput). Pages: the start page (no API call), search, a service page, help near me and
my reports; and search with a new query every time ("search, new q"), which the portal's
cache of the catalogue's public answers (``max-age=60``) cannot answer, so its figure is the
whole path through the gateway to citizen-services' search.

Each answer's time is taken twice: by the users (``p95``: what the goal judges, queueing on
this machine included) and by the portal itself (``Server-Timing: app``: from the request
reaching the portal's app to its answer starting; ``api``: the part spent waiting for the
gateway), so a busy machine's queueing is told apart from the pages' own work; and the CPU
time every process (portal, gateway, services) spent per page during the users' load
(``cpu ms``, from ``/proc``), which other work on the machine changes little.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from bench import _procs, _report
from bench._procs import (
    Processes,
    cpu_seconds,
    ensure_wrk,
    load_average,
    request_json,
    wait_http,
)
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


_TIMING = re.compile(r"(\w+);dur=([\d.]+)")


def server_timing(header: str) -> dict[str, float]:
    """``app;dur=12.5;desc="page", api;dur=8.0;...`` -> {"app": 12.5, "api": 8.0}."""
    return {name: float(ms) for name, ms in _TIMING.findall(header)}


async def _users(url: str | Callable[[], str], cookie: str) -> dict[str, list[float]]:
    """``USERS`` users, each loading ``url`` (or the next URL it gives) then reading for
    ``THINK_SECONDS``, ``ROUNDS`` times after one page not counted (starts spread over the
    first second); each answer's
    time in ms as the users saw it (``client``) and as the portal measured it (``app``,
    ``api``: its ``Server-Timing``)."""
    times: dict[str, list[float]] = {"client": [], "app": [], "api": []}
    next_url = url if callable(url) else lambda: url
    limits = httpx.Limits(max_connections=USERS, max_keepalive_connections=USERS)
    async with httpx.AsyncClient(headers={"Cookie": cookie}, limits=limits, timeout=30) as http:

        async def user(n: int) -> None:
            await asyncio.sleep(n / USERS)
            # one page first, not counted: what a process does once (a template compiled,
            # a connection opened, a cache filled) is not the page's server time
            await http.get(next_url())
            await asyncio.sleep(THINK_SECONDS)
            for _ in range(ROUNDS):
                asked = next_url()
                start = time.perf_counter()
                answer = await http.get(asked)
                times["client"].append((time.perf_counter() - start) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"{asked}: {answer.status_code}")
                timing = server_timing(answer.headers.get("server-timing", ""))
                times["app"].append(timing.get("app", float("nan")))
                times["api"].append(timing.get("api", float("nan")))
                await asyncio.sleep(THINK_SECONDS)

        await asyncio.gather(*(user(n) for n in range(USERS)))
    return times


def _queries(services: list[dict[str, object]]) -> Callable[[], str]:
    """Search URLs, each with a query not asked before in this run (words of the
    catalogue's service names, then pairs of them)."""
    words = sorted(
        {w.lower() for s in services for w in re.findall(r"[A-Za-z]{4,}", str(s["name"]))}
    )
    terms = itertools.chain(words, (f"{a} {b}" for a, b in itertools.combinations(words, 2)))
    return lambda: "/services?q=" + quote(next(terms))


def _lua_paths(paths: Callable[[], str], count: int) -> str:
    """A wrk script asking for ``count`` paths from ``paths`` in turn."""
    listed = ", ".join(json.dumps(paths()) for _ in range(count))
    return (
        f"local paths = {{{listed}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n"
        "  return wrk.format(nil, paths[i])\nend\n"
    )


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
        procs.pids["gateway"] = procs.start(
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
        ).pid
        wait_http(gw + "/openapi.json")
        procs.pids["citizen_portal"] = procs.start(
            ["-m", "citizen_portal"],
            {
                **base,
                "CITIZEN_PORTAL_PORT": str(ports["portal"]),
                "CITIZEN_PORTAL_PUBLIC_URL": portal_url,
                "CITIZEN_PORTAL_GATEWAY_URL": gw,
                "CITIZEN_PORTAL_OIDC_ISSUER": gw + "/dev-issuer",
                "CITIZEN_PORTAL_LOG_LEVEL": "WARNING",
            },
        ).pid
        wait_http(portal_url + "/health")
        cookie = _sign_in(portal_url, "citizen-dev-1")
        services = request_json("GET", gw + "/api/v1/services?q=bins")["items"]
        catalogue = request_json("GET", gw + "/api/v1/services?size=100")["items"]
        new_query = _queries(catalogue)
        pages: dict[str, str | Callable[[], str]] = {
            "start page": "/",
            "search": "/services?q=bins",
            "search, new q": new_query,
            "a service": f"/services/{services[0]['id']}",
            "help near me": "/help?postcode=MK9",
            "my reports": "/requests",
        }
        headers = {"Cookie": cookie}
        print(
            f"  {USERS} users, {ROUNDS} pages each, {THINK_SECONDS:.0f} s between; then "
            f"wrk -t2 -c{USERS} -d{DURATION}s (saturated). p50/p95/max: as the users saw "
            "it; app p95 / api p95: the portal's own Server-Timing (api: waiting for the "
            f"gateway); goal p95 <= {GOAL_P95_MS:.0f} ms",
            flush=True,
        )
        print(
            f"  {'page':<15}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'app p95':>9}"
            f"{'api p95':>9}{'cpu ms':>8}{'goal':>9}{'sat. req/s':>12}{'sat. p95':>10}{'errors':>8}"
            f"  load"
        )
        for name, path in pages.items():
            cpu_before = {module: cpu_seconds(pid) for module, pid in procs.pids.items()}
            if isinstance(path, str):
                times = asyncio.run(_users(portal_url + path, cookie))
                url, script = portal_url + path, ""
            else:
                times = asyncio.run(_users(lambda: portal_url + new_query(), cookie))
                url, script = portal_url + "/services", _lua_paths(new_query, 3000)
            cpu_ms = {
                module: (cpu_seconds(pid) - cpu_before[module]) * 1000 / len(times["client"])
                for module, pid in procs.pids.items()
            }
            figures = _procs.run_wrk(
                wrk, url, headers, duration=DURATION, connections=USERS, script=script
            )
            client = times["client"]
            results[name] = {
                "p50": _p(client, 50),
                "p95": _p(client, 95),
                "max": max(client),
                "app_p95": _p(times["app"], 95),
                "api_p95": _p(times["api"], 95),
                "cpu_ms": sum(cpu_ms.values()),
                **{f"cpu_ms_{module}": ms for module, ms in cpu_ms.items()},
                "saturated_rps": figures["rps"],
                "saturated_p95": figures["p95"],
                "errors": figures["errors"] + figures["socket_errors"],
            }
            r = results[name]
            met = "met" if r["p95"] <= GOAL_P95_MS else "NOT met"
            print(
                f"  {name:<15}{r['p50']:>8.1f}{r['p95']:>8.1f}{r['max']:>8.1f}"
                f"{r['app_p95']:>9.1f}{r['api_p95']:>9.1f}{r['cpu_ms']:>8.1f}{met:>9}"
                f"{r['saturated_rps']:>12.0f}{r['saturated_p95']:>10.1f}{r['errors']:>8.0f}"
                f"  {load_average()}",
                flush=True,
            )
        print("  cpu ms per page, by process (during the users' load):")
        for name, r in results.items():
            parts = ", ".join(f"{module} {r[f'cpu_ms_{module}']:.1f}" for module in procs.pids)
            print(f"    {name:<15}{parts}")
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)
    worst = max(results.items(), key=lambda item: item[1]["p95"])
    clean = all(r["errors"] == 0 for r in results.values())
    _report.goal(
        "portal",
        f"every page p95 <= {GOAL_P95_MS:.0f} ms, {USERS} users (via the gateway)",
        f"worst: {worst[0]} {worst[1]['p95']:.1f} ms (portal's own {worst[1]['app_p95']:.1f})",
        worst[1]["p95"] <= GOAL_P95_MS and clean,
    )
    return results
