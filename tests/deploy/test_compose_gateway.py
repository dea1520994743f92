"""docker-compose.yml: the ingest gateway's service."""

from __future__ import annotations

from typing import Any

from .test_compose import environment


def test_gateway_service_runs_the_gateway_on_loopback(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert gateway["command"] == ["python", "-m", "web", "gateway"]
    assert gateway["image"] == compose["services"]["worker"]["image"]
    env = environment(gateway)
    port = env["HEALTHMATE_GATEWAY_PORT"]
    assert env["HEALTHMATE_GATEWAY_HOST"] == "0.0.0.0" and env["HEALTHMATE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert gateway["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert gateway["healthcheck"]["test"][-1] == "HEALTHMATE_GATEWAY_PORT"
    assert gateway["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert gateway["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    # a producer's Kafka principal (write the raw topic only), never the worker's or the admin's
    assert env["HEALTHMATE_KAFKA_SASL_PASSWORD_FILE"] == "/run/secrets/healthmate_kafka_producer_password"
    assert set(gateway["secrets"]) == {"healthmate_pseudonym_key", "healthmate_api_jwt_secret",
                                       "healthmate_kafka_producer_password"}
    grace = int(gateway["stop_grace_period"].removesuffix("s"))
    assert grace > 20, "longer than HEALTHMATE_GATEWAY_SHUTDOWN_GRACE_S: in-flight requests finish"
