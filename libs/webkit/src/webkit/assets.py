"""GOV.UK Frontend's built assets, fetched from npm and served under ``/assets``.

The ``govuk-frontend`` npm package (MIT) is pinned to :data:`GOVUK_FRONTEND_VERSION`.
``python -m webkit.assets`` (run by ``make`` before ``run`` and ``test``) downloads it once with
``npm pack`` and copies what a page needs (the minified CSS and JavaScript, fonts, images,
the web manifest; about 450 KB) into ``webkit/static/govuk-frontend/``, which git ignores: the
assets are fetched, never committed. A marker file names the installed version, so running it
again costs nothing and a new pin replaces the old copy.

:func:`assets_app` serves them, with webkit's own two small scripts (``webkit.js`` marks the
body ``js-enabled`` without an inline script, ``webkit-init.mjs`` starts GOV.UK Frontend's
components), each with a long ``Cache-Control``: fonts and images have content-hashed or
stable names, and pages link the CSS and JavaScript with ``?v=<version>``.
"""

from __future__ import annotations

import argparse
import fcntl
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

GOVUK_FRONTEND_VERSION = "6.6.0"
STATIC = Path(__file__).resolve().parent / "static"
INSTALL_DIR = STATIC / "govuk-frontend"
OWN_DIR = STATIC / "webkit"
_MARKER = ".version"
#: What a page needs from the package's ``dist/govuk/`` (no source maps, no Sass).
_FILES = ("govuk-frontend.min.css", "govuk-frontend.min.js")
_DIRS = ("assets/fonts", "assets/images")
_MANIFEST = "assets/manifest.json"
#: A year: the names are versioned (``?v=``) or content-hashed.
LONG_CACHE = "public, max-age=31536000, immutable"


class AssetsMissing(RuntimeError):
    pass


def installed_version(directory: Path = INSTALL_DIR) -> str | None:
    marker = directory / _MARKER
    return marker.read_text().strip() if marker.exists() else None


def assets_ready(directory: Path = INSTALL_DIR) -> bool:
    return installed_version(directory) == GOVUK_FRONTEND_VERSION


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_assets(directory: Path = INSTALL_DIR, *, quiet: bool = False) -> Path:
    """Install the pinned GOV.UK Frontend into ``directory`` unless it is there already
    (idempotent; safe to run from two processes at once)."""
    if assets_ready(directory):
        return directory
    with _locked(directory.parent / ".govuk-frontend.lock"):
        if assets_ready(directory):
            return directory
        npm = shutil.which("npm")
        if npm is None:
            raise AssetsMissing("npm is needed to fetch govuk-frontend (apt-get install npm)")
        if not quiet:
            print(f"[setup] fetching govuk-frontend {GOVUK_FRONTEND_VERSION} from npm", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            subprocess.run(
                [npm, "pack", f"govuk-frontend@{GOVUK_FRONTEND_VERSION}", "--silent"],
                cwd=work,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            (tarball,) = work.glob("govuk-frontend-*.tgz")
            with tarfile.open(tarball) as tar:
                tar.extractall(work, filter="data")
            dist = work / "package" / "dist" / "govuk"
            staged = work / "out"
            staged.mkdir()
            for name in _FILES:
                shutil.copy2(dist / name, staged / name)
            for sub in _DIRS:
                shutil.copytree(dist / sub, staged / Path(sub).name)
            shutil.copy2(dist / _MANIFEST, staged / "manifest.json")
            (staged / "NOTICE").write_text(
                f"govuk-frontend {GOVUK_FRONTEND_VERSION} from npm, MIT licence, Crown "
                "copyright: https://github.com/alphagov/govuk-frontend\n"
            )
            (staged / _MARKER).write_text(GOVUK_FRONTEND_VERSION + "\n")
            if directory.exists():
                shutil.rmtree(directory)
            shutil.copytree(staged, directory)
    return directory


class _Assets(StaticFiles):
    """Static files with a long ``Cache-Control`` (and never a directory listing)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["cache-control"] = LONG_CACHE
        return response


def assets_app(directory: Path = INSTALL_DIR) -> StaticFiles:
    """The ASGI app to mount at ``/assets``: GOV.UK Frontend, then webkit's own files."""
    if not assets_ready(directory):
        raise AssetsMissing(
            f"GOV.UK Frontend {GOVUK_FRONTEND_VERSION} is not installed in {directory}: "
            "run `python -m webkit.assets` (make does it)"
        )
    return _MultiStatic(directories=[directory, OWN_DIR])


class _MultiStatic(_Assets):
    def __init__(self, directories: list[Path]) -> None:
        super().__init__(directory=directories[0])
        self.all_directories = list(directories)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webkit.assets", description="Fetch the pinned GOV.UK Frontend."
    )
    parser.parse_args(argv)
    path = ensure_assets()
    print(f"[setup] govuk-frontend {GOVUK_FRONTEND_VERSION}: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
