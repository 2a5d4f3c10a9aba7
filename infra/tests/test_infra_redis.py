"""The local Redis: start, answers, no persistence across a restart, stop, crash."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from mkinfra._proc import port_in_use
from mkinfra.redis import RedisError, RedisServer, ensure_redis_installed, ping
from mkinfra.testing import free_port

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mk-redis-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_server_start_stop_restart(redis_dir: Path) -> None:
    server = RedisServer(redis_dir, port=free_port(), binary=ensure_redis_installed())
    try:
        assert server.start() is server
        assert server.running and ping(server.port)
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        try:
            assert client.set("mk:test", "Bletchley")
            assert client.get("mk:test") == b"Bletchley"
            config = client.config_get("*")
            assert config["save"] == "" and config["appendonly"] == "no"
            assert config["bind"] == "127.0.0.1" and config["daemonize"] == "no"
        finally:
            client.close()
        assert server.start() is server  # idempotent while running

        server.stop()
        assert not server.running and not port_in_use(server.port)
        server.stop()  # idempotent

        server.start()
        client = redis.Redis.from_url(server.url)
        try:
            assert client.get("mk:test") is None  # no persistence: a restart starts empty
        finally:
            client.close()
        assert not any(p.suffix in (".rdb", ".aof") for p in redis_dir.rglob("*"))

        server.kill()  # a crash
        assert not ping(server.port)
        with RedisServer(redis_dir, port=server.port, binary=server.binary) as again:
            assert ping(again.port)
        assert not port_in_use(server.port)
    finally:
        server.stop()


def test_port_in_use_is_reported(redis_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        server = RedisServer(redis_dir, port=port, binary=ensure_redis_installed())
        with pytest.raises(RedisError, match="in use"):
            server.start()
        assert not server.running


def test_ping_of_nothing_is_false() -> None:
    assert not ping(free_port(), timeout=0.2)


def test_session_fixture_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()
    finally:
        client.close()
