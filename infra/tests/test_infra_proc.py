"""Process helpers: group termination with a SIGKILL fallback, sync runner inside a loop."""

from __future__ import annotations

import asyncio
import subprocess
import time

from mkinfra._proc import port_in_use, run_sync, terminate_group
from mkinfra.testing import free_ports


def test_terminate_group_kills_a_process_ignoring_sigterm() -> None:
    proc = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60 & wait"], start_new_session=True)
    time.sleep(0.2)
    started = time.monotonic()
    terminate_group(proc, timeout=0.5)
    assert proc.poll() is not None
    assert time.monotonic() - started < 5
    time.sleep(0.2)
    states = subprocess.run(
        ["ps", "-o", "stat=", "-g", str(proc.pid)], capture_output=True, text=True
    ).stdout.split()
    assert all(s.startswith("Z") for s in states)  # at most unreaped zombies of orphans


async def test_run_sync_works_inside_a_running_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert run_sync(answer()) == 42


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3
    assert not any(port_in_use(p) for p in ports)
