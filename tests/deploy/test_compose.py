"""docker-compose.yml parses and is coherent (Docker itself is not needed)."""

from __future__ import annotations

import copy
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from streams.config import Settings

from .conftest import COMPOSE_FILE, ROOT, load_yaml

REQUIRED_SERVICES = {"kafka", "postgres", "worker", "airflow", "prometheus", "grafana"}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SECRET_KEY = re.compile(r"PASSWORD|SECRET|PSEUDONYM_KEY|TOKEN|_DSN$|SQL_ALCHEMY_CONN|FERNET", re.IGNORECASE)
REQUIRED_VARIABLE = re.compile(r"\$\{[A-Z_][A-Z0-9_]*:\?[^}]*\}")
VERSION_TAG = re.compile(r"^v?\d+\.\d+(\.\d+)?([-.][\w.]+)?$")
POM = ROOT / "scripts" / "kafka" / "pom.xml"


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def substitute_variables(value: str) -> str:
    """Replace every ``${...}`` by a plain token (``SUBSTITUTED``) so the value parses as a URL."""
    return re.sub(r"\$\{[^}]*\}", "SUBSTITUTED", value)


def image_tag(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def kafka_version_from_pom(pom: Path) -> str:
    """The Kafka version pinned in the pom: the kafka_2.13 dependency's <version> (resolving a
    ${property}), else the <kafka.version> property."""
    root = ET.parse(pom).getroot()
    ns = {"m": root.tag[1:].split("}")[0]} if root.tag.startswith("{") else {}
    p = "m:" if ns else ""
    properties = {
        child.tag.split("}")[-1]: (child.text or "").strip()
        for child in root.findall(f"{p}properties/*", ns)
    }
    for dependency in root.iter(f"{{{ns['m']}}}dependency" if ns else "dependency"):
        artifact = dependency.find(f"{p}artifactId", ns)
        version = dependency.find(f"{p}version", ns)
        if artifact is not None and (artifact.text or "").strip() == "kafka_2.13" and version is not None:
            text = (version.text or "").strip()
            match = re.fullmatch(r"\$\{([\w.\-]+)\}", text)
            if match:
                return properties[match.group(1)]
            return text
    return properties["kafka.version"]


def test_required_services(compose: dict[str, Any]) -> None:
    assert REQUIRED_SERVICES <= set(compose["services"]), REQUIRED_SERVICES - set(compose["services"])


def test_every_image_is_pinned_by_tag(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name}: neither image nor build"
            continue
        tag = image_tag(image)
        assert tag and tag != "latest", f"{name}: image {image!r} is not pinned by tag"
        assert VERSION_TAG.match(tag), f"{name}: tag {tag!r} is not a version (floating tags drift)"


def one_shot(compose: dict[str, Any], name: str) -> bool:
    """A service that runs once (``restart: "no"``) and that others wait to complete."""
    waiting = [spec.get("condition") for service in compose["services"].values()
               for target, spec in (service.get("depends_on") or {}).items() if target == name]
    return compose["services"][name].get("restart") == "no" and bool(waiting) and all(
        condition == "service_completed_successfully" for condition in waiting)


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if one_shot(compose, name):
            continue  # a one-shot job is waited for by its exit status, not a health check
        check = service.get("healthcheck") or {}
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        test = check.get("test")
        assert test and test not in (["NONE"], "NONE"), f"{name}: no healthcheck"
        if isinstance(test, list):
            assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test must start with CMD"


def test_depends_on_targets_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            assert spec.get("condition", "service_started") in DEPENDS_ON_CONDITIONS, (name, target)


def test_worker_waits_for_healthy_kafka_and_postgres(compose: dict[str, Any]) -> None:
    depends = compose["services"]["worker"]["depends_on"]
    for target in ("kafka", "postgres"):
        assert depends[target]["condition"] == "service_healthy"


def test_kafka_image_matches_the_pom(compose: dict[str, Any]) -> None:
    image = compose["services"]["kafka"]["image"]
    assert image.split(":")[0] == "apache/kafka"
    assert image_tag(image) == kafka_version_from_pom(POM)


@pytest.mark.parametrize(
    ("pom", "expected"),
    [
        ("<properties><kafka.version>4.4.0</kafka.version></properties>"
         "<dependencies><dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>"
         "<version>${kafka.version}</version></dependency></dependencies>", "4.4.0"),
        ("<dependencies><dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>"
         "<version>4.3.1</version></dependency></dependencies>", "4.3.1"),
        ("<properties><kafka.version>4.2.0</kafka.version></properties>", "4.2.0"),
    ],
)
@pytest.mark.parametrize("namespaced", [True, False])
def test_kafka_version_from_pom_forms(tmp_path: Path, pom: str, expected: str, namespaced: bool) -> None:
    xmlns = ' xmlns="http://maven.apache.org/POM/4.0.0"' if namespaced else ""
    path = tmp_path / "pom.xml"
    path.write_text(f"<project{xmlns}><modelVersion>4.0.0</modelVersion>{pom}</project>", encoding="utf-8")
    assert kafka_version_from_pom(path) == expected


def test_postgres_is_15_and_airflow_matches_pyproject(compose: dict[str, Any]) -> None:
    assert re.fullmatch(r"postgres:15\.\d+(-\w+)?", compose["services"]["postgres"]["image"])
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [airflow_req] = pyproject["project"]["optional-dependencies"]["airflow"]
    airflow_version = airflow_req.split("==")[1]
    airflow = compose["services"]["airflow"]
    dockerfile = (ROOT / airflow["build"]["dockerfile"]).read_text(encoding="utf-8")
    base = re.search(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert base and base.group(1) == f"apache/airflow:{airflow_version}-python3.11"
    assert image_tag(airflow["image"]) == airflow_version
    assert airflow["command"] in ("standalone", ["standalone"])


def test_worker_image_is_the_project_version(compose: dict[str, Any]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    worker = compose["services"]["worker"]
    assert worker["build"]["context"] == "."
    assert worker["image"] == f"healthmate-pipeline:{pyproject['project']['version']}"


def test_worker_env_points_at_compose_services(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["worker"])
    kafka_env = environment(compose["services"]["kafka"])
    host, port = env["HEALTHMATE_KAFKA_BOOTSTRAP"].split(":")
    assert host == "kafka"
    # deploy/kafka/start.sh advertises HM_BROKER_ADVERTISED (default kafka:9092)
    assert kafka_env.get("HM_BROKER_ADVERTISED", "kafka:9092") == f"kafka:{port}", "bootstrap not advertised"
    dsn = urlsplit(substitute_variables(env["HEALTHMATE_PG_DSN"]))
    assert dsn.scheme in ("postgresql", "postgres")
    assert dsn.hostname == "postgres" and (dsn.port or 5432) == 5432
    pg_env = environment(compose["services"]["postgres"])
    assert dsn.path.lstrip("/") == pg_env["POSTGRES_DB"]
    assert dsn.username == RUNTIME_ROLE != pg_env["POSTGRES_USER"]  # least privilege
    assert env.get("HEALTHMATE_WEB_HOST") == "0.0.0.0", "the worker must listen beyond its loopback"


RUNTIME_ROLE = "healthmate_app"


def test_only_setup_holds_the_owners_dsn(compose: dict[str, Any]) -> None:
    """Least privilege by default: the owner migrates (setup), everything else is the runtime role."""
    services = compose["services"]
    owners = {name for name, service in services.items()
              if "HEALTHMATE_PG_MIGRATION_DSN" in environment(service)}
    assert owners == {"setup"}
    owner = urlsplit(substitute_variables(environment(services["setup"])["HEALTHMATE_PG_MIGRATION_DSN"]))
    assert owner.username == environment(services["postgres"])["POSTGRES_USER"]
    assert "python -m streams setup" in " ".join(services["setup"]["command"])
    assert "setup" not in " ".join(services["worker"]["command"])
    assert services["worker"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    for name in ("worker", "airflow"):
        dsn = urlsplit(substitute_variables(environment(services[name])["HEALTHMATE_PG_DSN"]))
        assert dsn.username == RUNTIME_ROLE, name
    init = (ROOT / "deploy" / "postgres" / "initdb" / "02-runtime-role.sh").read_text(encoding="utf-8")
    assert f"CREATE ROLE {RUNTIME_ROLE} LOGIN" in init


def test_healthmate_variables_are_settings_fields(compose: dict[str, Any]) -> None:
    fields = {f"HEALTHMATE_{name.upper()}" for name in Settings.model_fields}
    fields |= {f"HEALTHMATE_{name.upper()}_FILE" for name, f in Settings.model_fields.items()
               if f.annotation in (SecretStr, SecretStr | None)}
    for name, service in compose["services"].items():
        unknown = {k for k in environment(service) if k.startswith("HEALTHMATE_")} - fields
        assert not unknown, f"{name}: not settings of streams/config.py: {unknown}"


def test_secret_files_are_mounted_compose_secrets(compose: dict[str, Any]) -> None:
    declared = compose["secrets"]
    for secret, source in declared.items():
        assert set(source) == {"environment"}, f"secret {secret}: only from the environment (no repo file)"
    file_keys = 0
    for name, service in compose["services"].items():
        mounted = set(service.get("secrets", []))
        assert mounted <= set(declared), f"{name}: undeclared secrets {mounted - set(declared)}"
        for key, value in environment(service).items():
            if SECRET_KEY.search(key) and key.endswith("FILE"):
                file_keys += 1
                assert value.startswith("/run/secrets/") and value.removeprefix("/run/secrets/") in mounted, \
                    f"{name}.{key}: {value} is not a secret mounted in this service"
    assert file_keys >= 4  # pseudonym key, JWT secret, PostgreSQL and Grafana passwords


def test_secrets_come_from_the_environment(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if not SECRET_KEY.search(key) or key.endswith("FILE"):
                continue
            assert REQUIRED_VARIABLE.search(value), f"{name}.{key}: must come from ${{VAR:?...}}"
            if "://" in value:
                assert REQUIRED_VARIABLE.search(value.split("://", 1)[1].split("@", 1)[0]), value
                password = urlsplit(substitute_variables(value)).password
                assert password == "SUBSTITUTED", f"{name}.{key}: the URL password must be ${{VAR:?...}}"
            else:
                assert REQUIRED_VARIABLE.fullmatch(value), f"{name}.{key} must be exactly ${{VAR:?...}}"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "healthmate-dev-only-pseudonym-key" not in text
    assert not re.search(r"://[^:/\s]+:(?!\$\{)[^@\s]+@", text), "a literal password in a URL"


def test_published_ports_bind_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:") and str(port).count(":") == 2, f"{name}: {port}"


def test_prometheus_mounts_its_config_and_rules(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.compose.yml" in prometheus["command"]
    assert (ROOT / "deploy" / "prometheus" / "prometheus.compose.yml").is_file()


def test_bind_mount_sources_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount source {source} missing"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}: undeclared volume {source}"


# Keys of the compose specification this file may use; a typo (`healtcheck`) would otherwise be
# ignored by these tests and rejected only by `docker compose` on a machine that has it.
SERVICE_KEYS = {
    "build", "command", "container_name", "depends_on", "entrypoint", "env_file", "environment", "expose",
    "healthcheck", "hostname", "image", "init", "labels", "logging", "networks", "ports", "profiles",
    "read_only", "restart", "security_opt", "shm_size", "stop_grace_period", "stop_signal", "tmpfs",
    "ulimits", "user", "volumes", "working_dir", "deploy", "cap_drop", "cap_add", "extra_hosts",
    "pull_policy", "platform", "mem_limit", "cpus", "secrets",
}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
TOP_LEVEL_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets"}


def test_only_known_compose_keys(compose: dict[str, Any]) -> None:
    unknown_top = {k for k in compose if not k.startswith("x-")} - TOP_LEVEL_KEYS
    assert not unknown_top, unknown_top
    for name, service in compose["services"].items():
        assert not set(service) - SERVICE_KEYS, f"{name}: {set(service) - SERVICE_KEYS}"
        assert not set(service.get("healthcheck", {})) - HEALTHCHECK_KEYS, name
        build = service.get("build")
        if isinstance(build, dict):
            assert set(build) <= {"context", "dockerfile", "args", "target"}, name
            assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file(), name


# --------------------------------------------------------------------------- transport

DEV_FILE = ROOT / "docker-compose.dev.yml"
TLS_MOUNT = "tls:/etc/healthmate/tls:ro"
CA = "/etc/healthmate/tls/ca.pem"


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``docker compose -f base -f override`` for what the override uses: environment maps
    are merged key by key, any other key of a service is replaced."""
    out = copy.deepcopy(base)
    for name, service in override.get("services", {}).items():
        target = out["services"][name]
        for key, value in service.items():
            if key == "environment":
                target["environment"] = {**environment(target), **{k: str(v) for k, v in value.items()}}
            else:
                target[key] = value
    return out


def clients(compose: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The services that run HealthMate code (they carry HEALTHMATE_KAFKA_BOOTSTRAP)."""
    return {n: environment(s) for n, s in compose["services"].items()
            if "HEALTHMATE_KAFKA_BOOTSTRAP" in environment(s)}


def test_the_base_runs_sasl_ssl_and_tls_with_verified_certificates(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(clients(compose)) == {"setup", "worker", "airflow", "gateway"}
    for name, env in clients(compose).items():
        assert env["HEALTHMATE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["HEALTHMATE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert env["HEALTHMATE_KAFKA_SSL_CAFILE"] == CA and env["HEALTHMATE_PG_SSL_ROOTCERT"] == CA, name
        assert env["HEALTHMATE_PG_SSLMODE"] == "verify-full", name
        assert TLS_MOUNT in services[name]["volumes"], f"{name}: the CA is not mounted"
    assert environment(services["setup"])["HEALTHMATE_KAFKA_SASL_USERNAME"] == "admin"
    assert environment(services["worker"])["HEALTHMATE_KAFKA_SASL_USERNAME"] == "healthmate-worker"
    assert environment(services["gateway"])["HEALTHMATE_KAFKA_SASL_USERNAME"] == "healthmate-producer"
    airflow_db = environment(services["airflow"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert f"sslmode=verify-full&sslrootcert={CA}" in airflow_db
    assert services["setup"]["command"][-1].endswith("python -m streams acls"), "setup creates the ACLs"
    # the broker: secure transport, its start script and the certificates
    kafka = services["kafka"]
    assert environment(kafka)["HM_BROKER_TRANSPORT"] == "secure"
    assert kafka["entrypoint"] == ["bash", "/opt/healthmate/start.sh"]
    assert {"./deploy/kafka:/opt/healthmate:ro", "tls:/etc/kafka/tls:ro"} <= set(kafka["volumes"])
    assert "--command-config" in kafka["healthcheck"]["test"][1], "the health check must authenticate"
    start = (ROOT / "deploy" / "kafka" / "start.sh").read_text(encoding="utf-8")
    protocols = "SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT,EXTERNAL:SASL_SSL"
    assert f"listener.security.protocol.map={protocols}" in start
    assert "allow.everyone.if.no.acl.found=false" in start
    # PostgreSQL: TLS on, the pg_hba.conf that rejects plain TCP
    postgres = services["postgres"]
    assert {"ssl=on", "hba_file=/etc/postgresql/pg_hba.conf"} <= set(postgres["command"])
    assert "./deploy/postgres/pg_hba.conf:/etc/postgresql/pg_hba.conf:ro" in postgres["volumes"]
    hba = [line.split() for line in (ROOT / "deploy" / "postgres" / "pg_hba.conf").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
    assert {tuple(line[:1]) for line in hba} == {("local",), ("hostssl",), ("hostnossl",)}
    assert all(line[-1] == "reject" for line in hba if line[0] == "hostnossl")
    assert all(line[-1] == "scram-sha-256" for line in hba if line[0] == "hostssl")
    # every TLS user waits for the certificates
    for name in ("kafka", "postgres"):
        assert services[name]["depends_on"]["tls"]["condition"] == "service_completed_successfully"


def test_the_dev_overlay_is_plaintext_and_changes_only_transport(compose: dict[str, Any]) -> None:
    overlay = load_yaml(DEV_FILE)
    assert "LOCAL DEVELOPMENT ONLY" in DEV_FILE.read_text(encoding="utf-8").splitlines()[0]
    transport_keys = {"HEALTHMATE_KAFKA_SECURITY_PROTOCOL", "HEALTHMATE_PG_SSLMODE", "HM_BROKER_TRANSPORT",
                      "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"}
    for name, service in overlay["services"].items():
        assert name in compose["services"], name
        assert set(service) <= {"environment", "command"}, name
        assert set(service.get("environment", {})) <= transport_keys, name
    dev = merged(compose, overlay)
    for name, env in clients(dev).items():
        assert env["HEALTHMATE_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT", name
        assert env["HEALTHMATE_PG_SSLMODE"] == "disable", name
    assert environment(dev["services"]["kafka"])["HM_BROKER_TRANSPORT"] == "plaintext"
    assert dev["services"]["postgres"]["command"] == ["postgres"]
    assert "acls" not in " ".join(dev["services"]["setup"]["command"]), "no ACLs without an authorizer"
    assert "sslmode" not in environment(dev["services"]["airflow"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # the merged file still follows the base's rules
    test_secrets_come_from_the_environment(dev)
    test_healthmate_variables_are_settings_fields(dev)
