"""The Grafana dashboards (infra/grafana/dashboards/*.json): valid JSON with what Grafana
needs, one per deployable and an overview, every PromQL expression parsed by Prometheus'
own parser (as recording rules through ``promtool check rules``), and every metric they read
exported by the platform's code (the same check as the alert rules')."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mkinfra.tools import ensure_tool

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "infra" / "grafana" / "dashboards").glob("*.json"))
#: Grafana's variables in expressions, replaced by a value of the same kind to parse them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def _alerts_test_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "mk_alerts_checks", Path(__file__).with_name("test_alerts.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def expressions(board: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in board["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def as_rules(exprs: list[str]) -> str:
    def concrete(expr: str) -> str:
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr}"
        return expr

    rules = [{"record": f"dashboard:expr_{i}", "expr": concrete(e)} for i, e in enumerate(exprs)]
    return yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]})


@pytest.fixture(scope="module")
def promtool() -> str:
    return str(ensure_tool("promtool"))


def check(promtool: str, tmp_path: Path, exprs: list[str]) -> subprocess.CompletedProcess[str]:
    rules = tmp_path / "dashboard-exprs.yaml"
    rules.write_text(as_rules(exprs))
    return subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_one_dashboard_per_deployable_and_an_overview() -> None:
    assert [p.stem for p in DASHBOARDS] == [
        "citizen-services",
        "gateway",
        "inclusion",
        "notifications",
        "platform-overview",
    ]
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_shape(path: Path) -> None:
    board = load(path)
    assert board["title"].startswith("MK platform / ")
    assert isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in board["panels"]:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs)
    # a service's dashboard shows that service only
    if path.stem not in ("platform-overview", "gateway"):
        for expr in expressions(board):
            for service in re.findall(r'service_info\{service="([^"]+)"\}', expr):
                assert service == path.stem, expr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_expression_parses(promtool: str, tmp_path: Path, path: Path) -> None:
    exprs = expressions(load(path))
    proc = check(promtool, tmp_path, exprs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout


def test_a_broken_expression_is_caught(promtool: str, tmp_path: Path) -> None:
    proc = check(promtool, tmp_path, ["sum by (route (rate(http_requests_total[5m]))"])
    assert proc.returncode != 0


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_metric_a_dashboard_reads_is_exported(path: Path) -> None:
    alerts = _alerts_test_module()
    names = alerts.exported(alerts.ServiceMetrics("test").registry)
    try:
        from gateway.metrics import GatewayMetrics  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        names |= alerts.GATEWAY_PENDING
    else:
        names |= alerts.exported(GatewayMetrics([]).registry)
    for expr in expressions(load(path)):
        concrete = expr
        for variable, value in GRAFANA_VARIABLES.items():
            concrete = concrete.replace(variable, value)
        unknown = alerts.metric_names(concrete) - names - {"time"}
        assert not unknown, f"{path.stem}: {expr} reads {unknown}"
