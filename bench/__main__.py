"""``make bench``: every benchmark, each with its same-run baseline."""

from __future__ import annotations

import sys

from bench import event_pipeline, gateway


def main(argv: list[str]) -> int:
    wanted = set(argv) or {"pipeline", "gateway"}
    if "pipeline" in wanted:
        event_pipeline.run()
    if "gateway" in wanted:
        gateway.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
