"""PostgreSQL without Docker: the distribution's server binaries, a throw-away cluster.

* :func:`ensure_postgres_installed` finds ``initdb``/``pg_ctl``/``postgres`` (installing the
  Debian ``postgresql`` package with apt-get when running as root and they are missing).
* :class:`PostgresServer` initialises a cluster in a directory (trust auth, superuser ``mk``,
  UTF8) and runs it on 127.0.0.1, tuned for tests (no fsync).
* :func:`admin_url_create_database` creates a database on any server given a superuser URL
  (for ``DATABASE_URL`` pointing at an existing server).

PostgreSQL refuses to run as root: as root the cluster is owned by the ``postgres`` system
user and the binaries run through ``runuser -u postgres --``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mkinfra._proc import LOCALHOST, port_in_use, run_sync, tail
from mkinfra._server import ServerLifecycle, serve_until_signalled

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
SYSTEM_USER = "postgres"
DEFAULT_SUPERUSER = "mk"
_DUPLICATE_DATABASE = "42P04"

_TEST_SETTINGS = {
    "listen_addresses": f"'{LOCALHOST}'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "'128MB'",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
    "timezone": "'UTC'",
}


class PostgresError(RuntimeError):
    """PostgreSQL cannot be installed, initialised or started here."""


# --------------------------------------------------------------------------- binaries


def find_postgres_bin() -> Path | None:
    """The directory holding the newest PostgreSQL server binaries, or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bin_dir in candidates:
        if all((bin_dir / name).exists() for name in SERVER_BINARIES):
            return bin_dir
    return None


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def ensure_postgres_installed() -> Path:
    """Return the server binaries' directory, installing PostgreSQL with apt-get if needed.

    Installing needs root and apt-get; Debian's default cluster, if the package starts
    one, is stopped again. Raises :class:`PostgresError` when nothing can be done.
    """
    found = find_postgres_bin()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PostgresError(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. Install "
            "them (e.g. `sudo apt-get install postgresql`) or set DATABASE_URL to a "
            "superuser URL of an existing server."
        )
    _apt_install_postgresql()
    found = find_postgres_bin()
    if not found:
        raise PostgresError("apt-get installed postgresql but its server binaries were not found")
    return found


def _apt_install_postgresql() -> None:
    before = _online_clusters()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("Installing PostgreSQL with apt-get… (once)", file=sys.stderr, flush=True)
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise PostgresError(f"`{' '.join(cmd)}` failed:\n{(out.stdout + out.stderr)[-3000:]}")
    for version, name in _online_clusters() - before:
        subprocess.run(["pg_ctlcluster", version, name, "stop"], check=False, capture_output=True)


def _online_clusters() -> set[tuple[str, str]]:
    """(version, name) of Debian-managed clusters that are running (``pg_lsclusters``)."""
    if not shutil.which("pg_lsclusters"):
        return set()
    out = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    )
    clusters = set()
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3].startswith("online"):
            clusters.add((fields[0], fields[1]))
    return clusters


# --------------------------------------------------------------------------- server


class PostgresServer(ServerLifecycle):
    """A private PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``.

    ``data_dir/pgdata`` holds the cluster (and its unix socket), ``data_dir/postgres.log``
    the server log. Starting again on the same ``data_dir`` reuses the cluster.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 55432,
        *,
        user: str = DEFAULT_SUPERUSER,
        bin_dir: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.user = user
        self.bin_dir = bin_dir
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "postgres.log"

    # -- public API

    @property
    def admin_url(self) -> str:
        """Superuser URL of the ``postgres`` maintenance database."""
        return self.url("postgres")

    def url(self, dbname: str = "postgres") -> str:
        """``postgresql://<user>@127.0.0.1:<port>/<dbname>``."""
        return f"postgresql://{self.user}@{LOCALHOST}:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        """True while this cluster's postmaster is alive."""
        pid = self._postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return _is_postgres_process(pid)

    def start(self, timeout: float = 60) -> PostgresServer:
        """Initialise the cluster if needed and start it; returns once it accepts connections."""
        if self.running:
            return self
        bin_dir = self.bin_dir or ensure_postgres_installed()
        if port_in_use(self.port):
            raise PostgresError(f"port {LOCALHOST}:{self.port} is already in use")
        self._prepare_dirs()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bin_dir)
        self._write_settings()
        self._pg_ctl(
            bin_dir,
            "start",
            "-l",
            str(self.log_file),
            "-t",
            str(int(timeout)),
            timeout=timeout + 10,
        )
        self._stop_at_exit()  # pg_ctl detaches the server: do not leave it behind
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop the server (``pg_ctl stop -m fast``), falling back to SIGKILL; idempotent."""
        if not self.running:
            return
        bin_dir = self.bin_dir or ensure_postgres_installed()
        try:
            self._pg_ctl(
                bin_dir, "stop", "-m", "fast", "-t", str(int(timeout)), timeout=timeout + 10
            )
        except (PostgresError, subprocess.TimeoutExpired):
            pid = self._postmaster_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def create_database(self, name: str) -> str:
        """Create database ``name`` if it does not exist; return its URL."""
        return admin_url_create_database(self.admin_url, name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists (disconnecting its sessions)."""
        drop_database_at(self.admin_url, name)

    # -- internals

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _as_root():
            _check_traversable(self.data_dir)
            _chown_to_postgres(self.data_dir)

    def _initdb(self, bin_dir: Path) -> None:
        cmd = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        _run_as_postgres(cmd, cwd=self.data_dir, timeout=120)
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\ninclude_if_exists = 'mk.conf'\n")

    def _write_settings(self) -> None:
        settings = {
            **_TEST_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.pgdata}'",
        }
        mk_conf = self.pgdata / "mk.conf"
        mk_conf.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        if _as_root():
            _chown_to_postgres(mk_conf)

    def _pg_ctl(self, bin_dir: Path, action: str, *args: str, timeout: float) -> None:
        cmd = [str(bin_dir / "pg_ctl"), action, "-D", str(self.pgdata), "-w", *args]
        try:
            _run_as_postgres(cmd, cwd=self.data_dir, timeout=timeout)
        except PostgresError as exc:
            raise PostgresError(
                f"{exc}\nserver log {self.log_file}:\n{tail(self.log_file)}"
            ) from None

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (OSError, ValueError):
            return None


def _is_postgres_process(pid: int) -> bool:
    """False when ``pid`` (from a stale postmaster.pid) now belongs to something else."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid
    return b"postgres" in cmdline or b"postmaster" in cmdline


# --------------------------------------------------------------------------- as root


def _as_root() -> bool:
    return os.geteuid() == 0


def _postgres_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresError(
            f"running as root but there is no `{SYSTEM_USER}` system user to own the cluster "
            "(install the postgresql package, or run as a normal user)"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _chown_to_postgres(path: Path) -> None:
    uid, gid = _postgres_ids()
    os.chown(path, uid, gid)


def _check_traversable(path: Path) -> None:
    """Raise unless the ``postgres`` user can reach ``path`` through its parents."""
    uid, gid = _postgres_ids()
    for parent in path.parents:
        st = parent.stat()
        if st.st_uid == uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise PostgresError(
                f"the `{SYSTEM_USER}` user cannot traverse {parent} to reach {path} (PostgreSQL "
                f"runs as `{SYSTEM_USER}` when we are root): `chmod o+x {parent}` or use a "
                "directory whose parents are world-traversable, e.g. tempfile.mkdtemp() + a subdir"
            )


def _run_as_postgres(cmd: list[str], *, cwd: Path, timeout: float) -> None:
    if _as_root():
        cmd = ["runuser", "-u", SYSTEM_USER, "--", *cmd]
    out = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        check=False,
    )
    if out.returncode != 0:
        raise PostgresError(
            f"`{Path(cmd[0]).name} ...` failed (exit {out.returncode}):\n"
            f"{(out.stdout + out.stderr)[-3000:]}"
        )


# --------------------------------------------------------------------------- databases


def database_url(server_url: str, dbname: str) -> str:
    """``server_url`` with its database (path) replaced by ``dbname``."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _execute(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg

    try:
        await _execute(admin_url, f"CREATE DATABASE {_quote_ident(name)}")
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) != _DUPLICATE_DATABASE:
            raise


def admin_url_create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` (if missing) on the server of superuser URL ``admin_url``.

    Works on any server (also when ``DATABASE_URL`` points at an existing one) and from
    synchronous code, even inside a running event loop. Returns the new database's URL.
    """
    run_sync(_create_database(admin_url, name))
    return database_url(admin_url, name)


def drop_database_at(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists on the server of superuser URL ``admin_url``."""
    run_sync(_execute(admin_url, f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)"))


def _main() -> int:
    """``python -m mkinfra.postgres [--data-dir D] [--port P]``: run a server in the foreground."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mkinfra.postgres")
    parser.add_argument("--data-dir", default="var/postgres")
    parser.add_argument("--port", type=int, default=55432)
    args = parser.parse_args()
    server = PostgresServer(Path(args.data_dir), port=args.port)
    started = time.monotonic()
    try:
        server.start()
    except PostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"PostgreSQL ready at {server.admin_url} in {time.monotonic() - started:.1f}s "
        f"(log {server.log_file})",
        flush=True,
    )
    serve_until_signalled(server)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
