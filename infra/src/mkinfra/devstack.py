"""``make run``: the whole platform on this machine, on the embedded defaults.

Starts, in order: Kafka (KRaft, unless ``KAFKA_BOOTSTRAP_SERVERS`` points elsewhere) and the
registry's topics, the dev SMTP sink (``var/mail/``), citizen-services (:8001), inclusion
(:8002), notifications (:8003), the gateway (:8000, with the dev OIDC provider at
``/dev-issuer``) and the citizen portal (:8010); waits until each is ready; prints
where everything is; and on Ctrl-C (or SIGTERM) stops all of it, leaving no process behind.
Each service keeps its SQLite database and log under ``var/``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from mkinfra._proc import LOCALHOST, kill_group, port_in_use, run_sync, tail, terminate_group

#: The portal's client secret at the dev OIDC provider: webkit's development default
#: (``webkit.settings.DEV_CLIENT_SECRET``), which the portal uses unless told otherwise.
DEV_CLIENT_SECRET = "dev-only-client-secret-change-me-0123456789"  # noqa: S105 - dev only

if TYPE_CHECKING:
    from mkinfra.kafka import KafkaBroker
    from mkinfra.smtp_sink import SmtpSink


@dataclass
class Child:
    name: str
    module: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def _wait_http(url: str, child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc is not None and child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited during start-up:\n{tail(child.log, 30)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{child.name} not ready after {timeout:.0f}s:\n{tail(child.log, 30)}")


class DevStack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.var = root / "var"
        self.children: list[Child] = []
        self.broker: KafkaBroker | None = None
        self.sink: SmtpSink | None = None
        self.stopping = False

    def start(self) -> None:
        for sub in ("mail", "sms", "logs", "kafka"):
            (self.var / sub).mkdir(parents=True, exist_ok=True)
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            from mkinfra.kafka import KafkaBroker, ensure_kafka_jars

            ensure_kafka_jars()
            port = int(os.environ.get("KAFKA_PORT", "9092"))
            controller_port = int(os.environ.get("KAFKA_CONTROLLER_PORT", "9093"))
            say(f"starting Kafka on {LOCALHOST}:{port} (log: var/logs/kafka.log)")
            t0 = time.monotonic()
            broker = KafkaBroker(
                self.var / "kafka",
                port=port,
                controller_port=controller_port,
                log_file=self.var / "logs" / "kafka.log",
            )
            self.broker = broker
            broker.start()
            bootstrap = broker.bootstrap_servers
            say(f"Kafka ready in {time.monotonic() - t0:.1f}s")
        else:
            say(f"using Kafka at {bootstrap}")
        from mkinfra.kafka import ensure_topics

        created = run_sync(ensure_topics(bootstrap))
        say(f"topics ready ({len(created)} created)")

        from mkinfra.smtp_sink import SmtpSink

        smtp_port = int(os.environ.get("SMTP_SINK_PORT", "1025"))
        self.sink = SmtpSink(self.var / "mail", port=smtp_port).start()
        say(f"dev SMTP sink on {LOCALHOST}:{smtp_port} -> var/mail/")

        base_env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PYTHONUNBUFFERED": "1"}
        ports = {
            "citizen-services": int(os.environ.get("CITIZEN_SERVICES_PORT", "8001")),
            "inclusion": int(os.environ.get("INCLUSION_PORT", "8002")),
            "notifications": int(os.environ.get("NOTIFICATIONS_PORT", "8003")),
            "gateway": int(os.environ.get("GATEWAY_PORT", "8000")),
            "citizen-portal": int(os.environ.get("CITIZEN_PORTAL_PORT", "8010")),
            "staff-console": int(os.environ.get("STAFF_CONSOLE_PORT", "8011")),
        }
        services = [
            Child(
                "citizen-services",
                "citizen_services",
                ports["citizen-services"],
                {"CITIZEN_SERVICES_PORT": str(ports["citizen-services"])},
                self.var / "logs" / "citizen-services.log",
            ),
            Child(
                "inclusion",
                "inclusion",
                ports["inclusion"],
                {"INCLUSION_PORT": str(ports["inclusion"])},
                self.var / "logs" / "inclusion.log",
            ),
            Child(
                "notifications",
                "notifications",
                ports["notifications"],
                {
                    "NOTIFICATIONS_PORT": str(ports["notifications"]),
                    "NOTIFICATIONS_SMTP_PORT": str(smtp_port),
                },
                self.var / "logs" / "notifications.log",
            ),
        ]
        gateway = Child(
            "gateway",
            "gateway",
            ports["gateway"],
            {
                "GATEWAY_PORT": str(ports["gateway"]),
                "GATEWAY_CITIZEN_SERVICES_URL": services[0].url,
                "GATEWAY_INCLUSION_URL": services[1].url,
                "GATEWAY_NOTIFICATIONS_URL": services[2].url,
            },
            self.var / "logs" / "gateway.log",
        )
        portal = Child(
            "citizen-portal",
            "citizen_portal",
            ports["citizen-portal"],
            {
                "CITIZEN_PORTAL_PORT": str(ports["citizen-portal"]),
                "CITIZEN_PORTAL_PUBLIC_URL": f"http://{LOCALHOST}:{ports['citizen-portal']}",
                "CITIZEN_PORTAL_GATEWAY_URL": gateway.url,
            },
            self.var / "logs" / "citizen-portal.log",
        )
        console = Child(
            "staff-console",
            "staff_console",
            ports["staff-console"],
            {
                "STAFF_CONSOLE_PORT": str(ports["staff-console"]),
                "STAFF_CONSOLE_PUBLIC_URL": f"http://{LOCALHOST}:{ports['staff-console']}",
                "STAFF_CONSOLE_GATEWAY_URL": gateway.url,
            },
            self.var / "logs" / "staff-console.log",
        )
        for child in [*services, gateway, portal, console]:
            if port_in_use(child.port):
                raise RuntimeError(f"port {child.port} ({child.name}) is already in use")
        for child in services:
            self._spawn(child, base_env)
        for child in services:
            _wait_http(child.url + "/health/ready", child, timeout=90)
            say(f"{child.name} ready on {child.url}")
        gateway.env.update(self._dev_credentials(base_env))
        # the dev OIDC provider (at the dev issuer's path) signs citizens in to the portal
        gateway.env["GATEWAY_DEV_OIDC_CLIENTS"] = json.dumps(
            {
                "citizen-portal": {
                    "redirect_uris": [f"{portal.url}/auth/callback"],
                    "secret": DEV_CLIENT_SECRET,
                    "roles": ["citizen"],
                },
                # staff, admins and partners sign in to the staff console
                "staff-console": {
                    "redirect_uris": [f"{console.url}/auth/callback"],
                    "secret": DEV_CLIENT_SECRET,
                    "roles": ["staff", "admin", "partner"],
                },
            }
        )
        portal.env["CITIZEN_PORTAL_OIDC_ISSUER"] = gateway.env["GATEWAY_JWT_ISSUER"]
        console.env["STAFF_CONSOLE_OIDC_ISSUER"] = gateway.env["GATEWAY_JWT_ISSUER"]
        self._spawn(gateway, base_env)
        _wait_http(gateway.url + "/health", gateway, timeout=60)
        self._spawn(portal, base_env)
        _wait_http(portal.url + "/health", portal, timeout=60)
        self._spawn(console, base_env)
        _wait_http(console.url + "/health", console, timeout=60)
        self._banner(gateway, services, smtp_port, bootstrap, portal, console)

    def _dev_credentials(self, base_env: dict[str, str]) -> dict[str, str]:
        """Write var/dev-credentials.env (tokens from the dev issuer, API keys) and return the
        settings the gateway needs to trust that issuer."""
        env = {
            **base_env,
            "GATEWAY_DATABASE_URL": base_env.get(
                "GATEWAY_DATABASE_URL", f"sqlite:///{self.var}/gateway/gateway.sqlite3"
            ),
        }
        subprocess.run(
            [sys.executable, "-m", "gateway.devcreds", "--var", str(self.var)],
            cwd=self.root,
            env=env,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        # after the gateway's: it rewrites the whole file, this one adds the NOTIFY_* lines
        subprocess.run(
            [sys.executable, "-m", "notifications.devcreds", "--var", str(self.var)],
            cwd=self.root,
            env=env,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        values: dict[str, str] = {}
        for line in (self.var / "dev-credentials.env").read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
        say("dev credentials written to var/dev-credentials.env")
        gateway_env = {k: v for k, v in values.items() if k.startswith("GATEWAY_")}
        gateway_env["GATEWAY_DATABASE_URL"] = env["GATEWAY_DATABASE_URL"]
        return gateway_env

    def _spawn(self, child: Child, base_env: dict[str, str]) -> None:
        log = open(child.log, "ab")  # noqa: SIM115 - lives as long as the child
        child.proc = subprocess.Popen(
            [sys.executable, "-m", child.module],
            cwd=self.root,
            env={**base_env, **child.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.children.append(child)

    def _banner(
        self,
        gateway: Child,
        services: list[Child],
        smtp_port: int,
        bootstrap: str,
        portal: Child,
        console: Child,
    ) -> None:
        lines = [
            "",
            "  Milton Keynes digital platform is running",
            "",
            f"  Citizen portal                 {portal.url}  (sign in as a test citizen)",
            f"  Staff console                  {console.url}  (sign in as test staff or admin)",
            f"  Gateway (the one entry point)  {gateway.url}",
            f"  Aggregated health              {gateway.url}/health",
            *[f"  {c.name:<31}{c.url}  (docs: {c.url}/docs)" for c in services],
            f"  Kafka                          {bootstrap}",
            f"  SMTP sink                      {LOCALHOST}:{smtp_port} -> var/mail/*.eml",
            "  Logs                           var/logs/",
            "",
            f"  API docs (every service)       {gateway.url}/docs",
            "  Dev credentials                var/dev-credentials.env",
            "",
            "  Try it:",
            "    set -a; . var/dev-credentials.env; set +a",
            f"    curl -s -X POST {gateway.url}/api/v1/services \\",
            '         -H "Authorization: Bearer $STAFF_TOKEN" \\',
            "         -H 'content-type: application/json' -d '{\"name\": \"Report a pothole\"}'",
            f"    curl -s -X POST {gateway.url}/api/v1/services/<id>/publish \\",
            '         -H "Authorization: Bearer $STAFF_TOKEN"',
            "    ls var/mail/",
            "",
            "  Press Ctrl-C to stop everything.",
            "",
        ]
        print("\n".join(lines), flush=True)

    def watch(self) -> int:
        """Block until a signal arrives or a child dies; returns the exit code."""
        while not self.stopping:
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None:
                    say(f"{child.name} exited unexpectedly (code {child.proc.returncode}):")
                    print(tail(child.log, 30), flush=True)
                    return 1
            time.sleep(0.5)
        return 0

    def stop(self) -> None:
        say("stopping…")
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            if child.proc is not None:
                try:
                    terminate_group(child.proc, 20)
                except Exception:
                    kill_group(child.proc)
        if self.sink is not None:
            self.sink.stop()
        if self.broker is not None:
            self.broker.stop()
        say("stopped; nothing left running")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    stack = DevStack(args.root.resolve())

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stack.stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    code = 0
    try:
        stack.start()
        code = stack.watch()
    except Exception as exc:
        say(f"failed: {exc}")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
