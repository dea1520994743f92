"""web.gateway.metrics: Prometheus naming, and no label that could name a person or a token."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from web.gateway.metrics import GatewayMetrics


def test_names_units_and_labels() -> None:
    registry = CollectorRegistry()
    GatewayMetrics(registry)
    families = {f.name: f for f in registry.collect()}
    assert set(families) == {
        "healthmate_gateway_requests", "healthmate_gateway_readings_accepted",
        "healthmate_gateway_messages_produced", "healthmate_gateway_refusals",
        "healthmate_gateway_kafka_ack_seconds", "healthmate_gateway_request_duration_seconds",
        "healthmate_gateway_in_flight_requests"}
    for name, family in families.items():
        if family.type == "counter":
            assert family.documentation and not name.endswith("_total"), name  # exported as <name>_total
        if family.type == "histogram":
            assert name.endswith("_seconds"), name
    metrics = GatewayMetrics(CollectorRegistry())
    labels = {*metrics.requests._labelnames, *metrics.refusals._labelnames}
    assert labels == {"code", "reason"}
