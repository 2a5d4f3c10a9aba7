"""The client's address when the gateway sits behind a load balancer or reverse proxy.

``GATEWAY_TRUSTED_PROXIES`` lists CIDRs (default: none). Only when the socket peer is in one
of them is ``X-Forwarded-For`` read, right to left, skipping addresses that are themselves
trusted proxies: the first address that is not is the client (nginx's
``real_ip_recursive``). A value that is not an IP address ends the walk at the last trusted
hop. ``X-Forwarded-Proto`` from a trusted peer becomes the request's scheme.

The address found replaces the ASGI ``client`` for the whole request: rate limits, the
failed-authentication guard and the ``X-Forwarded-For`` the services get all use it. From
any other peer, a client's ``X-Forwarded-*`` are ignored (and never sent upstream).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    def __init__(self, cidrs: Sequence[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip()
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        parsed = _address(address)
        return parsed is not None and any(parsed in n for n in self.networks)

    def resolve(self, scope: Scope) -> Scope:
        """``scope`` with the client's address from ``X-Forwarded-For`` when the peer is a
        trusted proxy; else ``scope`` itself."""
        peer = scope.get("client")
        if not peer or not self.trusts(peer[0]):
            return scope
        forwarded: list[str] = []
        proto: str | None = None
        for key, value in scope["headers"]:
            name = key.lower()
            if name == b"x-forwarded-for":
                forwarded += value.decode("latin-1").split(",")
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip().lower()
        client = peer[0]
        for hop in reversed(forwarded):
            if not self.trusts(client):
                break
            parsed = _address(hop)
            if parsed is None:
                break
            client = str(parsed)
        scope = {**scope, "client": (client, peer[1])}
        if proto in ("http", "https"):
            scope["scheme"] = proto
        return scope
