"""k8s/: the ingest gateway's Deployment, Service, HPA, PDB and NetworkPolicy, offline."""

from __future__ import annotations

from typing import Any

import pytest

from streams.config import Settings

from .test_k8s import K8S_DIR, build_kustomization, find, pod_spec

GATEWAY = "healthmate-gateway"


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
    files = {e["name"] for e in container["env"]}
    assert files == {"HEALTHMATE_PSEUDONYM_KEY_FILE", "HEALTHMATE_API_JWT_SECRET_FILE"}
    [volume] = [v["secret"] for v in spec["volumes"] if "secret" in v]
    assert {i["key"] for i in volume["items"]} == {"HEALTHMATE_PSEUDONYM_KEY", "HEALTHMATE_API_JWT_SECRET"}
