"""The one settings object. Nothing else in the project reads the environment.

Every field is read from ``HEALTHMATE_<FIELD>`` (upper case). Defaults match the local
stack that ``scripts/stack.sh up`` starts, so a fresh checkout runs with no configuration.
"""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import ConfigurationError

DEV_PSEUDONYM_KEY = "healthmate-dev-only-pseudonym-key"


class Settings(BaseSettings):
    """Frozen runtime configuration; build one per process (tests build their own)."""

    model_config = SettingsConfigDict(env_prefix="HEALTHMATE_", frozen=True, extra="ignore")

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

    # --- PostgreSQL warehouse -------------------------------------------------------------
    pg_dsn: SecretStr = SecretStr("postgresql://healthmate:healthmate@127.0.0.1:5432/healthmate")
    warehouse_schema: str = Field("healthmate", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pg_pool_max: int = Field(4, ge=1)

    # --- sink -----------------------------------------------------------------------
    sink_batch_size: int = Field(2000, ge=1)
    sink_max_latency_ms: int = Field(200, ge=1)
    sink_retry_initial_s: float = Field(0.2, gt=0)
    sink_retry_max_s: float = Field(10.0, gt=0)

    # --- domain rules -----------------------------------------------------------------
    future_skew_seconds: int = Field(300, ge=0)
    late_after_hours: float = Field(24.0, gt=0)
    outlier_strategy: dict[str, str] = Field(
        default_factory=dict,
        description='Per-metric outlier strategy, JSON: {"heart_rate": "clip"}; flag|clip|drop.',
    )

    data_dir: str = Field(".stack/faust-data", description="Faust table state; one folder per app id.")

    # --- web --------------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)

    log_level: str = Field("info", pattern="^(crit|error|warn|info|debug)$")
    log_format: str = Field("text", pattern="^(text|json)$", description="json: one object per line.")

    @model_validator(mode="after")
    def _key_required_outside_dev_mode(self) -> Settings:
        if self.pseudonym_key is None and not self.dev_mode:
            raise ConfigurationError(
                "HEALTHMATE_PSEUDONYM_KEY is not set. Set it, or set HEALTHMATE_DEV_MODE=true "
                "for local development with a fixed, non-secret key."
            )
        return self

    @cached_property
    def pseudonym_key_bytes(self) -> bytes:
        key = self.pseudonym_key.get_secret_value() if self.pseudonym_key else DEV_PSEUDONYM_KEY
        return key.encode()

    @property
    def pg_dsn_value(self) -> str:
        return self.pg_dsn.get_secret_value()
