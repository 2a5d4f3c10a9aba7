"""Partner webhooks by the Standard Webhooks spec: signatures, the retry schedule, and which
endpoints may be called.

* Signature: ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
  with the secret ``whsec_<base64 key>``; while a rotated-out secret is still valid both
  signatures are sent, space-separated.
* Retries: the spec's schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the first
  try), each with ±10 % jitter; then the delivery has failed.
* Endpoints: HTTPS; a host that resolves to a private, loopback, link-local, multicast,
  reserved or unspecified address is refused unless the address is in an allow-listed network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
import secrets
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
RETRY_SCHEDULE = (timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30),
                  timedelta(hours=2), timedelta(hours=5), timedelta(hours=10),
                  timedelta(hours=10))
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class EndpointRefused(ValueError):
    """The URL may not be called (scheme, or the addresses its host resolves to)."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_header(secrets_in_use: Iterable[str], msg_id: str, timestamp: int,
                     body: str) -> str:
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_in_use)


def next_retry(attempts: int, *, jitter: float = 0.1,
               rng: random.Random | None = None) -> timedelta | None:
    """Delay before the next try after ``attempts`` tries; None when the schedule is spent."""
    if attempts < 1 or attempts > len(RETRY_SCHEDULE):
        return None
    base = RETRY_SCHEDULE[attempts - 1]
    factor = 1 + (rng or random).uniform(-jitter, jitter)
    return base * factor


def check_url(url: str, *, require_https: bool = True) -> tuple[str, int]:
    """(host, port) of an acceptable URL; raises :class:`EndpointRefused`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # e.g. "Invalid IPv6 URL", a port out of range
        raise EndpointRefused("The endpoint must be an absolute https:// URL.") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointRefused("The endpoint must be an absolute https:// URL.")
    if require_https and parts.scheme != "https":
        raise EndpointRefused("The endpoint must use https.")
    if parts.username or parts.password:
        raise EndpointRefused("The endpoint must not carry credentials.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def refused_address(address: str, allowed: Iterable[IpNetwork]) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allowed):
        return False
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified)
