"""Photos sent with an Open311 report or update: which files are taken, and how big.

A file is taken for what its first bytes say it is (its "magic"), never for its name or
the Content-Type the client claimed: JPEG, PNG, GIF, WebP and HEIC/HEIF (what phones
take). Anything else, an empty file or one over :data:`MAX_MEDIA_BYTES` is refused, each
with a reason naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.errors import DomainError

#: The largest photo taken (10 MB; a phone's full-size photo is 2-6 MB).
MAX_MEDIA_BYTES = 10 * 1000 * 1000
#: At most this many files with one report or update (FixMyStreet sends up to 3 photos).
MAX_MEDIA_FILES = 5
#: HEIF ``ftyp`` brands: HEIC (HEVC-coded stills and sequences), and generic HEIF.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_HEIF_BRANDS = {b"mif1", b"msf1"}


@dataclass(frozen=True)
class MediaType:
    content_type: str
    extension: str


JPEG = MediaType("image/jpeg", "jpg")
PNG = MediaType("image/png", "png")
GIF = MediaType("image/gif", "gif")
WEBP = MediaType("image/webp", "webp")
HEIC = MediaType("image/heic", "heic")
HEIF = MediaType("image/heif", "heif")
BY_EXTENSION = {t.extension: t for t in (JPEG, PNG, GIF, WEBP, HEIC, HEIF)}


def media_path(media_id: object, extension: str) -> str:
    """Where an uploaded photo is served (Open311's ``media_url``, relative to the public
    origin: the API makes it absolute for whoever reads it)."""
    return f"/open311/v2/media/{media_id}.{extension}"


class InvalidMedia(DomainError):
    status, code, title = 422, "invalid-media", "This file is not a photo we can take"


def sniff(data: bytes) -> MediaType | None:
    """The image type ``data`` starts like, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data[4:8] == b"ftyp":
        if data[8:12] in _HEIC_BRANDS:
            return HEIC
        if data[8:12] in _HEIF_BRANDS:
            return HEIF
    return None


def check_media(field: str, data: bytes) -> MediaType:
    """The type of an uploaded photo; raises :class:`InvalidMedia` naming ``field``."""
    if not data:
        message = "the file is empty"
    elif len(data) > MAX_MEDIA_BYTES:
        message = f"the file is over {MAX_MEDIA_BYTES // 1_000_000} MB"
    elif (kind := sniff(data)) is not None:
        return kind
    else:
        message = "must be a JPEG, PNG, GIF, WebP or HEIC image"
    raise InvalidMedia(f"{field}: {message}.", errors=[{"field": field, "message": message}])
