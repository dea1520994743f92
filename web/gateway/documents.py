"""From a checked document to a Kafka message bound to its user, and the ids it will get. Pure.

Binding (:func:`bind`):

- the form is recognised the way the worker dispatches (envelope, Open mHealth data point,
  FHIR resource, wide, single reading); a document in none of them is refused (400);
- the user a document names is its ``user_id`` (our forms), the Open mHealth header's
  ``user_id`` (an integer is its decimal string, as the worker reads it) or the FHIR subject
  (``Patient/<id>``);
- a ``producer`` token may only write its own user (``sub``): a document naming another user
  is refused (403), one naming none gets the token's user (written into our forms, and the
  message key for the standard forms, which the worker reads as the user when the resource
  names none);
- a token that may write for any user (``ingest-service``) must name the user in every
  document (400 otherwise);
- the message key is the user id, as every producer of the raw topic keys it
  (:func:`streams.producer.stream_data`), and the value is the document's bytes unchanged
  unless the user had to be written in.

Event ids (:class:`EventIds`): the worker's own :func:`~streams.domain.validate.process_message`
run on the message exactly as it will be consumed (same key, same pseudonym key, same
catalogue), so the ids, derived ones included, are the ids the warehouse will hold. The run
never refuses anything: a reading it cannot give an id to (the worker will dead-letter it)
simply has none, and the worker stays the one judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.domain import fhir, omh
from streams.domain.catalogue import MetricRule
from streams.domain.judge import Rules
from streams.domain.validate import process_message
from streams.records import MessageContext
from web.errors import BadRequest, Forbidden
from web.gateway.body import Document

OUR_FORMS = frozenset({"single", "envelope", "wide"})


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message of the raw topic."""

    key: bytes
    value: bytes
    user_id: str
    form: str


def form_of(doc: Mapping[str, Any], catalogue: Mapping[str, MetricRule]) -> str | None:
    """The input form of ``doc`` in the worker's order of recognition, or None."""
    if "readings" in doc or "batch_id" in doc:
        return "envelope"
    if omh.is_data_point(doc):
        return "openmhealth"
    if fhir.is_resource(doc):
        return "fhir"
    if "metric" in doc:
        return "single"
    if not catalogue.keys().isdisjoint(doc):
        return "wide"
    return None


def bind(document: Document, subject: str, *, any_user: bool, catalogue: Mapping[str, MetricRule]
         ) -> Message:
    """The message for ``document`` written by ``subject`` (see the module contract)."""
    doc, index = document.doc, document.index
    form = form_of(doc, catalogue)
    if form is None:
        raise BadRequest(f"document {index} is in no known input form (single, envelope, wide, "
                         "Open mHealth, FHIR)", reason="unknown_form")
    named = named_users(doc, form, index, catalogue)
    if any_user:
        if not named:
            raise BadRequest(f"document {index} names no user", reason="no_user")
        return Message(named[0].encode(), document.raw, named[0], form)
    if any(user != subject for user in named):
        raise Forbidden(f"document {index} names a user other than the token's", reason="other_user")
    value = document.raw
    if not named and form in OUR_FORMS:
        value = orjson.dumps({**doc, "user_id": subject})
    return Message(subject.encode(), value, subject, form)


def named_users(doc: Mapping[str, Any], form: str, index: int, catalogue: Mapping[str, MetricRule]
                ) -> list[str]:
    """The users ``doc`` names (empty: none); a mistyped user field is refused (400)."""
    if form in OUR_FORMS or form == "openmhealth":
        holder = doc if form in OUR_FORMS else doc.get("header")
        user = holder.get("user_id") if isinstance(holder, dict) else None
        if user is None:
            return []
        if user.__class__ is int:  # as the worker reads it in every form: 1 is the user "1"
            return [str(user)]
        if user.__class__ is str and user:
            return [user]
        raise BadRequest(f"document {index}: user_id must be a non-empty string or an integer",
                         reason="bad_user")
    return list(dict.fromkeys(unit.user_id for unit in fhir.map_resource(doc, None, catalogue)
                              if unit.user_id))


class EventIds:
    """The event ids the worker will store for a message (see the module contract)."""

    def __init__(self, rules: Rules) -> None:
        # Judged as if just measured and with every outlier flagged: the id of a reading
        # never depends on the clock or the outlier policy, only whether it gets stored does.
        self.rules = replace(rules, future_skew=timedelta(days=365_000), outlier_strategies={})

    def of(self, messages: list[Message], now: datetime | None = None) -> tuple[list[list[str]], int]:
        """``(the event ids of each message in input order, readings counted)``."""
        ctx = MessageContext("gateway", 0, 0, now or datetime.now(UTC))  # one for the request
        ids, readings = [], 0
        for message in messages:
            outcome = process_message(message.value, ctx, self.rules, message.key)
            ids.append([r.event_id for r in outcome.readings])
            readings += len(outcome.readings) + len(outcome.dead_letters)
        return ids, readings
