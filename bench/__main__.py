"""``make bench``: every benchmark, each with its same-run baseline."""

from __future__ import annotations

import sys

from bench import event_pipeline, gateway, notifications, search


def main(argv: list[str]) -> int:
    wanted = set(argv) or {"pipeline", "gateway", "notifications", "search"}
    if "pipeline" in wanted:
        event_pipeline.run()
    if "gateway" in wanted:
        gateway.run()
    if "notifications" in wanted:
        notifications.run()
    if "search" in wanted:
        search.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
