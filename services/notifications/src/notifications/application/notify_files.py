"""Files sent by email through the Notify API (``prepare_upload``), and their download page.

At send time each file in the personalisation is checked (:mod:`notify_files` in the
domain), given an id and a random key, and its value becomes the link
``{NOTIFICATIONS_PUBLIC_URL}/api/v1/files/{id}?key={key}`` (the gateway's public URL);
the row (bytes, SHA-256 of the key and of the recipient's address) is inserted in the
sending transaction. The page asks for the recipient's email address first when
``confirm_email_before_download`` is not ``false`` (Notify's default), then serves the
file; after ``retention_period`` (default 26 weeks) it is gone (the retention purge
deletes it)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from notifications.domain.notify_files import FileUpload, is_file, parse_upload
from notifications.persistence.notify_files import NotifyFileRepository
from notifications.persistence.tables import NotifyFile

PURGE_BATCH = 500


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class PreparedFiles:
    """The personalisation with each file replaced by its link, and the rows to insert."""

    personalisation: dict[str, Any]
    files: list[NotifyFile]

    @property
    def any(self) -> bool:
        return bool(self.files)


def prepare_files(
    personalisation: dict[str, Any],
    *,
    service_id: uuid.UUID,
    recipient: str,
    public_url: str,
    now: datetime | None = None,
) -> PreparedFiles:
    """Check every file value (Notify's 400s) and turn it into its link."""
    now = now or datetime.now(UTC)
    values = dict(personalisation)
    files: list[NotifyFile] = []
    for name, value in personalisation.items():
        if not is_file(value):
            continue
        upload: FileUpload = parse_upload(value)
        key = secrets.token_urlsafe(24)
        row = NotifyFile(
            id=uuid.uuid4(),
            service_id=service_id,
            key_hash=_sha256(key),
            filename=upload.filename,
            mimetype=upload.mimetype,
            content=upload.content,
            size=len(upload.content),
            confirm_email=upload.confirm_email,
            recipient_hash=_sha256(recipient.strip().lower()),
            created_at=now,
            expires_at=now + upload.retention,
        )
        files.append(row)
        values[name] = f"{public_url.rstrip('/')}/api/v1/files/{row.id}?key={key}"
    return PreparedFiles(values, files)


def store_files(
    files: NotifyFileRepository, prepared: PreparedFiles, *, notification_id: uuid.UUID
) -> None:
    for row in prepared.files:
        row.notification_id = notification_id
        files.add(row)


async def open_file(
    files: NotifyFileRepository, file_id: str, key: str | None, *, now: datetime | None = None
) -> NotifyFile | None:
    """The file if the id and key are right and it has not expired (else ``None``: the
    page does not say which)."""
    try:
        fid = uuid.UUID(file_id)
    except ValueError:
        return None
    if not key or len(key) > 200:
        return None
    found = await files.get(fid)
    now = now or datetime.now(UTC)
    if found is None or found.expires_at <= now:
        return None
    if not hmac.compare_digest(found.key_hash, _sha256(key)):
        return None
    return found


def is_recipient(file: NotifyFile, email_address: str) -> bool:
    """Whether ``email_address`` is the one the file was sent to (case and spaces aside)."""
    given = _sha256(email_address.strip().lower())
    return file.recipient_hash is not None and hmac.compare_digest(file.recipient_hash, given)


async def purge_expired_files(files: NotifyFileRepository, *, now: datetime) -> int:
    return await files.delete_expired(now=now, limit=PURGE_BATCH)
