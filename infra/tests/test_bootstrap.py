"""First run on a stock machine: ``make uv`` finds uv, or installs it where ``pip install
--user`` is refused (PEP 668) into a private venv, saying so; and Kafka's first download shows
its progress instead of a silent ``mvn -q``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mkinfra import kafka
from mkinfra.deploy import ROOT

SCRIPT = ROOT / "infra" / "scripts" / "bootstrap-uv.sh"
STOCK_PYTHON = Path("/usr/bin/python3")


def externally_managed(python: Path) -> bool:
    """True for a Python that refuses pip installs (PEP 668), e.g. Debian 12's /usr/bin/python3."""
    if not python.exists():
        return False
    stdlib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return (Path(stdlib) / "EXTERNALLY-MANAGED").exists()


def refusing_python(tmp: Path) -> Path:
    """Debian's own Python where it is externally managed; elsewhere this interpreter behind
    a wrapper whose pip refuses with PEP 668's error, as Debian's does."""
    if externally_managed(STOCK_PYTHON):
        return STOCK_PYTHON
    wrapper = tmp / "python3"
    wrapper.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
              echo "error: externally-managed-environment" >&2; exit 1
            fi
            exec {sys.executable} "$@"
            """
        )
    )
    wrapper.chmod(0o755)
    return wrapper


def stock_env(home: Path, path: str = "/usr/bin:/bin") -> dict[str, str]:
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8"}
    # the download itself may come from the machine's pip cache
    env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    return env


@pytest.mark.slow
def test_make_uv_falls_back_to_a_private_venv_where_pip_refuses(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    python = refusing_python(tmp_path)
    env = stock_env(home)
    assert subprocess.run(["sh", "-c", "command -v uv"], env=env).returncode != 0
    make = ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "uv", f"PYTHON={python}"]
    out = subprocess.run(make, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "pip refused a --user install (PEP 668" in out.stderr
    assert "installing uv into a private venv instead" in out.stderr
    uv = tmp_path / "var" / "bootstrap" / "bin" / "uv"
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("uv ")
    assert not (home / ".local" / "bin" / "uv").exists()
    # the second time it is found at once, silently, and the script names it
    again = subprocess.run(make, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "[setup]" not in again.stderr
    found = subprocess.run(
        ["sh", str(SCRIPT)],
        cwd=tmp_path,
        env={**env, "PYTHON": str(python)},
        capture_output=True,
        text=True,
    )
    assert found.stdout.strip() == str(uv)


def test_an_installed_uv_is_used_as_it_is(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "uv"
    fake.write_text("#!/bin/sh\necho uv 0.0.0\n")
    fake.chmod(0o755)
    env = stock_env(tmp_path, f"{bin_dir}:/usr/bin:/bin")
    out = subprocess.run(["sh", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == str(fake) and out.stderr == ""
    assert not (tmp_path / "var").exists()


def test_kafka_jars_resolution_shows_what_it_downloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A stand-in ``mvn`` (the real one takes minutes) prints Maven's transfer lines slowly:
    the resolution reports the files and megabytes downloaded, the last one, and the time."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            for a in "$@"; do
              case "$a" in -DoutputDirectory=*) out="${a#-DoutputDirectory=}";; esac
            done
            b=https://repo.maven.apache.org/maven2/org/apache/kafka
            d() { echo "Downloaded from central: $b/$1 ($2 at 1.0 MB/s)"; }
            echo "[INFO] Scanning for projects..."
            echo "Downloading from central: $b/kafka-clients/4.0.2/kafka-clients-4.0.2.jar"
            d kafka-clients/4.0.2/kafka-clients-4.0.2.jar "8.1 MB"
            sleep 3
            d kafka_2.13/4.0.2/kafka_2.13-4.0.2.jar "6.5 MB"
            d kafka-raft/4.0.2/kafka-raft-4.0.2.pom "2.0 kB"
            mkdir -p "$out"; touch "$out/kafka_2.13-4.0.2.jar"
            echo "[INFO] BUILD SUCCESS"
            """
        )
    )
    mvn.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("MK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(kafka, "PROGRESS_EVERY_SECONDS", 1.0)
    libs = kafka.ensure_kafka_jars()
    assert (libs / "kafka_2.13-4.0.2.jar").exists()
    err = capfd.readouterr().err
    assert "Resolving Apache Kafka 4.0.2 from Maven Central" in err
    assert "kafka-clients-4.0.2.jar" in err  # what it is downloading, while it waits
    assert "3 files, 14.6 MB" in err  # the total at the end
    assert "Apache Kafka 4.0.2 ready" in err
    lines = [line for line in err.splitlines() if line.startswith("[kafka]")]
    assert len(lines) >= 2, err


def test_kafka_jars_resolution_failure_shows_mavens_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(
        "#!/bin/sh\necho '[ERROR] Could not transfer artifact: network unreachable'\nexit 1\n"
    )
    mvn.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("MK_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(kafka.KafkaSetupError, match="network unreachable"):
        kafka.ensure_kafka_jars()
