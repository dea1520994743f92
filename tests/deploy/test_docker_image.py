"""Dockerfile, .dockerignore and the container health probe (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from streams.config import Settings

from .conftest import ROOT

HEALTHCHECK_SCRIPT = ROOT / "deploy" / "docker" / "healthcheck.py"


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


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(ROOT / "Dockerfile")


def test_base_image_is_python_311_slim(dockerfile: list[tuple[str, str]]) -> None:
    bases = [args.split()[0] for keyword, args in dockerfile if keyword == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", b) for b in bases), bases


def test_runs_as_non_root(dockerfile: list[tuple[str, str]]) -> None:
    users = [args for keyword, args in dockerfile if keyword == "USER"]
    assert users, "no USER instruction: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "a numeric uid lets Kubernetes verify runAsNonRoot"


def test_cmd_runs_the_worker(dockerfile: list[tuple[str, str]]) -> None:
    [cmd] = [args for keyword, args in dockerfile if keyword == "CMD"]
    assert json.loads(cmd) == ["python", "-m", "streams", "worker"]


def test_healthcheck_probes_health(dockerfile: list[tuple[str, str]]) -> None:
    [check] = [args for keyword, args in dockerfile if keyword == "HEALTHCHECK"]
    command = json.loads(check.split("CMD", 1)[1].strip())
    assert command[0] == "python"
    copies = [args.split() for keyword, args in dockerfile if keyword == "COPY"]
    assert ["deploy/docker/healthcheck.py", command[1]] in copies
    assert "/health" in HEALTHCHECK_SCRIPT.read_text(encoding="utf-8")


def test_installs_the_project_and_listens_on_all_interfaces(dockerfile: list[tuple[str, str]]) -> None:
    runs = " ".join(args for keyword, args in dockerfile if keyword == "RUN")
    assert "pip install --no-deps ." in runs
    env = " ".join(args for keyword, args in dockerfile if keyword == "ENV")
    assert "HEALTHMATE_WEB_HOST=0.0.0.0" in env
    exposed = [args for keyword, args in dockerfile if keyword == "EXPOSE"]
    assert exposed == [str(Settings.model_fields["web_port"].default)]
    assert not re.search(r"PSEUDONYM_KEY|PG_DSN|PASSWORD", env), "no secret may be baked into the image"


def test_copy_sources_exist_and_reach_the_build_context(dockerfile: list[tuple[str, str]]) -> None:
    patterns = dockerignore_patterns()
    for dockerfile_path in (ROOT / "Dockerfile", ROOT / "deploy" / "airflow" / "Dockerfile"):
        for keyword, args in instructions(dockerfile_path):
            if keyword != "COPY":
                continue
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
