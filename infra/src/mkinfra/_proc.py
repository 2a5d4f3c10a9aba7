"""Small process, port and asyncio helpers shared by the local-infrastructure modules."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on ``host`` that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = LOCALHOST) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path | None, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file, or an empty string if it cannot be read."""
    if path is None:
        return ""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def terminate_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop a process started with ``start_new_session=True`` and everything in its group.

    Sends SIGTERM to the group, waits up to ``timeout`` seconds, then SIGKILLs the group.
    Signals are only sent while the group leader is alive (not yet reaped), so its process
    group id cannot have been reused by an unrelated process.
    """
    if proc.poll() is not None:
        return
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started with ``start_new_session=True`` and its group; reap it."""
    if proc.poll() is not None:
        return
    _kill_group(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code and return its result.

    Uses a fresh event loop in a worker thread, so it also works when the caller is
    already inside a running loop (e.g. a factory fixture called from an async test).
    """
    result: list[T] = []
    error: list[BaseException] = []

    def runner() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=runner, name="mkinfra-run-sync", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
