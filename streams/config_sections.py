"""The sections of the one settings object, :class:`streams.config.Settings`.

Each section groups related ``HEALTHMATE_*`` settings (faust's ``settings/sections.py`` is the
model); ``Settings`` inherits every section, so the settings stay one flat, frozen object and no
variable is renamed. Only ``streams.config`` builds them: nothing else reads the environment.
Validation that spans sections lives on ``Settings`` itself.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, PositiveInt, SecretStr

KNOWN_SOURCES = ("fitbit", "apple_health", "garmin", "withings", "dexcom", "oura", "whoop", "polar",
                 "samsung_health", "google_fit", "omron", "ihealth")


class Section(BaseModel):
    """A group of settings; ``TITLE`` heads it in the settings reference."""

    TITLE: ClassVar[str] = ""



class ProcessSection(Section):
    """The process: its ids, the pseudonym key, its web port, logs and local state."""

    TITLE: ClassVar[str] = "Identity and process"

    app_id: str = Field("healthmate-pipeline", description="Faust app id (prefix of its internal topics).")
    dev_mode: bool = Field(
        False,
        description="Allow running without HEALTHMATE_PSEUDONYM_KEY, using a fixed dev key; it also "
        "gives the API a fixed dev secret. Never enable in production.",
    )
    pseudonym_key: SecretStr | None = Field(
        None, description="HMAC-SHA256 key for user pseudonyms (required unless dev_mode)."
    )

    web_host: str = Field("127.0.0.1", description="Address of the worker's web server.")
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the worker's web server.")

    log_level: str = Field("info", pattern="^(crit|error|warn|info|debug)$", description="Log level.")
    log_format: str = Field(
        "text", pattern="^(text|json)$", description="json: one object per line. Lines logged inside a "
        "batch job run carry its `run_id`.")

    data_dir: str = Field(".stack/faust-data", description="Faust table state; one folder per app id.")


class KafkaSection(Section):
    """The broker, the topics and the Kafka clients' security."""

    TITLE: ClassVar[str] = "Kafka"

    kafka_bootstrap: str = Field("127.0.0.1:29092", description="Kafka bootstrap servers.")
    raw_topic: str = Field(
        "health.readings.raw", description="Input topic: the readings producers send, which the worker "
        "consumes (key: user id).")
    dlq_topic: str = Field(
        "health.readings.dlq", description="Dead-letter topic: the messages the worker refuses, each "
        "with its reason code.")
    profiles_topic: str = Field(
        "health.users.profiles", description="Compacted topic of user profiles (key: user id).")
    topic_partitions: int = Field(4, ge=1, description="Partitions for topics the pipeline creates.")
    topic_replication: int = Field(
        1, ge=1, description="Replication factor for the topics the pipeline creates.")
    consumer_group: str = Field("healthmate-sink", description="Consumer group of the ingest service.")
    max_message_bytes: int = Field(
        1_048_576, ge=1024, description="Larger messages are dead-lettered as oversized.")
    dlq_max_payload_bytes: int = Field(
        1_048_576, ge=1024, description="DLQ payloads above this are cut (and flagged in headers).")
    max_batch_readings: int = Field(
        100_000, ge=1, description="Envelopes with more readings are dead-lettered whole.")
    fetch_max_records: int = Field(
        500, ge=1, description="Messages per fetch, which bounds memory with large envelopes; a batch "
        "closes at sink_batch_size readings.")
    session_timeout_s: float = Field(
        10.0, ge=6, description="Group session timeout: how fast a dead worker's partitions move on.")
    dlq_retention_hours: float = Field(
        720, gt=0, description="retention.ms of the DLQ topic, set when `streams setup` creates it. "
        "The DLQ holds raw payloads (raw user ids): keep it as short as redrives allow.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Security protocol of every Kafka client (worker, CLI, Airflow tasks, API).")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism of every Kafka client.")
    kafka_sasl_username: str | None = Field(
        None, description="SASL user name; required with a `SASL_*` protocol.")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password; required with a `SASL_*` protocol.")
    kafka_ssl_cafile: str | None = Field(
        None, description="CA bundle (PEM) that signed the brokers' certificates; unset: system CAs. "
        "Host names are always checked.")


class WarehouseSection(Section):
    """The warehouse connection and how the sink batches and retries its writes."""

    TITLE: ClassVar[str] = "PostgreSQL warehouse and sink"

    pg_dsn: SecretStr = Field(
        SecretStr("postgresql://healthmate:healthmate@127.0.0.1:5432/healthmate"),
        description="Warehouse DSN (the runtime role in the least-privilege mode).")
    pg_migration_dsn: SecretStr | None = Field(
        None, description="DSN of the role that owns the schema and applies migrations (default: "
        "pg_dsn). When its user differs from pg_dsn's, pg_dsn's user gets only the runtime grants.")
    pg_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        None, description="TLS of every PostgreSQL connection; unset: the DSN's sslmode (asyncpg's "
        "default: prefer).")
    pg_ssl_rootcert: str | None = Field(
        None, description="CA (PEM) for verify-ca/verify-full; unset: the system CAs.")
    warehouse_schema: str = Field(
        "healthmate", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="Warehouse schema.")
    pg_pool_max: int = Field(4, ge=1, description="Connection pool size.")

    sink_batch_size: int = Field(
        5000, ge=1, description="Readings per warehouse transaction (about; make bench: 5000 moved "
        "+70% readings/s over 2000, p99 latency still < 500 ms at half load).")
    sink_max_latency_ms: int = Field(
        100, ge=1, description="Longest a batch stays open while an earlier one is being written (with "
        "none in flight it closes at once).")
    sink_retry_initial_s: float = Field(
        0.2, gt=0, description="First delay of the warehouse retry backoff.")
    sink_retry_max_s: float = Field(10.0, gt=0, description="Largest delay of the warehouse retry backoff.")
    health_max_poll_age_s: float = Field(
        30.0, gt=0, description="/health answers 503 when the consume loop has not polled for this "
        "long (a wedged loop), or when the write chain broke.")


class ReadingRulesSection(Section):
    """How readings are judged: clocks, the catalogue, outliers."""

    TITLE: ClassVar[str] = "Reading rules"

    future_skew_seconds: int = Field(300, ge=0, description="Tolerated clock skew for future timestamps.")
    late_after_hours: float = Field(
        24.0, gt=0, description="Readings ingested more than this many hours after they were measured "
        "are flagged `late`.")
    catalogue_overrides: dict[str, dict] = Field(
        default_factory=dict,
        description="Metric catalogue changes, per metric: bounds, LOINC code, extra units, or a new "
        'metric. JSON: {"heart_rate": {"outlier_high": 200}}; see streams.domain.catalogue.build_catalogue.',
    )
    naive_timestamps: Literal["reject", "utc"] = Field(
        "reject", description="A timestamp without an offset: 'reject' dead-letters it as "
        "naive_timestamp; 'utc' reads it as UTC (e.g. Python's datetime.utcnow().isoformat()).")
    outlier_strategy: dict[str, Literal["flag", "clip", "drop"]] = Field(
        default_factory=dict,
        description='Per-metric outlier strategy, JSON: {"heart_rate": "clip"}; flag|clip|drop.',
    )


class ApiSection(Section):
    """The REST API: tokens, roles' limits and the warehouse's partitions and retention."""

    TITLE: ClassVar[str] = "API"

    api_jwt_algorithm: Literal["HS256", "RS256"] = Field(
        "HS256", description="The only JWT algorithm the API accepts (HS256 secret or RS256 key).")
    api_jwt_secret: SecretStr | None = Field(
        None, description="HS256 signing secret, >= 32 bytes. Dev mode falls back to a fixed dev secret; "
        "without one outside dev mode the API answers 503.")
    api_jwt_public_key: SecretStr | None = Field(
        None, description="RS256 verification key (PEM). Required when the algorithm is RS256.")
    api_jwt_issuer: str | None = Field(None, description="Required `iss` claim, when set.")
    api_jwt_audience: str | None = Field(
        None, description="Required `aud` claim, when set; when unset, tokens with an `aud` are refused.")
    api_jwt_leeway_s: int = Field(10, ge=0, le=300, description="Clock skew tolerated on exp/nbf/iat.")
    api_roles_claim: str = Field(
        "roles", min_length=1, description="Claim holding the caller's roles: a list, or one "
        "space-separated string.")
    api_max_body_bytes: int = Field(65_536, ge=1024, description="Larger request bodies answer 413.")
    api_stall_after_s: float = Field(
        60.0, gt=0, description="A partition with lag and no commit for this long is reported stalled "
        "(`/pipeline/status` shows it).")
    api_redrive_timeout_s: float = Field(60.0, gt=0, description="Longest a DLQ redrive may scan.")
    api_jwt_max_ttl_s: int = Field(
        86_400, ge=60, description="Longest token lifetime accepted: exp - iat (exp - now without iat).")
    api_rate_per_subject: float = Field(
        20.0, gt=0, description="Sustained calls per second allowed per token subject (429 beyond).")
    api_burst_per_subject: int = Field(400, ge=1, description="Calls a subject may make at once.")
    api_rate_per_address: float = Field(
        50.0, gt=0, description="Sustained calls per second allowed per client address (429 beyond), "
        "checked before the token.")
    api_burst_per_address: int = Field(1000, ge=1, description="Calls an address may make at once.")
    api_heavy_concurrency: int = Field(
        2, ge=1, le=64, description="Analyses, redrives and API-started runs in flight at once (429 beyond).")
    api_public_url: str | None = Field(
        None, pattern=r"^https?://[^/?#\s]+$", description="Origin (scheme://host[:port], no path) at "
        "which clients reach the API: FHIR Bundles give each entry's absolute fullUrl under it. Unset: "
        "http://<web_host>:<web_port>; set it where web_host is 0.0.0.0 or a proxy fronts the API.")
    api_max_header_bytes: int = Field(
        8192, ge=1024, le=65_536, description="A request header line or field larger than this answers 431.")
    api_header_timeout_s: float = Field(
        20.0, gt=0, le=600, description="A connection to the worker's web server whose request line and "
        "headers are still incomplete this long after their first byte is closed (slowloris).")
    api_keepalive_timeout_s: float = Field(
        75.0, gt=0, le=3600, description="A connection to the worker's web server that sends no request "
        "this long after it opened or after its last answer is closed (nginx's default).")
    warehouse_partitions_ahead: int = Field(
        2, ge=0, le=24, description="Monthly partitions created ahead of the current month (setup and "
        "`/warehouse/optimize` create them).")
    warehouse_retention_months: int = Field(
        0, ge=0, description="Optimize detaches partitions older than this many months; 0 keeps all.")


class ImportSection(Section):
    """Vendor exports (python -m streams import, POST /data-pipeline/imports)."""

    TITLE: ClassVar[str] = "Importer"

    import_spool_dir: str = Field(
        ".stack/import-spool", description="Where uploads are written while they are imported; each "
        "upload's folder is removed when its import ends, and as a worker starts if the worker that "
        "held it died (several workers may share one spool).")
    import_max_upload_bytes: int = Field(
        2 * 1024**3, ge=1024, description="Larger uploads answer 413 (nothing is kept).")
    import_max_uncompressed_bytes: int = Field(
        32 * 1024**3, ge=1024, description="A zip whose entries add up to more is refused (zip bomb).")
    import_max_compression_ratio: float = Field(
        200.0, ge=2, description="A zip entry that expands more than this many times is refused (zip bomb).")
    import_max_archive_entries: int = Field(
        100_000, ge=1, description="A zip with more entries is refused.")
    import_concurrency: int = Field(
        1, ge=1, le=8, description="Uploaded imports the worker runs at once (429 beyond).")
    import_idle_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="An upload whose body stops arriving for this long answers 408 "
        "and is deleted (a stalled client would hold an import slot).")
    import_min_bytes_per_s: float = Field(
        500.0, gt=0, description="After the first HEALTHMATE_IMPORT_IDLE_TIMEOUT_S seconds, an upload must "
        "arrive at this average rate or answer 408 and is deleted (a trickle of a byte every few seconds "
        "would hold an import slot for ever); Apache's mod_reqtimeout default.")


class GatewaySection(Section):
    """The gateway process (python -m web gateway)."""

    TITLE: ClassVar[str] = "HTTP ingest gateway"

    gateway_host: str = Field(
        "127.0.0.1", description="Address the gateway binds (0.0.0.0 in a container).")
    gateway_port: int = Field(6070, ge=1, le=65535, description="Port of the HTTP ingest gateway.")
    gateway_max_body_bytes: int = Field(
        4_194_304, ge=1024, description="Largest request body as sent (compressed or not); 413 beyond.")
    gateway_max_decompressed_bytes: int = Field(
        8_388_608, ge=1024,
        description="Largest gzip request body once decompressed (gzip bombs); 413 beyond.")
    gateway_max_message_bytes: int = Field(
        262_144, ge=256, description="Largest single document (one reading, envelope, resource); 413 beyond.")
    gateway_max_documents: int = Field(
        1000, ge=1, description="Documents per request (NDJSON lines, array members).")
    gateway_max_depth: int = Field(
        32, ge=2, le=1000, description="Deepest JSON nesting accepted in a document.")
    gateway_ack_timeout_s: float = Field(
        10.0, gt=0, description="Longest wait for Kafka to acknowledge a request's messages; 503 beyond.")
    gateway_linger_ms: int = Field(5, ge=0, le=1000, description="Producer linger: batching against latency.")
    gateway_rate_per_token: float = Field(
        50.0, gt=0,
        description="Sustained requests per second per token (jti, else subject and roles); 429 beyond.")
    gateway_burst_per_token: int = Field(100, ge=1, description="Requests a token may make at once.")
    gateway_tls_cert_file: str | None = Field(
        None, description="Serve HTTPS with this certificate chain (PEM); unset: HTTP behind a TLS proxy.")
    gateway_tls_key_file: str | None = Field(
        None, description="The private key (PEM) of HEALTHMATE_GATEWAY_TLS_CERT_FILE.")
    gateway_shutdown_grace_s: float = Field(
        20.0, gt=0, description="On SIGTERM, how long in-flight requests may take to finish.")
    gateway_header_timeout_s: float = Field(
        20.0, gt=0, le=600, description="A connection whose request line and headers are still incomplete "
        "this long after their first byte is closed (slowloris), counted as refusal reason header_timeout.")
    gateway_keepalive_timeout_s: float = Field(
        75.0, gt=0, le=3600, description="A connection that sends no request this long after it opened or "
        "after its last answer is closed (nginx's default).")
    gateway_body_idle_timeout_s: float = Field(
        30.0, gt=0, le=600, description="A request whose body stops arriving for this long answers 408 "
        "(reason body_idle); nothing of it reaches Kafka.")
    gateway_body_min_bytes_per_s: float = Field(
        500.0, gt=0, description="After the first HEALTHMATE_GATEWAY_BODY_IDLE_TIMEOUT_S seconds, a body "
        "must arrive at this average rate or answer 408 (reason body_too_slow: a trickle); Apache's "
        "mod_reqtimeout default.")


class QualitySection(Section):
    """In-stream quality windows and the quality rules."""

    TITLE: ClassVar[str] = "Data quality"

    quality_enabled: bool = Field(True, description="Score every committed batch in-stream.")
    quality_windows_s: list[PositiveInt] = Field(
        default_factory=lambda: [60, 3600], min_length=1,
        description="Tumbling quality window sizes in seconds, JSON list.")
    quality_window_grace_s: float = Field(
        10.0, ge=0, description="A window closes this long after its end (late increments are dropped).")
    quality_tick_interval_s: float = Field(
        5.0, gt=0, description="How often the worker looks for windows to close.")
    quality_threshold: float = Field(
        0.85, ge=0, le=1, description="Windows scoring below this are marked below_threshold.")
    quality_min_records: PositiveInt = Field(
        20, description="A quality window is judged (level, below_threshold, the alert) only once it "
                        "holds this many records; before that its level is 'collecting'. At 20, one bad "
                        "record moves a dimension by at most 0.05.")
    quality_weights: dict[str, float] = Field(
        default_factory=dict, description='Dimension weights, JSON: {"validity": 2}; unlisted weigh 1.')
    quality_timeliness_s: float = Field(
        3600.0, gt=0, description="Largest measured-to-ingested lag that counts as timely.")
    known_sources: list[str] = Field(
        default_factory=lambda: list(KNOWN_SOURCES), min_length=1,
        description="Sources that get their own metric label and quality windows, JSON list; "
        "any other source is counted as `other` (bounded label cardinality).")
    quality_timeliness_by_source_s: dict[str, float] = Field(
        default_factory=dict, description='Per-source timeliness threshold, JSON: {"withings": 86400}.')


class BatchSection(Section):
    """ETL jobs, lineage, outbound calls, the Airflow DAGs and Spark replays."""

    TITLE: ClassVar[str] = "Batch, lineage, Airflow and Spark"

    openlineage_url: str | None = Field(
        None, pattern=r"^https?://", description="OpenLineage HTTP endpoint base; events are POSTed to "
        "{url}/api/v1/lineage. Unset: events are only stored in lineage_events.")
    outbound_allow_hosts: str = Field(
        "", description="Comma-separated hosts (names or addresses) that webhooks and OpenLineage "
        "may call although they are not public (e.g. 127.0.0.1 for a local receiver).")
    openlineage_api_key: SecretStr | None = Field(
        None, description="Bearer token sent with OpenLineage events, when set.")
    openlineage_namespace: str = Field(
        "healthmate", min_length=1, description="OpenLineage job namespace of batch jobs and replays.")
    etl_retry_initial_s: float = Field(
        1.0, gt=0, description="First ETL retry delay; it doubles on each retry, and each delay is "
        "multiplied by a random factor in [0.5, 1).")
    etl_retry_max_s: float = Field(60.0, gt=0, description="Largest ETL retry delay.")
    etl_http_timeout_s: float = Field(
        5.0, gt=0, description="Timeout of one webhook or OpenLineage POST; a failure never fails a job.")
    airflow_dag_prefix: str = Field(
        "healthmate_etl_", pattern=r"^[a-z][a-z0-9_]*$", description="DAG id = prefix + job_id.")
    airflow_owner: str = Field("healthmate", min_length=1, description="Owner of the generated DAGs.")
    airflow_retry_delay_s: float = Field(
        60.0, gt=0, description="Airflow's first retry delay for job DAGs (exponential backoff).")
    spark_master: str = Field(
        "local[*]", min_length=1, description="Spark master of `--engine spark` replays: local[N], "
        "spark://HOST:PORT (a standalone cluster) or k8s://https://HOST:PORT.")
    spark_jars_dir: str = Field(
        ".stack/spark-jars", description="Cache of the Spark Kafka connector's jars, fetched from Maven "
        "Central on first use (scripts/spark/pom.xml).")
    spark_task_max_failures: int = Field(
        4, ge=1, description="Attempts of one Spark task before the replay fails (a retried task stores "
        "nothing twice).")


#: In the order of the settings reference.
SECTIONS: tuple[type[Section], ...] = (
    ProcessSection, KafkaSection, WarehouseSection, ReadingRulesSection, ApiSection, ImportSection,
    GatewaySection, QualitySection, BatchSection)
