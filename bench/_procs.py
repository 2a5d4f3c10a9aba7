"""HTTP benchmarks' moving parts: wrk, and citizen-services and the gateway each in its own
process (as deployed), on loopback ports chosen here."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from mkinfra._proc import free_port, terminate_group

ROOT = Path(__file__).resolve().parents[1]
UNLIMITED = "100000000/1s"  # a gateway limit that a benchmark cannot reach


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() == 0:
        print("  installing wrk (Debian package) …", flush=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not shutil.which("wrk"):
            subprocess.run(
                ["apt-get", "update", "-q"],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "wrk"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    wrk = shutil.which("wrk")
    if not wrk:
        raise RuntimeError("wrk is needed: apt-get install wrk")
    return wrk


def wait_http(url: str, timeout: float = 60) -> None:
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


def request_json(method: str, url: str, token: str | None = None, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
#: Appended to every wrk script: wrk's --latency table has no p95.
_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("PERCENTILES %.3f %.3f %.3f\\n", latency:percentile(50) / 1000,
                         latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def run_wrk(
    wrk: str,
    url: str,
    headers: dict[str, str],
    *,
    duration: int,
    threads: int = 2,
    connections: int = 32,
    script: str | None = None,
) -> dict[str, float]:
    """One wrk run; ``script`` is Lua (a ``request`` function, say). Returns req/s, p50, p95,
    p99 (ms), the count of non-2xx/3xx answers as ``errors``, the rate of the others as
    ``ok_rps``, and connect/read/write/timeout errors as ``socket_errors`` (requests that
    never got an answer, so are in neither the rate nor the percentiles)."""
    cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    with contextlib.ExitStack() as stack:
        if script is not None:
            import tempfile

            f = stack.enter_context(
                tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="mk-bench-")
            )
            f.write(script + _DONE)
            f.flush()
            cmd += ["-s", f.name]
        out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat: dict[str, float] = {}
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        lat[pct] = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")
    lat["95"] = float("nan")
    m = re.search(r"PERCENTILES ([\d.]+) ([\d.]+) ([\d.]+)", out)
    if m:
        lat["50"], lat["95"], lat["99"] = (float(g) for g in m.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = float(non2xx.group(1)) if non2xx else 0.0
    total = re.search(r"(\d+) requests in", out)
    requests = float(total.group(1)) if total else 0.0
    # wrk's Requests/sec counts every answer, refusals too: ``ok_rps`` counts 2xx/3xx only.
    ok_rps = rps * (requests - errors) / requests if requests else 0.0
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), "
        r"timeout (\d+)",
        out,
    )
    return {
        "rps": rps,
        "ok_rps": ok_rps,
        "p50": lat["50"],
        "p95": lat["95"],
        "p99": lat["99"],
        "errors": errors,
        "requests": requests,
        "socket_errors": float(sum(int(g) for g in sockets.groups())) if sockets else 0.0,
    }


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)


def group_cpu_seconds(pgid: int) -> float:
    """CPU time of every live process in process group ``pgid`` (a service and any worker
    processes it started)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # field 5: the process group
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def catalogue_env(port: int, database_url: str) -> dict[str, str]:
    """citizen-services' environment for a benchmark: on ``port`` over ``database_url``,
    without Kafka or seed data, logging warnings only."""
    return {
        **os.environ,
        "CITIZEN_SERVICES_PORT": str(port),
        "CITIZEN_SERVICES_DATABASE_URL": database_url,
        "CITIZEN_SERVICES_MESSAGING_ENABLED": "false",
        "CITIZEN_SERVICES_SEED_DATA": "false",
        "CITIZEN_SERVICES_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def dev_credentials(package: str, var: Path, env: dict[str, str]) -> dict[str, str]:
    """Runs ``python -m <package>.devcreds --var <var>`` and returns the variables it wrote
    to ``<var>/dev-credentials.env``."""
    subprocess.run(
        [sys.executable, "-m", f"{package}.devcreds", "--var", str(var)],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return dict(
        line.split("=", 1)
        for line in (var / "dev-credentials.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )


class Processes:
    """Services and the gateway started as subprocesses (each its own session, logs in
    ``tmp/services.log``); :meth:`close` stops them all."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._procs: list[subprocess.Popen[bytes]] = []
        #: module -> pid of each service started by :meth:`service` (for its CPU time)
        self.pids: dict[str, int] = {}
        self._log = open(tmp / "services.log", "ab")  # noqa: SIM115

    def start(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``python *args`` in its own session, stopped by :meth:`close`."""
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        self._procs.append(proc)
        return proc

    def service(self, module: str, env: dict[str, str], *, port: int) -> str:
        """Start ``python -m module`` (``env`` carries its port setting); its base URL once
        ``/health/live`` answers."""
        self.pids[module] = self.start(["-m", module], env).pid
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health/live")
        return url

    def gateway(
        self,
        env: dict[str, str],
        upstreams: dict[str, str],
        *,
        limits: dict[str, str] | None = None,
    ) -> tuple[str, dict[str, str]]:
        """The gateway with dev credentials; ``upstreams`` {"CITIZEN_SERVICES": url, ...},
        ``limits`` {"catalogue": "1000/1s", ...}. Returns its URL and the dev credentials
        (``STAFF_TOKEN``, ``CITIZEN_TOKEN``, ...)."""
        port = free_port()
        gw_env = {**env, "GATEWAY_DATABASE_URL": f"sqlite:///{self.tmp}/gateway.sqlite3"}
        creds = dev_credentials("gateway", self.tmp, gw_env)
        gw_env.update({k: v for k, v in creds.items() if k.startswith("GATEWAY_")})
        gw_env.update({f"GATEWAY_{name}_URL": url for name, url in upstreams.items()})
        gw_env.update({f"GATEWAY_LIMIT_{name.upper()}": v for name, v in (limits or {}).items()})
        gw_env.update({"GATEWAY_PORT": str(port), "GATEWAY_LOG_LEVEL": "WARNING"})
        self.pids["gateway"] = self.start(["-m", "gateway"], gw_env).pid
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/openapi.json")
        return url, creds

    def catalogue(self, env: dict[str, str], *, port: int) -> tuple[str, str, dict[str, str]]:
        """citizen-services (``env`` carries its port and database) and the gateway in front,
        the catalogue's and anonymous callers' limits out of the way. Returns the service's
        URL, the gateway's and the dev credentials."""
        cs = self.service("citizen_services", env, port=port)
        gw, creds = self.gateway(
            env, {"CITIZEN_SERVICES": cs}, limits={"catalogue": UNLIMITED, "anonymous": UNLIMITED}
        )
        return cs, gw, creds

    def close(self) -> None:
        for proc in self._procs:
            terminate_group(proc, 10)
        self._procs.clear()
        self._log.close()
