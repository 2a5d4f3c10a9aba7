"""``python -m mkinfra.tools``: helm (and promtool) built once at their pinned versions into
var/tools/bin, kept on the next run, rebuilt when the binary there is not the pinned one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mkinfra.tools import TOOLS, built_version, ensure_tool, tool_path


def test_helm_is_built_at_the_pinned_version() -> None:
    helm = ensure_tool("helm")
    assert helm == tool_path("helm")
    assert built_version(helm, TOOLS["helm"].module) == TOOLS["helm"].version == "v4.3.2"
    reported = subprocess.run(
        [str(helm), "version", "--template", "{{.Version}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert reported == "v4.3.2"


def test_a_second_run_keeps_the_binary() -> None:
    helm = ensure_tool("helm")
    before = helm.stat().st_mtime_ns
    proc = subprocess.run(
        [sys.executable, "-m", "mkinfra.tools", "helm"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert f"[setup] helm v4.3.2: {helm}" in proc.stdout
    assert "building" not in proc.stderr
    assert helm.stat().st_mtime_ns == before


def test_a_binary_that_is_not_the_pinned_build_is_not_accepted(tmp_path: Path) -> None:
    impostor = tmp_path / "helm"
    impostor.write_text("#!/bin/sh\necho v4.3.2\n")
    impostor.chmod(0o755)
    assert built_version(impostor, TOOLS["helm"].module) is None
    assert built_version(tmp_path / "missing", TOOLS["helm"].module) is None


def test_unknown_tool_names_are_refused() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkinfra.tools", "kubectl"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown tool" in proc.stderr


def test_promtool_is_built_at_the_pinned_version() -> None:
    promtool = ensure_tool("promtool")
    assert built_version(promtool, TOOLS["promtool"].module) == "v0.316.0"
    reported = subprocess.run(
        [str(promtool), "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert reported.startswith("promtool, version 3.16.0")
