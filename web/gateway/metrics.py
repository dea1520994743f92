"""Every Prometheus metric of the ingest gateway, declared once, on its own registry.

Labels are bounded: ``code`` is the HTTP status, ``reason`` one of the refusal reasons of
:mod:`web.gateway.body`, :mod:`web.gateway.documents`, :mod:`web.gateway.app`,
:mod:`web.body_pace` and :func:`web.guarded.parser_refusal`. No user, token or event id is ever a label.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayMetrics:
    """The metric objects; attribute names match the exported names minus ``healthmate_gateway_``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.requests = Counter(
            "healthmate_gateway_requests_total", "Ingest requests answered, by HTTP status.", ["code"],
            registry=r)
        self.readings_accepted = Counter(
            "healthmate_gateway_readings_accepted_total",
            "Readings in requests answered 202 (acknowledged by Kafka).", registry=r)
        self.messages_produced = Counter(
            "healthmate_gateway_messages_produced_total",
            "Kafka messages acknowledged for requests answered 202.", registry=r)
        self.refusals = Counter(
            "healthmate_gateway_refusals_total", "Requests refused, by reason.", ["reason"], registry=r)
        self.kafka_ack = Histogram(
            "healthmate_gateway_kafka_ack_seconds",
            "From the first send of a request to Kafka's acknowledgement of its last message.",
            buckets=LATENCY_BUCKETS, registry=r)
        self.request_duration = Histogram(
            "healthmate_gateway_request_duration_seconds", "Time to answer an ingest request.",
            buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge(
            "healthmate_gateway_in_flight_requests", "Ingest requests being handled now.", registry=r)
