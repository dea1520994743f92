"""k8s/: the ingest gateway's Deployment, Service, HPA, PDB and NetworkPolicy, offline."""

from __future__ import annotations

from typing import Any

import pytest

from streams.config import Settings

from .conftest import load_yaml_documents
from .test_k8s import DEV_OVERLAY, K8S_DIR, build_kustomization, find, pod_spec, validate

GATEWAY = "healthmate-gateway"
GATEWAY_SECRET = K8S_DIR / "gateway-secret.template.yaml"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return build_kustomization(K8S_DIR)


def test_gateway_runs_its_command_on_its_port(objects: list[dict[str, Any]]) -> None:
    deployment = find(objects, "Deployment", GATEWAY)
    [container] = pod_spec(deployment)["containers"]
    assert container["command"] == ["python", "-m", "web", "gateway"]
    config = find(objects, "ConfigMap", "healthmate-config")["data"]
    port = int(config["HEALTHMATE_GATEWAY_PORT"])
    assert config["HEALTHMATE_GATEWAY_HOST"] == "0.0.0.0"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": port}
    probes = {name: container[name]["httpGet"]["path"] for name in ("startupProbe", "readinessProbe",
                                                                      "livenessProbe")}
    assert probes == {"startupProbe": "/health", "readinessProbe": "/health",
                      "livenessProbe": "/health?probe=liveness"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == port


def test_graceful_shutdown_fits_the_termination_grace(objects: list[dict[str, Any]]) -> None:
    spec = pod_spec(find(objects, "Deployment", GATEWAY))
    [container] = spec["containers"]
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = Settings.model_fields["gateway_shutdown_grace_s"].default
    assert spec["terminationGracePeriodSeconds"] > pause + drain


def test_service_hpa_pdb_and_policy_select_the_gateway(objects: list[dict[str, Any]]) -> None:
    deployment = find(objects, "Deployment", GATEWAY)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = find(objects, "Service", GATEWAY)
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    hpa = find(objects, "HorizontalPodAutoscaler", GATEWAY)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": GATEWAY}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdb = find(objects, "PodDisruptionBudget", GATEWAY)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    policy = find(objects, "NetworkPolicy", GATEWAY)
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    egress = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert 9092 in egress and 5432 not in egress, "the gateway needs Kafka, never PostgreSQL"


def test_gateway_pod_is_restricted_and_reads_secrets_from_files(objects: list[dict[str, Any]]) -> None:
    spec = pod_spec(find(objects, "Deployment", GATEWAY))
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == GATEWAY and find(objects, "ServiceAccount", GATEWAY)
    [container] = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert not any("valueFrom" in e for e in container["env"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HEALTHMATE_KAFKA_SASL_USERNAME"] == "healthmate-gateway", "its own principal"
    files = {name: path for name, path in env.items() if name.endswith("_FILE")}
    assert set(files) == {"HEALTHMATE_PSEUDONYM_KEY_FILE", "HEALTHMATE_API_JWT_SECRET_FILE",
                          "HEALTHMATE_KAFKA_SASL_PASSWORD_FILE"}
    volumes = {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for variable, path in files.items():  # every file is a key of a mounted secret volume
        directory, _, filename = path.rpartition("/")
        volume = volumes[mounts[directory]]
        assert {"key": filename, "path": filename} in volume["items"], variable
    [gateway_secret] = load_yaml_documents(GATEWAY_SECRET)
    validate(gateway_secret)
    secret_name = gateway_secret["metadata"]["name"]
    assert volumes[mounts["/var/run/secrets/healthmate-gateway"]]["secretName"] == secret_name
    assert set(gateway_secret["stringData"]) == {"HEALTHMATE_KAFKA_SASL_PASSWORD"}
    assert all("REPLACE_ME" in v for v in gateway_secret["stringData"].values())
    assert "postgres" not in " ".join(files.values()).lower() and "HEALTHMATE_PG_DSN_FILE" not in env
    assert mounts["/var/run/secrets/healthmate-tls"] == "tls" and not volumes["tls"].get("optional")


def test_the_dev_overlay_only_makes_the_gateways_ca_optional(objects: list[dict[str, Any]]) -> None:
    dev = find(build_kustomization(DEV_OVERLAY), "Deployment", GATEWAY)
    base = find(objects, "Deployment", GATEWAY)
    [ca] = [v for v in pod_spec(dev)["volumes"] if v["name"] == "tls"]
    assert ca["secret"].pop("optional") is True
    key = lambda v: v["name"]  # noqa: E731
    assert sorted(pod_spec(dev)["volumes"], key=key) == sorted(pod_spec(base)["volumes"], key=key)
