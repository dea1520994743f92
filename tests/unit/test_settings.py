"""The settings object: safe defaults, refusal without a pseudonym key, overrides wired in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.config import Settings
from streams.errors import ConfigurationError
from streams.rules import rules_from_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in ("HEALTHMATE_PSEUDONYM_KEY", "HEALTHMATE_DEV_MODE"):
        monkeypatch.delenv(key, raising=False)


def test_refuses_to_start_without_a_key_outside_dev_mode():
    with pytest.raises(ConfigurationError, match="HEALTHMATE_PSEUDONYM_KEY"):
        Settings()


def test_dev_mode_runs_with_the_documented_dev_key(monkeypatch):
    monkeypatch.setenv("HEALTHMATE_DEV_MODE", "true")
    assert Settings().pseudonym_key_bytes == b"healthmate-dev-only-pseudonym-key"


def test_secrets_are_masked_when_dumped(monkeypatch):
    monkeypatch.setenv("HEALTHMATE_PSEUDONYM_KEY", "s3cret-key")
    dumped = repr(Settings()) + str(Settings().model_dump())
    assert "s3cret-key" not in dumped and "healthmate:healthmate@" not in dumped


def test_catalogue_overrides_and_outlier_strategy_reach_the_rules(monkeypatch):
    monkeypatch.setenv("HEALTHMATE_DEV_MODE", "1")
    monkeypatch.setenv("HEALTHMATE_CATALOGUE_OVERRIDES", '{"heart_rate": {"outlier_high": 200}}')
    monkeypatch.setenv("HEALTHMATE_OUTLIER_STRATEGY", '{"heart_rate": "clip"}')
    rules = rules_from_settings(Settings())
    assert rules.catalogue["heart_rate"].outlier_high == 200
    assert rules.outlier_strategies["heart_rate"] == "clip"


def test_worker_command_exits_with_a_clear_message_without_a_key():
    env = {"PATH": "/usr/bin:/bin", "HEALTHMATE_DEV_MODE": "false"}  # outside dev mode
    result = subprocess.run([sys.executable, "-m", "streams", "worker"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "HEALTHMATE_PSEUDONYM_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("env, says", [
    ({"HEALTHMATE_APP_ID": "same", "HEALTHMATE_CONSUMER_GROUP": "same"}, "Set HEALTHMATE_CONSUMER_GROUP"),
    ({"HEALTHMATE_RAW_TOPIC": "t", "HEALTHMATE_DLQ_TOPIC": "t"}, "HEALTHMATE_DLQ_TOPIC equals"),
    ({"HEALTHMATE_RAW_TOPIC": "t", "HEALTHMATE_PROFILES_TOPIC": "t"}, "HEALTHMATE_PROFILES_TOPIC equals"),
    ({"HEALTHMATE_PROFILES_TOPIC": "health.readings.dlq"}, "HEALTHMATE_PROFILES_TOPIC equals"),
    ({"HEALTHMATE_SINK_RETRY_INITIAL_S": "20", "HEALTHMATE_SINK_RETRY_MAX_S": "5"}, "lower the first"),
])
def test_colliding_settings_are_refused_with_what_to_change(monkeypatch, env, says):
    monkeypatch.setenv("HEALTHMATE_DEV_MODE", "true")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError, match=says):
        Settings()


def test_worker_refuses_a_consumer_group_equal_to_the_app_id_in_one_line():
    # Faust's own group is the app id: sharing it crashed with InconsistentGroupProtocolError.
    env = {"PATH": "/usr/bin:/bin", "HEALTHMATE_DEV_MODE": "true",
           "HEALTHMATE_APP_ID": "healthmate", "HEALTHMATE_CONSUMER_GROUP": "healthmate"}
    result = subprocess.run([sys.executable, "-m", "streams", "worker"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "HEALTHMATE_CONSUMER_GROUP" in lines[0], result.stderr


def test_naive_timestamps_setting_reaches_the_rules(monkeypatch) -> None:
    assert rules_from_settings(Settings(dev_mode=True)).naive_timestamps == "reject"
    monkeypatch.setenv("HEALTHMATE_NAIVE_TIMESTAMPS", "utc")
    assert rules_from_settings(Settings(dev_mode=True)).naive_timestamps == "utc"
    monkeypatch.setenv("HEALTHMATE_NAIVE_TIMESTAMPS", "local")
    with pytest.raises(ValueError):
        Settings(dev_mode=True)
