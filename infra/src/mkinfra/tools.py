"""Command-line tools the checks need, built from source with ``go install`` (the Go module
proxy) into ``var/tools/bin``, like the Kafka jars come from Maven Central:

* ``helm`` (``helm.sh/helm/v4``): ``helm lint`` / ``helm template`` of ``infra/helm``;
* ``promtool`` (``github.com/prometheus/prometheus``): ``promtool check rules`` and
  ``promtool test rules`` of ``infra/prometheus``.

Each is pinned (:data:`TOOLS`); a binary already there is kept when ``go version -m`` says it
was built from the pinned module version, so a second run returns at once. The first build
compiles for several minutes on two cores: progress is printed every 30 seconds.

CLI: ``python -m mkinfra.tools [helm] [promtool]`` (no name: all of them); prints each path.
``MK_TOOLS_DIR`` overrides the directory.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


class ToolSetupError(RuntimeError):
    """A tool cannot be built or does not run on this machine."""


@dataclass(frozen=True)
class Tool:
    name: str
    #: The Go module the tool's version is pinned in.
    module: str
    #: The package ``go install`` builds (a ``main`` package inside ``module``).
    package: str
    version: str
    #: Linker flags that set the version the tool reports about itself.
    ldflags: str
    #: Arguments that print the version (checked to run after a build).
    version_args: tuple[str, ...]
    #: Go build tags.
    tags: tuple[str, ...] = ()


TOOLS: dict[str, Tool] = {
    "helm": Tool(
        name="helm",
        module="helm.sh/helm/v4",
        package="helm.sh/helm/v4/cmd/helm",
        version="v4.3.2",
        ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=v4.3.2",
        version_args=("version", "--template", "{{.Version}}"),
    ),
    # Prometheus 3.16.0 (its Go module is tagged v0.316.0).
    "promtool": Tool(
        name="promtool",
        module="github.com/prometheus/prometheus",
        package="github.com/prometheus/prometheus/cmd/promtool",
        version="v0.316.0",
        ldflags="-s -w -X github.com/prometheus/common/version.Version=3.16.0",
        version_args=("--version",),
        # Without the service-discovery plugins (cloud SDKs: most of the build), which
        # checking and testing rules does not use.
        tags=("remove_all_sd",),
    ),
}

_INSTALL_HINT = (
    "Install Go 1.24+ (e.g. `apt-get install golang-go`, or from go.dev) and make sure the "
    "Go module proxy is reachable."
)


def tools_dir() -> Path:
    """``$MK_TOOLS_DIR`` or ``<repo>/var/tools/bin``."""
    override = os.environ.get("MK_TOOLS_DIR")
    return Path(override) if override else REPO_ROOT / "var" / "tools" / "bin"


def go_executable() -> str:
    """``go`` from PATH, else the official tarball's place (/usr/local/go/bin/go)."""
    found = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if not found:
        raise ToolSetupError(f"`go` was not found. {_INSTALL_HINT}")
    return found


def built_version(binary: Path, module: str) -> str | None:
    """The version of ``module`` a Go binary was built from (``go version -m``), or None."""
    if not binary.exists():
        return None
    proc = subprocess.run(
        [go_executable(), "version", "-m", str(binary)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for line in proc.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "mod" and fields[1] == module:
            return fields[2]
    return None


def tool_path(name: str) -> Path:
    """Where ``name`` is (or will be) installed."""
    return tools_dir() / TOOLS[name].name


def ensure_tool(name: str) -> Path:
    """Build ``name`` at its pinned version unless it is already there; return its path.

    Idempotent and safe to call from several processes at once (a file lock).
    """
    tool = TOOLS[name]
    binary = tool_path(name)
    if built_version(binary, tool.module) == tool.version:
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with _locked(binary.parent / f".{tool.name}.lock"):
        if built_version(binary, tool.module) != tool.version:
            _build(tool, binary.parent)
    found = built_version(binary, tool.module)
    if found != tool.version:
        raise ToolSetupError(f"{binary} was built from {tool.module} {found}, not {tool.version}")
    _check_runs(tool, binary)
    return binary


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(tool: Tool, gobin: Path) -> None:
    go = go_executable()
    target = f"{tool.package}@{tool.version}"
    print(
        f"[setup] building {tool.name} {tool.version} with `go install {target}` "
        f"into {gobin} (once; several minutes on two cores)",
        file=sys.stderr,
        flush=True,
    )
    env = {**os.environ, "GOBIN": str(gobin)}
    started = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(30):
            print(
                f"[setup] … still building {tool.name} ({time.monotonic() - started:.0f} s so far)",
                file=sys.stderr,
                flush=True,
            )

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    try:
        proc = subprocess.run(
            [go, "install", f"-ldflags={tool.ldflags}", f"-tags={','.join(tool.tags)}", target],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        done.set()
    if proc.returncode != 0:
        raise ToolSetupError(
            f"`go install {target}` failed (exit {proc.returncode}):\n"
            f"{(proc.stdout + proc.stderr)[-4000:]}\n{_INSTALL_HINT}"
        )
    print(
        f"[setup] {tool.name} {tool.version} built in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )


def _check_runs(tool: Tool, binary: Path) -> None:
    proc = subprocess.run(
        [str(binary), *tool.version_args], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise ToolSetupError(
            f"{binary} {' '.join(tool.version_args)} failed: {(proc.stdout + proc.stderr)[-2000:]}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mkinfra.tools",
        description="Build the pinned helm and promtool into var/tools/bin (once).",
    )
    parser.add_argument("names", nargs="*", metavar="|".join(TOOLS), help="default: all")
    args = parser.parse_args(argv)
    names = args.names or list(TOOLS)
    unknown = sorted(set(names) - set(TOOLS))
    if unknown:
        parser.error(f"unknown tool(s) {unknown}; known: {sorted(TOOLS)}")
    try:
        for name in names:
            path = ensure_tool(name)
            print(f"[setup] {name} {TOOLS[name].version}: {path}", flush=True)
    except ToolSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
