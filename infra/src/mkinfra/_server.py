"""What the local servers (Kafka, PostgreSQL, Redis, the SMTP sink) share.

* :class:`ServerLifecycle`: ``with server:`` calls ``start()`` and ``stop()``, and
  :meth:`~ServerLifecycle._stop_at_exit` makes sure a started server is stopped when the
  interpreter exits.
* :class:`ManagedServer`: a server that is one subprocess (in its own process group) we hold
  the handle of: ``running``, ``pid``, ``stop(timeout)``, ``kill()``.
* :func:`serve_until_signalled`: the ``python -m mkinfra.<server>`` foreground loop.

PostgreSQL and the SMTP sink only use :class:`ServerLifecycle`: ``pg_ctl`` detaches the
postmaster (no handle to hold) and the sink is a thread in this process.
"""

from __future__ import annotations

import atexit
import signal
import subprocess
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Protocol, Self

from mkinfra._proc import kill_group, terminate_group


class ServerLifecycle:
    """Context-manager support for a server with ``start()`` and ``stop()``."""

    _atexit_registered = False

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _stop_at_exit(self) -> None:
        """Have ``stop()`` run at interpreter exit (registered once per server)."""
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True


class ManagedServer(ServerLifecycle):
    """A server running as one subprocess in its own process group, started by :meth:`_spawn`.

    Subclasses implement ``start()`` (calling :meth:`_spawn`, then waiting until ready).
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return self._proc.pid if self.running and self._proc else None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the server's process group, SIGKILL after ``timeout``; idempotent.

        SIGTERM is the server's clean shutdown; ``timeout`` bounds how long it may take.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate_group(proc, timeout)

    def kill(self) -> None:
        """SIGKILL the server's process group at once (a crash, for fault tests); idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            kill_group(proc)

    def _spawn(self, cmd: list[str], *, log_file: Path, cwd: Path) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in a new session, stdout and stderr appended to ``log_file``.

        The server is stopped at interpreter exit unless stopped before.
        """
        with log_file.open("ab") as log_fh:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
            )
        self._stop_at_exit()
        return self._proc


class _Runs(Protocol):
    @property
    def running(self) -> bool: ...


def serve_until_signalled(server: _Runs, poll: float = 0.5) -> bool:
    """Block until SIGINT/SIGTERM arrives or ``server`` stops running; True if signalled.

    Installs handlers for both signals (so call it from the main thread) and leaves them
    installed, so a second Ctrl-C does not interrupt the caller's ``server.stop()``. It does
    not stop the server itself.
    """
    signalled = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal signalled
        signalled = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    # A flag, not a threading.Event: Event.set() in a handler can deadlock on the Event's lock.
    while not signalled and server.running:
        time.sleep(poll)
    return signalled
