"""GOV.UK Notify's "send a file by email" rules as plain Python: a personalisation value
made by ``prepare_upload`` (``{"file": base64, "filename", "confirm_email_before_download",
"retention_period", "is_csv"}``) becomes a link to a download page; these are its checks
and Notify's messages."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from notifications.domain.notify import BadRequestError, NotifyValidationError, shown, unexpected

#: Notify's limit on a file (and ``prepare_upload``'s): 2 MB.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Notify's default when ``retention_period`` is not given.
DEFAULT_RETENTION = "26 weeks"
FILE_FIELDS = frozenset(
    {"file", "filename", "confirm_email_before_download", "retention_period", "is_csv"}
)
#: The types a file may have (by its filename's extension), as Notify's document download.
ALLOWED_TYPES = {
    ".pdf": "application/pdf",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".json": "application/json",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".rtf": "application/rtf",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".png": "image/png",
}
_WEEKS = re.compile(r"^(\d+) weeks?$")


def is_file(value: Any) -> bool:
    """A personalisation value that is a file to send (Notify: an object with ``file``)."""
    return isinstance(value, dict) and "file" in value


@dataclass(frozen=True)
class FileUpload:
    content: bytes
    filename: str | None
    mimetype: str
    confirm_email: bool
    retention: timedelta


def parse_upload(value: dict[str, Any]) -> FileUpload:
    """A ``prepare_upload`` value checked as Notify checks it; Notify's errors."""
    errors: list[str] = []
    data = value.get("file")
    if not isinstance(data, str):
        errors.append(f"file {shown(data)} is not of type string")
    is_csv = value.get("is_csv")
    if is_csv is not None and not isinstance(is_csv, bool):
        errors.append(
            f"is_csv Unsupported value for is_csv: {is_csv}. Use a boolean true or false value."
        )
    confirm = value.get("confirm_email_before_download")
    if confirm is not None and not isinstance(confirm, bool):
        errors.append(
            "confirm_email_before_download Unsupported value for confirm_email_before_download:"
            f" {confirm}. Use a boolean true or false value."
        )
    period = value.get("retention_period")
    weeks = 0
    if period is not None:
        match = _WEEKS.match(period.strip().lower()) if isinstance(period, str) else None
        weeks = int(match.group(1)) if match else 0
        if not 1 <= weeks <= 78:
            errors.append(
                f"retention_period Unsupported value for retention_period: {period}. "
                "Supported periods are from 1 to 78 weeks."
            )
    filename = value.get("filename")
    if filename is not None and not (isinstance(filename, str) and "." in filename):
        errors.append(
            "filename `filename` must end with a file extension. For example, filename.csv"
        )
    extra = unexpected(set(value) - FILE_FIELDS)
    if extra:
        errors.append(extra)
    if is_csv is not None and filename is not None:
        errors.append("Do not set a value for `is_csv` if `filename` is set.")
    if errors:
        raise NotifyValidationError(errors[0], more=tuple(errors[1:]))
    assert isinstance(data, str)
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError("Document is not base64 encoded") from None
    if len(content) > MAX_FILE_BYTES:
        raise BadRequestError("File is larger than 2MB")
    return FileUpload(
        content=content,
        filename=filename,
        mimetype=_mimetype(content, filename, bool(is_csv)),
        confirm_email=confirm is not False,  # Notify: asked unless false
        retention=timedelta(weeks=weeks or int(DEFAULT_RETENTION.split()[0])),
    )


def _mimetype(content: bytes, filename: str | None, is_csv: bool) -> str:
    if filename is not None:
        extension = "." + filename.rsplit(".", 1)[-1].lower()
        found = ALLOWED_TYPES.get(extension)
        if found is None:
            guessed = mimetypes.guess_type(filename)[0] or extension
            raise BadRequestError(
                f"Unsupported file type '{guessed}'. Supported types are: "
                f"{', '.join(sorted(set(ALLOWED_TYPES)))}"
            )
        return found
    if is_csv:
        return "text/csv"
    if content.startswith(b"%PDF"):
        return "application/pdf"
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError(
            "Unsupported file type: give a filename with its extension "
            f"({', '.join(sorted(set(ALLOWED_TYPES)))})"
        ) from None
    return "text/plain"


def download_name(filename: str | None, mimetype: str) -> str:
    """The name the browser saves the file as (a safe ``Content-Disposition`` value)."""
    if filename:
        safe = re.sub(r"[^A-Za-z0-9._ -]+", "_", filename).strip() or "file"
        return safe[:200]
    extension = {v: k for k, v in ALLOWED_TYPES.items()}.get(mimetype, ".txt")
    return "file" + (".jpg" if extension == ".jpeg" else extension)
