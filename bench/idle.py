"""Idle CPU per process: the platform started as ``make run`` starts it
(``mkinfra.devstack``: Kafka, the SMTP sink, citizen-services, inclusion, notifications and
the gateway, on SQLite, in a temporary directory and on free loopback ports), left to settle
for ``BENCH_IDLE_SETTLE_SECONDS`` (20), then each process's CPU time (its process group's,
from ``/proc``: utime + stime) over ``BENCH_IDLE_SECONDS`` (10), as a share of one core.

Goal: every process under 3% of one core. (The SMTP sink runs as a thread of the process
that starts the platform, here this benchmark; it is not measured.)
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

from bench import _report
from bench._procs import group_cpu_seconds
from mkinfra._proc import free_port

SETTLE = float(os.environ.get("BENCH_IDLE_SETTLE_SECONDS", "20"))
SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "10"))
GOAL = 0.03

PORTS = (
    "KAFKA_PORT",
    "KAFKA_CONTROLLER_PORT",
    "SMTP_SINK_PORT",
    "CITIZEN_SERVICES_PORT",
    "INCLUSION_PORT",
    "NOTIFICATIONS_PORT",
    "GATEWAY_PORT",
)


def run() -> dict[str, float]:
    print(
        f"\n== Idle CPU per process (the platform as `make run` starts it; settle "
        f"{SETTLE:.0f} s, measure {SECONDS:.0f} s) ==",
        flush=True,
    )
    from mkinfra.devstack import DevStack

    saved = {k: os.environ.get(k) for k in (*PORTS, "KAFKA_BOOTSTRAP_SERVERS")}
    os.environ.update({k: str(free_port()) for k in PORTS})
    os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # its own broker, to measure it too
    shares: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mk-bench-idle-") as tmp:
        stack = DevStack(Path(tmp))
        try:
            with open(Path(tmp) / "devstack.out", "w") as out, contextlib.redirect_stdout(out):
                stack.start()  # its banner and progress lines go to a file
            groups: dict[str, int] = {}
            if stack.broker is not None and stack.broker.pid is not None:
                groups["kafka"] = os.getpgid(stack.broker.pid)
            for child in stack.children:
                assert child.proc is not None
                groups[child.name] = child.proc.pid  # its own session: pgid = pid
            print(f"  started; settling {SETTLE:.0f} s …", flush=True)
            time.sleep(SETTLE)
            before = {name: group_cpu_seconds(g) for name, g in groups.items()}
            t0 = time.monotonic()
            time.sleep(SECONDS)
            elapsed = time.monotonic() - t0
            shares = {
                name: (group_cpu_seconds(g) - before[name]) / elapsed for name, g in groups.items()
            }
        finally:
            with contextlib.redirect_stdout(io.StringIO()):
                stack.stop()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    for name, share in shares.items():
        print(f"  {name:<20}{share * 100:>6.2f}% of one core")
    worst = max(shares, key=lambda n: shares[n])
    _report.goal(
        "idle",
        f"idle CPU < {GOAL * 100:.0f}% of a core, every process",
        f"max {shares[worst] * 100:.1f}% ({worst})",
        all(s < GOAL for s in shares.values()),
    )
    return shares
