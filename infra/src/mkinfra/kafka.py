"""Apache Kafka without Docker: jars from Maven Central, a single-node KRaft broker, topics.

* :func:`ensure_kafka_jars` resolves the broker's jars once into ``cache_dir()/libs``
  with Maven (``infra/kafka/pom.xml``); needs Java 17+ and ``mvn``.
* :class:`KafkaBroker` runs one combined broker+controller (KRaft) on 127.0.0.1 whose
  data survives a stop/start on the same ``data_dir``.
* :func:`ensure_topics` creates every topic of :mod:`contracts.topics` and its ``.dlq`` twin.

CLI: ``python -m mkinfra.kafka fetch | start [...] | ensure-topics [--bootstrap B]``.
Set ``KAFKA_BOOTSTRAP_SERVERS`` to use an existing cluster instead of a local broker.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

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


def server_properties(
    data_dir: Path, port: int, controller_port: int, session_timeout_ms: int = 3000
) -> str:
    """``server.properties`` for a single-node combined broker+controller on 127.0.0.1."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{LOCALHOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{LOCALHOST}:{port},CONTROLLER://{LOCALHOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOCALHOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
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
    ) -> None:
        super().__init__()
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
        libs = self.libs_dir or ensure_kafka_jars()
        java = check_java()
        for p in (self.port, self.controller_port):
            if port_in_use(p):
                raise KafkaSetupError(f"port {LOCALHOST}:{p} is already in use")
        config = self._write_config()
        if not (self.data_dir / "logs" / "meta.properties").exists():
            self._format(java, libs, config)
        self._launch(java, libs, config)
        self._wait_ready(timeout)
        return self

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
                self.data_dir, self.port, self.controller_port, self.session_timeout_ms
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
            new_cluster_id(),
            "--config",
            str(config),
            "--ignore-formatted",
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

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = self._proc.returncode if self._proc else None
                self._proc = None
                raise KafkaSetupError(
                    f"Kafka exited during start-up (exit {code}); log {self.log_file}:\n"
                    f"{self.log_tail()}"
                )
            if port_in_use(self.port) and run_sync(_broker_answers(self.bootstrap_servers)):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise KafkaSetupError(
                    f"Kafka did not become ready within {timeout:.0f}s; log {self.log_file}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.2)


async def _broker_answers(bootstrap_servers: str) -> bool:
    """True when the cluster answers a metadata request listing at least one broker."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=3000, connections_max_idle_ms=10000
    )
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
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
) -> list[str]:
    """Create every topic (and its ``.dlq`` twin) that does not exist yet.

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
                    topic_configs={"retention.ms": str(retention)},
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
    return created


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


def _cmd_ensure_topics(args: argparse.Namespace) -> int:
    created = run_sync(ensure_topics(args.bootstrap))
    print(f"created: {', '.join(created)}" if created else "all topics already exist")
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
    topics = sub.add_parser("ensure-topics", help="create the registry's topics idempotently")
    topics.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"{LOCALHOST}:9092")
    )
    topics.set_defaults(func=_cmd_ensure_topics)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KafkaSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
