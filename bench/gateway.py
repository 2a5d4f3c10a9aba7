"""Gateway overhead: one public read endpoint, direct to the service and through the gateway
(authentication, rate limiting and tracing on), with the same load tool in the same run.

Load: wrk (Debian's package, installed if missing), 2 threads, 32 connections, for a fixed
duration, against ``GET /api/v1/services/{id}`` of a published catalogue entry, with a
citizen's bearer token on the gateway run. Prints both throughputs, their ratio, and the
p50/p99 latency the gateway adds. Goal: >= 0.70x direct, p99 added <= 2 ms.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench import _procs
from bench._procs import Processes, ensure_wrk, request_json
from mkinfra._proc import free_port

DURATION = int(os.environ.get("BENCH_GATEWAY_SECONDS", "5"))
CONNECTIONS = 32
THREADS = 2


def run_wrk(
    wrk: str,
    url: str,
    headers: dict[str, str],
    *,
    threads: int = THREADS,
    connections: int = CONNECTIONS,
) -> dict[str, float]:
    return _procs.run_wrk(
        wrk, url, headers, duration=DURATION, threads=threads, connections=connections
    )


def run() -> dict[str, dict[str, float]]:
    print("\n== Gateway overhead (same endpoint, direct vs through the gateway) ==", flush=True)
    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="mk-bench-gw-"))
    cs_port = free_port()
    env = {
        **os.environ,
        "CITIZEN_SERVICES_PORT": str(cs_port),
        "CITIZEN_SERVICES_DATABASE_URL": f"sqlite:///{tmp}/cs.sqlite3",
        "CITIZEN_SERVICES_MESSAGING_ENABLED": "false",
        "CITIZEN_SERVICES_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    procs = Processes(tmp)
    try:
        cs, gw, creds = procs.catalogue(env, port=cs_port)
        staff, citizen = creds["STAFF_TOKEN"], creds["CITIZEN_TOKEN"]
        created = request_json(
            "POST", gw + "/api/v1/services", staff, {"name": "Council tax: pay your bill"}
        )
        request_json("POST", f"{gw}/api/v1/services/{created['id']}/publish", staff)
        path = f"/api/v1/services/{created['id']}"
        print(f"  wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s GET {path}", flush=True)
        auth = {"Authorization": f"Bearer {citizen}"}
        run_wrk(wrk, cs + path, {})  # warm-up
        run_wrk(wrk, gw + path, auth)
        # throughput: saturated, 32 connections
        direct = run_wrk(wrk, cs + path, {})
        via = run_wrk(wrk, gw + path, auth)
        # latency: one connection, one request at a time (no queueing in the figures)
        direct_lat = run_wrk(wrk, cs + path, {}, threads=1, connections=1)
        via_lat = run_wrk(wrk, gw + path, auth, threads=1, connections=1)
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = via["ok_rps"] / direct["ok_rps"]  # 2xx/3xx answers only: refusals are not served
    print(f"  {'':<34}{'direct':>10}{'gateway':>10}")
    print(
        f"  {'requests/s (32 connections)':<34}{direct['ok_rps']:>10.0f}{via['ok_rps']:>10.0f}"
        f"   ratio {ratio:.2f}x  (goal >= 0.70x)"
    )
    for pct in ("p50", "p99"):
        added = via_lat[pct] - direct_lat[pct]
        goal = "  (goal <= 2 ms)" if pct == "p99" else ""
        print(
            f"  {'latency ' + pct + ' (1 connection, ms)':<34}{direct_lat[pct]:>10.2f}"
            f"{via_lat[pct]:>10.2f}   added {added:.2f} ms{goal}"
        )
    errors = direct["errors"] + via["errors"] + direct_lat["errors"] + via_lat["errors"]
    if errors:
        print(f"  non-2xx responses: {errors:.0f}")
    return {
        "direct": direct,
        "gateway": via,
        "direct_latency": direct_lat,
        "gateway_latency": via_lat,
    }
