"""The Helm chart (infra/helm/mk-platform) with each value set of infra/helm/values/:

* ``helm lint --strict`` (values.schema.json included) and ``helm template``;
* every rendered object validated against the Kubernetes schemas of a pinned version
  (``kubernetes-validate``, strict: an unknown field is an error);
* a policy over the rendered objects: pinned images, probes and resources on every
  container, restricted pod security, NetworkPolicies covering every pod, a PDB and an HPA per
  Deployment, secrets only by reference, a migration Job hook per service, and settings the
  services really read.

helm is built by ``python -m mkinfra.tools helm`` (``make test`` does it first; the fixture
builds it too when run alone). No cluster is needed: nothing here is applied.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mkinfra.tools import ensure_tool

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "infra" / "helm" / "mk-platform"
VALUE_SETS = sorted((REPO / "infra" / "helm" / "values").glob("*.yaml"))
#: The Kubernetes versions the rendered objects must be valid for: the oldest Chart.yaml's
#: kubeVersion allows, a middle one, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0", "1.37.0")
RELEASE = "mk-platform"
NAMESPACE = "mk-platform"
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]

#: Deployable -> (package, settings environment prefix, kind).
COMPONENTS = {
    "gateway": ("gateway", "GATEWAY_", "gateway"),
    "citizen-services": ("citizen_services", "CITIZEN_SERVICES_", "service"),
    "inclusion": ("inclusion", "INCLUSION_", "service"),
    "notifications": ("notifications", "NOTIFICATIONS_", "service"),
    # the front-ends (webkit.settings.FrontendSettings): checked once their code is here
    "citizen-portal": ("citizen_portal", "CITIZEN_PORTAL_", "frontend"),
    "staff-console": ("staff_console", "STAFF_CONSOLE_", "frontend"),
}
SERVICES = [name for name, (_, _, kind) in COMPONENTS.items() if kind == "service"]

#: Kafka TLS/SASL settings the chart sets for each service (issue 13 adds them to
#: servicekit's settings under these names); accepted before they exist there.
KAFKA_SECURITY_SETTINGS = {
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
}
SECRET_LOOKING = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|DATABASE_URL|REDIS_URL|SASL_USERNAME")


@pytest.fixture(scope="module")
def helm() -> str:
    return str(ensure_tool("helm"))


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=300, check=False)


def render(helm: str, *args: str) -> list[dict[str, Any]]:
    proc = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBERNETES_VERSIONS[0],
        *args,
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module", params=VALUE_SETS, ids=lambda p: p.stem)
def rendered(request: pytest.FixtureRequest, helm: str) -> list[dict[str, Any]]:
    return render(helm, "-f", str(request.param))


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def pod_templates(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(owner, pod template) of every Deployment and Job."""
    return [(o, o["spec"]["template"]) for o in objects if o["kind"] in ("Deployment", "Job")]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # the chart uses matchLabels only
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


# --------------------------------------------------------------------------- helm itself


def test_three_value_sets() -> None:
    assert [p.stem for p in VALUE_SETS] == ["minimal", "production-external", "scaled-replicas"]


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_helm_lint_strict(helm: str, values: Path) -> None:
    proc = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(values))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


def test_kafka_bootstrap_is_required(helm: str) -> None:
    proc = run_helm(helm, "template", RELEASE, str(CHART))
    assert proc.returncode != 0
    assert "kafka.bootstrapServers is required" in proc.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("image.tag=latest", "/image/tag"),
        (
            "containerSecurityContext.readOnlyRootFilesystem=false",
            "/containerSecurityContext/readOnlyRootFilesystem",
        ),
        ("kafka.securityProtocol=SASL_TLS", "/kafka/securityProtocol"),
        ("gateway.replicas=0", "/gateway/replicas"),
        ("notifications.unknownSetting=1", "unknownSetting"),
    ],
)
def test_schema_refuses_bad_values(helm: str, setting: str, message: str) -> None:
    proc = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "-f",
        str(VALUE_SETS[0]),
        "--set",
        setting,
    )
    assert proc.returncode != 0
    assert message in proc.stderr


def test_sasl_needs_a_secret(helm: str) -> None:
    proc = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "-f",
        str(VALUE_SETS[0]),
        "--set",
        "kafka.securityProtocol=SASL_SSL,kafka.sasl.mechanism=SCRAM-SHA-512",
    )
    assert proc.returncode != 0
    assert "kafka.sasl.existingSecret is required" in proc.stderr


# --------------------------------------------------------------------------- Kubernetes schemas


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_kubernetes(rendered: list[dict[str, Any]], version: str) -> None:
    kinds = {o["kind"] for o in rendered}
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ServiceAccount",
        "Job",
    } <= kinds
    errors = []
    for obj in rendered:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            errors.append(
                f"{obj['kind']} {obj['metadata']['name']} at {where}: {exc.message[:300]}"
            )
    assert not errors, "\n".join(errors)


def test_the_validator_refuses_an_unknown_field(rendered: list[dict[str, Any]]) -> None:
    """Strict validation is on: a misspelt field fails (so the test above means something)."""
    deployment = json.loads(json.dumps(of_kind(rendered, "Deployment")[0]))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


# --------------------------------------------------------------------------- policy


def test_images_are_pinned_versions_of_the_platform(rendered: list[dict[str, Any]]) -> None:
    for owner, pod in pod_templates(rendered):
        for container in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert tag and tag != "latest" and "/" not in tag, image
            assert tag == APP_VERSION, image
            assert re.fullmatch(r"ghcr\.io/mk-digital-platform/[a-z-]+", name), image
            assert name.rsplit("/", 1)[1] in COMPONENTS, image
            assert container["imagePullPolicy"] == "IfNotPresent", owner["metadata"]["name"]


def test_probes_and_resources_on_every_container(rendered: list[dict[str, Any]]) -> None:
    for owner, pod in pod_templates(rendered):
        for container in pod["spec"]["containers"]:
            where = f"{owner['kind']} {owner['metadata']['name']}"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where
            if owner["kind"] == "Deployment":
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    assert probe in container, f"{where}: {probe}"
                port = container["ports"][0]
                assert port["name"] == "http"


def test_services_are_probed_on_their_health_endpoints(rendered: list[dict[str, Any]]) -> None:
    for deployment in of_kind(rendered, "Deployment"):
        if COMPONENTS[component(deployment)][2] != "service":
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"


def test_restricted_pod_security(rendered: list[dict[str, Any]]) -> None:
    """Kubernetes' "restricted" Pod Security Standard, plus a read-only root filesystem."""
    for owner, pod in pod_templates(rendered):
        where = f"{owner['kind']} {owner['metadata']['name']}"
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] != 0, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(flag), where
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for volume in volumes.values():
            assert set(volume) & {"emptyDir", "secret"}, f"{where}: {volume}"
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["runAsNonRoot"] is True, where
            assert not sc.get("privileged"), where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{where}: no writable /tmp"
            assert not container.get("ports") or all(
                "hostPort" not in p for p in container["ports"]
            )
    for account in of_kind(rendered, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_a_pdb_and_an_hpa_for_every_deployment(rendered: list[dict[str, Any]]) -> None:
    pdbs = of_kind(rendered, "PodDisruptionBudget")
    hpas = of_kind(rendered, "HorizontalPodAutoscaler")
    for deployment in of_kind(rendered, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"], labels)
        matching = [p for p in pdbs if selects(p["spec"]["selector"], labels)]
        assert len(matching) == 1, deployment["metadata"]["name"]
        scalers = [
            h
            for h in hpas
            if h["spec"]["scaleTargetRef"]
            == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment["metadata"]["name"],
            }
        ]
        assert len(scalers) == 1, deployment["metadata"]["name"]
        assert scalers[0]["spec"]["minReplicas"] <= scalers[0]["spec"]["maxReplicas"]
        # the HPA owns the replica count: the Deployment must not fight it on upgrade
        assert "replicas" not in deployment["spec"]
    assert len(pdbs) == len(hpas) == len(of_kind(rendered, "Deployment"))


def test_network_policies_cover_every_pod(rendered: list[dict[str, Any]]) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    deny_all = [
        p
        for p in policies
        if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    for owner, pod in pod_templates(rendered):
        labels = pod["metadata"]["labels"]
        assert any(selects(p["spec"]["podSelector"], labels) for p in deny_all), owner["metadata"][
            "name"
        ]
        own = [
            p for p in policies if p not in deny_all and selects(p["spec"]["podSelector"], labels)
        ]
        assert own, f"no NetworkPolicy selects {owner['metadata']['name']}"
        assert all(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in own)


def _ingress_peers(policies: list[dict[str, Any]], name: str) -> list[list[dict[str, Any]] | None]:
    """The `from` of every ingress rule that applies to ``name``'s pods (None: from anyone)."""
    rules = []
    for policy in policies:
        if (
            policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
            == name
        ):
            for rule in policy["spec"].get("ingress", []):
                rules.append(rule.get("from"))
    return rules


def test_only_the_gateway_is_reachable_from_outside(rendered: list[dict[str, Any]]) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    gateway_pods = {"app.kubernetes.io/component": "gateway"}
    for deployment in of_kind(rendered, "Deployment"):
        name = component(deployment)
        peers = _ingress_peers(policies, name)
        assert peers, name
        if COMPONENTS[name][2] != "service":
            continue  # the gateway and the front-ends face the outside
        for rule_from in peers:
            assert rule_from, f"{name} accepts traffic from anyone"
            for peer in rule_from:
                from_gateway = "podSelector" in peer and all(
                    peer["podSelector"]["matchLabels"].get(k) == v for k, v in gateway_pods.items()
                )
                from_monitoring = "namespaceSelector" in peer
                assert from_gateway or from_monitoring, f"{name}: {peer}"
    services = of_kind(rendered, "Service")
    assert all(s["spec"]["type"] == "ClusterIP" for s in services)
    outward = {f"{RELEASE}-{n}" for n, (_, _, kind) in COMPONENTS.items() if kind != "service"}
    for ingress in of_kind(rendered, "Ingress"):
        backends = {
            path["backend"]["service"]["name"]
            for rule in ingress["spec"]["rules"]
            for path in rule["http"]["paths"]
        }
        assert f"{RELEASE}-gateway" in backends and backends <= outward, backends


def test_services_may_reach_kafka_postgresql_and_dns(rendered: list[dict[str, Any]]) -> None:
    policies = {p["metadata"]["name"]: p for p in of_kind(rendered, "NetworkPolicy")}
    for name in SERVICES:
        policy = policies[f"{RELEASE}-{name}"]
        ports = {
            (p["port"], p.get("protocol", "TCP"))
            for rule in policy["spec"]["egress"]
            for p in rule.get("ports", [])
        }
        assert (53, "UDP") in ports and (5432, "TCP") in ports, name
        assert any(port in {9092, 9093, 9094, 9096} for port, _ in ports), name


def test_secrets_only_by_reference(rendered: list[dict[str, Any]]) -> None:
    assert not of_kind(rendered, "Secret"), "the chart must not carry secret values"
    assert not of_kind(rendered, "ConfigMap")
    for owner, pod in pod_templates(rendered):
        for container in pod["spec"]["containers"]:
            for name, entry in env_of(container).items():
                if SECRET_LOOKING.search(name):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), (
                        f"{owner['metadata']['name']}: {name} is not read from a Secret"
                    )


def test_migrations_run_as_a_hook_before_install_and_upgrade(
    rendered: list[dict[str, Any]],
) -> None:
    jobs = of_kind(rendered, "Job")
    migrated = {}
    for job in jobs:
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][:2] == ["python", "-m"]
        assert container["command"][3:] == ["migrate"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        migrated[job["metadata"]["labels"]["mk-platform/migrates"]] = container
    assert sorted(migrated) == sorted(SERVICES)
    for name, container in migrated.items():
        package, prefix, _ = COMPONENTS[name]
        assert container["command"][2] == package
        assert f"{prefix}DATABASE_URL" in env_of(container)
    # what the hooks need exists before them: a hook ServiceAccount and NetworkPolicy
    accounts = {
        a["metadata"]["name"]: a
        for a in of_kind(rendered, "ServiceAccount")
        if "helm.sh/hook" in a["metadata"].get("annotations", {})
    }
    for job in jobs:
        account = job["spec"]["template"]["spec"]["serviceAccountName"]
        assert account in accounts
        assert int(accounts[account]["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
            job["metadata"]["annotations"]["helm.sh/hook-weight"]
        )
    # …and the services do not migrate themselves on start
    for deployment in of_kind(rendered, "Deployment"):
        name = component(deployment)
        if COMPONENTS[name][2] == "service":
            env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
            assert env[f"{COMPONENTS[name][1]}RUN_MIGRATIONS"]["value"] == "false"


def _settings_env_names() -> dict[str, set[str]]:
    """Environment variable names each component's settings classes read."""
    from citizen_services.config import Settings as CitizenSettings
    from gateway.auth.settings import AuthSettings
    from gateway.config import GatewaySettings
    from gateway.limits import LimitSettings
    from inclusion.config import Settings as InclusionSettings
    from notifications.config import Settings as NotificationsSettings

    def names(*classes: Any) -> set[str]:
        out: set[str] = set()
        for cls in classes:
            prefix = cls.model_config.get("env_prefix", "")
            for field_name, field in cls.model_fields.items():
                out.add(f"{prefix}{field_name}".upper())
                alias = field.validation_alias
                for choice in getattr(alias, "choices", []):
                    if isinstance(choice, str):
                        out.add(choice.upper())
        return out

    known = {
        "gateway": names(GatewaySettings, AuthSettings, LimitSettings),
        "citizen-services": names(CitizenSettings),
        "inclusion": names(InclusionSettings),
        "notifications": names(NotificationsSettings),
    }
    try:
        from citizen_portal.config import (  # type: ignore[import-not-found,unused-ignore]
            PortalSettings,
        )
    except ImportError:
        pass
    else:
        known["citizen-portal"] = names(PortalSettings)
    return known


def test_every_setting_the_chart_sets_is_read_by_the_service(
    rendered: list[dict[str, Any]],
) -> None:
    known = _settings_env_names()
    for deployment in of_kind(rendered, "Deployment"):
        name = component(deployment)
        if name not in known:
            continue  # front-ends: not in this repository yet
        package, prefix, kind = COMPONENTS[name]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["python", "-m", package]
        env = env_of(container)
        assert env[f"{prefix}HOST"]["value"] == "0.0.0.0"
        assert int(env[f"{prefix}PORT"]["value"]) == container["ports"][0]["containerPort"]
        for var in env:
            pending = kind == "service" and var.removeprefix(prefix) in KAFKA_SECURITY_SETTINGS
            assert var in known[name] or pending, f"{name} does not read {var}"


def test_the_gateway_points_at_each_service(rendered: list[dict[str, Any]]) -> None:
    services = {s["metadata"]["name"]: s for s in of_kind(rendered, "Service")}
    gateway = next(d for d in of_kind(rendered, "Deployment") if component(d) == "gateway")
    env = env_of(gateway["spec"]["template"]["spec"]["containers"][0])
    for name in SERVICES:
        url = env[f"GATEWAY_{COMPONENTS[name][1]}URL"]["value"]
        match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", url)
        assert match, url
        service = services[match.group(1)]
        assert service["spec"]["ports"][0]["port"] == int(match.group(2))
        assert component(service) == name


def test_external_kafka_over_sasl_ssl(helm: str) -> None:
    objects = render(helm, "-f", str(VALUE_SETS[1]))
    for deployment in of_kind(objects, "Deployment"):
        name = component(deployment)
        if COMPONENTS[name][2] != "service":
            continue
        prefix = COMPONENTS[name][1]
        pod = deployment["spec"]["template"]["spec"]
        env = env_of(pod["containers"][0])
        assert env[f"{prefix}KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert env[f"{prefix}KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
        for var in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
            ref = env[f"{prefix}{var}"]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "mk-platform-kafka-sasl"
        ca_file = env[f"{prefix}KAFKA_SSL_CAFILE"]["value"]
        mounts = pod["containers"][0]["volumeMounts"]
        mount = next(m for m in mounts if ca_file.startswith(m["mountPath"] + "/"))
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert volume["secret"]["secretName"] == "mk-platform-kafka-ca"
        assert env["KAFKA_BOOTSTRAP_SERVERS"]["value"].count(":9096") == 3


def test_frontends_only_when_enabled(helm: str) -> None:
    names = {
        v.stem: {component(d) for d in of_kind(render(helm, "-f", str(v)), "Deployment")}
        for v in VALUE_SETS
    }
    assert names["minimal"] == {"gateway", *SERVICES}
    assert names["scaled-replicas"] == {"gateway", *SERVICES, "citizen-portal", "staff-console"}
