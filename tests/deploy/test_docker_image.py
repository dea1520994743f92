"""Dockerfile (the worker target and the spark target), .dockerignore, the container health
probe and the spark image's entrypoint (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from batch.spark_jars import SPARK_VERSION
from streams.config import Settings

from .conftest import ROOT

HEALTHCHECK_SCRIPT = ROOT / "deploy" / "docker" / "healthcheck.py"
SPARK_ENTRYPOINT = ROOT / "deploy" / "docker" / "spark-entrypoint.sh"
#: The build's targets that are images (the other stages only hand files over by COPY --from).
RUNTIME_STAGES = ("worker", "spark")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    result = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` (relative, '/'-separated) out of the build context."""

    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                out += ".*"
                i += 2
                if pattern.startswith("/", i):
                    out += "/?"
                    i += 1
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out)

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        compiled = regex(pattern.lstrip("!").strip("/"))
        if any(compiled.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def stages(dockerfile: list[tuple[str, str]]) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """``{stage name: (base, instructions)}`` in build order (the last one is the default target)."""
    out: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, args in dockerfile:
        if keyword == "FROM":
            words = args.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"unnamed stage: FROM {args}"
            current = []
            out[words[2]] = (words[0], current)
        else:
            current.append((keyword, args))
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(ROOT / "Dockerfile")


@pytest.fixture(scope="module")
def built(dockerfile: list[tuple[str, str]]) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    return stages(dockerfile)


def lineage(built: dict[str, tuple[str, list[tuple[str, str]]]], name: str) -> list[tuple[str, str]]:
    """A stage's instructions with those of the stages it is built FROM, oldest first."""
    base, own = built[name]
    return [*(lineage(built, base) if base in built else []), *own]


def test_runtime_images_are_python_311_slim(built: dict[str, tuple[str, list[tuple[str, str]]]]) -> None:
    for name in RUNTIME_STAGES:
        base = name
        while base in built:
            base = built[base][0]
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), (name, base)
    helpers = set(built) - {"base", *RUNTIME_STAGES}
    assert helpers == {"spark-jars"}, helpers
    assert list(built)[-1] == "worker", "`docker build .` (the last stage) must give the worker image"


def test_runs_as_non_root(built: dict[str, tuple[str, list[tuple[str, str]]]]) -> None:
    for name in RUNTIME_STAGES:
        users = [args for keyword, args in lineage(built, name) if keyword == "USER"]
        assert users, f"{name}: no USER instruction: the container would run as root"
        user = users[-1].split(":")[0]
        assert user not in ("root", "0"), name
        assert user.isdigit(), "a numeric uid lets Kubernetes verify runAsNonRoot"


def test_cmd_runs_the_worker(built: dict[str, tuple[str, list[tuple[str, str]]]]) -> None:
    [cmd] = [args for keyword, args in lineage(built, "worker") if keyword == "CMD"]
    assert json.loads(cmd) == ["python", "-m", "streams", "worker"]
    assert not [args for keyword, args in lineage(built, "worker") if keyword == "ENTRYPOINT"]


def test_the_spark_image_holds_java_pyspark_and_the_connector_jars(
        built: dict[str, tuple[str, list[tuple[str, str]]]]) -> None:
    """What a Spark driver and its executors need: Java 17+, the pinned `spark` extra, and the
    connector jars where HEALTHMATE_SPARK_JARS_DIR/<version> says (batch/spark_jars.py)."""
    spark = lineage(built, "spark")
    runs = " ".join(args for keyword, args in spark if keyword == "RUN")
    assert re.search(r"openjdk-(1[7-9]|2\d)-jre-headless", runs), "Spark 4 needs Java 17+"
    assert "['optional-dependencies']['spark']" in runs and "pip install -r" in runs
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["optional-dependencies"]["spark"] == [f"pyspark=={SPARK_VERSION}"]
    for stage in ("spark-jars", "spark"):
        args = [a for k, a in built[stage][1] if k == "ARG"]
        assert f"SPARK_VERSION={SPARK_VERSION}" in args, stage
    fetch = " ".join(a for k, a in built["spark-jars"][1] if k == "RUN")
    assert "scripts/spark/pom.xml" in " ".join(a for k, a in built["spark-jars"][1] if k == "COPY")
    assert "dependency:copy-dependencies" in fetch
    assert "-DoutputDirectory=/spark-jars/${SPARK_VERSION}" in fetch
    [copy] = [a.split() for k, a in built["spark"][1] if k == "COPY" and a.startswith("--from=spark-jars")]
    env = " ".join(a for k, a in spark if k == "ENV")
    assert copy[1:] == ["/spark-jars", "/opt/healthmate/spark-jars"]
    assert "HEALTHMATE_SPARK_JARS_DIR=/opt/healthmate/spark-jars" in env
    assert "SPARK_EXTRA_CLASSPATH=/opt/healthmate/spark-jars/${SPARK_VERSION}/*" in env
    assert "SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark" in env
    [entrypoint] = [json.loads(a) for k, a in spark if k == "ENTRYPOINT"]
    copies = [a.split() for k, a in spark if k == "COPY"]
    assert ["deploy/docker/spark-entrypoint.sh", entrypoint[0]] in copies


def test_spark_entrypoint_passes_other_commands_through() -> None:
    result = subprocess.run([str(SPARK_ENTRYPOINT), "python", "-c", "print('driver')"], capture_output=True,
                            text=True, timeout=30, check=False)
    assert (result.returncode, result.stdout) == (0, "driver\n"), result.stderr


def test_spark_entrypoint_refuses_an_executor_without_a_driver() -> None:
    """`executor` without what a Spark driver sets: a clear refusal, not a JVM stack trace."""
    result = subprocess.run([str(SPARK_ENTRYPOINT), "executor"], capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin", "SPARK_HOME": "/nonexistent"}, check=False)
    assert result.returncode == 2
    assert "SPARK_DRIVER_URL is not set" in result.stderr


def test_healthcheck_probes_health(dockerfile: list[tuple[str, str]]) -> None:
    [check] = [args for keyword, args in dockerfile if keyword == "HEALTHCHECK"]
    command = json.loads(check.split("CMD", 1)[1].strip())
    assert command[0] == "python"
    copies = [args.split() for keyword, args in dockerfile if keyword == "COPY"]
    assert ["deploy/docker/healthcheck.py", command[1]] in copies
    assert "/health" in HEALTHCHECK_SCRIPT.read_text(encoding="utf-8")


def test_installs_the_project_and_listens_on_all_interfaces(
        built: dict[str, tuple[str, list[tuple[str, str]]]], dockerfile: list[tuple[str, str]]) -> None:
    worker = lineage(built, "worker")
    runs = " ".join(args for keyword, args in worker if keyword == "RUN")
    assert "pip install --no-deps ." in runs
    env = " ".join(args for keyword, args in worker if keyword == "ENV")
    assert "HEALTHMATE_WEB_HOST=0.0.0.0" in env
    exposed = [args for keyword, args in worker if keyword == "EXPOSE"]
    assert exposed == [str(Settings.model_fields["web_port"].default)]
    every_env = " ".join(args for keyword, args in dockerfile if keyword in ("ENV", "ARG"))
    assert not re.search(r"PSEUDONYM_KEY|PG_DSN|PASSWORD", every_env), "no secret may be baked into the image"


def test_copy_sources_exist_and_reach_the_build_context(dockerfile: list[tuple[str, str]]) -> None:
    patterns = dockerignore_patterns()
    for dockerfile_path in (ROOT / "Dockerfile", ROOT / "deploy" / "airflow" / "Dockerfile"):
        for keyword, args in instructions(dockerfile_path):
            if keyword != "COPY":
                continue
            if args.startswith("--from="):
                continue  # from another stage of the build, not from the context
            words = [w for w in args.split() if not w.startswith("--")]
            for source in words[:-1]:
                assert (ROOT / source).exists(), f"{dockerfile_path.name}: COPY source {source} missing"
                assert not dockerignore_excludes(source.rstrip("/"), patterns), (
                    f"{source} is excluded by .dockerignore"
                )


@pytest.mark.parametrize(
    "path", [".git/config", ".venv/bin/python", ".env", "tests/unit/test_x.py", "streams/__pycache__/a.pyc",
             "k8s/secret.template.yaml"],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert dockerignore_excludes(path, dockerignore_patterns()), path


def test_dockerignore_matcher() -> None:
    patterns = ["deploy/*", "!deploy/docker", "**/__pycache__", ".env.*"]
    assert dockerignore_excludes("deploy/prometheus/alerts.yml", patterns)
    assert not dockerignore_excludes("deploy/docker/healthcheck.py", patterns)
    assert dockerignore_excludes("a/b/__pycache__/x.pyc", patterns)
    assert dockerignore_excludes(".env.local", patterns)
    assert not dockerignore_excludes("healthmate/worker.py", patterns)


# ------------------------------------------------------------------ the health probe itself


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        code = self.status if self.path == "/health" else 404
        body = b'{"status": "ok"}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server API
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[HTTPServer, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()


def _probe(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT)],
        env={"HEALTHMATE_WEB_PORT": str(port), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=30, check=False,
    )


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (503, 1), (500, 1)])
def test_probe_exit_code_follows_health(
    health_server: tuple[HTTPServer, type[_Handler]], status: int, exit_code: int
) -> None:
    server, handler = health_server
    handler.status = status
    result = _probe(server.server_address[1])
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert f"HTTP {status}" in result.stdout


def test_probe_fails_when_nothing_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _probe(port)
    assert result.returncode == 1
