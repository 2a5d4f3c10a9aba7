"""The dev SMTP sink: real SMTP in, one .eml file per Message-ID out."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from mkinfra.smtp_sink import SmtpSink, message_filename


def _message(subject: str, body: str, message_id: str | None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "noreply@milton-keynes.gov.uk"
    msg["To"] = "resident@example.org"
    msg["Subject"] = subject
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content(body)
    return msg


def _send(sink: SmtpSink, msg: EmailMessage) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.send_message(msg)


def test_receives_and_stores_a_message(smtp_sink: SmtpSink) -> None:
    _send(smtp_sink, _message("Bin collection", "Tuesday", "<abc123@mk.gov.uk>"))
    assert smtp_sink.count() == 1
    (stored,) = smtp_sink.messages()
    assert stored["Subject"] == "Bin collection"
    assert stored.get_content().strip() == "Tuesday"
    assert (smtp_sink.maildir / "abc123@mk.gov.uk.eml").exists()


def test_same_message_id_overwrites(smtp_sink: SmtpSink) -> None:
    _send(smtp_sink, _message("first", "one", "<dup@mk.gov.uk>"))
    _send(smtp_sink, _message("second", "two", "<dup@mk.gov.uk>"))
    assert smtp_sink.count() == 1
    assert smtp_sink.messages()[0]["Subject"] == "second"
    assert not list(smtp_sink.maildir.glob(".tmp-*"))


def test_messages_without_id_are_all_kept(smtp_sink: SmtpSink) -> None:
    _send(smtp_sink, _message("a", "x", None))
    _send(smtp_sink, _message("a", "x", None))
    assert len(smtp_sink.wait_for(2, timeout=5)) == 2


def test_filename_is_sanitised() -> None:
    name = message_filename(b"Message-ID: <../../etc/passwd@x y>\r\n\r\nbody")
    assert "/" not in name and " " not in name and not name.startswith(".")
    assert name.endswith(".eml")
    long_name = message_filename(b"Message-ID: <" + b"a" * 500 + b"@x>\r\n\r\n")
    assert len(long_name) < 200


def test_restart_keeps_messages(tmp_path) -> None:
    from mkinfra.testing import free_port

    sink = SmtpSink(tmp_path / "mail", port=free_port())
    with sink:
        _send(sink, _message("s", "b", "<keep@mk>"))
    assert not sink.running
    sink.port = free_port()
    with sink:
        _send(sink, _message("s", "b", "<keep2@mk>"))
    assert sink.count() == 2
