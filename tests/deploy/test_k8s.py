"""k8s/: the kustomize base, built here without kubectl, validated offline against the
Kubernetes JSON schemas shipped by kubernetes-validate, and checked for coherence."""

from __future__ import annotations

import copy
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from kubernetes_validate import utils as kv

from streams.config import Settings

from .conftest import K8S_DIR, ROOT, load_yaml, load_yaml_documents

KUBERNETES_VERSION = "1.32.0"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                  "CustomResourceDefinition", "PriorityClass"}
SUPPORTED_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "labels", "commonLabels", "resources",
                                 "patches"}
SETTINGS_VARIABLES = {f"HEALTHMATE_{name.upper()}" for name in Settings.model_fields}
SECRET_TEMPLATE = K8S_DIR / "secret.template.yaml"
TLS_SECRET_TEMPLATE = K8S_DIR / "tls-secret.template.yaml"
BACKFILL_JOB = K8S_DIR / "jobs" / "backfill-job.yaml"
DEV_OVERLAY = K8S_DIR / "overlays" / "dev"
SPARK_DIR = K8S_DIR / "spark"  # Spark backfills (tests/deploy/test_k8s_spark.py)
CA_DIR = "/var/run/secrets/healthmate-tls"


def strategic_merge(target: Any, patch: Any) -> Any:
    """The part of a strategic merge patch the overlays use: maps merge key by key (``null``
    deletes a key), lists of named items merge by ``name`` (the patch's items first, in its
    order, as kustomize writes them), anything else is replaced."""
    if isinstance(target, dict) and isinstance(patch, dict):
        out = dict(target)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = strategic_merge(target.get(key), value) if key in target else value
        return out
    if (isinstance(target, list) and isinstance(patch, list) and patch
            and all(isinstance(i, dict) and "name" in i for i in [*target, *patch])):
        by_name = {i["name"]: i for i in target}
        patched = [strategic_merge(by_name[i["name"]], i) if i["name"] in by_name else i for i in patch]
        return patched + [i for i in target if i["name"] not in {p["name"] for p in patch}]
    return patch


def build_kustomization(directory: Path) -> list[dict[str, Any]]:
    """The subset of `kustomize build` this base and its overlays use: resources (files or
    nested bases), strategic-merge patches (files), namespace, labels/commonLabels. Anything
    else fails, so the test never silently ignores a transformation it does not apply."""
    kustomization = load_yaml(directory / "kustomization.yaml")
    unsupported = set(kustomization) - SUPPORTED_KUSTOMIZATION_KEYS
    assert not unsupported, f"kustomization keys this test cannot build: {unsupported}"
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        assert path.exists(), f"kustomization resource {entry} missing"
        objects.extend(build_kustomization(path) if path.is_dir() else load_yaml_documents(path))
    for entry in kustomization.get("patches", []):
        assert set(entry) == {"path"}, f"only patch files are supported: {entry}"
        for patch in load_yaml_documents(directory / entry["path"]):
            [index] = [i for i, o in enumerate(objects) if (o["kind"], o["metadata"]["name"])
                       == (patch["kind"], patch["metadata"]["name"])]
            objects[index] = strategic_merge(objects[index], patch)
    namespace = kustomization.get("namespace")
    label_sets: list[tuple[dict[str, str], bool]] = [
        (item["pairs"], bool(item.get("includeSelectors"))) for item in kustomization.get("labels", [])
    ]
    if "commonLabels" in kustomization:
        label_sets.append((kustomization["commonLabels"], True))
    for obj in objects:
        metadata = obj.setdefault("metadata", {})
        if namespace and obj["kind"] not in CLUSTER_SCOPED:
            metadata["namespace"] = namespace
        for pairs, selectors in label_sets:
            metadata.setdefault("labels", {}).update(pairs)
            if selectors:
                spec = obj.get("spec", {})
                if "selector" in spec and isinstance(spec["selector"], dict):
                    target = spec["selector"].get("matchLabels", spec["selector"])
                    target.update(pairs)
                template = spec.get("template")
                if template:
                    template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    return objects


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return build_kustomization(K8S_DIR)


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def validate(obj: dict[str, Any]) -> None:
    """Strict schema validation (unknown fields are errors); raises on any problem."""
    kv.validate(obj, KUBERNETES_VERSION, strict=True)


# --------------------------------------------------------------------------- schemas


def test_base_contains_the_expected_objects(objects: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "ConfigMap", "StatefulSet", "Service", "PodDisruptionBudget",
            "NetworkPolicy", "ServiceAccount"} <= kinds
    assert "Secret" not in kinds, "the Secret is a template only: applying the base must not overwrite it"


def test_every_object_validates_against_the_kubernetes_schema(objects: list[dict[str, Any]]) -> None:
    others = [*load_yaml_documents(SECRET_TEMPLATE), *load_yaml_documents(TLS_SECRET_TEMPLATE),
              *load_yaml_documents(BACKFILL_JOB), *build_kustomization(DEV_OVERLAY)]
    for obj in [*objects, *others]:
        try:
            validate(obj)
        except kv.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata'].get('name')}: {path}: {exc.message}")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o["spec"].__setitem__("replicas", "two"),
        lambda o: o["spec"]["template"]["spec"]["containers"][0].__setitem__("livenessProbes", {}),
        lambda o: o["spec"].pop("selector"),
    ],
)
def test_the_validator_rejects_broken_manifests(objects: list[dict[str, Any]], mutate: Any) -> None:
    """The offline schemas are really applied (a validator that accepts anything proves nothing)."""
    broken = copy.deepcopy(find(objects, "StatefulSet"))
    mutate(broken)
    with pytest.raises(kv.ValidationError):
        validate(broken)


def test_namespace_is_applied(objects: list[dict[str, Any]]) -> None:
    namespace = find(objects, "Namespace")["metadata"]["name"]
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, obj["metadata"]["name"]
    for path in (SECRET_TEMPLATE, BACKFILL_JOB):
        for obj in load_yaml_documents(path):
            assert obj["metadata"]["namespace"] == namespace, path.name


@pytest.mark.parametrize("directory", [K8S_DIR, DEV_OVERLAY, SPARK_DIR], ids=["base", "dev-overlay", "spark"])
def test_matches_kubectl_kustomize(directory: Path, tmp_path: Path) -> None:
    result = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "built.yaml"
    out.write_text(result.stdout, encoding="utf-8")
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(load_yaml_documents(out), key=key) == sorted(build_kustomization(directory), key=key)


# --------------------------------------------------------------------------- worker


def partitions(objects: list[dict[str, Any]]) -> int:
    data = find(objects, "ConfigMap", "healthmate-config")["data"]
    return int(data.get("HEALTHMATE_TOPIC_PARTITIONS", Settings.model_fields["topic_partitions"].default))


def test_replicas_do_not_exceed_partitions(objects: list[dict[str, Any]]) -> None:
    worker = find(objects, "StatefulSet", "healthmate-worker")
    assert 1 <= worker["spec"]["replicas"] <= partitions(objects)


def test_worker_runs_the_worker_command_and_keeps_state(objects: list[dict[str, Any]]) -> None:
    worker = find(objects, "StatefulSet", "healthmate-worker")
    [container] = pod_spec(worker)["containers"]
    assert container["command"] == ["python", "-m", "streams", "worker"]
    [claim] = worker["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/healthmate", "Faust data dir = image WORKDIR"
    assert find(objects, "Service", worker["spec"]["serviceName"])["spec"]["clusterIP"] == "None"


def test_probes_hit_health_on_the_web_port(objects: list[dict[str, Any]]) -> None:
    worker = find(objects, "StatefulSet", "healthmate-worker")
    [container] = pod_spec(worker)["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    web_port = int(find(objects, "ConfigMap", "healthmate-config")["data"]["HEALTHMATE_WEB_PORT"])
    assert ports["http"] == web_port
    expected = {"livenessProbe": "/health?probe=live", "readinessProbe": "/health", "startupProbe": "/health"}
    for probe, path in expected.items():
        http = container[probe]["httpGet"]
        assert http["path"] == path, probe
        assert ports.get(http["port"], http["port"]) == web_port, probe


def test_resources_are_set_on_every_container(objects: list[dict[str, Any]]) -> None:
    workloads = [o for o in objects if o["kind"] in ("StatefulSet", "Deployment", "Job")]
    workloads += load_yaml_documents(BACKFILL_JOB)
    for workload in workloads:
        for container in containers(workload):
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(section, {})), (
                    f"{workload['kind']}/{container['name']}: {section}"
                )


def test_pods_meet_the_restricted_pod_security_standard(objects: list[dict[str, Any]]) -> None:
    namespace = find(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in [find(objects, "StatefulSet"), *load_yaml_documents(BACKFILL_JOB)]:
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec.get("automountServiceAccountToken") is False
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["capabilities"]["drop"] == ["ALL"], container["name"]


def test_services_pdb_and_network_policy_select_the_worker_pods(objects: list[dict[str, Any]]) -> None:
    worker = find(objects, "StatefulSet", "healthmate-worker")
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert worker["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for service in (o for o in objects if o["kind"] == "Service"
                    and o["metadata"]["name"].startswith("healthmate-worker")):
        assert service["spec"]["selector"].items() <= pod_labels.items(), service["metadata"]["name"]
    pdb = find(objects, "PodDisruptionBudget", "healthmate-worker")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # a drain must leave at least one worker running
    spec = pdb["spec"]
    assert spec.get("minAvailable") or spec.get("maxUnavailable", 0) < worker["spec"]["replicas"]
    policy = find(objects, "NetworkPolicy", "healthmate-worker")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule.get("ports", [])}
    assert 6066 in ingress_ports
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert {53, 9092, 5432} <= egress_ports


def test_prometheus_scrape_annotations(objects: list[dict[str, Any]]) -> None:
    worker = find(objects, "StatefulSet", "healthmate-worker")
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    [container] = pod_spec(worker)["containers"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) in {p["containerPort"] for p in container["ports"]}


def test_images_are_the_project_version(objects: list[dict[str, Any]]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    for workload in [find(objects, "StatefulSet"), *load_yaml_documents(BACKFILL_JOB)]:
        for container in containers(workload):
            assert container["image"] == f"healthmate-pipeline:{version}", container["name"]


# --------------------------------------------------------------------------- configuration


def test_configuration_keys_are_settings_fields(objects: list[dict[str, Any]]) -> None:
    config = find(objects, "ConfigMap", "healthmate-config")["data"]
    [secret] = load_yaml_documents(SECRET_TEMPLATE)
    assert set(config) <= SETTINGS_VARIABLES, set(config) - SETTINGS_VARIABLES
    assert set(secret["stringData"]) <= SETTINGS_VARIABLES, set(secret["stringData"]) - SETTINGS_VARIABLES
    assert not set(config) & set(secret["stringData"]), "a setting is both in the ConfigMap and the Secret"
    assert {"HEALTHMATE_PSEUDONYM_KEY", "HEALTHMATE_PG_DSN"} <= set(secret["stringData"])
    assert not {"HEALTHMATE_PSEUDONYM_KEY", "HEALTHMATE_PG_DSN"} & set(config), "secrets in the ConfigMap"
    assert config.get("HEALTHMATE_DEV_MODE", "false") == "false"
    assert config["HEALTHMATE_WEB_HOST"] == "0.0.0.0"


def test_secret_template_holds_placeholders_only() -> None:
    [secret] = load_yaml_documents(SECRET_TEMPLATE)
    assert "NOT APPLIED" in SECRET_TEMPLATE.read_text(encoding="utf-8")
    for key, value in secret["stringData"].items():
        assert "REPLACE_ME" in value, f"{key} must be an obvious placeholder"


def test_env_sources_exist(objects: list[dict[str, Any]]) -> None:
    configmaps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    secrets = {o["metadata"]["name"] for o in load_yaml_documents(SECRET_TEMPLATE)}
    accounts = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}
    for workload in [find(objects, "StatefulSet"), *load_yaml_documents(BACKFILL_JOB)]:
        assert pod_spec(workload)["serviceAccountName"] in accounts
        for container in containers(workload):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets


def test_backfill_job_template_runs_batch_replay() -> None:
    [job] = load_yaml_documents(BACKFILL_JOB)
    assert job["kind"] == "Job"
    assert job["metadata"]["generateName"].endswith("-"), "a new Job name on every create"
    assert pod_spec(job)["restartPolicy"] == "Never"
    [container] = pod_spec(job)["containers"]
    assert container["command"] == ["python", "-m", "batch", "replay"]
    args = container["args"]
    for flag in ("--topic", "--from", "--to"):
        assert flag in args and args.index(flag) + 1 < len(args), flag
    assert args[args.index("--topic") + 1] == Settings.model_fields["raw_topic"].default
    resources = load_yaml(K8S_DIR / "kustomization.yaml")["resources"]
    assert not any(entry.startswith("jobs") for entry in resources), "a Job must not run on every apply"


def test_secrets_are_mounted_files_never_environment(objects: list[dict[str, Any]]) -> None:
    [secret] = load_yaml_documents(SECRET_TEMPLATE)
    for workload in [find(objects, "StatefulSet"), *load_yaml_documents(BACKFILL_JOB)]:
        volumes = {v["name"]: v["secret"] for v in pod_spec(workload)["volumes"] if "secret" in v}
        assert volumes, "no secret volume"
        for container in containers(workload):
            assert not any("secretRef" in s for s in container.get("envFrom", [])), container["name"]
            assert not any("valueFrom" in e for e in container.get("env", [])), container["name"]
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])
                      if m["name"] in volumes}
            files = {e["name"]: e["value"] for e in container.get("env", []) if e["name"].endswith("_FILE")}
            assert "HEALTHMATE_PG_DSN_FILE" in files and "HEALTHMATE_PSEUDONYM_KEY_FILE" in files
            for variable, path in files.items():
                directory, _, filename = path.rpartition("/")
                volume = volumes[mounts[directory]]
                assert volume["secretName"] == secret["metadata"]["name"]
                assert {"key": filename, "path": filename} in volume["items"], path
                assert filename in secret["stringData"] and variable == f"{filename}_FILE"
    # only the setup init container may read the schema owner's DSN
    statefulset = find(objects, "StatefulSet")
    readers = [c["name"] for c in containers(statefulset)
               if any(e["name"] == "HEALTHMATE_PG_MIGRATION_DSN_FILE" for e in c.get("env", []))]
    assert readers == ["setup"]


# --------------------------------------------------------------------------- transport


def test_the_base_runs_sasl_ssl_and_verified_tls(objects: list[dict[str, Any]]) -> None:
    config = find(objects, "ConfigMap", "healthmate-config")["data"]
    assert config["HEALTHMATE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["HEALTHMATE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert config["HEALTHMATE_KAFKA_SASL_USERNAME"] == "healthmate-worker"
    assert config["HEALTHMATE_PG_SSLMODE"] == "verify-full"
    assert config["HEALTHMATE_KAFKA_SSL_CAFILE"] == config["HEALTHMATE_PG_SSL_ROOTCERT"] == f"{CA_DIR}/ca.pem"
    [tls] = load_yaml_documents(TLS_SECRET_TEMPLATE)
    assert "NOT APPLIED" in TLS_SECRET_TEMPLATE.read_text(encoding="utf-8") and "ca.pem" in tls["stringData"]
    for workload in [find(objects, "StatefulSet"), *load_yaml_documents(BACKFILL_JOB)]:
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        ca_volumes = [name for name, v in volumes.items()
                      if v.get("secret", {}).get("secretName") == "healthmate-tls"]
        assert ca_volumes, f"{workload['kind']}: no volume of the CA Secret"
        assert not volumes[ca_volumes[0]]["secret"].get("optional"), "the base needs the CA"
        for container in containers(workload):
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get(CA_DIR) == ca_volumes[0], f"{container['name']}: the CA is not mounted"
            env = {e["name"] for e in container.get("env", [])}
            assert "HEALTHMATE_KAFKA_SASL_PASSWORD_FILE" in env, container["name"]


def test_the_dev_overlay_is_plaintext_and_changes_only_transport(objects: list[dict[str, Any]]) -> None:
    assert "LOCAL DEVELOPMENT ONLY" in (DEV_OVERLAY / "kustomization.yaml").read_text(encoding="utf-8")
    dev = build_kustomization(DEV_OVERLAY)
    config = find(dev, "ConfigMap", "healthmate-config")["data"]
    assert config["HEALTHMATE_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert config["HEALTHMATE_PG_SSLMODE"] == "disable"
    for key in ("HEALTHMATE_KAFKA_SSL_CAFILE", "HEALTHMATE_PG_SSL_ROOTCERT", "HEALTHMATE_KAFKA_SASL_USERNAME",
                "HEALTHMATE_KAFKA_SASL_MECHANISM"):
        assert key not in config, key
    # the rest is the base's: only these ConfigMap keys and the CA volume's `optional` differ
    base_config = find(objects, "ConfigMap", "healthmate-config")["data"]
    changed = {k for k in {*base_config, *config} if base_config.get(k) != config.get(k)}
    assert changed == {"HEALTHMATE_KAFKA_SECURITY_PROTOCOL", "HEALTHMATE_KAFKA_SASL_MECHANISM",
                       "HEALTHMATE_KAFKA_SASL_USERNAME", "HEALTHMATE_KAFKA_SSL_CAFILE",
                       "HEALTHMATE_PG_SSLMODE", "HEALTHMATE_PG_SSL_ROOTCERT"}
    worker = copy.deepcopy(find(dev, "StatefulSet"))
    [ca] = [v for v in pod_spec(worker)["volumes"] if v["name"] == "tls"]
    assert ca["secret"].pop("optional") is True
    by_name = lambda volumes: sorted(volumes, key=lambda v: v["name"])  # noqa: E731
    pod_spec(worker)["volumes"] = by_name(pod_spec(worker)["volumes"])
    base_worker = copy.deepcopy(find(objects, "StatefulSet"))
    pod_spec(base_worker)["volumes"] = by_name(pod_spec(base_worker)["volumes"])
    assert worker == base_worker
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, dev)) == sorted(map(key, objects))
