"""Entry read and 304 against ``/health/live`` of the same citizen-services process, on
SQLite and on PostgreSQL.

Set-up: citizen-services (messaging off: the benchmark only reads; no Kafka) and the gateway
in front, each in its own process; one catalogue entry created and published through the
gateway. Then wrk (2 threads, 16 connections) straight at the service, alternating
``GET /health/live``, ``GET /api/v1/services/{id}`` and the same with ``If-None-Match`` (304),
``BENCH_READ_SECONDS`` (3) each, twice over, so a burst of load from elsewhere does not land
on one figure only. ``/health/live`` is the process's floor: the framework, the middleware
and a tiny JSON answer, no database.

Printed: 2xx/3xx answers a second, each read's ratio to health, and the service's CPU time
per request (``/proc/<pid>/stat`` utime + stime before and after the runs, over the answers
counted): throughput moves with whatever else runs on the machine, CPU per request much less.

Goals: entry read >= 0.35x health on SQLite, >= 0.5x on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import _infra, _report
from bench._procs import (
    Processes,
    catalogue_env,
    cpu_seconds,
    ensure_wrk,
    request_json,
    run_wrk,
)
from mkinfra._proc import free_port

SECONDS = int(os.environ.get("BENCH_READ_SECONDS", "3"))
CONNECTIONS = 16
THREADS = 2
GOALS = {"sqlite": 0.35, "postgresql": 0.5}


@dataclass
class Catalogue:
    """citizen-services with one published entry, and the gateway in front."""

    service: str  # the service's base URL
    gateway: str
    pid: int  # the service's process
    path: str  # the entry: /api/v1/services/{id}
    etag: str
    creds: dict[str, str]


@contextlib.contextmanager
def catalogue_with_entry(
    database: str, *, limits: dict[str, str] | None = None
) -> Iterator[Catalogue]:
    """``database``: "sqlite" or "postgresql". ``limits``: the gateway's (default: as
    deployed)."""
    tmp = Path(tempfile.mkdtemp(prefix="mk-bench-read-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        url = _infra.fresh_database(
            stack, database, tmp, sqlite_file="cs.sqlite3", name="bench_read"
        )
        port = free_port()
        env = catalogue_env(port, url)
        procs = Processes(tmp)
        stack.callback(procs.close)
        cs = procs.service("citizen_services", env, port=port)
        gw, creds = procs.gateway(env, {"CITIZEN_SERVICES": cs}, limits=limits)
        staff = creds["STAFF_TOKEN"]
        created = request_json(
            "POST",
            gw + "/api/v1/services",
            staff,
            {
                "name": "Council tax: pay your bill",
                "description": "Pay online, by phone or by direct debit.",
            },
        )
        request_json("POST", f"{gw}/api/v1/services/{created['id']}/publish", staff)
        path = f"/api/v1/services/{created['id']}"
        with urllib.request.urlopen(cs + path, timeout=10) as r:
            etag = r.headers["ETag"]
        yield Catalogue(cs, gw, procs.pids["citizen_services"], path, etag, creds)


def measure(database: str, wrk: str) -> dict[str, dict[str, float]]:
    print(
        f"  {database}: wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s, each figure twice, "
        "alternating",
        flush=True,
    )
    with catalogue_with_entry(database) as c:
        cases = {
            "health": (c.service + "/health/live", {}),
            "entry": (c.service + c.path, {}),
            "304": (c.service + c.path, {"If-None-Match": c.etag}),
        }
        for url, headers in cases.values():  # warm-up: connections, caches
            run_wrk(wrk, url, headers, duration=1, threads=THREADS, connections=CONNECTIONS)
        totals = {
            name: {
                "ok": 0.0,
                "seconds": 0.0,
                "requests": 0.0,
                "cpu": 0.0,
                "errors": 0.0,
                "p99": 0.0,
            }
            for name in cases
        }
        for _ in range(2):
            for name, (url, headers) in cases.items():
                before = cpu_seconds(c.pid)
                r = run_wrk(
                    wrk, url, headers, duration=SECONDS, threads=THREADS, connections=CONNECTIONS
                )
                t = totals[name]
                t["cpu"] += cpu_seconds(c.pid) - before
                t["ok"] += r["ok_rps"] * SECONDS
                t["seconds"] += SECONDS
                t["requests"] += r["requests"]
                t["errors"] += r["errors"] + r["socket_errors"]
                t["p99"] = max(t["p99"], r["p99"])
    return {
        name: {
            "rps": t["ok"] / t["seconds"],
            "cpu_us": t["cpu"] / t["requests"] * 1e6 if t["requests"] else float("nan"),
            "errors": t["errors"],
            "p99": t["p99"],
        }
        for name, t in totals.items()
    }


def run() -> dict[str, dict[str, dict[str, float]]]:
    print("\n== Entry read and 304 vs /health/live (same citizen-services process) ==", flush=True)
    wrk = ensure_wrk()
    results = {db: measure(db, wrk) for db in ("sqlite", "postgresql")}
    print(f"  {'':<40}{'req/s':>9}{'x health':>10}{'CPU us/req':>12}{'x health':>10}{'p99 ms':>9}")
    for db, r in results.items():
        h = r["health"]
        for name, label in (
            ("health", "/health/live"),
            ("entry", "entry read (200)"),
            ("304", "entry, If-None-Match (304)"),
        ):
            m = r[name]
            print(
                f"  {db + ': ' + label:<40}{m['rps']:>9.0f}{m['rps'] / h['rps']:>9.2f}x"
                f"{m['cpu_us']:>12.0f}{m['cpu_us'] / h['cpu_us']:>9.2f}x{m['p99']:>9.1f}"
            )
        errors = sum(m["errors"] for m in r.values())
        if errors:
            print(f"  {db}: {errors:.0f} answers not 2xx/3xx or socket errors")
    for db, r in results.items():
        ratio = r["entry"]["rps"] / r["health"]["rps"]
        _report.goal(
            "read",
            f"entry read >= {GOALS[db]}x /health/live ({db})",
            f"{ratio:.2f}x ({r['entry']['rps']:.0f} / {r['health']['rps']:.0f}/s)",
            ratio >= GOALS[db] and not r["entry"]["errors"],
        )
    return results
