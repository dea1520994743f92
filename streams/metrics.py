"""Every Prometheus metric of the pipeline, declared once, with its help text.

Labels are bounded: metric names come from the catalogue (readings of a metric outside it
are dead letters, counted by reason, never a metric label), sources are one of
``HEALTHMATE_KNOWN_SOURCES`` or ``other`` (``streams.domain.quality_rules.source_label``),
reasons are ``RejectReason`` values, ETL jobs are labelled ``etl_job`` with the job *id*
(not ``job``: Prometheus' target label ``job`` would clash with it and rename it
``exported_job``), and a deleted job's series are removed (:meth:`Metrics.forget_etl_job`).
A user id or user key never becomes a label.

Build one ``Metrics`` per registry; the worker uses the process default registry, tests
pass their own ``CollectorRegistry``.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400)
BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)


class Metrics:
    """The metric objects; attribute names match the exported names minus ``healthmate_``."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        r = registry
        self.readings_consumed = Counter(
            "healthmate_readings_consumed_total", "Readings decoded from the raw topic.", ["metric"],
            registry=r)
        self.readings_stored = Counter(
            "healthmate_readings_stored_total",
            "Readings committed to the warehouse (duplicates by event_id not counted).", ["metric"],
            registry=r)
        self.readings_rejected = Counter(
            "healthmate_readings_rejected_total", "Readings or messages rejected, by reason.",
            ["reason"], registry=r)
        self.dlq_published = Counter(
            "healthmate_dlq_published_total", "Records published to the dead-letter topic.",
            ["reason"], registry=r)
        self.measured_to_stored = Histogram(
            "healthmate_measured_to_stored_seconds", "From the reading's measured time to commit.",
            buckets=LATENCY_BUCKETS, registry=r)
        self.ingested_to_stored = Histogram(
            "healthmate_ingested_to_stored_seconds",
            "From the Kafka message timestamp (produce time) to warehouse commit.",
            buckets=LATENCY_BUCKETS, registry=r)
        self.sink_batch_size = Histogram(
            "healthmate_sink_batch_size", "Readings per warehouse transaction.",
            buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.sink_batch_duration = Histogram(
            "healthmate_sink_batch_duration_seconds", "Duration of one warehouse transaction.",
            buckets=LATENCY_BUCKETS, registry=r)
        self.sink_errors = Counter(
            "healthmate_sink_errors_total", "Warehouse transactions that failed and were retried.",
            registry=r)
        self.sink_batches_split = Counter(
            "healthmate_sink_batches_split_total",
            "Batches PostgreSQL refused for their data, split to isolate the refused readings "
            "(those are counted in healthmate_readings_rejected_total{reason=\"sink_rejected\"}).",
            registry=r)
        self.erased_readings_refused = Counter(
            "healthmate_erased_readings_refused_total",
            "Readings of subjects in the erasure register that the warehouse refused to store "
            "(dead-lettered without payload; also in healthmate_readings_rejected_total"
            "{reason=\"subject_erased\"}).", registry=r)
        self.consumer_lag = Gauge(
            "healthmate_consumer_lag_messages", "High watermark minus next offset to process.",
            ["topic", "partition"], registry=r)
        self.last_commit_timestamp = Gauge(
            "healthmate_partition_last_commit_timestamp_seconds",
            "Unix time of the last warehouse commit for the partition.", ["topic", "partition"],
            registry=r)
        self.quality_score = Gauge(
            "healthmate_quality_score", "Latest closed-window quality score in [0,1].",
            ["metric", "source", "dimension"], registry=r)
        self.quality_window_records = Gauge(
            "healthmate_quality_window_records",
            "Records in the latest closed window behind healthmate_quality_score; the window is judged "
            "only at healthmate_quality_min_records or more.", ["metric", "source"], registry=r)
        self.quality_min_records = Gauge(
            "healthmate_quality_min_records",
            "HEALTHMATE_QUALITY_MIN_RECORDS: records a quality window needs before it is judged.",
            registry=r)
        self.quality_windows_below_threshold = Counter(
            "healthmate_quality_windows_below_threshold_total",
            "Closed quality windows whose overall score was below HEALTHMATE_QUALITY_THRESHOLD.",
            registry=r)
        self.quality_late_increments = Counter(
            "healthmate_quality_late_increments_total",
            "Quality counts dropped because their window had already closed (one per window size).",
            registry=r)
        self.etl_runs = Counter(
            "healthmate_etl_runs_total", "ETL job runs by job and final status.", ["etl_job", "status"],
            registry=r)
        self.etl_run_duration = Histogram(
            "healthmate_etl_run_duration_seconds", "ETL job run duration.", ["etl_job"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.api_requests = Counter(
            "healthmate_api_requests_total", "API requests by route and status.", ["route", "status"],
            registry=r)
        self.api_latency = Histogram(
            "healthmate_api_request_duration_seconds", "API request latency by route.", ["route"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.worker_up = Gauge(
            "healthmate_worker_up", "1 while the ingest service is running.", registry=r)

    def forget_etl_job(self, job_id: str) -> None:
        """Drop every series of a deleted ETL job (its label is the job id)."""
        self.etl_runs.remove_by_labels({"etl_job": job_id})
        self.etl_run_duration.remove_by_labels({"etl_job": job_id})


# Series suffixes that prometheus_client exports for each metric type (text format 0.0.4,
# ``_created`` series enabled, which is the client default).
_SERIES_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
    "stateset": ("",),
    "unknown": ("",),
}


def metric_names(metrics: Metrics) -> set[str]:
    """Every series name the registry can export (for checking dashboards and alert rules).

    Names are derived from each metric family's type, so a labelled metric that has no
    children yet (nothing observed since start) is included, e.g. a counter ``foo``
    contributes ``foo_total`` and ``foo_created`` and a histogram ``bar_seconds``
    contributes ``bar_seconds_bucket``, ``_sum``, ``_count`` and ``_created``. Names of
    samples actually present are added too. The bare family name of a counter (without
    ``_total``) is not an exported series and is not included.
    """
    names: set[str] = set()
    for family in metrics.registry.collect():
        for suffix in _SERIES_SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names
