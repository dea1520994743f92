"""The one settings object. Nothing else in the project reads the environment.

Every field is read from ``HEALTHMATE_<FIELD>`` (upper case). Defaults match the local
stack that ``scripts/stack.sh up`` starts, so a fresh checkout runs with no configuration.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from streams.config_sections import (
    ApiSection,
    BatchSection,
    GatewaySection,
    ImportSection,
    KafkaSection,
    ProcessSection,
    QualitySection,
    ReadingRulesSection,
    WarehouseSection,
)
from streams.domain.catalogue import build_catalogue
from streams.domain.outbound import check_outbound_url
from streams.domain.quality import DIMENSIONS, QualityConfig
from streams.errors import ConfigurationError, OutboundRefused

DEV_PSEUDONYM_KEY = "healthmate-dev-only-pseudonym-key"
DEV_JWT_SECRET = "healthmate-dev-only-api-jwt-secret-not-for-production"


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


# Bases in reverse: pydantic orders fields from the last base to the first.
class Settings(BaseSettings, BatchSection, QualitySection, GatewaySection, ImportSection, ApiSection,
               ReadingRulesSection, WarehouseSection, KafkaSection, ProcessSection):
    """Frozen runtime configuration; build one per process (tests build their own).

    The fields come from the sections of :mod:`streams.config_sections` (Kafka, warehouse,
    API, quality, batch ...); the checks that span sections and the derived values are here.

    Every secret (a ``SecretStr``) is masked in ``repr`` and dumps, and may come from a file
    named by ``HEALTHMATE_<FIELD>_FILE``.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: Any,
                                   env_settings: Any, dotenv_settings: Any, file_secret_settings: Any,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, SecretFilesSource(settings_cls)

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

    @model_validator(mode="after")
    def _quality_rules_valid(self) -> Settings:
        try:
            self.quality_rules  # noqa: B018 - built (and so validated) once, here
        except ConfigurationError as exc:
            raise ConfigurationError(f"HEALTHMATE_QUALITY_WEIGHTS or HEALTHMATE_QUALITY_TIMELINESS_*: {exc}"
                                     ) from None
        return self

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
