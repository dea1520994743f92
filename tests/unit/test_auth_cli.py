"""``python -m web token``: the dev-token command the docs show (docs/reference/api.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import jwt
import pytest

from streams.config import DEV_JWT_SECRET


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHMATE_")}
    return subprocess.run([sys.executable, "-m", "web", "token", *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=60, check=False)


def test_dev_mode_token_is_signed_with_the_dev_secret() -> None:
    done = _run("--role", "operator", "--sub", "alice", HEALTHMATE_DEV_MODE="true")
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), DEV_JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["roles"] == ["operator"]
    assert claims["exp"] - claims["iat"] == 3600


def test_configured_secret_issuer_audience_and_several_roles() -> None:
    secret = "s" * 40
    done = _run("--role", "viewer", "--role", "analyst", "--sub", "bob", "--ttl", "60",
                HEALTHMATE_DEV_MODE="true", HEALTHMATE_API_JWT_SECRET=secret,
                HEALTHMATE_API_JWT_ISSUER="iss", HEALTHMATE_API_JWT_AUDIENCE="aud")
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), secret, algorithms=["HS256"], issuer="iss", audience="aud")
    assert claims["roles"] == ["viewer", "analyst"] and claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize("args", [("--role", "root", "--sub", "x"), ("--sub", "x"),
                                  ("--role", "viewer", "--sub", "x", "--ttl", "0")])
def test_bad_arguments_fail(args: tuple[str, ...]) -> None:
    assert _run(*args, HEALTHMATE_DEV_MODE="true").returncode == 2


def test_no_secret_outside_dev_mode_is_refused() -> None:
    done = _run("--role", "viewer", "--sub", "x", HEALTHMATE_PSEUDONYM_KEY="k" * 32)
    assert done.returncode == 2 and "HEALTHMATE_API_JWT_SECRET" in done.stderr and not done.stdout
