"""Scale-out: the same mixed load through the gateway on 1 and then 2 replicas of every
service (each replica its own process, all on one PostgreSQL database per service and one
Kafka broker), with the same load tool in the same run. Prints both throughputs and their
ratio.

Load: wrk (2 threads, 32 connections, ``BENCH_REPLICAS_SECONDS``, default 10 s) cycling
through a catalogue entry read (citizen-services), ``/api/v1/help-near-me`` (inclusion)
and, one request in four, an Open311 report (a write: its event goes through the outbox to
Kafka and notifications' consumers). The gateway's limits are out of the way.

On this 2-core machine every process (the replicas, the gateway, PostgreSQL, Kafka and wrk)
shares the same cores, so the ratio shows what a second replica costs or gains here; on
hosts with cores to spare for each replica it is the headroom that scales.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from bench import _infra, _report
from bench._procs import UNLIMITED, Processes, ensure_wrk, request_json, run_wrk, wait_http
from mkinfra._proc import free_port, tail

DURATION = int(os.environ.get("BENCH_REPLICAS_SECONDS", "10"))
SERVICES = {
    "citizen_services": "CITIZEN_SERVICES",
    "inclusion": "INCLUSION",
    "notifications": "NOTIFICATIONS",
}


def _script(entry: str, code: str, api_key: str) -> str:
    body = f"service_code={code}&lat=52.0406&long=-0.7594&description=bench&api_key={api_key}"
    return f"""
counter = 0
request = function()
  counter = counter + 1
  local m = counter % 4
  if m == 0 then
    return wrk.format("POST", "/open311/v2/requests.json",
      {{["Content-Type"] = "application/x-www-form-urlencoded"}}, "{body}")
  elseif m == 1 then
    return wrk.format("GET", "/api/v1/help-near-me?postcode=MK9%203EJ")
  else
    return wrk.format("GET", "{entry}")
  end
end
"""


def _measure(wrk: str, kafka: str, admin_url: str, replicas: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix=f"mk-bench-replicas{replicas}-"))
    procs = Processes(tmp)
    try:
        upstreams: dict[str, str] = {}
        for module, prefix in SERVICES.items():
            database = _infra.create_database(
                admin_url, f"bench_{module}_{replicas}_{uuid.uuid4().hex[:6]}"
            )
            urls = []
            for _ in range(replicas):
                port = free_port()
                env = {
                    **os.environ,
                    "KAFKA_BOOTSTRAP_SERVERS": kafka,
                    f"{prefix}_PORT": str(port),
                    f"{prefix}_DATABASE_URL": database,
                    f"{prefix}_LOG_LEVEL": "WARNING",
                    f"{prefix}_ENVIRONMENT": "test",
                    "PYTHONUNBUFFERED": "1",
                }
                urls.append(procs.service(module, env, port=port))
                wait_http(urls[-1] + "/health/ready", timeout=120)
            upstreams[prefix] = ",".join(urls)
        gw, creds = procs.gateway(
            {**os.environ, "PYTHONUNBUFFERED": "1"},
            upstreams,
            limits={
                name: UNLIMITED
                for name in ("catalogue", "anonymous", "open311", "default", "health")
            },
        )
        staff = creds["STAFF_TOKEN"]
        code = f"bench-{uuid.uuid4().hex[:6]}"
        created = request_json(
            "POST",
            gw + "/api/v1/services",
            staff,
            {
                "name": "Report a bench",
                "service_code": code,
                "attributes": [{"code": "seats", "datatype": "number", "description": "Seats?"}],
            },
        )
        request_json("POST", f"{gw}/api/v1/services/{created['id']}/publish", staff)
        script = _script(f"/api/v1/services/{created['id']}", code, creds["OPEN311_API_KEY"])
        run_wrk(wrk, gw, {}, duration=3, script=script)  # warm-up
        return run_wrk(wrk, gw, {}, duration=DURATION, script=script)
    except Exception:
        print(f"  the services' log ends:\n{tail(tmp / 'services.log', 30)}", flush=True)
        raise
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)


def run() -> dict[str, dict[str, float]]:
    print("\n== Scale-out: the same mixed load on 1 and 2 replicas per service ==", flush=True)
    wrk = ensure_wrk()
    with contextlib.ExitStack() as stack:
        kafka = stack.enter_context(_infra.kafka())
        admin_url = stack.enter_context(_infra.postgres())
        print(f"  wrk -t2 -c32 -d{DURATION}s: entry read, help near me, read, Open311 report")
        one = _measure(wrk, kafka, admin_url, 1)
        two = _measure(wrk, kafka, admin_url, 2)
    ratio = two["ok_rps"] / one["ok_rps"] if one["ok_rps"] else float("nan")
    print(f"  {'':<30}{'1 replica':>12}{'2 replicas':>12}")
    print(f"  {'requests/s (2xx)':<30}{one['ok_rps']:>12.0f}{two['ok_rps']:>12.0f}")
    for pct in ("p50", "p99"):
        print(f"  {'latency ' + pct + ' (ms)':<30}{one[pct]:>12.1f}{two[pct]:>12.1f}")
    errors = one["errors"] + two["errors"] + one["socket_errors"] + two["socket_errors"]
    if errors:
        print(f"  non-2xx or socket errors: {errors:.0f}")
    _report.goal(
        "replicas",
        "2 replicas per service serve >= 1 replica's throughput",
        f"{ratio:.2f}x ({two['ok_rps']:,.0f} / {one['ok_rps']:,.0f} req/s)",
        ratio >= 1.0 if ratio == ratio else None,
    )
    return {"one": one, "two": two}
