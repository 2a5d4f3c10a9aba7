"""Redis without Docker: the distribution's ``redis-server``, private throw-away instances.

* :func:`ensure_redis_installed` finds ``redis-server`` (installing Debian's ``redis-server``
  package with apt-get when running as root and it is missing). The package would start and
  enable its own system service on 6379; that is prevented (``policy-rc.d``) or undone: we
  only ever run our own instances.
* :class:`RedisServer` runs one on 127.0.0.1:``port`` in the foreground of its own process
  group, without persistence (``--save ''``, ``--appendonly no``): a restart starts empty.

``python -m mkinfra.redis [--data-dir var/redis] [--port 56379]`` runs one until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mkinfra._proc import LOCALHOST, port_in_use, tail
from mkinfra._server import ManagedServer, serve_until_signalled

PACKAGE = "redis-server"
SERVICE = "redis-server"
_POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
_DEBIAN_PIDFILE = Path("/run/redis/redis-server.pid")


class RedisError(RuntimeError):
    """Redis cannot be installed or started here."""


# --------------------------------------------------------------------------- binary


def find_redis_server() -> Path | None:
    """The ``redis-server`` binary, or None."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    for candidate in (Path("/usr/bin/redis-server"), Path("/usr/local/bin/redis-server")):
        if candidate.exists():
            return candidate
    return None


def ensure_redis_installed() -> Path:
    """Return the ``redis-server`` binary, installing it with apt-get if needed.

    Installing needs root and apt-get; the package's own service is kept from starting
    (or stopped) and disabled. Raises :class:`RedisError` when nothing can be done.
    """
    found = find_redis_server()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RedisError(
            "redis-server was not found. Install it (e.g. `sudo apt-get install redis-server`) "
            "or set REDIS_URL to an existing Redis."
        )
    _apt_install_redis()
    found = find_redis_server()
    if not found:
        raise RedisError("apt-get installed redis-server but the binary was not found")
    return found


def _apt_install_redis() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("Installing Redis with apt-get… (once)", file=sys.stderr, flush=True)
    # policy-rc.d exiting 101 tells invoke-rc.d / deb-systemd-invoke not to start services.
    own_policy = not _POLICY_RC_D.exists()
    if own_policy:
        _POLICY_RC_D.write_text("#!/bin/sh\n# mkinfra: installing redis-server\nexit 101\n")
        _POLICY_RC_D.chmod(0o755)
    try:
        cmds = (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE],
        )
        for cmd in cmds:
            out = subprocess.run(
                cmd, env=env, capture_output=True, text=True, check=False, timeout=900
            )
            if out.returncode != 0:
                raise RedisError(f"`{' '.join(cmd)}` failed:\n{(out.stdout + out.stderr)[-3000:]}")
    finally:
        if own_policy:
            with contextlib.suppress(OSError):
                _POLICY_RC_D.unlink()
    _stop_and_disable_system_service()


def _stop_and_disable_system_service() -> None:
    """Stop the package's service if it started anyway, and keep it from starting at boot."""

    def quiet(*cmd: str) -> None:
        subprocess.run(cmd, capture_output=True, check=False, timeout=60)

    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        quiet("systemctl", "disable", "--now", SERVICE)
    if Path(f"/etc/init.d/{SERVICE}").exists():
        if _debian_service_pid() is not None:
            quiet(f"/etc/init.d/{SERVICE}", "stop")
        if shutil.which("update-rc.d"):
            quiet("update-rc.d", SERVICE, "disable")
    pid = _debian_service_pid()
    if pid is not None:  # still there: it is the one the package just started
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)


def _debian_service_pid() -> int | None:
    try:
        pid = int(_DEBIAN_PIDFILE.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"redis-server" in cmdline else None


# --------------------------------------------------------------------------- protocol


def ping(port: int, host: str = LOCALHOST, timeout: float = 1.0) -> bool:
    """True when a Redis on ``host:port`` answers ``PING`` with ``+PONG``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# --------------------------------------------------------------------------- server


class RedisServer(ManagedServer):
    """A private Redis on 127.0.0.1:``port``, its log in ``data_dir/redis.log``.

    No persistence: nothing is written to ``data_dir`` but the log, and every start is empty.
    """

    def __init__(self, data_dir: Path, port: int = 56379, *, binary: Path | None = None) -> None:
        super().__init__()
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.binary = binary
        self.log_file = self.data_dir / "redis.log"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{LOCALHOST}:{self.port}/0"

    def start(self, timeout: float = 30) -> RedisServer:
        """Start the server; returns once it answers ``PING``."""
        if self.running:
            return self
        binary = self.binary or ensure_redis_installed()
        if port_in_use(self.port):
            raise RedisError(f"port {LOCALHOST}:{self.port} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(binary),
            "--port",
            str(self.port),
            "--bind",
            LOCALHOST,
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--supervised",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.data_dir),
            "--logfile",
            "",
            "--loglevel",
            "warning",
            "--databases",
            "16",
        ]
        proc = self._spawn(cmd, log_file=self.log_file, cwd=self.data_dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log_tail = tail(self.log_file)
                self._proc = None
                in_use = " (port in use)" if "in use" in log_tail.lower() else ""
                raise RedisError(
                    f"redis-server exited at start{in_use}; log {self.log_file}:\n{log_tail}"
                )
            if ping(self.port, timeout=0.5):
                return self
            time.sleep(0.05)
        self.kill()
        raise RedisError(
            f"redis-server did not answer PING within {timeout} s; log "
            f"{self.log_file}:\n{tail(self.log_file)}"
        )

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the server's process group (SIGKILL after ``timeout``); idempotent."""
        super().stop(timeout)


def _main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mkinfra.redis", description="Run a local Redis (no persistence)."
    )
    parser.add_argument("--data-dir", type=Path, default=Path("var/redis"))
    parser.add_argument("--port", type=int, default=56379)
    args = parser.parse_args()
    server = RedisServer(args.data_dir, port=args.port).start()
    print(f"Redis on {server.url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    serve_until_signalled(server)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
