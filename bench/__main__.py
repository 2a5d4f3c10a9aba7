"""``make bench``: every benchmark, each with its same-run baseline; ``python -m bench
<part> ...`` runs some (read, idle, burst, notifications, pipeline, search, gateway, portal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from bench import _report
from bench._procs import load_average


def _parts() -> dict[str, Callable[[], Any]]:
    from bench import burst, event_pipeline, gateway, idle, notifications, portal, read, search

    return {
        "read": read.run,
        "idle": idle.run,
        "burst": burst.run,
        "notifications": notifications.run,
        "pipeline": event_pipeline.run,
        "search": search.run,
        "gateway": gateway.run,
        "portal": portal.run,
    }


def main(argv: list[str]) -> int:
    parts = _parts()
    unknown = [a for a in argv if a not in parts]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(parts)}")
        return 2
    wanted = [name for name in parts if name in argv] if argv else list(parts)
    start = time.monotonic()
    print(
        f"load average (1, 5, 15 min) at the start: {load_average()} "
        "(a shared machine: other work runs beside the benchmark)",
        flush=True,
    )
    for name in wanted:
        print(f"\n[{name}] load average {load_average()}", flush=True)
        parts[name]()
    print(
        f"\n== Goals ({', '.join(wanted)}; {time.monotonic() - start:.0f} s; "
        f"load average at the end {load_average()}) =="
    )
    print(_report.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
