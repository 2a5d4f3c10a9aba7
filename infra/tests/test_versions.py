"""One version everywhere: each deployable's pyproject, its image's label and tag (Dockerfile,
compose.yaml), the workspace, the changelog and, once the chart is there, its appVersion; and
the LICENSE is the one pyproject.toml names."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from mkinfra.deploy import DEPLOYABLES, ROOT, Deployable, parse_dockerfile

IDS = [d.name for d in DEPLOYABLES]


def root_project() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    assert isinstance(project, dict)
    return project


def workspace_versions() -> dict[str, str]:
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    out = {}
    for member in members["members"]:
        project = tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]
        out[member] = project["version"]
    return out


def test_the_workspace_has_one_version() -> None:
    versions = {**workspace_versions(), ".": root_project()["version"]}
    assert len(set(versions.values())) == 1, versions


@pytest.mark.parametrize("d", DEPLOYABLES, ids=IDS)
def test_image_label_and_tag_carry_the_pyproject_version(d: Deployable) -> None:
    run = parse_dockerfile(d.dockerfile)[-1]
    assert run.labels()["org.opencontainers.image.version"] == d.version
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert (
        compose["services"][d.name]["image"] == f"ghcr.io/mk-digital-platform/{d.name}:{d.version}"
    )
    assert f"{d.name}:{d.version}" in (ROOT / d.dockerfile).read_text()  # the build example


def test_the_chart_app_version_is_the_images_version() -> None:
    charts = sorted((ROOT / "infra" / "helm").glob("*/Chart.yaml"))
    if not charts:
        pytest.skip("no Helm chart in infra/helm yet")  # the chart arrives with issue 14's item 3
    version = DEPLOYABLES[0].version
    for chart in charts:
        data = yaml.safe_load(chart.read_text())
        assert str(data["appVersion"]) == version, chart


def test_the_changelog_has_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    version = str(root_project()["version"])
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.M)
    assert "## [Unreleased]" in text


def test_license_matches_pyproject() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert root_project()["license"] == {"text": "MIT"}
    assert license_text.startswith("MIT License\n")
    assert re.search(
        r"^Copyright \(c\) \d{4} Milton Keynes digital platform contributors$", license_text, re.M
    )
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in license_text


def test_security_policy_says_how_to_report_privately() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    for heading in ("## Reporting a vulnerability", "## Supported versions", "## Scope"):
        assert heading in text
    assert "privately" in text
    assert f"{'.'.join(str(root_project()['version']).split('.')[:2])}.x" in text
