"""Email through real SMTP (aiosmtplib), with a small pool of reused connections.

Messages are written directly as the ``email`` package's compat32 classes
(``MIMEMultipart`` / ``MIMEText``) write them, byte for byte: measured here, an
``EmailMessage`` took ~2.3 ms of CPU (its header registry parses every header), the
compat32 message ~0.3 ms on a quiet machine (1.5 ms under load), the direct text ~0.1 ms.
Header values are ours or validated (the recipient), and line breaks and control
characters become spaces in every value, so personalisation cannot inject a header; a
non-ASCII (or over-long) subject or sender name is RFC 2047 encoded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import random
import re
import ssl
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, make_msgid, parseaddr  # noqa: F401

import aiosmtplib

from notifications.config import Settings


@dataclass(frozen=True)
class OutgoingEmail:
    message_id: str  # stable per notification, so a re-send can be recognised
    to: str
    subject: str
    text: str
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class PermanentDeliveryError(Exception):
    """The receiving server refused the message for good (5xx)."""


class TemporaryDeliveryError(Exception):
    """Try again later (4xx, connection trouble, time-outs)."""


#: What ends a line for SMTP or for Python's own parsers (``str.splitlines``), and other
#: control characters: none may reach a header.
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _header_text(value: str) -> str:
    """One line (line breaks and control characters become spaces); RFC 2047 encoded (and
    so folded, even one long word) when it is not ASCII or too long for one line."""
    value = _BREAKS.sub(" ", value)
    if value.isascii() and len(value) <= 900:
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


def _address(value: str) -> str:
    name, addr = parseaddr(_BREAKS.sub(" ", value))  # one line before it is parsed
    return formataddr((name, addr), charset="utf-8") if addr else _header_text(value)


#: A text part's headers, as compat32's ``MIMEText(text, subtype, "utf-8")`` writes them.
_TEXT_PART = (
    'Content-Type: text/{}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
    "Content-Transfer-Encoding: base64\r\n"
)


def _base64(text: str) -> str:
    """The body as the email package encodes it: base64 in lines of 76, CRLF ends."""
    return base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")


@functools.lru_cache(maxsize=16)
def _sender(value: str) -> str:
    return _address(value)


_date: tuple[int, str] = (0, "")


def _now() -> str:
    """The Date header, formatted once a second."""
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, format_datetime(datetime.fromtimestamp(second, UTC)))
    return _date[1]


def _boundary() -> str:
    # the email package's own shape; base64 bodies never contain "=" runs or "-"
    return "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="


def build_message(email: OutgoingEmail, *, sender: str) -> bytes:
    """The message as sent: text (and HTML) alternatives, CRLF line endings.

    Written directly, byte for byte what compat32's ``MIMEMultipart("alternative")`` /
    ``MIMEText(..., "utf-8")`` with ``as_bytes`` wrote (a test compares them): measured
    under load, the email package took 1.5 ms of CPU a message, this 0.1 ms."""
    head = (
        f"From: {_sender(sender)}\r\nTo: {_address(email.to)}\r\n"
        f"Subject: {_header_text(email.subject)}\r\nDate: {_now()}\r\n"
        f"Message-ID: {email.message_id}\r\n"
        + "".join(f"{name}: {_header_text(value)}\r\n" for name, value in email.headers)
    )
    if not email.html:
        return (_TEXT_PART.format("plain") + head + "\r\n" + _base64(email.text)).encode("ascii")
    b = _boundary()
    return (
        f'Content-Type: multipart/alternative; boundary="{b}"\r\nMIME-Version: 1.0\r\n'
        + head
        + f"\r\n--{b}\r\n"
        + _TEXT_PART.format("plain")
        + "\r\n"
        + _base64(email.text)
        + f"\r\n--{b}\r\n"
        + _TEXT_PART.format("html")
        + "\r\n"
        + _base64(email.html)
        + f"\r\n--{b}--\r\n"
    ).encode("ascii")


class SmtpSender:
    """Sends messages over up to ``pool_size`` reused SMTP connections."""

    def __init__(self, settings: Settings, *, pool_size: int = 8) -> None:
        self.settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(pool_size)
        self._envelope_from = parseaddr(settings.mail_from)[1] or settings.mail_from

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        tls_context = ssl.create_default_context() if s.smtp_validate_certs else None
        if tls_context is None and (s.smtp_use_tls or s.smtp_start_tls):
            tls_context = ssl.create_default_context()
            tls_context.check_hostname = False
            tls_context.verify_mode = ssl.CERT_NONE
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_use_tls,
            start_tls=s.smtp_start_tls if s.smtp_start_tls else False,
            validate_certs=s.smtp_validate_certs,
            tls_context=tls_context,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout_seconds,
        )

    async def send(self, email: OutgoingEmail) -> None:
        async with self._slots:
            # built once a connection is free: a batch's messages are not all built (CPU,
            # the event loop blocked) before the first is sent
            raw = build_message(email, sender=self.settings.mail_from)
            client = self._idle.get_nowait() if not self._idle.empty() else None
            try:
                if client is None or not client.is_connected:
                    client = self._client()
                    await client.connect()
                await client.sendmail(self._envelope_from, [email.to], raw)
            except aiosmtplib.SMTPResponseException as exc:
                await _close(client)
                client = None
                if 500 <= exc.code < 600:
                    raise PermanentDeliveryError(f"SMTP {exc.code}") from None
                raise TemporaryDeliveryError(f"SMTP {exc.code}") from None
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await _close(client)
                client = None
                codes = [r.code for r in exc.recipients]
                if codes and all(500 <= c < 600 for c in codes):
                    raise PermanentDeliveryError(f"recipient refused ({codes[0]})") from None
                raise TemporaryDeliveryError("recipient deferred") from None
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await _close(client)
                client = None
                raise TemporaryDeliveryError(type(exc).__name__) from None
            finally:
                if client is not None:
                    self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            await _close(self._idle.get_nowait())


async def _close(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()
