"""The gateway's settings: HTTPS needs a certificate and its key together, both readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import Settings
from streams.errors import ConfigurationError


def test_defaults_bind_loopback_on_the_gateway_port() -> None:
    settings = Settings(dev_mode=True)  # type: ignore[call-arg]
    assert (settings.gateway_host, settings.gateway_port) == ("127.0.0.1", 6070)
    assert settings.gateway_tls_cert_file is None and settings.gateway_tls_key_file is None


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not checked here")
    with pytest.raises(ConfigurationError, match="go together"):
        Settings(dev_mode=True, gateway_tls_cert_file=str(cert))  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="no such file"):
        Settings(dev_mode=True, gateway_tls_cert_file=str(cert),  # type: ignore[call-arg]
                 gateway_tls_key_file=str(tmp_path / "missing.key"))


def test_a_gateway_message_must_fit_the_workers_cap() -> None:
    with pytest.raises(ConfigurationError, match="GATEWAY_MAX_MESSAGE_BYTES"):
        Settings(dev_mode=True, max_message_bytes=100_000, gateway_max_message_bytes=100_000)  # type: ignore[call-arg]
    Settings(dev_mode=True, max_message_bytes=100_000, gateway_max_message_bytes=90_000)  # type: ignore[call-arg]
