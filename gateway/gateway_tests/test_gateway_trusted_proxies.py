"""Behind a load balancer: ``X-Forwarded-For`` names the client only when the socket peer is
in ``GATEWAY_TRUSTED_PROXIES``; from anyone else a forged one is ignored (rate limits, and
the address the services are told)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.clientaddr import TrustedProxies
from gateway.config import GatewaySettings
from gateway.limits import LimitSettings
from gateway.main import create_app
from servicekit.testing import running_app

from .conftest import Upstream, closed_url, gateway_kwargs

PATH = "/api/v1/service-requests/x"
LB = "127.0.0.2"  # the load balancer's address (any 127/8 address is loopback)


def scope(peer: str, *headers: tuple[str, str]) -> dict[str, Any]:
    return {
        "client": (peer, 5000),
        "scheme": "http",
        "headers": [(k.encode(), v.encode()) for k, v in headers],
    }


def test_the_client_is_the_first_untrusted_address_from_the_right() -> None:
    trusted = TrustedProxies(["10.0.0.0/8", "127.0.0.2/32"])
    xff = "x-forwarded-for"
    resolve = trusted.resolve
    assert resolve(scope(LB, (xff, "203.0.113.9")))["client"] == ("203.0.113.9", 5000)
    # a forged left part is not believed: the first address no trusted proxy vouches for
    assert resolve(scope(LB, (xff, "198.51.100.1, 203.0.113.9, 10.1.2.3")))["client"][0] == (
        "203.0.113.9"
    )
    # two headers read as one list; IPv6 and IPv4-mapped peers
    assert resolve(scope(LB, (xff, "198.51.100.1"), (xff, "10.9.9.9")))["client"][0] == (
        "198.51.100.1"
    )
    assert resolve(scope("::ffff:10.0.0.5", (xff, "2001:db8::1")))["client"][0] == "2001:db8::1"
    # not an address: stop at the last trusted hop
    assert resolve(scope(LB, (xff, "nonsense, 10.1.1.1")))["client"][0] == "10.1.1.1"
    assert resolve(scope(LB))["client"][0] == LB  # nothing forwarded
    # X-Forwarded-Proto from a trusted peer
    assert resolve(scope(LB, ("x-forwarded-proto", "HTTPS")))["scheme"] == "https"
    # an untrusted peer: its headers mean nothing
    untrusted = scope("127.0.0.3", (xff, "203.0.113.9"), ("x-forwarded-proto", "https"))
    assert resolve(untrusted) is untrusted
    assert not TrustedProxies([])


def test_trusted_proxies_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7")
    assert GatewaySettings().trusted_proxies == ["10.0.0.0/8", "192.168.1.7"]
    monkeypatch.delenv("GATEWAY_TRUSTED_PROXIES")
    assert GatewaySettings().trusted_proxies == []
    with pytest.raises(ValueError):
        GatewaySettings(trusted_proxies="10.0.0.0/8,not-a-network")


async def gateway(stack: AsyncExitStack, tmp: Path, upstream: Upstream, **settings: Any) -> str:
    upstream_url = await stack.enter_async_context(running_app(upstream))
    app = create_app(
        GatewaySettings(
            citizen_services_url=upstream_url,
            inclusion_url=closed_url(),
            notifications_url=closed_url(),
            **settings,
        ),
        **{
            **gateway_kwargs(tmp),
            "limit_settings": LimitSettings(
                redis_url=None, rate_limits_enabled=True, limit_anonymous="2/60s"
            ),
        },
    )
    url: str = await stack.enter_async_context(running_app(app))
    return url


def client_from(stack: AsyncExitStack, url: str, source: str) -> Any:
    return stack.enter_async_context(
        httpx.AsyncClient(
            base_url=url, timeout=10, transport=httpx.AsyncHTTPTransport(local_address=source)
        )
    )


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


async def statuses(client: httpx.AsyncClient, n: int, xff: str | None) -> list[int]:
    headers = {"X-Forwarded-For": xff} if xff else {}
    return [(await client.get(PATH, headers=headers)).status_code for _ in range(n)]


async def test_through_a_trusted_load_balancer_each_client_has_its_own_bucket(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    upstream = Upstream("citizen-services")
    url = await gateway(stack, tmp_path, upstream, trusted_proxies=[f"{LB}/32"])
    lb = await client_from(stack, url, LB)
    other = await client_from(stack, url, "127.0.0.3")

    assert await statuses(lb, 3, "203.0.113.9") == [200, 200, 429]
    assert await statuses(lb, 3, "198.51.100.7, 127.0.0.2") == [200, 200, 429]
    # the services hear of the clients, not of the load balancer
    told = [dict(r["headers"])["x-forwarded-for"] for r in upstream.requests]
    assert told == ["203.0.113.9"] * 2 + ["198.51.100.7"] * 2

    # a peer that is not a trusted proxy forges X-Forwarded-For in vain: one bucket, its own
    assert await statuses(other, 3, "192.0.2.1") == [200, 200, 429]
    assert await statuses(other, 1, "192.0.2.2") == [429]
    assert dict(upstream.requests[-1]["headers"])["x-forwarded-for"] == "127.0.0.3"


async def test_without_trusted_proxies_forwarded_for_is_ignored(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    upstream = Upstream("citizen-services")
    url = await gateway(stack, tmp_path, upstream)  # the default: none trusted
    lb = await client_from(stack, url, LB)
    assert await statuses(lb, 2, "203.0.113.9") == [200, 200]
    assert await statuses(lb, 1, "203.0.113.10") == [429]
    assert {dict(r["headers"])["x-forwarded-for"] for r in upstream.requests} == {LB}
