"""The one settings object. Nothing else in the project reads the environment.

Every field is read from ``HEALTHMATE_<FIELD>`` (upper case). Defaults match the local
stack that ``scripts/stack.sh up`` starts, so a fresh checkout runs with no configuration.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PositiveInt, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from streams.domain.catalogue import build_catalogue
from streams.domain.outbound import check_outbound_url
from streams.domain.quality import DIMENSIONS, QualityConfig
from streams.errors import ConfigurationError, OutboundRefused

DEV_PSEUDONYM_KEY = "healthmate-dev-only-pseudonym-key"
DEV_JWT_SECRET = "healthmate-dev-only-api-jwt-secret-not-for-production"
KNOWN_SOURCES = ("fitbit", "apple_health", "garmin", "withings", "dexcom", "oura", "whoop", "polar",
                 "samsung_health", "google_fit", "omron", "ihealth")


ENV_PREFIX = "HEALTHMATE_"


def _is_secret(field: FieldInfo) -> bool:
    return field.annotation in (SecretStr, SecretStr | None)


class SecretFilesSource(PydanticBaseSettingsSource):
    """``HEALTHMATE_<FIELD>_FILE``: a secret setting read from a file (how k8s and compose
    mount secrets). One trailing newline is dropped. Setting both the variable and its
    ``_FILE`` twin is an error, and so is a file that cannot be read."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every secret at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            var = f"{ENV_PREFIX}{name.upper()}"
            path = os.environ.get(f"{var}_FILE")
            if not _is_secret(field) or path is None:
                continue
            if var in os.environ:
                raise ConfigurationError(f"set {var} or {var}_FILE, not both")
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"{var}_FILE: cannot read {path}: {type(exc).__name__}") from None
            values[name] = text[:-1] if text.endswith("\n") else text
        return values


class Settings(BaseSettings):
    """Frozen runtime configuration; build one per process (tests build their own).

    Every secret (a ``SecretStr``) is masked in ``repr`` and dumps, and may come from a file
    named by ``HEALTHMATE_<FIELD>_FILE``.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: Any,
                                   env_settings: Any, dotenv_settings: Any, file_secret_settings: Any,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, SecretFilesSource(settings_cls)

    # --- identity -------------------------------------------------------------------
    app_id: str = "healthmate-pipeline"
    dev_mode: bool = Field(
        False,
        description="Allow running without HEALTHMATE_PSEUDONYM_KEY, using a fixed dev key. "
        "Never enable in production.",
    )
    pseudonym_key: SecretStr | None = Field(
        None, description="HMAC-SHA256 key for user pseudonyms (required unless dev_mode)."
    )

    # --- Kafka ----------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:29092"
    raw_topic: str = "health.readings.raw"
    dlq_topic: str = "health.readings.dlq"
    profiles_topic: str = Field(
        "health.users.profiles", description="Compacted topic of user profiles (key: user id).")
    topic_partitions: int = Field(4, ge=1)
    topic_replication: int = Field(1, ge=1)
    consumer_group: str = "healthmate-sink"
    max_message_bytes: int = Field(
        1_048_576, ge=1024, description="Larger messages are dead-lettered as oversized.")
    dlq_max_payload_bytes: int = Field(
        1_048_576, ge=1024, description="DLQ payloads above this are cut (and flagged in headers).")
    max_batch_readings: int = Field(
        100_000, ge=1, description="Envelopes with more readings are dead-lettered whole.")
    fetch_max_records: int = Field(
        500, ge=1, description="Messages per fetch; a batch closes at sink_batch_size readings.")
    session_timeout_s: float = Field(
        10.0, ge=6, description="Group session timeout: how fast a dead worker's partitions move on.")
    dlq_retention_hours: float = Field(
        720, gt=0, description="retention.ms of the DLQ topic, set when `streams setup` creates it. "
        "The DLQ holds raw payloads (raw user ids): keep it as short as redrives allow.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = Field(
        None, description="CA bundle (PEM) that signed the brokers' certificates; unset: system CAs.")

    # --- PostgreSQL warehouse -------------------------------------------------------------
    pg_dsn: SecretStr = SecretStr("postgresql://healthmate:healthmate@127.0.0.1:5432/healthmate")
    pg_migration_dsn: SecretStr | None = Field(
        None, description="DSN of the role that owns the schema and applies migrations (default: "
        "pg_dsn). When its user differs from pg_dsn's, pg_dsn's user gets only the runtime grants.")
    pg_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        None, description="TLS to PostgreSQL; unset: the DSN's sslmode (asyncpg's default: prefer).")
    pg_ssl_rootcert: str | None = Field(
        None, description="CA (PEM) for verify-ca/verify-full; unset: the system CAs.")
    warehouse_schema: str = Field("healthmate", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pg_pool_max: int = Field(4, ge=1)

    # --- sink -----------------------------------------------------------------------
    sink_batch_size: int = Field(
        5000, ge=1, description="Readings per warehouse transaction (about; make bench: 5000 moved "
        "+70% readings/s over 2000, p99 latency still < 500 ms at half load).")
    sink_max_latency_ms: int = Field(100, ge=1)
    sink_retry_initial_s: float = Field(0.2, gt=0)
    sink_retry_max_s: float = Field(10.0, gt=0)
    health_max_poll_age_s: float = Field(
        30.0, gt=0, description="/health answers 503 when the consume loop has not polled for this "
        "long (a wedged loop), or when the write chain broke.")

    # --- domain rules -----------------------------------------------------------------
    future_skew_seconds: int = Field(300, ge=0)
    late_after_hours: float = Field(24.0, gt=0)
    catalogue_overrides: dict[str, dict] = Field(
        default_factory=dict,
        description='Metric catalogue changes, JSON: {"heart_rate": {"outlier_high": 200}}; '
        "see streams.domain.catalogue.build_catalogue.",
    )
    naive_timestamps: Literal["reject", "utc"] = Field(
        "reject", description="A timestamp without an offset: 'reject' dead-letters it as "
        "naive_timestamp; 'utc' reads it as UTC (e.g. Python's datetime.utcnow().isoformat()).")
    outlier_strategy: dict[str, Literal["flag", "clip", "drop"]] = Field(
        default_factory=dict,
        description='Per-metric outlier strategy, JSON: {"heart_rate": "clip"}; flag|clip|drop.',
    )

    @model_validator(mode="after")
    def _strategies_name_known_metrics(self) -> Settings:
        try:
            catalogue = build_catalogue(self.catalogue_overrides)
        except ConfigurationError as exc:
            raise ConfigurationError(f"HEALTHMATE_CATALOGUE_OVERRIDES: {exc}") from None
        unknown = sorted(set(self.outlier_strategy) - set(catalogue))
        if unknown:
            raise ConfigurationError(f"HEALTHMATE_OUTLIER_STRATEGY names metrics outside the catalogue: "
                                     f"{', '.join(unknown)}; use catalogue metric names")
        return self

    data_dir: str = Field(".stack/faust-data", description="Faust table state; one folder per app id.")

    # --- web --------------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)

    log_level: str = Field("info", pattern="^(crit|error|warn|info|debug)$")
    log_format: str = Field("text", pattern="^(text|json)$", description="json: one object per line.")

    # --- API ----------------------------------------------------------------------------
    api_jwt_algorithm: Literal["HS256", "RS256"] = Field(
        "HS256", description="The only JWT algorithm the API accepts (HS256 secret or RS256 key).")
    api_jwt_secret: SecretStr | None = Field(
        None, description="HS256 signing secret, >= 32 bytes. Dev mode falls back to a fixed dev secret.")
    api_jwt_public_key: SecretStr | None = Field(
        None, description="RS256 verification key (PEM). Required when the algorithm is RS256.")
    api_jwt_issuer: str | None = Field(None, description="Required `iss` claim, when set.")
    api_jwt_audience: str | None = Field(None, description="Required `aud` claim, when set.")
    api_jwt_leeway_s: int = Field(10, ge=0, le=300, description="Clock skew tolerated on exp/nbf/iat.")
    api_roles_claim: str = Field("roles", min_length=1, description="Claim holding the caller's roles.")
    api_max_body_bytes: int = Field(65_536, ge=1024, description="Larger request bodies answer 413.")
    api_stall_after_s: float = Field(
        60.0, gt=0, description="A partition with lag and no commit for this long is reported stalled.")
    api_redrive_timeout_s: float = Field(60.0, gt=0, description="Longest a DLQ redrive may scan.")
    api_jwt_max_ttl_s: int = Field(
        86_400, ge=60, description="Longest token lifetime accepted: exp - iat (exp - now without iat).")
    api_rate_per_subject: float = Field(
        20.0, gt=0, description="Sustained calls per second allowed per token subject (429 beyond).")
    api_burst_per_subject: int = Field(400, ge=1, description="Calls a subject may make at once.")
    api_rate_per_address: float = Field(
        50.0, gt=0, description="Sustained calls per second allowed per client address (429 beyond).")
    api_burst_per_address: int = Field(1000, ge=1, description="Calls an address may make at once.")
    api_heavy_concurrency: int = Field(
        2, ge=1, le=64, description="Analyses, redrives and API-started runs in flight at once (429 beyond).")
    api_max_header_bytes: int = Field(
        8192, ge=1024, le=65_536, description="A request header line or field larger than this answers 431.")
    warehouse_partitions_ahead: int = Field(
        2, ge=0, le=24, description="Monthly partitions created ahead of the current month.")
    warehouse_retention_months: int = Field(
        0, ge=0, description="Optimize detaches partitions older than this many months; 0 keeps all.")

    # --- importer (python -m streams import, POST /data-pipeline/imports) ---------------
    import_spool_dir: str = Field(
        ".stack/import-spool", description="Where uploads are written while they are imported; each "
        "upload's folder is removed when its import ends.")
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

    # --- HTTP ingest gateway (python -m web gateway) ----------------------------------
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


    # --- data quality -----------------------------------------------------------------
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

    @model_validator(mode="after")
    def _quality_rules_valid(self) -> Settings:
        try:
            self.quality_rules  # noqa: B018 - built (and so validated) once, here
        except ConfigurationError as exc:
            raise ConfigurationError(f"HEALTHMATE_QUALITY_WEIGHTS or HEALTHMATE_QUALITY_TIMELINESS_*: {exc}"
                                     ) from None
        return self

    # --- batch ----------------------------------------------------------------------
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
    etl_retry_initial_s: float = Field(1.0, gt=0, description="First ETL retry delay (doubles, jittered).")
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

    @property
    def outbound_allow_host_list(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.outbound_allow_hosts.split(",") if h.strip())

    @model_validator(mode="after")
    def _openlineage_url_allowed(self) -> Settings:
        if self.openlineage_url:
            try:
                check_outbound_url(self.openlineage_url, self.outbound_allow_host_list)
            except OutboundRefused as exc:
                raise ConfigurationError(f"HEALTHMATE_OPENLINEAGE_URL refused: {exc}") from None
        return self

    @model_validator(mode="after")
    def _key_required_outside_dev_mode(self) -> Settings:
        if self.pseudonym_key is None and not self.dev_mode:
            raise ConfigurationError(
                "HEALTHMATE_PSEUDONYM_KEY is not set. Set it, or set HEALTHMATE_DEV_MODE=true "
                "for local development with a fixed, non-secret key."
            )
        return self

    @model_validator(mode="after")
    def _names_do_not_collide(self) -> Settings:
        if self.consumer_group == self.app_id:
            raise ConfigurationError(
                f"HEALTHMATE_CONSUMER_GROUP equals HEALTHMATE_APP_ID ({self.app_id!r}): Faust uses the app "
                "id as its own consumer group. Set HEALTHMATE_CONSUMER_GROUP to another name.")
        if self.raw_topic == self.dlq_topic:
            raise ConfigurationError(
                "HEALTHMATE_DLQ_TOPIC equals HEALTHMATE_RAW_TOPIC: dead letters would be consumed again. "
                "Give the dead-letter topic its own name.")
        if self.profiles_topic in (self.raw_topic, self.dlq_topic):
            raise ConfigurationError(
                "HEALTHMATE_PROFILES_TOPIC equals the raw or dead-letter topic: profiles would be read as "
                "readings. Give the profiles topic its own name.")
        if self.sink_retry_initial_s > self.sink_retry_max_s:
            raise ConfigurationError(
                "HEALTHMATE_SINK_RETRY_INITIAL_S is larger than HEALTHMATE_SINK_RETRY_MAX_S; "
                "lower the first.")
        return self

    @model_validator(mode="after")
    def _kafka_sasl_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_sasl_username and self.kafka_sasl_password):
            raise ConfigurationError(
                f"HEALTHMATE_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "HEALTHMATE_KAFKA_SASL_USERNAME and HEALTHMATE_KAFKA_SASL_PASSWORD (or _FILE).")
        cafiles = (("KAFKA_SSL_CAFILE", self.kafka_ssl_cafile), ("PG_SSL_ROOTCERT", self.pg_ssl_rootcert))
        for var, path in cafiles:
            if path is not None and not Path(path).is_file():
                raise ConfigurationError(f"HEALTHMATE_{var}: no such file: {path}")
        return self

    @model_validator(mode="after")
    def _gateway_tls_complete(self) -> Settings:
        if (self.gateway_tls_cert_file is None) != (self.gateway_tls_key_file is None):
            raise ConfigurationError("HEALTHMATE_GATEWAY_TLS_CERT_FILE and HEALTHMATE_GATEWAY_TLS_KEY_FILE "
                                     "go together: set both (HTTPS) or neither (HTTP)")
        for name, path in (("CERT", self.gateway_tls_cert_file), ("KEY", self.gateway_tls_key_file)):
            if path is not None and not Path(path).is_file():
                raise ConfigurationError(f"HEALTHMATE_GATEWAY_TLS_{name}_FILE: no such file: {path}")
        return self

    @model_validator(mode="after")
    def _gateway_messages_fit_the_worker(self) -> Settings:
        # The gateway may write a user id into a document: keep room for it below the worker's cap.
        if self.gateway_max_message_bytes > self.max_message_bytes - 1024:
            raise ConfigurationError(
                "HEALTHMATE_GATEWAY_MAX_MESSAGE_BYTES must stay at least 1 KiB below "
                "HEALTHMATE_MAX_MESSAGE_BYTES (the worker dead-letters larger messages as oversized); "
                "lower the first")
        return self

    @model_validator(mode="after")
    def _jwt_secret_long_enough(self) -> Settings:
        secret = self.api_jwt_secret
        if secret is not None and len(secret.get_secret_value().encode()) < 32:
            raise ConfigurationError("HEALTHMATE_API_JWT_SECRET must be at least 32 bytes.")
        return self

    @property
    def api_jwt_key(self) -> str | None:
        """The key that verifies API tokens for ``api_jwt_algorithm``; None: API disabled."""
        if self.api_jwt_algorithm == "RS256":
            return self.api_jwt_public_key.get_secret_value() if self.api_jwt_public_key else None
        if self.api_jwt_secret is not None:
            return self.api_jwt_secret.get_secret_value()
        return DEV_JWT_SECRET if self.dev_mode else None

    @cached_property
    def quality_rules(self) -> QualityConfig:
        """The quality rules these settings describe (unlisted dimensions weigh 1)."""
        return QualityConfig(
            weights={**dict.fromkeys(DIMENSIONS, 1.0), **self.quality_weights},
            timeliness_default=timedelta(seconds=self.quality_timeliness_s),
            timeliness_by_source={s: timedelta(seconds=v)
                                  for s, v in self.quality_timeliness_by_source_s.items()},
            catalogue=build_catalogue(self.catalogue_overrides),
            known_sources=frozenset(s.strip().lower() for s in self.known_sources),
        )

    @cached_property
    def pseudonym_key_bytes(self) -> bytes:
        key = self.pseudonym_key.get_secret_value() if self.pseudonym_key else DEV_PSEUDONYM_KEY
        return key.encode()

    @property
    def pg_dsn_value(self) -> str:
        return self.pg_dsn.get_secret_value()

    @property
    def pg_migration_dsn_value(self) -> str:
        return (self.pg_migration_dsn or self.pg_dsn).get_secret_value()

    @property
    def on_local_stack(self) -> bool:
        """Kafka and PostgreSQL are both on this machine's loopback (the local stack)."""
        kafka_hosts = [h.strip().rsplit(":", 1)[0] for h in self.kafka_bootstrap.split(",")]
        pg_host = urlsplit(self.pg_dsn_value).hostname or "localhost"
        return all(h in _LOOPBACK for h in (*kafka_hosts, pg_host))


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def cli_settings() -> tuple[Settings, bool]:
    """Settings for a command line, and whether the development configuration was chosen
    for the caller: only when ``HEALTHMATE_DEV_MODE`` is not set at all, no pseudonym key is
    set (nor its ``_FILE``), and Kafka and PostgreSQL are on loopback. Otherwise exactly
    ``Settings()``, so outside dev mode a missing key is the usual ``ConfigurationError``."""
    keyed = any(f"{ENV_PREFIX}PSEUDONYM_KEY{suffix}" in os.environ for suffix in ("", "_FILE"))
    if f"{ENV_PREFIX}DEV_MODE" not in os.environ and not keyed:
        local = Settings(dev_mode=True)  # type: ignore[call-arg]
        if local.on_local_stack:
            return local, True
    return Settings(), False  # type: ignore[call-arg]
