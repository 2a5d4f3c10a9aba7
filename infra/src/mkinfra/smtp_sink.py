"""The development SMTP sink: a real SMTP server that stores every message as an ``.eml`` file.

Files are named from the Message-ID header, so a redelivery of the same message overwrites
its file instead of creating a duplicate (messages without one get a random name). Writes
are atomic (temporary file + rename), so readers never see half a message.

CLI: ``python -m mkinfra.smtp_sink --dir var/mail --port 1025`` (foreground; Ctrl-C stops).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import sys
import threading
import time
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller

from mkinfra._proc import LOCALHOST
from mkinfra._server import ServerLifecycle, serve_until_signalled

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")
_MAX_NAME = 150


def message_filename(raw: bytes) -> str:
    """The ``.eml`` file name for a raw message: its sanitised Message-ID, else a uuid."""
    message_id = BytesHeaderParser(policy=policy.compat32).parsebytes(raw).get("Message-ID")
    name = _UNSAFE.sub("_", str(message_id).strip().strip("<>")).lstrip(".") if message_id else ""
    if len(name) > _MAX_NAME:
        name = name[:100] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name or uuid.uuid4().hex}.eml"


class _MaildirHandler:
    """aiosmtpd handler storing each DATA payload through :meth:`SmtpSink.store`."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        self._sink.store(raw if isinstance(raw, bytes) else str(raw).encode())
        return "250 Message accepted for delivery"


class SmtpSink(ServerLifecycle):
    """An SMTP server on ``host:port`` writing every message it receives into ``maildir``."""

    def __init__(self, maildir: Path, host: str = LOCALHOST, port: int = 1025) -> None:
        self.maildir = Path(maildir)
        self.host = host
        self.port = port
        self._controller: Controller | None = None
        # Parsed messages by file name, with the (mtime_ns, size, inode) they were parsed at:
        # tests poll messages() often, and re-parsing thousands of files each time is slow.
        self._parsed: dict[str, tuple[tuple[int, int, int], EmailMessage]] = {}
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """True while the server accepts connections."""
        return self._controller is not None

    def start(self) -> SmtpSink:
        """Start serving (in a background thread); idempotent."""
        if self._controller is None:
            self.maildir.mkdir(parents=True, exist_ok=True)
            controller = Controller(
                _MaildirHandler(self), hostname=self.host, port=self.port, ready_timeout=10
            )
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        """Stop serving; idempotent."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def store(self, raw: bytes) -> Path:
        """Atomically write one raw message into the maildir; return its path."""
        self.maildir.mkdir(parents=True, exist_ok=True)
        target = self.maildir / message_filename(raw)
        tmp = self.maildir / f".tmp-{uuid.uuid4().hex}"
        # No fsync: the rename makes each file appear whole to readers, which is what a dev
        # sink needs; surviving an OS crash is not worth a disk flush per message.
        tmp.write_bytes(raw)
        os.replace(tmp, target)
        return target

    def paths(self) -> list[Path]:
        """The stored ``.eml`` files, oldest first."""
        return [path for path, _ in self._stat_all()]

    def messages(self) -> list[EmailMessage]:
        """Every stored message, parsed (oldest first).

        Parsed messages are cached per file version: treat them as read-only.
        """
        parser = BytesParser(policy=policy.default)
        result: list[EmailMessage] = []
        with self._lock:
            for path, version in self._stat_all():
                cached = self._parsed.get(path.name)
                if cached is None or cached[0] != version:
                    try:
                        msg = cast(EmailMessage, parser.parsebytes(path.read_bytes()))
                    except FileNotFoundError:
                        continue
                    cached = (version, msg)
                    self._parsed[path.name] = cached
                result.append(cached[1])
        return result

    def _stat_all(self) -> list[tuple[Path, tuple[int, int, int]]]:
        """(path, (mtime_ns, size, inode)) of every stored message, oldest first."""
        found = []
        for path in self.maildir.glob("*.eml"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            found.append((path, (st.st_mtime_ns, st.st_size, st.st_ino)))
        found.sort(key=lambda item: (item[1][0], item[0].name))
        return found

    def count(self) -> int:
        """How many messages are stored."""
        return len(self.paths())

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        """Wait until at least ``count`` messages are stored; return them (TimeoutError if not)."""
        deadline = time.monotonic() + timeout
        while self.count() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.count()} of {count} messages after {timeout}s")
            time.sleep(0.05)
        return self.messages()

    def clear(self) -> None:
        """Delete every stored message."""
        for p in self.paths():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        with self._lock:
            self._parsed.clear()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m mkinfra.smtp_sink``."""
    parser = argparse.ArgumentParser(
        prog="python -m mkinfra.smtp_sink", description="Development SMTP sink writing .eml files."
    )
    parser.add_argument("--dir", default="var/mail", help="where to store messages")
    parser.add_argument("--host", default=LOCALHOST)
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args(argv)
    with SmtpSink(Path(args.dir), host=args.host, port=args.port) as sink:
        print(
            f"SMTP sink on {sink.host}:{sink.port}, storing into {sink.maildir.resolve()}",
            flush=True,
        )
        serve_until_signalled(sink)
    print("SMTP sink stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
