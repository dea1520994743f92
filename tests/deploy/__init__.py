"""Tests of the deployment and observability artifacts (no Kafka, no PostgreSQL)."""
