"""Every error the pipeline raises on purpose. The class says what happens next.

- ``Rejected``: the input is bad. Never retried; the record goes to the dead-letter topic
  with ``code`` as its reason. Messages must not contain PHI (no user ids, no values that
  identify a person).
- ``Retryable``: a dependency is down (warehouse, broker). Retried with backoff; nothing
  is acknowledged meanwhile, which is what applies backpressure.
- ``Fatal``: the process cannot do its job (bad configuration). It stops with a clear
  message instead of looping.
"""

from __future__ import annotations

from enum import StrEnum


class HealthMateError(Exception):
    """Base of every deliberate pipeline error."""


class RejectReason(StrEnum):
    """Dead-letter reason codes; the values are part of the wire contract."""

    MALFORMED_JSON = "malformed_json"
    MISSING_FIELD = "missing_field"
    INVALID_TYPE = "invalid_type"
    UNKNOWN_METRIC = "unknown_metric"
    UNKNOWN_UNIT = "unknown_unit"
    OUT_OF_RANGE = "out_of_range"
    NAIVE_TIMESTAMP = "naive_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    OVERSIZED = "oversized"
    OUTLIER_DROPPED = "outlier_dropped"
    TEXT_TOO_LONG = "text_too_long"
    CONTROL_CHARACTER = "control_character"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    #: PostgreSQL refused the reading for a reason retrying cannot fix (found by bisection).
    SINK_REJECTED = "sink_rejected"
    SCHEMA_VIOLATION = "schema_violation"
    UNSUPPORTED_SCHEMA = "unsupported_schema"
    #: An interval that ends before it starts: valid in form (a standard's schema may allow it),
    #: never a true measurement.
    REVERSED_INTERVAL = "reversed_interval"
    #: The reading's subject is in the erasure register: never stored, no payload kept.
    SUBJECT_ERASED = "subject_erased"


class Rejected(HealthMateError):
    """A record that can never be stored; route it to the DLQ with ``code``."""

    def __init__(self, code: RejectReason, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Retryable(HealthMateError):
    """A transient failure of a dependency; retry the same work later."""


class WarehouseUnavailable(Retryable):
    """PostgreSQL could not be reached or the transaction failed transiently."""


class BatchRefused(HealthMateError):
    """PostgreSQL refused a batch for a reason retrying cannot fix (a data error).

    The ingest isolates the refused readings by bisection and dead-letters them as
    ``sink_rejected``; the rest of the batch commits. ``error_class`` is the asyncpg
    exception class name (e.g. ``CharacterNotInRepertoireError``), never its message,
    which may quote the data."""

    def __init__(self, error_class: str, sqlstate: str | None) -> None:
        super().__init__(f"PostgreSQL refused the batch: {error_class} (SQLSTATE {sqlstate})")
        self.error_class = error_class
        self.sqlstate = sqlstate


class SubjectsErased(HealthMateError):
    """A batch holds readings of subjects in the erasure register; its transaction was
    rolled back. The writer dead-letters those readings as ``subject_erased`` (without
    their payload) and writes the rest. ``user_keys`` are pseudonyms, never raw ids."""

    def __init__(self, user_keys: frozenset[str]) -> None:
        super().__init__(f"{len(user_keys)} erased subject(s) in the batch")
        self.user_keys = user_keys


class Fatal(HealthMateError):
    """The process cannot continue; stop and say why."""


class ConfigurationError(Fatal):
    """Settings are missing or contradictory."""


class OutboundRefused(HealthMateError):
    """An outbound URL (webhook, OpenLineage) points where the pipeline may not call:
    refused when configured (422 / configuration error) and again before every send."""


class ImportFileError(HealthMateError):
    """An export file that cannot be read (damaged, wrong format, naive times without a zone).

    The importer reports it in one line naming the file and the place of damage (never a value
    from the file) and goes on with the other files.
    """


class ImportRefused(ImportFileError):
    """A file refused for what it is, not for damage: ``kind`` names why (``zip_bomb``,
    ``nested_archive``, ``path_escape``, ``xml_bomb``, ``unknown_format``). The upload answers
    it with a 4xx and keeps nothing."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ImportCancelled(HealthMateError):
    """An import stopped before its end (the worker is stopping)."""


class ImportStopped(HealthMateError):
    """Where the importer puts the messages stopped taking them (a dry run's output closed or
    full): the whole import stops, as every other file would fail the same way, and no file is
    blamed. The message names the cause by its class, never a value."""


class PublishFailed(ImportStopped):
    """Kafka did not take the importer's messages (it refused them, or stayed out of reach
    past the producer's timeout). What it took before is stored once: import again."""
