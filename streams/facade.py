"""The specification's Python API for the streaming side: thin facades, no logic of their own.

``from streams import StreamingDataProcessor, DataValidator, DataTransformer`` (loaded on
first use, so ``import streams`` stays cheap). Every check, conversion and score comes
from :mod:`streams.domain` (``process_message``, the quality rules); these classes only
feed it and hand back plain values.

*Raw* data, for the validator and the transformer, means wire messages of any form
(single reading, envelope, wide: see :mod:`streams.records`) as dicts, JSON strings or
bytes. Rules come from the settings (``HEALTHMATE_*``) when they can be built, so that
``HEALTHMATE_NAIVE_TIMESTAMPS=utc`` applies; without a pseudonym key (and not in dev
mode) a random per-process key is used, which only the pseudonyms in the output reveal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.clock import utc_now
from streams.config import Settings
from streams.connections import kafka_kwargs
from streams.domain.quality import ALL_METRICS, DataQualityMetrics, QualityConfig
from streams.domain.quality import DataValidator as _DomainValidator
from streams.domain.validate import Rules, process_message
from streams.errors import ConfigurationError
from streams.producer import stream_data
from streams.records import DeadLetter, MessageContext, MessageOutcome, NormalisedReading

Processor = Callable[[dict[str, Any]], Any | Awaitable[Any]]
RawMessage = Mapping[str, Any] | str | bytes


def default_rules(settings: Settings | None = None) -> Rules:
    """The rules of ``settings`` (default: from the environment); see the module docstring."""
    from streams.rules import rules_from_settings

    try:
        return rules_from_settings(settings or Settings())  # type: ignore[call-arg]  # read from the environment
    except ConfigurationError:
        return dataclasses.replace(Rules.default(secrets.token_bytes(32)),
                                   naive_timestamps=Settings.model_fields["naive_timestamps"].default)


def reading_dict(reading: NormalisedReading) -> dict[str, Any]:
    """A fresh plain dict of one normalised reading (aware datetimes, flags as a list)."""
    out = dataclasses.asdict(reading)
    out["quality_flags"] = list(reading.quality_flags)
    return out


def judge_raw(data: RawMessage | Iterable[RawMessage], rules: Rules, now: datetime,
              topic: str = "python-api") -> MessageOutcome:
    """Every reading and dead letter of one raw message or a list of them (offsets = positions)."""
    messages = [data] if isinstance(data, Mapping | str | bytes) else list(data)
    total = MessageOutcome()
    for offset, message in enumerate(messages):
        value = message if isinstance(message, bytes) else (
            message.encode() if isinstance(message, str)
            else orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS))
        outcome = process_message(value, MessageContext(topic, 0, offset, now), rules)
        total.readings.extend(outcome.readings)
        total.dead_letters.extend(outcome.dead_letters)
    return total


def _metric_filter(data_type: str, rules: Rules) -> str | None:
    """None for every metric, else the catalogue metric; ``ValueError`` for anything else."""
    name = data_type.strip().lower()
    if name == ALL_METRICS:
        return None
    if name not in rules.catalogue:
        raise ValueError(f"data_type must be {ALL_METRICS!r} or a catalogue metric, not {data_type[:64]!r}")
    return name


class DataTransformer:
    """``transform_data(data, data_type)``: raw messages -> normalised readings as plain dicts.

    Exactly what the worker would store (canonical UCUM units, pseudonymised user, flags),
    as new dicts the caller may change. ``data_type="health_metrics"`` keeps every metric, a
    metric name keeps that metric (``ValueError`` for any other name). Bad records are
    never raised: they are left out, and the last call's are in :attr:`dead_letters`.
    """

    def __init__(self, rules: Rules | None = None, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.rules = rules or default_rules()
        self.clock = clock
        self.dead_letters: list[DeadLetter] = []

    def transform_data(self, data: RawMessage | Iterable[RawMessage], data_type: str = ALL_METRICS
                       ) -> list[dict[str, Any]]:
        metric = _metric_filter(data_type, self.rules)
        outcome = judge_raw(data, self.rules, self.clock())
        self.dead_letters = outcome.dead_letters
        return [reading_dict(r) for r in outcome.readings if metric is None or r.metric == metric]


class DataValidator(_DomainValidator):
    """The quality rules of :class:`streams.domain.quality.DataValidator`, also for raw data.

    ``validate_data_quality(data, data_type)`` returns :class:`DataQualityMetrics`
    (``overall_score``, ``quality_level``, ``completeness``, ``accuracy``,
    ``consistency``, ``timeliness``, ``validity``, ``issues``, ``recommendations``; every
    score in [0, 1]). ``data`` holds stored rows / normalised readings (judged as they are)
    or raw messages, which are first judged like the worker does: their dead letters count
    as rejected records. ``data_type``: a metric, or ``health_metrics`` for every metric.
    """

    def __init__(self, config: QualityConfig | None = None, *, rules: Rules | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__(config)
        self._rules, self.clock = rules, clock

    def validate_data_quality(self, data: Sequence[Any], data_type: str, *,
                              rejected: Mapping[Any, int] | None = None) -> DataQualityMetrics:
        items = [data] if isinstance(data, Mapping) else list(data)
        stored = [d for d in items if _is_stored(d)]
        raw = [d for d in items if not _is_stored(d)]
        counts: dict[Any, int] = dict(rejected or {})
        if raw:
            self._rules = self._rules or default_rules()
            metric = _metric_filter(data_type, self._rules)
            outcome = judge_raw(raw, self._rules, self.clock())
            stored.extend(outcome.readings)
            for letter in outcome.dead_letters:
                if metric is None or letter.metric in (metric, None):
                    key = (str(letter.code), letter.source)
                    counts[key] = counts.get(key, 0) + 1
        return super().validate_data_quality(stored, data_type, rejected=counts)


def _is_stored(item: Any) -> bool:
    return isinstance(item, NormalisedReading) or (isinstance(item, Mapping) and "user_key" in item
                                                   and "measured_at" in item)


class StreamingDataProcessor:
    """Kafka for the Python API: create topics, publish readings, run a custom processor.

    ``config``: ``bootstrap_servers`` (list or comma-separated string), ``topics`` (the
    default topic is the first), ``consumer_group``; absent keys come from ``settings``
    (default: the environment). Use ``async with`` or ``await close()`` to stop the
    producer it opens on first publish.
    """

    def __init__(self, config: Mapping[str, Any] | None = None, *, settings: Settings | None = None,
                 rules: Rules | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        config = dict(config or {})
        self._given_settings = settings
        self.settings = settings or _settings_or_defaults()
        servers = config.get("bootstrap_servers", self.settings.kafka_bootstrap)
        self.bootstrap = ",".join(servers) if isinstance(servers, list | tuple) else str(servers)
        self.topics = list(config.get("topics") or [self.settings.raw_topic])
        self.consumer_group = str(config.get("consumer_group") or f"{self.settings.app_id}-processors")
        # TLS/SASL from the settings; the servers from the config
        self.kafka = {**kafka_kwargs(self.settings), "bootstrap_servers": self.bootstrap}
        self._rules, self.clock = rules, clock
        self._producer: AIOKafkaProducer | None = None

    @property
    def rules(self) -> Rules:
        self._rules = self._rules or default_rules(self._given_settings)
        return self._rules

    def create_kafka_topic(self, name: str, partitions: int = 3, replication_factor: int | None = None,
                           topic_config: Mapping[str, str] | None = None) -> bool:
        """Create ``name`` if missing (blocking, callable from sync or async code); True if created
        now, False if it existed (its partitions are then left as they are)."""
        topic = NewTopic(name, partitions, replication_factor or self.settings.topic_replication,
                         topic_configs=dict(topic_config or {}))
        return _run_blocking(self._create(topic))

    async def _create(self, topic: NewTopic) -> bool:
        admin = AIOKafkaAdminClient(**self.kafka)
        await admin.start()
        try:
            if topic.name in set(await admin.list_topics()):
                return False
            try:
                await admin.create_topics([topic])
            except TopicAlreadyExistsError:
                return False
            return True
        finally:
            await admin.close()

    async def stream_data(self, topic: str | None = None, data: Mapping[str, Any] | None = None) -> None:
        """Publish one message of any wire form, keyed by its user id (a number counts as its
        decimal string); returns once the broker acknowledged it. ``ValueError`` without a user id."""
        if data is None:
            raise ValueError("give the data to publish")
        if self._producer is None:
            self._producer = AIOKafkaProducer(**self.kafka, acks="all")
            await self._producer.start()
        await stream_data(self._producer, topic or self.topics[0], data)

    async def process_streaming_data(self, topic: str | None = None,
                                     processor_func: Processor | None = None, *,
                                     output_topic: str | None = None, max_messages: int | None = None,
                                     timeout: float | None = None) -> dict[str, int]:
        """Consume ``topic`` (group ``consumer_group``, from the earliest uncommitted offset),
        judge each message with the worker's validation, and call ``processor_func`` (sync or
        async) with each normalised reading as a plain dict. A result that is not None is
        published as JSON to ``output_topic`` when given (created if missing, with
        ``HEALTHMATE_TOPIC_PARTITIONS`` partitions). Runs until cancelled, or until
        ``max_messages`` messages or ``timeout`` seconds; offsets are committed after each
        fetched batch is processed (at least once). Bad records are not passed on and not
        dead-lettered here (the ingest worker does that for its topic); they are counted.
        An exception of ``processor_func`` stops the call and propagates; the offsets of its
        batch are not committed, so a new call sees that batch again.
        Returns ``{"messages", "readings", "dead_letters", "published"}``.
        """
        if processor_func is None:
            raise ValueError("give a processor_func")
        counts = {"messages": 0, "readings": 0, "dead_letters": 0, "published": 0}
        consumer = AIOKafkaConsumer(topic or self.topics[0], **self.kafka, group_id=self.consumer_group,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        producer = None
        if output_topic:
            await self._create(NewTopic(output_topic, self.settings.topic_partitions,
                                        self.settings.topic_replication))
            producer = AIOKafkaProducer(**self.kafka, acks="all")
        await consumer.start()
        scope = asyncio.timeout(timeout)
        try:
            if producer is not None:
                await producer.start()
            async with scope:
                while max_messages is None or counts["messages"] < max_messages:
                    batches = await consumer.getmany(timeout_ms=500, max_records=(
                        None if max_messages is None else max_messages - counts["messages"]))
                    for record in (r for records in batches.values() for r in records):
                        await self._one(record, processor_func, producer, output_topic, counts)
                    if batches:
                        await consumer.commit()
        except TimeoutError:
            if not scope.expired():
                raise  # not our timeout: the processor's or a broker's
        finally:
            await consumer.stop()
            if producer is not None:
                await producer.stop()
        return counts

    async def _one(self, record: Any, func: Processor, producer: AIOKafkaProducer | None,
                   output_topic: str | None, counts: dict[str, int]) -> None:
        produced = datetime.fromtimestamp(record.timestamp / 1000, tz=UTC) if record.timestamp else None
        ctx = MessageContext(record.topic, record.partition, record.offset, self.clock(), produced)
        outcome = process_message(record.value, ctx, self.rules, record.key)
        counts["messages"] += 1
        counts["dead_letters"] += len(outcome.dead_letters)
        for reading in outcome.readings:
            result = func(reading_dict(reading))
            if inspect.isawaitable(result):
                result = await result
            counts["readings"] += 1
            if producer is not None and output_topic and result is not None:
                await producer.send_and_wait(output_topic, orjson.dumps(result, default=str),
                                             key=reading.user_key.encode())
                counts["published"] += 1

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> StreamingDataProcessor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _settings_or_defaults() -> Settings:
    """The environment's settings; without a pseudonym key, the defaults (in dev mode, for
    topics and servers only: the rules then use a random key, see :func:`default_rules`)."""
    try:
        return Settings()  # type: ignore[call-arg]  # read from the environment
    except ConfigurationError:
        return Settings.model_validate({"dev_mode": True})


def _run_blocking(coroutine: Awaitable[Any]) -> Any:
    """Run ``coroutine`` to its end from sync code, even inside a running event loop (on a thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coroutine)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, name="healthmate-admin")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
