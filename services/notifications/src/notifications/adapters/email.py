"""Email through real SMTP (aiosmtplib), with a small pool of reused connections."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid  # noqa: F401  (make_msgid for callers)

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


def build_message(email: OutgoingEmail, *, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = email.to
    msg["Subject"] = email.subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = email.message_id
    for name, value in email.headers:
        msg[name] = value
    msg.set_content(email.text)
    if email.html:
        msg.add_alternative(email.html, subtype="html")
    return msg


class SmtpSender:
    """Sends messages over up to ``pool_size`` reused SMTP connections."""

    def __init__(self, settings: Settings, *, pool_size: int = 8) -> None:
        self.settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(pool_size)

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        tls_context = ssl.create_default_context() if s.smtp_validate_certs else None
        if tls_context is None and (s.smtp_use_tls or s.smtp_start_tls):
            tls_context = ssl.create_default_context()
            tls_context.check_hostname = False
            tls_context.verify_mode = ssl.CERT_NONE
        return aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, use_tls=s.smtp_use_tls,
            start_tls=s.smtp_start_tls if s.smtp_start_tls else False,
            validate_certs=s.smtp_validate_certs, tls_context=tls_context,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout_seconds,
        )

    async def send(self, email: OutgoingEmail) -> None:
        msg = build_message(email, sender=self.settings.mail_from)
        async with self._slots:
            client = self._idle.get_nowait() if not self._idle.empty() else None
            try:
                if client is None or not client.is_connected:
                    client = self._client()
                    await client.connect()
                await client.send_message(msg)
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
