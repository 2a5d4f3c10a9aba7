"""The browser-test tools, installed by ``python -m webkit.tools`` (``make test`` runs it):

- Debian's ``chromium`` and ``chromium-driver`` (apt-get; needs root, as ``make test``'s
  PostgreSQL and Redis do), driven by Selenium with the system browser;
- ``axe-core`` (npm, pinned :data:`AXE_VERSION`): the accessibility rules run in each page;
- the Nu HTML Checker (npm ``vnu-jar``, pinned :data:`VNU_VERSION`; run with Java).

npm packages go to ``var/webtools/<name>-<version>/`` (git-ignored). Each step is skipped when
already done, and says what it does.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

AXE_VERSION = "4.14.1"
VNU_VERSION = "26.9.27"
ROOT = Path(__file__).resolve().parents[4]
TOOLS_DIR = Path(os.environ.get("WEBKIT_TOOLS_DIR", ROOT / "var" / "webtools"))


class ToolMissing(RuntimeError):
    pass


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def ensure_chromium(*, quiet: bool = False) -> tuple[str, str]:
    found = chromium_paths()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ToolMissing("install Debian's chromium and chromium-driver (apt-get, as root)")
    if not quiet:
        print("[setup] installing chromium and chromium-driver (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "chromium", "chromium-driver"]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False).returncode:
        subprocess.run([apt, "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=True)
    found = chromium_paths()
    if not found:
        raise ToolMissing("chromium or chromedriver is still missing after apt-get")
    return found


def _npm_package(name: str, version: str, *, quiet: bool) -> Path:
    target = TOOLS_DIR / f"{name}-{version}"
    if (target / ".complete").exists():
        return target
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with open(TOOLS_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target
        npm = shutil.which("npm")
        if npm is None:
            raise ToolMissing("npm is needed (apt-get install npm)")
        if not quiet:
            print(f"[setup] fetching {name} {version} from npm", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [npm, "pack", f"{name}@{version}", "--silent"],
                cwd=tmp,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            (tarball,) = Path(tmp).glob("*.tgz")
            with tarfile.open(tarball) as tar:
                tar.extractall(tmp, filter="data")
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(Path(tmp) / "package", target)
        (target / ".complete").write_text(version + "\n")
    return target


def axe_script(*, quiet: bool = True) -> Path:
    return _npm_package("axe-core", AXE_VERSION, quiet=quiet) / "axe.min.js"


def vnu_jar(*, quiet: bool = True) -> Path:
    return _npm_package("vnu-jar", VNU_VERSION, quiet=quiet) / "build" / "dist" / "vnu.jar"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webkit.tools", description="Install the front-end browser-test tools."
    )
    parser.parse_args(argv)
    browser, driver = ensure_chromium()
    print(f"[setup] chromium: {browser}, chromedriver: {driver}", flush=True)
    print(f"[setup] axe-core {AXE_VERSION}: {axe_script(quiet=False)}", flush=True)
    jar = vnu_jar(quiet=False)
    if not jar.exists():
        raise ToolMissing(f"vnu.jar not found in the vnu-jar package: {jar}")
    print(f"[setup] Nu HTML Checker {VNU_VERSION}: {jar}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
