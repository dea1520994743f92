"""The project's own fault suite (``make chaos``): real worker processes, real Kafka and
PostgreSQL, faults injected from outside, every outcome checked against the warehouse and
the dead-letter topic. See docs/operating/fault-suite.md."""
