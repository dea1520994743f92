"""API errors, and the one place where any exception becomes an HTTP answer.

:func:`to_api_error` is total: whatever a handler raises becomes an :class:`ApiError`
whose ``message`` is safe to show. Only deliberate 4xx errors carry their own message;
every 5xx answer says what kind of dependency failed and nothing more (no stack trace,
SQL, DSN or key). The full exception is logged server-side with the request id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pydantic
from aiokafka.errors import KafkaError

from streams.errors import Rejected, Retryable
from streams.sink.warehouse import TRANSIENT_ERRORS


class ApiError(Exception):
    """An answer other than success. Subclasses fix the status and the error code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    outcome: ClassVar[str] = "error"

    def __init__(self, message: str, *, fields: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        self.headers = headers or {}
        #: A low-cardinality label for refusal metrics (the ingest gateway's); default: the code.
        self.reason = reason or self.code

    def body(self, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message, "request_id": request_id}
        if self.fields is not None:
            body["fields"] = self.fields
        return body


class Unauthenticated(ApiError):
    status, code, outcome = 401, "unauthenticated", "unauthenticated"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                         reason=reason)


class Forbidden(ApiError):
    status, code, outcome = 403, "forbidden", "denied"


class NotFound(ApiError):
    status, code, outcome = 404, "not_found", "not_found"


class RequestTimeout(ApiError):
    status, code, outcome = 408, "request_timeout", "invalid"


class Conflict(ApiError):
    status, code, outcome = 409, "conflict", "conflict"


class PayloadTooLarge(ApiError):
    status, code, outcome = 413, "payload_too_large", "invalid"


class UnsupportedMediaType(ApiError):
    status, code, outcome = 415, "unsupported_media_type", "invalid"


class ExpectationFailed(ApiError):
    status, code, outcome = 417, "expectation_failed", "invalid"


class MethodNotAllowed(ApiError):
    status, code, outcome = 405, "method_not_allowed", "invalid"


class HeadersTooLarge(ApiError):
    status, code, outcome = 431, "request_header_fields_too_large", "invalid"


class BadRequest(ApiError):
    status, code, outcome = 400, "bad_request", "invalid"


class TooManyRequests(ApiError):
    """A rate limit or the concurrency cap: retry after ``retry_after`` seconds."""

    status, code, outcome = 429, "too_many_requests", "throttled"

    def __init__(self, message: str, *, retry_after: int, reason: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, reason=reason)


class InvalidInput(ApiError):
    status, code, outcome = 422, "invalid_input", "invalid"


class ApiUnavailable(ApiError):
    status, code, outcome = 503, "unavailable", "error"


class Internal(ApiError):
    status, code, outcome = 500, "internal_error", "error"


# Domain errors with their HTTP meaning, most specific first. Areas add their own
# (e.g. an unknown ETL job -> NotFound) with ``register_domain_error``.
@dataclass(frozen=True, slots=True)
class _Mapping:
    exc_type: type[BaseException]
    api_error: type[ApiError]
    message: str | None = None
    loc: tuple[str, ...] | None = None


_DOMAIN_ERRORS: list[_Mapping] = [_Mapping(Rejected, InvalidInput)]


def register_domain_error(exc_type: type[BaseException], api_error: type[ApiError], *,
                          message: str | None = None, loc: tuple[str, ...] | None = None) -> None:
    """Map ``exc_type`` (and subclasses) to ``api_error``.

    Without ``message`` the exception's own text is shown, so register only errors whose
    messages are written for callers (no PHI, no SQL); give ``message`` (and the field
    ``loc``) when the text may echo request input.
    """
    _DOMAIN_ERRORS.insert(0, _Mapping(exc_type, api_error, message, loc))


def validation_fields(exc: pydantic.ValidationError, prefix: str) -> list[dict[str, Any]]:
    """Field errors without the offending input values (they could be PHI)."""
    return [
        {"loc": [prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def to_api_error(exc: BaseException) -> ApiError:
    """The answer for ``exc``; never raises."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, pydantic.ValidationError):
        return InvalidInput("request validation failed", fields=validation_fields(exc, "body"))
    for m in _DOMAIN_ERRORS:
        if isinstance(exc, m.exc_type):
            message = m.message or (exc.message if isinstance(exc, Rejected) else str(exc))
            fields = [{"loc": list(m.loc), "msg": message, "type": "value_error"}] if m.loc else None
            return m.api_error(message or m.api_error.code, fields=fields)
    if isinstance(exc, Retryable):
        return ApiUnavailable("warehouse unavailable, retry later")
    if isinstance(exc, KafkaError):
        return ApiUnavailable("Kafka unavailable, retry later")
    if isinstance(exc, TRANSIENT_ERRORS):
        return ApiUnavailable("a dependency did not answer, retry later")
    return Internal("internal error")
