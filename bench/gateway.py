"""Gateway overhead: one public read endpoint, direct to the service and through the gateway
(authentication, rate limiting and tracing on), with the same load tool in the same run.

Load: wrk (Debian's package, installed if missing), 2 threads, 32 connections, for a fixed
duration, against ``GET /api/v1/services/{id}`` of a published catalogue entry, with a
citizen's bearer token on the gateway run. Prints both throughputs, their ratio, and the
p50/p99 latency the gateway adds. Goal: >= 0.70x direct, p99 added <= 2 ms.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mkinfra._proc import free_port, terminate_group

DURATION = int(os.environ.get("BENCH_GATEWAY_SECONDS", "10"))
CONNECTIONS = 32
THREADS = 2


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() == 0:
        print("  installing wrk (Debian package) …", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-q"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wrk = shutil.which("wrk")
    if not wrk:
        raise RuntimeError("wrk is needed: apt-get install wrk")
    return wrk


def _wait(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
            continue
    raise TimeoutError(url)


def _request(method: str, url: str, token: str | None = None, body: dict | None = None) -> dict:  # type: ignore[type-arg]
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(wrk: str, url: str, headers: dict[str, str], *, threads: int = THREADS,
            connections: int = CONNECTIONS) -> dict[str, float]:
    cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{DURATION}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        lat[pct] = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": lat["50"], "p99": lat["99"],
            "errors": float(non2xx.group(1)) if non2xx else 0.0}


def run() -> dict[str, dict[str, float]]:
    print("\n== Gateway overhead (same endpoint, direct vs through the gateway) ==", flush=True)
    wrk = ensure_wrk()
    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="mk-bench-gw-"))
    cs_port, gw_port = free_port(), free_port()
    env = {**os.environ, "CITIZEN_SERVICES_PORT": str(cs_port),
           "CITIZEN_SERVICES_DATABASE_URL": f"sqlite:///{tmp}/cs.sqlite3",
           "CITIZEN_SERVICES_MESSAGING_ENABLED": "false",
           "CITIZEN_SERVICES_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        log = open(tmp / "services.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen([sys.executable, "-m", "citizen_services"], env=env,
                                      cwd=root, stdout=log, stderr=log, start_new_session=True))
        cs = f"http://127.0.0.1:{cs_port}"
        _wait(cs + "/health/live")
        gw_env = {**env, "GATEWAY_DATABASE_URL": f"sqlite:///{tmp}/gateway.sqlite3"}
        subprocess.run([sys.executable, "-m", "gateway.devcreds", "--var", str(tmp)],
                       env=gw_env, cwd=root, check=True, stdout=subprocess.DEVNULL)
        creds = dict(line.split("=", 1) for line in (tmp / "dev-credentials.env").read_text()
                     .splitlines() if "=" in line and not line.startswith("#"))
        gw_env.update({k: v for k, v in creds.items() if k.startswith("GATEWAY_")})
        gw_env.update({"GATEWAY_PORT": str(gw_port), "GATEWAY_CITIZEN_SERVICES_URL": cs,
                       "GATEWAY_LOG_LEVEL": "WARNING",
                       "GATEWAY_LIMIT_CATALOGUE": "100000000/1s",
                       "GATEWAY_LIMIT_ANONYMOUS": "100000000/1s"})
        procs.append(subprocess.Popen([sys.executable, "-m", "gateway"], env=gw_env, cwd=root,
                                      stdout=log, stderr=log, start_new_session=True))
        gw = f"http://127.0.0.1:{gw_port}"
        _wait(gw + "/openapi.json")
        staff, citizen = creds["STAFF_TOKEN"], creds["CITIZEN_TOKEN"]
        created = _request("POST", gw + "/api/v1/services", staff,
                           {"name": "Council tax: pay your bill"})
        _request("POST", f"{gw}/api/v1/services/{created['id']}/publish", staff)
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
        for proc in procs:
            terminate_group(proc, 10)
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = via["rps"] / direct["rps"]
    print(f"  {'':<34}{'direct':>10}{'gateway':>10}")
    print(f"  {'requests/s (32 connections)':<34}{direct['rps']:>10.0f}{via['rps']:>10.0f}"
          f"   ratio {ratio:.2f}x  (goal >= 0.70x)")
    for pct in ("p50", "p99"):
        added = via_lat[pct] - direct_lat[pct]
        goal = "  (goal <= 2 ms)" if pct == "p99" else ""
        print(f"  {'latency ' + pct + ' (1 connection, ms)':<34}{direct_lat[pct]:>10.2f}"
              f"{via_lat[pct]:>10.2f}   added {added:.2f} ms{goal}")
    errors = direct["errors"] + via["errors"] + direct_lat["errors"] + via_lat["errors"]
    if errors:
        print(f"  non-2xx responses: {errors:.0f}")
    return {"direct": direct, "gateway": via, "direct_latency": direct_lat,
            "gateway_latency": via_lat}
