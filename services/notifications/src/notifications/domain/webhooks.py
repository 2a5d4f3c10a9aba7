"""Partner webhooks by the Standard Webhooks spec: signatures, the retry schedule, and which
endpoints may be called.

* Signature: ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
  with the secret ``whsec_<base64 key>``; while a rotated-out secret is still valid both
  signatures are sent, space-separated.
* Retries: the spec's schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the first
  try), each with ±10 % jitter; then the delivery has failed.
* Endpoints: HTTPS on port 443; the host must resolve only to globally routable addresses
  (``is_global``, explicit denies, and the IPv4 inside 6to4, Teredo, NAT64 and IPv4-mapped
  addresses checked too) unless the address is in an allow-listed network, where any port
  is allowed.
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
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class EndpointRefused(ValueError):
    """The URL may not be called (scheme, or the addresses its host resolves to)."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_header(secrets_in_use: Iterable[str], msg_id: str, timestamp: int, body: str) -> str:
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_in_use)


def next_retry(
    attempts: int, *, jitter: float = 0.1, rng: random.Random | None = None
) -> timedelta | None:
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


#: Refused whatever ``is_global`` says (Python 3.11 calls some of these global, e.g.
#: multicast, 192.0.0.0/24 beyond /29, NAT64's local-use prefix, the 6to4 relay anycast).
EXPLICIT_DENIES: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::/96",
        "::ffff:0:0/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: The only port partners' endpoints may use (https); others only inside allow-listed
#: networks (tests' loopback receivers). Port 80 is not needed: production requires https.
WEBHOOK_PORT = 443


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64): a packet to
    it may end up at them."""
    out: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour:
        out.append(ip.sixtofour)
    if ip.teredo:
        out.extend(ip.teredo)
    if ip in NAT64:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def _not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip in NAT64:  # in ::/8, "reserved": judge
        return any(_not_public(v4) for v4 in embedded_ipv4(ip))  # by where it leads
    if not ip.is_global or any(ip in net for net in EXPLICIT_DENIES):
        return True
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    ):
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        return ip.is_site_local or any(_not_public(v4) for v4 in embedded_ipv4(ip))
    return False


def parse_address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def allow_listed(address: str, allowed: Iterable[IpNetwork]) -> bool:
    ip = parse_address(address)
    return any(ip in net for net in allowed)


def refused_address(address: str, allowed: Iterable[IpNetwork]) -> bool:
    """True unless the address is globally routable (embedded IPv4 included) or inside an
    allow-listed network."""
    if allow_listed(address, allowed):
        return False
    return _not_public(parse_address(address))


def refused_port(address: str, port: int, allowed: Iterable[IpNetwork]) -> bool:
    return port != WEBHOOK_PORT and not allow_listed(address, allowed)
