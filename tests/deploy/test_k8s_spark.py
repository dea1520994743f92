"""k8s/spark/ and k8s/jobs/spark-backfill-job.yaml: Spark backfills on Kubernetes (client mode).

Built and validated offline like the base (test_k8s.py), and checked for what makes a driver
work there: the Job runs `python -m batch replay --engine spark` against a k8s:// master, its
ServiceAccount holds a namespaced Role with exactly the driver's verbs and resources (no
cluster-wide role), executors reach each driver at its own pod IP on its declared ports, the executor pod
template meets the namespace's Pod Security Standard, and the image is the spark target."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kv

from streams.config import Settings

from .conftest import K8S_DIR, ROOT, load_yaml_documents
from .test_k8s import SPARK_DIR, build_kustomization, containers, find, pod_spec, validate

SPARK_JOB = K8S_DIR / "jobs" / "spark-backfill-job.yaml"
#: What a client-mode driver does through the Kubernetes API (docs: running-on-kubernetes, RBAC).
DRIVER_RULES = {
    "pods": {"create", "get", "list", "watch", "patch", "delete", "deletecollection"},
    "services": {"create", "get", "list", "delete", "deletecollection"},
    "configmaps": {"create", "get", "list", "delete", "deletecollection"},
    "persistentvolumeclaims": {"create", "get", "list", "delete", "deletecollection"},
}


@pytest.fixture(scope="module")
def spark() -> list[dict[str, Any]]:
    return build_kustomization(SPARK_DIR)


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return build_kustomization(K8S_DIR)


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    [only] = load_yaml_documents(SPARK_JOB)
    return only


@pytest.fixture(scope="module")
def defaults(spark: list[dict[str, Any]]) -> dict[str, str]:
    """spark-defaults.conf of the ConfigMap, as spark-submit reads it (key, whitespace, value)."""
    text = find(spark, "ConfigMap", "healthmate-spark")["data"]["spark-defaults.conf"]
    pairs = [line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert all(len(p) == 2 for p in pairs), pairs
    return {k: v.strip() for k, v in pairs}


@pytest.fixture(scope="module")
def executor_template(spark: list[dict[str, Any]]) -> dict[str, Any]:
    template: dict[str, Any] = yaml.safe_load(
        find(spark, "ConfigMap", "healthmate-spark")["data"]["executor-pod-template.yaml"])
    return template


def driver(job: dict[str, Any]) -> dict[str, Any]:
    [container] = pod_spec(job)["containers"]
    return container


def setting_files(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if e["name"].endswith("_FILE")}


def secret_volumes(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted((v for v in spec["volumes"] if "secret" in v), key=lambda v: str(v["name"]))


def version() -> str:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return str(project["version"])


def test_every_object_validates(spark: list[dict[str, Any]], job: dict[str, Any],
                                executor_template: dict[str, Any]) -> None:
    """(test_k8s.py cross-checks this build with `kubectl kustomize k8s/spark`.)"""
    for obj in [*spark, job, executor_template]:
        try:
            validate(obj)
        except kv.ValidationError as exc:
            pytest.fail(f"{obj['kind']}: {'.'.join(str(p) for p in exc.path)}: {exc.message}")


def test_the_validator_rejects_a_broken_role(spark: list[dict[str, Any]]) -> None:
    broken = {**find(spark, "Role"), "rules": [{"apiGroups": [""], "resources": "pods", "verbs": ["get"]}]}
    with pytest.raises(kv.ValidationError):
        validate(broken)


def test_objects_live_in_the_base_namespace(spark: list[dict[str, Any]], base: list[dict[str, Any]],
                                            job: dict[str, Any], defaults: dict[str, str]) -> None:
    namespace = find(base, "Namespace")["metadata"]["name"]
    assert {o["metadata"]["namespace"] for o in spark} == {namespace}
    assert job["metadata"]["namespace"] == namespace
    assert defaults["spark.kubernetes.namespace"] == namespace
    resources = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text(encoding="utf-8"))["resources"]
    assert not any(entry.startswith(("jobs", "spark")) for entry in resources), "applied only when wanted"


def test_the_job_runs_a_spark_replay_against_kubernetes(job: dict[str, Any]) -> None:
    assert job["metadata"]["generateName"].endswith("-")
    assert pod_spec(job)["restartPolicy"] == "Never"
    container = driver(job)
    assert container["command"] == ["python", "-m", "batch", "replay"]
    args = container["args"]
    assert args[args.index("--engine") + 1] == "spark"
    assert args[args.index("--master") + 1].startswith("k8s://https://")
    for flag in ("--topic", "--from", "--to"):
        assert flag in args and args.index(flag) + 1 < len(args), flag
    assert args[args.index("--topic") + 1] == Settings.model_fields["raw_topic"].default


def test_the_driver_role_is_namespaced_and_exactly_what_the_driver_needs(
        spark: list[dict[str, Any]], job: dict[str, Any]) -> None:
    kinds = {o["kind"] for o in spark} | {job["kind"]}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, "no cluster-wide permission"
    role = find(spark, "Role")
    granted: dict[str, set[str]] = {}
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""], rule
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert not {"resourceNames", "nonResourceURLs"} & set(rule), rule
        for resource in rule["resources"]:
            assert resource not in granted, f"{resource} in two rules"
            granted[resource] = set(rule["verbs"])
    assert granted == DRIVER_RULES
    binding = find(spark, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    account = find(spark, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    assert pod_spec(job)["serviceAccountName"] == account["metadata"]["name"]
    # Only the driver pod gets the token: the account does not hand it out by default.
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(job)["automountServiceAccountToken"] is True


def test_executors_reach_each_driver_at_its_own_pod_ip(
        spark: list[dict[str, Any]], job: dict[str, Any], defaults: dict[str, str]) -> None:
    # No Service in front of the drivers: one shared by every backfill's driver pod would let
    # two backfills' executors reach the wrong driver.
    assert not [o for o in spark if o["kind"] == "Service"]
    assert "spark.driver.host" not in defaults, "set per pod by the Job, not shared"
    env = {e["name"]: e for e in driver(job)["env"]}
    names = [e["name"] for e in driver(job)["env"]]
    assert env["SPARK_DRIVER_POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert "spark.driver.host=$(SPARK_DRIVER_POD_IP)" in env["PYSPARK_SUBMIT_ARGS"]["value"]
    assert names.index("SPARK_DRIVER_POD_IP") < names.index("PYSPARK_SUBMIT_ARGS")
    assert defaults["spark.driver.bindAddress"] == "0.0.0.0"
    ports = {int(defaults["spark.driver.port"]), int(defaults["spark.driver.blockManager.port"])}
    assert {p["containerPort"] for p in driver(job)["ports"]} == ports


def test_spark_settings_name_the_spark_image_and_size_the_executors(
        spark: list[dict[str, Any]], job: dict[str, Any], defaults: dict[str, str],
        executor_template: dict[str, Any]) -> None:
    image = f"healthmate-pipeline-spark:{version()}"
    assert defaults["spark.kubernetes.container.image"] == image
    assert driver(job)["image"] == image, "the driver needs Java, pyspark and the jars too"
    assert int(defaults["spark.executor.instances"]) >= 1
    assert int(defaults["spark.executor.cores"]) >= 1
    assert defaults["spark.executor.memory"][-1] in "mg"
    assert defaults["spark.authenticate"] == defaults["spark.network.crypto.enabled"] == "true"
    # spark-submit finds spark-defaults.conf and the executor template where the ConfigMap is mounted.
    env = {e["name"]: e for e in driver(job)["env"]}
    mounts = {m["name"]: m["mountPath"] for m in driver(job)["volumeMounts"]}
    [volume] = [v for v in pod_spec(job)["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == "healthmate-spark"
    conf_dir = mounts[volume["name"]]
    assert env["SPARK_CONF_DIR"]["value"] == conf_dir
    template_path = defaults["spark.kubernetes.executor.podTemplateFile"]
    directory, _, filename = template_path.rpartition("/")
    assert directory == conf_dir and filename in find(spark, "ConfigMap", "healthmate-spark")["data"]
    assert defaults["spark.kubernetes.executor.podTemplateContainerName"] in {
        c["name"] for c in executor_template["spec"]["containers"]}
    # The executors' owner is this pod (k8s expands $(VAR) of a variable defined before it).
    names = [e["name"] for e in driver(job)["env"]]
    submit = env["PYSPARK_SUBMIT_ARGS"]["value"]
    assert "spark.kubernetes.driver.pod.name=$(SPARK_DRIVER_POD_NAME)" in submit
    assert submit.endswith("pyspark-shell")
    assert names.index("SPARK_DRIVER_POD_NAME") < names.index("PYSPARK_SUBMIT_ARGS")
    assert env["SPARK_DRIVER_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_driver_and_executor_pods_meet_the_restricted_standard(
        base: list[dict[str, Any]], job: dict[str, Any], executor_template: dict[str, Any]) -> None:
    accounts = {o["metadata"]["name"] for o in base if o["kind"] == "ServiceAccount"}
    assert executor_template["spec"]["serviceAccountName"] in accounts
    assert executor_template["spec"]["automountServiceAccountToken"] is False
    for spec, pod_containers in ((pod_spec(job), containers(job)),
                                 (executor_template["spec"], executor_template["spec"]["containers"])):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod_containers:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["capabilities"]["drop"] == ["ALL"], container["name"]
            if context.get("readOnlyRootFilesystem"):
                assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, container["name"]
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(driver(job)["resources"][section]), section


def test_settings_come_from_the_workers_config_and_secret_files(
        base: list[dict[str, Any]], job: dict[str, Any]) -> None:
    [secret] = load_yaml_documents(K8S_DIR / "secret.template.yaml")
    configmaps = {o["metadata"]["name"] for o in base if o["kind"] == "ConfigMap"}
    container = driver(job)
    # Every setting file the worker path's backfill Job reads, the driver reads too.
    [plain] = load_yaml_documents(K8S_DIR / "jobs" / "backfill-job.yaml")
    [replay] = pod_spec(plain)["containers"]
    assert setting_files(container) == setting_files(replay)
    assert secret_volumes(pod_spec(job)) == secret_volumes(pod_spec(plain))
    assert [s["configMapRef"]["name"] for s in container["envFrom"]] == ["healthmate-config"]
    assert "healthmate-config" in configmaps
    assert not any("secretKeyRef" in e.get("valueFrom", {}) for e in container["env"]), "secrets: files only"
    volumes = {v["name"]: v["secret"] for v in pod_spec(job)["volumes"] if "secret" in v}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"] if m["name"] in volumes}
    files = {e["name"]: e["value"] for e in container["env"] if e["name"].endswith("_FILE")}
    assert {"HEALTHMATE_PG_DSN_FILE", "HEALTHMATE_PSEUDONYM_KEY_FILE"} <= set(files)
    for variable, path in files.items():
        directory, _, filename = path.rpartition("/")
        volume = volumes[mounts[directory]]
        assert volume["secretName"] == secret["metadata"]["name"]
        assert {"key": filename, "path": filename} in volume["items"]
        assert variable == f"{filename}_FILE" and filename in secret["stringData"]


def test_executors_mount_the_ca_their_connections_verify_against(
        base: list[dict[str, Any]], job: dict[str, Any], executor_template: dict[str, Any]) -> None:
    """The executors' Kafka source and their tasks' PostgreSQL connections read the CA files
    the settings name (paths shipped from the driver): the same files as in the driver."""
    config = find(base, "ConfigMap", "healthmate-config")["data"]
    ca_files = {config[k] for k in ("HEALTHMATE_KAFKA_SSL_CAFILE", "HEALTHMATE_PG_SSL_ROOTCERT")
                if k in config}
    assert ca_files, "the base verifies TLS against a CA file"
    for spec in (pod_spec(job), executor_template["spec"]):
        [container] = [c for c in spec["containers"] if c["name"] in ("driver", "executor")]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for path in ca_files:
            directory, _, filename = path.rpartition("/")
            [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
            secret = volumes[mount["name"]]["secret"]
            assert secret["secretName"] == "healthmate-tls"
            assert {"key": filename, "path": filename} in secret["items"]
