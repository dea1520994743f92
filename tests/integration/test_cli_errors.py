"""Start-up failures a person meets: one line on stderr and a meaningful exit status.

Each case runs the real command as a subprocess. Kafka and PostgreSQL are pointed at a
port nobody listens on (or the right server with a wrong password), so no case depends on
the local stack being down; the wrong-password case needs the local PostgreSQL up, the
missing-topic case the local Kafka (which creates no topic on its own).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEV = "healthmate: local stack, using the development configuration"
DEAD_PORT = "127.0.0.1:9"  # discard port: nothing listens on loopback

CASES = [
    ("bad quality windows", {"HEALTHMATE_QUALITY_WINDOWS_S": "abc"}, ["streams", "setup"], 2,
     "HEALTHMATE_QUALITY_WINDOWS_S is not valid JSON"),
    ("zero quality window", {"HEALTHMATE_QUALITY_WINDOWS_S": "[0]"}, ["streams", "worker"], 2,
     "HEALTHMATE_QUALITY_WINDOWS_S[0]"),
    ("Kafka unreachable", {"HEALTHMATE_KAFKA_BOOTSTRAP": DEAD_PORT}, ["streams", "setup"], 3,
     "Kafka is unreachable at 127.0.0.1:9 (HEALTHMATE_KAFKA_BOOTSTRAP)"),
    ("Kafka unreachable, worker", {"HEALTHMATE_KAFKA_BOOTSTRAP": DEAD_PORT}, ["streams", "worker"], 3,
     "Kafka is unreachable"),
    ("Kafka unreachable, replay", {"HEALTHMATE_KAFKA_BOOTSTRAP": DEAD_PORT},
     ["batch", "replay", "--topic", "t", "--from", "0:0"], 3, "Kafka is unreachable"),
    ("PostgreSQL unreachable", {"HEALTHMATE_PG_DSN": "postgresql://healthmate:healthmate@127.0.0.1:9/x"},
     ["streams", "setup"], 3, "PostgreSQL is unreachable at 127.0.0.1:9 (HEALTHMATE_PG_DSN)"),
    ("wrong PostgreSQL password",
     {"HEALTHMATE_PG_DSN": "postgresql://healthmate:not-the-password@127.0.0.1:5432/healthmate"},
     ["batch", "run-job", "00000000-0000-0000-0000-000000000001"], 2, "PostgreSQL refused the login"),
    ("missing --private-key file", {"HEALTHMATE_API_JWT_ALGORITHM": "RS256"},
     ["web", "token", "--role", "viewer", "--sub", "a", "--private-key", "/nonexistent/key.pem"], 2,
     "cannot read --private-key /nonexistent/key.pem"),
    ("bad offset range", {}, ["batch", "replay", "--topic", "t", "--from", "0:500", "--to", "0:100"], 2,
     "bad replay range: an end offset is before its start offset"),
    ("unparsable offset", {}, ["batch", "replay", "--topic", "t", "--from", "0:x"], 2, "bad replay range"),
    ("bogus outlier strategy", {"HEALTHMATE_OUTLIER_STRATEGY": '{"heart_rate": "bogus"}'},
     ["streams", "setup"], 2,
     "HEALTHMATE_OUTLIER_STRATEGY[heart_rate]: Input should be 'flag', 'clip' or 'drop'"),
    ("strategy for an unknown metric", {"HEALTHMATE_OUTLIER_STRATEGY": '{"mood": "clip"}'},
     ["batch", "replay", "--topic", "t", "--from", "0:0"], 2, "names metrics outside the catalogue: mood"),
    ("no key outside dev mode", {"HEALTHMATE_DEV_MODE": "false"}, ["streams", "produce"], 2,
     "HEALTHMATE_PSEUDONYM_KEY is not set"),
    ("missing raw topic, produce", {"HEALTHMATE_RAW_TOPIC": "healthmate.test.no-such-topic"},
     ["streams", "produce", "--count", "1"], 2,
     "the raw topic 'healthmate.test.no-such-topic' does not exist (HEALTHMATE_RAW_TOPIC)"),
]


def _run(env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHMATE_")}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("case", "env", "args", "code", "says"), CASES, ids=[c[0] for c in CASES])
def test_one_clear_line_and_exit_code(case, env, args, code, says):  # type: ignore[no-untyped-def]
    result = _run(env, args)
    lines = [line for line in result.stderr.splitlines() if not line.startswith(DEV)]
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, f"{case}: expected one line, got:\n{result.stderr}"
    assert lines[0].startswith("healthmate: ") and says in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert "not-the-password" not in result.stderr, "a secret was echoed"


def test_dev_configuration_is_announced_on_the_local_stack_only():
    local = _run({}, ["web", "token", "--role", "viewer", "--sub", "a"])
    assert local.returncode == 0 and local.stderr.startswith(DEV), local.stderr
    remote = _run({"HEALTHMATE_KAFKA_BOOTSTRAP": "kafka.example.internal:9092"},
                  ["web", "token", "--role", "viewer", "--sub", "a"])
    assert remote.returncode == 2 and "HEALTHMATE_PSEUDONYM_KEY is not set" in remote.stderr


@pytest.mark.parametrize("module", ["healthmate", "streams", "batch", "web"])
def test_help_lists_every_command(module):  # type: ignore[no-untyped-def]
    result = _run({}, [module, "--help"])
    assert result.returncode == 0, result.stderr
    expected = {"healthmate": ["streams worker", "streams setup", "streams produce", "streams acls",
                               "batch run-job", "batch replay", "web token"],
                "streams": ["worker", "setup", "produce", "acls"], "batch": ["run-job", "replay"],
                "web": ["token"]}
    for command in expected[module]:
        assert command in result.stdout, f"{module} --help lacks {command}"
