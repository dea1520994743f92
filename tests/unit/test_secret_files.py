"""Secrets from files (HEALTHMATE_<X>_FILE), never shown; TLS/SASL settings become client
arguments in one place (streams/connections.py)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.config import Settings
from streams.connections import faust_broker_kwargs, kafka_kwargs, pg_connect_kwargs
from streams.errors import ConfigurationError

SECRET_FIELDS = sorted(name for name, f in Settings.model_fields.items()
                       if f.annotation in (SecretStr, SecretStr | None))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("HEALTHMATE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HEALTHMATE_DEV_MODE", "true")


def test_every_secret_field_is_covered():
    assert {"pseudonym_key", "pg_dsn", "pg_migration_dsn", "api_jwt_secret", "api_jwt_public_key",
            "openlineage_api_key", "kafka_sasl_password"} <= set(SECRET_FIELDS)


@pytest.mark.parametrize("field", SECRET_FIELDS)
def test_each_secret_can_come_from_a_file_and_never_shows(field, tmp_path, monkeypatch):
    value = "postgresql://u:file-secret-0123456789-0123456789-xyz@h/db"  # valid for every field
    path = tmp_path / field
    path.write_text(value + "\n")  # one trailing newline (echo > file) is dropped
    monkeypatch.setenv(f"HEALTHMATE_{field.upper()}_FILE", str(path))
    settings = Settings()
    assert getattr(settings, field).get_secret_value() == value
    assert "file-secret" not in repr(settings) + str(settings.model_dump()) + settings.model_dump_json()


def test_variable_and_file_together_are_refused(tmp_path, monkeypatch):
    (tmp_path / "key").write_text("from-file")
    monkeypatch.setenv("HEALTHMATE_PSEUDONYM_KEY", "from-env")
    monkeypatch.setenv("HEALTHMATE_PSEUDONYM_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(ConfigurationError, match="not both"):
        Settings()


def test_an_unreadable_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HEALTHMATE_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="SASL_PASSWORD_FILE: cannot read .*missing"):
        Settings()


def test_non_secret_settings_have_no_file_twin(tmp_path, monkeypatch):
    (tmp_path / "topic").write_text("from-file")
    monkeypatch.setenv("HEALTHMATE_RAW_TOPIC_FILE", str(tmp_path / "topic"))
    assert Settings().raw_topic == "health.readings.raw"


def test_plaintext_by_default():
    assert kafka_kwargs(Settings()) == {"bootstrap_servers": "127.0.0.1:29092",
                                        "security_protocol": "PLAINTEXT", "ssl_context": None}
    assert pg_connect_kwargs(Settings()) == {}
    assert faust_broker_kwargs(Settings())["broker_credentials"] is None


def test_sasl_ssl_needs_credentials(monkeypatch):
    monkeypatch.setenv("HEALTHMATE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigurationError, match="HEALTHMATE_KAFKA_SASL_USERNAME"):
        Settings()


def test_a_missing_ca_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HEALTHMATE_PG_SSL_ROOTCERT", str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigurationError, match="HEALTHMATE_PG_SSL_ROOTCERT: no such file"):
        Settings()


def test_sasl_ssl_reaches_aiokafka_and_faust(monkeypatch):
    monkeypatch.setenv("HEALTHMATE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("HEALTHMATE_KAFKA_SASL_USERNAME", "worker")
    monkeypatch.setenv("HEALTHMATE_KAFKA_SASL_PASSWORD", "kafka-secret")
    settings = Settings()
    kwargs = kafka_kwargs(settings)
    assert (kwargs["security_protocol"], kwargs["sasl_mechanism"], kwargs["sasl_plain_username"],
            kwargs["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-512", "worker", "kafka-secret")
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED and kwargs["ssl_context"].check_hostname
    credentials = faust_broker_kwargs(settings)["broker_credentials"]
    assert (credentials.protocol.value, credentials.mechanism.value) == ("SASL_SSL", "SCRAM-SHA-512")
    assert "kafka-secret" not in repr(credentials)


@pytest.mark.parametrize(("mode", "check_hostname"), [("verify-full", True), ("verify-ca", False)])
def test_postgres_verify_modes_check_the_certificate(mode, check_hostname, monkeypatch):
    monkeypatch.setenv("HEALTHMATE_PG_SSLMODE", mode)
    context = pg_connect_kwargs(Settings())["ssl"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is check_hostname


def test_postgres_other_modes_pass_through(monkeypatch):
    monkeypatch.setenv("HEALTHMATE_PG_SSLMODE", "require")
    assert pg_connect_kwargs(Settings()) == {"ssl": "require"}


def test_configuration_errors_do_not_echo_secrets(tmp_path):
    (tmp_path / "pw").write_text("kafka-file-secret")
    env = {"HEALTHMATE_PSEUDONYM_KEY": "env-secret-key",
           "HEALTHMATE_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "pw"),
           "HEALTHMATE_PG_DSN": "postgresql://u:dsn-secret@h/db", "HEALTHMATE_PG_POOL_MAX": "not-a-number",
           "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "streams", "setup"], env=env, capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 2 and "HEALTHMATE_PG_POOL_MAX" in run.stderr  # names the variable
    output = run.stdout + run.stderr
    assert not any(s in output for s in ("env-secret-key", "kafka-file-secret", "dsn-secret"))
