"""Choosing a replica (no I/O): least outstanding requests, ties round robin, a breaker per
replica, replicas out of rotation last."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.admission import UpstreamQueue
from gateway.balancer import ReplicaPool
from gateway.breaker import BreakerState, CircuitBreaker
from gateway.config import GatewaySettings
from gateway.routes import upstreams

URLS = ("http://10.0.0.1:8001", "http://10.0.0.2:8001", "http://10.0.0.3:8001")


def pool(urls: tuple[str, ...] = URLS, threshold: int = 1) -> ReplicaPool:
    return ReplicaPool(
        "citizen-services",
        urls,
        queue=UpstreamQueue("citizen-services", concurrency=1, limit=1, wait_seconds=1),
        breaker=lambda name: CircuitBreaker(name, failure_threshold=threshold, reset_timeout=60),
    )


def test_ties_go_round_robin() -> None:
    p = pool()
    chosen = [p.choose() for _ in range(9)]
    assert [r.label for r in chosen if r] == [
        "10.0.0.1:8001",
        "10.0.0.2:8001",
        "10.0.0.3:8001",
    ] * 3


def test_least_outstanding_wins() -> None:
    p = pool()
    a, b, c = p.replicas
    a.outstanding, b.outstanding, c.outstanding = 3, 1, 2
    assert Counter(p.choose() for _ in range(5)) == Counter({b: 5})
    b.outstanding = 5
    assert p.choose() is c


def test_a_replica_whose_breaker_is_open_is_passed_over() -> None:
    p = pool()
    a, b, c = p.replicas
    b.breaker.record_failure()
    assert b.breaker.state is BreakerState.OPEN
    assert {p.choose() for _ in range(6)} == {a, c}
    assert p.available()
    a.breaker.record_failure()
    c.breaker.record_failure()
    assert not p.available()
    assert p.choose() is None
    assert 1 <= p.retry_after_seconds() <= 60


def test_tried_replicas_are_skipped() -> None:
    p = pool()
    a, b, c = p.replicas
    assert p.choose([a, b]) is c
    assert p.choose([a, b, c]) is None


def test_out_of_rotation_is_the_last_resort() -> None:
    p = pool()
    a, b, c = p.replicas
    b.in_rotation = False
    assert {p.choose() for _ in range(6)} == {a, c}
    a.breaker.record_failure()
    c.breaker.record_failure()
    assert p.choose() is b  # nothing else can take it: still tried
    a.in_rotation = c.in_rotation = False
    q = pool()
    for r in q.replicas:
        r.in_rotation = False
    assert len({q.choose() for _ in range(3)}) == 3  # all unready: as if all were ready


def test_one_replica() -> None:
    p = pool(URLS[:1])
    (a,) = p.replicas
    assert p.choose() is a and p.choose([a]) is None
    a.breaker.record_failure()
    assert p.choose() is None


def test_comma_separated_upstream_urls() -> None:
    settings = GatewaySettings(
        citizen_services_url=" http://10.0.0.1:8001/ , http://10.0.0.2:8001",
        inclusion_url="http://10.0.0.9:8002",
    )
    found = upstreams(settings)
    assert found["citizen-services"].urls == ("http://10.0.0.1:8001", "http://10.0.0.2:8001")
    assert found["citizen-services"].base_url == "http://10.0.0.1:8001"
    assert found["inclusion"].urls == ("http://10.0.0.9:8002",)
    for bad in ("", " , ", "10.0.0.1:8001", "http://a:1,http://a:1/"):
        with pytest.raises(ValueError):
            GatewaySettings(citizen_services_url=bad)
