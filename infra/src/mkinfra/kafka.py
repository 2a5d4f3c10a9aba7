"""Apache Kafka without Docker: jars from Maven Central, a single-node KRaft broker, topics.

* :func:`ensure_kafka_jars` resolves the broker's jars once into ``cache_dir()/libs``
  with Maven (``infra/kafka/pom.xml``); needs Java 17+ and ``mvn``.
* :class:`KafkaBroker` runs one combined broker+controller (KRaft) on 127.0.0.1 whose
  data survives a stop/start on the same ``data_dir``.
* :func:`ensure_topics` creates every topic of :mod:`contracts.topics` and its ``.dlq`` twin.

* :class:`KafkaCluster` runs N such nodes as one KRaft cluster (every node a broker and a
  controller voter), topics replicated 3 times with ``min.insync.replicas=2``.

CLI: ``python -m mkinfra.kafka fetch | start [...] | cluster --brokers 3 [...] |
ensure-topics [--bootstrap B]``.
Set ``KAFKA_BOOTSTRAP_SERVERS`` to use an existing cluster instead of a local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import fcntl
import logging
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.topics import TOPICS, Topic
from mkinfra._proc import LOCALHOST, port_in_use, run_sync, tail
from mkinfra._server import ManagedServer, serve_until_signalled

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.0.2"
MIN_JAVA = 17
POM = Path(__file__).resolve().parents[2] / "kafka" / "pom.xml"
_MARKER = ".complete"
_TOPIC_ALREADY_EXISTS = 36
_INSTALL_HINT = (
    "Install Java 17+ and Maven (e.g. `apt-get install openjdk-17-jre-headless maven`), "
    "or set KAFKA_BOOTSTRAP_SERVERS to an existing Kafka cluster."
)


class KafkaSetupError(RuntimeError):
    """Kafka cannot be provisioned or started on this machine."""


# --------------------------------------------------------------------------- jars


def cache_dir() -> Path:
    """Per-version cache directory: ``$MK_CACHE_DIR`` or ``~/.cache/mk-platform``, + kafka-<v>."""
    base = os.environ.get("MK_CACHE_DIR") or str(Path.home() / ".cache" / "mk-platform")
    return Path(base) / f"kafka-{KAFKA_VERSION}"


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` if JAVA_HOME is set, else ``java`` from PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise KafkaSetupError(f"`java` was not found. {_INSTALL_HINT}")
    return found


def java_major_version(java: str) -> int:
    """The major version of a Java runtime (``1.8`` -> 8, ``17.0.15`` -> 17)."""
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise KafkaSetupError(f"Cannot tell the version of {java}. {_INSTALL_HINT}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java() -> str:
    """Return the java executable, raising :class:`KafkaSetupError` unless it is 17+."""
    java = java_executable()
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise KafkaSetupError(
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+, found {major}. {_INSTALL_HINT}"
        )
    return java


def ensure_kafka_jars() -> Path:
    """Resolve Kafka's jars from Maven Central once; return the ``libs`` directory.

    Idempotent: a marker file is written after a successful resolution, and later calls
    return at once. Concurrent callers are serialised with a file lock.
    """
    libs = cache_dir() / "libs"
    if (libs / _MARKER).exists():
        return libs
    check_java()
    mvn = shutil.which("mvn")
    if not mvn:
        raise KafkaSetupError(f"`mvn` (Apache Maven) was not found. {_INSTALL_HINT}")
    libs.parent.mkdir(parents=True, exist_ok=True)
    with _locked(libs.parent / ".lock"):
        if not (libs / _MARKER).exists():
            _resolve_jars(mvn, libs)
    return libs


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _resolve_jars(mvn: str, libs: Path) -> None:
    if not POM.exists():
        raise KafkaSetupError(f"Maven project {POM} is missing")
    print(
        f"Resolving Apache Kafka {KAFKA_VERSION} from Maven Central… (once, into {libs}; "
        f"a first run downloads Maven's plugins and Kafka's jars: progress every "
        f"{PROGRESS_EVERY_SECONDS:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    # Not -q: in batch mode Maven logs each transfer ("Downloaded from central: …"), which
    # is read for the progress lines; the rest of its output is kept for an error message.
    cmd = [
        mvn,
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-Dkafka.version={KAFKA_VERSION}",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    progress = _Progress()
    code, output = _run_reporting(cmd, progress)
    if code != 0:
        raise KafkaSetupError(
            f"Maven could not resolve Kafka {KAFKA_VERSION} (exit {code}):\n"
            f"{output[-4000:]}\n{_INSTALL_HINT}"
        )
    if not any(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        raise KafkaSetupError(f"Maven finished but {libs} has no Kafka jar")
    (libs / _MARKER).write_text(f"{KAFKA_VERSION}\n")
    print(progress.line(done=True), file=sys.stderr, flush=True)
    print(
        f"Apache Kafka {KAFKA_VERSION} ready ({progress.elapsed():.0f}s).",
        file=sys.stderr,
        flush=True,
    )


#: How often a long Maven run reports its progress.
PROGRESS_EVERY_SECONDS = 10.0
_TRANSFER = re.compile(r"^Download(ing|ed) from [^:]+: (\S+)(?: \(([\d.,]+) (B|kB|KB|MB|GB))?")
_UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}


class _Progress:
    """Files and bytes Maven has downloaded, read from its transfer lines."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.files = 0
        self.bytes = 0.0
        self.current = ""

    def feed(self, line: str) -> None:
        match = _TRANSFER.match(line.strip())
        if not match:
            return
        self.current = match.group(2).rsplit("/", 1)[-1]
        if match.group(1) == "ed":
            self.files += 1
            if match.group(3):
                self.bytes += float(match.group(3).replace(",", "")) * _UNITS[match.group(4)]

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self, *, done: bool = False) -> str:
        total = f"{self.files} files, {self.bytes / 1e6:.1f} MB downloaded"
        if done and not self.files:
            return f"[kafka] resolved from the local Maven repository in {self.elapsed():.0f} s"
        if done:
            return f"[kafka] resolved: {total} in {self.elapsed():.0f} s"
        last = f"; now {self.current}" if self.current else ""
        return f"[kafka] {self.elapsed():.0f} s: {total}{last}"


def _run_reporting(cmd: list[str], progress: _Progress) -> tuple[int, str]:
    """Run ``cmd``, feeding its output to ``progress`` and printing a progress line every
    :data:`PROGRESS_EVERY_SECONDS` (also while it prints nothing); its exit code and output."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="mvn-output", daemon=True).start()
    output: collections.deque[str] = collections.deque(maxlen=200)
    reported = time.monotonic()
    while True:
        try:
            line = lines.get(timeout=min(1.0, PROGRESS_EVERY_SECONDS))
        except queue.Empty:
            line = ""
        if line is None:
            break
        if line:
            output.append(line)
            progress.feed(line)
        if time.monotonic() - reported >= PROGRESS_EVERY_SECONDS:
            print(progress.line(), file=sys.stderr, flush=True)
            reported = time.monotonic()
    return proc.wait(), "".join(output)


# --------------------------------------------------------------------------- broker

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.config.name = org.apache.kafka.common.config
logger.config.level = WARN
"""

# Stock GC/JIT on purpose (bench/ measures against this broker): C1-only or SerialGC saved
# no measurable start time (~2 s either way), most of which is Kafka's own start-up.
_JVM_OPTS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)


def new_cluster_id() -> str:
    """A random Kafka cluster id (URL-safe base64 of a UUID, no padding, no leading '-')."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@dataclass(frozen=True)
class BrokerSecurity:
    """Extra client listeners with TLS, for testing the clients' security settings.

    * ``sasl_ssl_port``: a ``SASL_SSL`` listener (SCRAM-SHA-512 and PLAIN for ``users``);
    * ``ssl_port``: a TLS-only ``SSL`` listener that requires a client certificate signed by
      the CA (mutual TLS).

    ``keystore``: one PEM file holding the broker's (unencrypted PKCS#8) private key and
    its certificate chain; ``truststore``: the CA's certificate (PEM), which the TLS-only
    listener checks client certificates against. SCRAM users are written into the
    metadata when the storage is formatted (``kafka-storage format --add-scram``).
    """

    keystore: Path
    truststore: Path
    sasl_ssl_port: int | None = None
    ssl_port: int | None = None
    users: Mapping[str, str] = field(default_factory=dict)

    def listeners(self) -> list[tuple[str, int]]:
        """(listener name, port) of each extra listener."""
        out: list[tuple[str, int]] = []
        if self.sasl_ssl_port:
            out.append(("SASL_SSL", self.sasl_ssl_port))
        if self.ssl_port:
            out.append(("SSL", self.ssl_port))
        return out

    def properties(self) -> dict[str, str]:
        plain_users = " ".join(
            f'user_{name}="{password}"' for name, password in sorted(self.users.items())
        )
        return {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.truststore),
            "ssl.endpoint.identification.algorithm": "",
            "listener.name.ssl.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            ),
        }

    def scram_arguments(self) -> list[str]:
        """``--add-scram`` arguments for ``kafka-storage format``."""
        args: list[str] = []
        for name, password in sorted(self.users.items()):
            args += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        return args


def server_properties(
    data_dir: Path,
    port: int,
    controller_port: int,
    session_timeout_ms: int = 3000,
    *,
    node_id: int = 1,
    quorum_voters: str | None = None,
    replication: int = 1,
    min_insync_replicas: int = 1,
    security: BrokerSecurity | None = None,
) -> str:
    """``server.properties`` for a combined broker+controller on 127.0.0.1.

    Alone by default (``node.id`` 1, itself the only voter); one node of a cluster with
    ``node_id``, ``quorum_voters`` (``"1@127.0.0.1:p1,2@…"``) and the ``replication``
    factor and ``min_insync_replicas`` of the internal topics and of new topics.
    """
    extra = security.listeners() if security else []
    listeners = [f"PLAINTEXT://{LOCALHOST}:{port}"] + [
        f"{name}://{LOCALHOST}:{p}" for name, p in extra
    ]
    protocol_map = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"] + [
        f"{name}:{name}" for name, _ in extra
    ]
    rf = str(replication)
    isr = str(min_insync_replicas)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": quorum_voters or f"{node_id}@{LOCALHOST}:{controller_port}",
        "listeners": ",".join([*listeners, f"CONTROLLER://{LOCALHOST}:{controller_port}"]),
        "advertised.listeners": ",".join(listeners),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(protocol_map),
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": isr,
        "share.coordinator.state.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "4",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
        # After a restart the controller keeps the previous incarnation's session alive
        # for broker.session.timeout.ms (default 9 s) and rejects the new registration
        # (DUPLICATE_BROKER_REGISTRATION) until then: a short session makes restarts fast.
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": str(session_timeout_ms),
        # The active controller appends a no-op record to the metadata log every 500 ms by
        # default (KIP-835: quorum health metrics), which the broker then replays: the
        # largest part of an idle single-node broker's CPU (measured 2.7% of a core, 2.1%
        # with them off). Every 10 s keeps the signal for a long-lived dev broker.
        "metadata.max.idle.interval.ms": "10000",
    }
    if replication > 1:
        # a dead peer is noticed (and its partitions' leadership moved) within seconds
        props["replica.lag.time.max.ms"] = "10000"
        props["controller.quorum.election.timeout.ms"] = "1000"
        props["controller.quorum.fetch.timeout.ms"] = "2000"
    if security:
        props.update(security.properties())
    return "".join(f"{k}={v}\n" for k, v in props.items())


class KafkaBroker(ManagedServer):
    """A single-node KRaft Kafka (broker + controller in one JVM) on 127.0.0.1.

    Data lives in ``data_dir/logs``; stopping and starting again on the same ``data_dir``
    keeps topics and records. Use as a context manager or call :meth:`start`/:meth:`stop`;
    :meth:`kill` is a crash (for fault tests) that :meth:`start` recovers from. ``pid`` is
    the JVM's process id while it runs.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 9092,
        controller_port: int = 9093,
        log_file: Path | None = None,
        *,
        libs_dir: Path | None = None,
        heap: str = "512m",
        session_timeout_ms: int = 3000,
        node_id: int = 1,
        cluster_id: str | None = None,
        quorum_voters: str | None = None,
        replication: int = 1,
        min_insync_replicas: int = 1,
        security: BrokerSecurity | None = None,
    ) -> None:
        super().__init__()
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.quorum_voters = quorum_voters
        self.replication = replication
        self.min_insync_replicas = min_insync_replicas
        self.security = security
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port = controller_port
        self.log_file = Path(log_file).resolve() if log_file else self.data_dir / "kafka.log"
        self.libs_dir = libs_dir
        self.heap = heap
        self.session_timeout_ms = session_timeout_ms

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>``, for clients."""
        return f"{LOCALHOST}:{self.port}"

    def start(self, timeout: float = 90) -> KafkaBroker:
        """Start the broker (formatting storage on first use) and wait until it serves clients.

        Raises :class:`KafkaSetupError` with the tail of the log if the JVM exits early, a
        port is taken, or the broker is not ready within ``timeout`` seconds.
        """
        if self.running:
            return self
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Start the JVM (formatting storage on first use) without waiting for it: the
        nodes of a cluster are launched together, then waited for (a quorum needs most)."""
        if self.running:
            return
        libs = self.libs_dir or ensure_kafka_jars()
        java = check_java()
        ports = [self.port, self.controller_port]
        ports += [p for _, p in (self.security.listeners() if self.security else [])]
        for p in ports:
            if port_in_use(p):
                raise KafkaSetupError(f"port {LOCALHOST}:{p} is already in use")
        config = self._write_config()
        if not (self.data_dir / "logs" / "meta.properties").exists():
            self._format(java, libs, config)
        self._launch(java, libs, config)

    def wait_ready(self, timeout: float = 90, *, brokers: int = 1) -> None:
        """Wait until this node answers metadata listing at least ``brokers`` brokers."""
        self._wait_ready(timeout, brokers)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the broker's log file."""
        return tail(self.log_file, lines)

    # -- internals

    def _classpath(self, libs: Path) -> str:
        return f"{libs}/*"

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text(
            server_properties(
                self.data_dir,
                self.port,
                self.controller_port,
                self.session_timeout_ms,
                node_id=self.node_id,
                quorum_voters=self.quorum_voters,
                replication=self.replication,
                min_insync_replicas=self.min_insync_replicas,
                security=self.security,
            )
        )
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.log_file))
        return config

    def _java_cmd(self, java: str, libs: Path, *args: str) -> list[str]:
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms128m",
            *_JVM_OPTS,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            self._classpath(libs),
            *args,
        ]

    def _format(self, java: str, libs: Path, config: Path) -> None:
        cmd = self._java_cmd(
            java,
            libs,
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            self.cluster_id or new_cluster_id(),
            "--config",
            str(config),
            "--ignore-formatted",
            *(self.security.scram_arguments() if self.security else []),
        )
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if out.returncode != 0:
            raise KafkaSetupError(f"formatting Kafka storage failed:\n{out.stdout}{out.stderr}")

    def _launch(self, java: str, libs: Path, config: Path) -> None:
        self._spawn(
            self._java_cmd(java, libs, "kafka.Kafka", str(config)),
            log_file=self.log_file,
            cwd=self.data_dir,
        )

    def _wait_ready(self, timeout: float, brokers: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = self._proc.returncode if self._proc else None
                self._proc = None
                raise KafkaSetupError(
                    f"Kafka exited during start-up (exit {code}); log {self.log_file}:\n"
                    f"{self.log_tail()}"
                )
            if port_in_use(self.port) and run_sync(
                _broker_answers(self.bootstrap_servers, brokers)
            ):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise KafkaSetupError(
                    f"Kafka did not become ready within {timeout:.0f}s; log {self.log_file}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.2)


class KafkaCluster:
    """``brokers`` combined broker+controller nodes (KRaft, one quorum of all of them) on
    127.0.0.1 ports the OS picks, internal and new topics replicated ``replication`` times
    (default: to every node, at most 3) with ``min.insync.replicas`` one less (at least 1).

    Each node is a :class:`KafkaBroker` in ``nodes``: ``nodes[i].kill()`` is a crash of one
    broker (and one controller; the quorum survives while most are up) that
    ``nodes[i].start()`` recovers from, on the same ports and data.
    """

    def __init__(
        self,
        data_dir: Path,
        brokers: int = 3,
        *,
        libs_dir: Path | None = None,
        heap: str = "384m",
        replication: int | None = None,
    ) -> None:
        if brokers < 1:
            raise ValueError("a cluster needs at least one broker")
        self.data_dir = Path(data_dir).resolve()
        self.replication = replication or min(brokers, 3)
        self.min_insync_replicas = max(1, self.replication - 1)
        ports = _free_ports(2 * brokers)
        client_ports, controller_ports = ports[:brokers], ports[brokers:]
        voters = ",".join(f"{i + 1}@{LOCALHOST}:{controller_ports[i]}" for i in range(brokers))
        cluster_id = new_cluster_id()
        self.nodes = [
            KafkaBroker(
                self.data_dir / f"node-{i + 1}",
                port=client_ports[i],
                controller_port=controller_ports[i],
                libs_dir=libs_dir,
                heap=heap,
                node_id=i + 1,
                cluster_id=cluster_id,
                quorum_voters=voters,
                replication=self.replication,
                min_insync_replicas=self.min_insync_replicas,
            )
            for i in range(brokers)
        ]

    @property
    def bootstrap_servers(self) -> str:
        """Every node's ``127.0.0.1:<port>``, comma-separated."""
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def start(self, timeout: float = 180) -> KafkaCluster:
        """Launch every node, then wait until each lists all the brokers."""
        try:
            for node in self.nodes:
                node.launch()
            for node in self.nodes:
                node.wait_ready(timeout, brokers=len(self.nodes))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @property
    def running(self) -> bool:
        """True while every node runs."""
        return all(node.running for node in self.nodes)

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_ports(count: int) -> list[int]:
    import socket

    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((LOCALHOST, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass(frozen=True)
class SecureKafka:
    """A local broker with TLS listeners (see :func:`secure_broker`): where each listener
    is and what a client needs to connect to it."""

    broker: KafkaBroker
    #: ``SASL_SSL`` (SCRAM-SHA-512 or PLAIN with ``users``); server cert signed by ``ca_file``
    sasl_ssl_bootstrap: str
    #: ``SSL`` with a required client certificate (``client_cert``/``client_key``)
    ssl_bootstrap: str
    ca_file: Path
    client_cert: Path
    client_key: Path
    users: Mapping[str, str]


def secure_broker(
    directory: Path, ports: Sequence[int], *, libs_dir: Path | None = None
) -> SecureKafka:
    """A single-node broker (not started) with a PLAINTEXT listener (``ports[0]``, for
    set-up), a controller (``ports[1]``), a ``SASL_SSL`` listener (``ports[2]``) and a
    mutual-TLS ``SSL`` listener (``ports[3]``), certificates from a fresh local CA and one
    SCRAM/PLAIN user with a random password."""
    import secrets

    from mkinfra.tls import LocalCA

    ca = LocalCA(directory / "tls")
    server = ca.issue("broker", client=False)
    client = ca.issue("client", client=True)
    users = {"mk-service": secrets.token_urlsafe(18)}
    broker = KafkaBroker(
        directory / "data",
        port=ports[0],
        controller_port=ports[1],
        libs_dir=libs_dir,
        security=BrokerSecurity(
            keystore=server.bundle,
            truststore=ca.cert_file,
            sasl_ssl_port=ports[2],
            ssl_port=ports[3],
            users=users,
        ),
    )
    return SecureKafka(
        broker=broker,
        sasl_ssl_bootstrap=f"{LOCALHOST}:{ports[2]}",
        ssl_bootstrap=f"{LOCALHOST}:{ports[3]}",
        ca_file=ca.cert_file,
        client_cert=client.cert,
        client_key=client.key,
        users=users,
    )


async def _broker_answers(bootstrap_servers: str, brokers: int = 1) -> bool:
    """True when the cluster answers a metadata request listing at least ``brokers``."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=3000, connections_max_idle_ms=10000
    )
    try:
        await client.bootstrap()
        return len(client.cluster.brokers()) >= brokers
    except (KafkaError, OSError):
        return False
    finally:
        await client.close()


# --------------------------------------------------------------------------- topics


def topic_specs(topics: Iterable[Topic]) -> list[tuple[str, int, int]]:
    """(name, partitions, retention_ms) for every topic and its dead-letter twin."""
    specs: list[tuple[str, int, int]] = []
    for t in topics:
        specs.append((t.name, t.partitions, t.retention_ms))
        specs.append((t.dlq, 1, t.dlq_retention_ms))
    return specs


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[Topic] = TOPICS,
    *,
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
) -> list[str]:
    """Create every topic (and its ``.dlq`` twin) that does not exist yet, ``replication_factor``
    times replicated (and with ``min.insync.replicas`` when given).

    Idempotent: "already exists" is not an error. Returns the names actually created.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import for_code

    wanted = topic_specs(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [w for w in wanted if w[0] not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs={
                        "retention.ms": str(retention),
                        **(
                            {"min.insync.replicas": str(min_insync_replicas)}
                            if min_insync_replicas
                            else {}
                        ),
                    },
                )
                for name, partitions, retention in missing
            ]
        )
    finally:
        await admin.close()
    created: list[str] = []
    for name, code, *rest in response.topic_errors:
        if code == 0:
            created.append(name)
        elif code != _TOPIC_ALREADY_EXISTS:
            message = rest[0] if rest else ""
            raise for_code(code)(f"creating topic {name!r}: {message}")
    await wait_for_topics(bootstrap_servers, created)
    return created


async def wait_for_topics(
    bootstrap_servers: str, names: Sequence[str], timeout: float = 60, **client: Any
) -> None:
    """Wait until every node of the cluster lists ``names`` with their partitions (a new
    topic reaches the other brokers' metadata a moment after CreateTopics answers)."""
    from aiokafka.admin import AIOKafkaAdminClient

    if not names:
        return
    deadline = time.monotonic() + timeout
    for server in bootstrap_servers.split(","):
        admin = AIOKafkaAdminClient(bootstrap_servers=server, request_timeout_ms=30000, **client)
        await admin.start()
        try:
            while True:
                described = await admin.describe_topics(list(names))
                if all(t["error_code"] == 0 and t["partitions"] for t in described):
                    break
                if time.monotonic() > deadline:
                    raise KafkaSetupError(f"topics did not appear on {server}: {names}")
                await asyncio.sleep(0.2)
        finally:
            await admin.close()


# --------------------------------------------------------------------------- CLI


def _cmd_fetch(_: argparse.Namespace) -> int:
    print(ensure_kafka_jars())
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    broker = KafkaBroker(Path(args.data_dir), port=args.port, controller_port=args.controller_port)
    started = time.monotonic()
    broker.start(timeout=args.timeout)
    print(
        f"Kafka {KAFKA_VERSION} ready on {broker.bootstrap_servers} "
        f"in {time.monotonic() - started:.1f}s (data {broker.data_dir}, log {broker.log_file})",
        flush=True,
    )
    if args.ensure_topics:
        created = run_sync(ensure_topics(broker.bootstrap_servers))
        print(f"topics created: {', '.join(created) or 'none (all exist)'}", flush=True)
    try:
        signalled = serve_until_signalled(broker)
    finally:
        print("stopping Kafka…", flush=True)
        broker.stop()
    if not signalled:
        print(f"Kafka exited unexpectedly; log tail:\n{broker.log_tail()}", file=sys.stderr)
        return 1
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    cluster = KafkaCluster(Path(args.data_dir), brokers=args.brokers)
    started = time.monotonic()
    cluster.start(timeout=args.timeout)
    print(
        f"Kafka {KAFKA_VERSION} cluster of {args.brokers} ready on {cluster.bootstrap_servers} "
        f"in {time.monotonic() - started:.1f}s (data {cluster.data_dir}; replication "
        f"{cluster.replication}, min.insync.replicas {cluster.min_insync_replicas})",
        flush=True,
    )
    if args.ensure_topics:
        created = run_sync(
            ensure_topics(
                cluster.bootstrap_servers,
                replication_factor=cluster.replication,
                min_insync_replicas=cluster.min_insync_replicas,
            )
        )
        print(f"topics created: {', '.join(created) or 'none (all exist)'}", flush=True)
    try:
        signalled = serve_until_signalled(cluster)
    finally:
        print("stopping the Kafka cluster…", flush=True)
        cluster.stop()
    if not signalled:
        logs = "\n".join(n.log_tail(10) for n in cluster.nodes if not n.running)
        print(f"a Kafka node exited unexpectedly; log tail:\n{logs}", file=sys.stderr)
        return 1
    return 0


def _cmd_ensure_topics(args: argparse.Namespace) -> int:
    from mkinfra.topics import (
        TopicConfigError,
        client_options_from,
        count_brokers,
        ensure_configured_topics,
        load_specs,
    )

    try:
        options = client_options_from(
            security_protocol=args.security_protocol,
            sasl_mechanism=args.sasl_mechanism,
            sasl_username=args.sasl_username,
            sasl_password=os.environ.get("KAFKA_SASL_PASSWORD"),
            ssl_cafile=args.ssl_cafile,
            ssl_certfile=args.ssl_certfile,
            ssl_keyfile=args.ssl_keyfile,
        )
        config = Path(args.config) if args.config else None
        brokers = None if config else run_sync(count_brokers(args.bootstrap, options))
        specs = load_specs(config, brokers=brokers)
        plan = run_sync(
            ensure_configured_topics(
                args.bootstrap, specs, dry_run=args.dry_run, client_options=options
            )
        )
    except TopicConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.dry_run and plan.actions:
        print("(dry run: nothing applied)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m mkinfra.kafka``."""
    parser = argparse.ArgumentParser(
        prog="python -m mkinfra.kafka",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="resolve Kafka's jars from Maven Central").set_defaults(
        func=_cmd_fetch
    )
    start = sub.add_parser("start", help="run a local single-node broker in the foreground")
    start.add_argument("--data-dir", default="var/kafka")
    start.add_argument("--port", type=int, default=9092)
    start.add_argument("--controller-port", type=int, default=9093)
    start.add_argument("--timeout", type=float, default=90)
    start.add_argument(
        "--ensure-topics",
        action="store_true",
        help="also create the registry's topics once the broker is ready",
    )
    start.set_defaults(func=_cmd_start)
    cluster = sub.add_parser(
        "cluster", help="run a local KRaft cluster of N brokers in the foreground"
    )
    cluster.add_argument("--brokers", type=int, default=3)
    cluster.add_argument("--data-dir", default="var/kafka-cluster")
    cluster.add_argument("--timeout", type=float, default=180)
    cluster.add_argument(
        "--ensure-topics",
        action="store_true",
        help="also create the registry's topics (replicated, min.insync.replicas) once ready",
    )
    cluster.set_defaults(func=_cmd_cluster)
    topics = sub.add_parser(
        "ensure-topics",
        help="print the plan for the registry's topics, then apply it idempotently",
        description="Topics from contracts' registry and an optional TOML file "
        "(infra/kafka/topics.toml): prints the plan (create, add partitions, set configs), "
        "then applies it. Refuses to lower partitions. Without --config, replication is 3 "
        "(or the number of brokers when fewer) and min.insync.replicas one less. The SASL "
        "password is read from KAFKA_SASL_PASSWORD.",
    )
    env = os.environ.get
    topics.add_argument("--bootstrap", default=env("KAFKA_BOOTSTRAP_SERVERS", f"{LOCALHOST}:9092"))
    topics.add_argument("--config", default=env("MK_TOPICS_CONFIG"), help="a topics TOML file")
    topics.add_argument("--dry-run", action="store_true", help="print the plan only")
    topics.add_argument(
        "--security-protocol",
        default=env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
        choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
    )
    topics.add_argument(
        "--sasl-mechanism",
        default=env("KAFKA_SASL_MECHANISM"),
        choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
    )
    topics.add_argument("--sasl-username", default=env("KAFKA_SASL_USERNAME"))
    topics.add_argument("--ssl-cafile", default=env("KAFKA_SSL_CAFILE"))
    topics.add_argument("--ssl-certfile", default=env("KAFKA_SSL_CERTFILE"))
    topics.add_argument("--ssl-keyfile", default=env("KAFKA_SSL_KEYFILE"))
    topics.set_defaults(func=_cmd_ensure_topics)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KafkaSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
