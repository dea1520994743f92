"""Replays on Apache Spark: the same judge and the same exactly-once sink, on many cores.

The driver resolves the range exactly as the worker path does (:func:`batch.replay.resolve`),
then Spark's Kafka source reads it in batch mode, one task per partition range. Each task
judges its records with :func:`batch.replay.judge_message` and writes them with
:func:`batch.replay.flush_batch` — the functions the worker path uses, imported, not copied —
in batches of ``HEALTHMATE_SINK_BATCH_SIZE``: rows and the dedup registry in one PostgreSQL
transaction per batch. A task that fails, is retried, or runs speculatively twice therefore
stores nothing twice, and a whole job run twice stores nothing new. Dead letters go to the DLQ
(when ``publish_dead_letters``) with the worker's reasons and headers.

Each task returns its counts (messages, readings, stored, dead letters by reason) and its
quality counts; the driver adds them up into the run's :class:`~batch.replay.ReplayStats` and
:class:`~batch.quality_gate.QualityTally`, so a Spark run records the same summary, quality
and lineage as a worker-path run (lineage names Spark as the processing engine).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord

from batch.config import ReplayRange
from batch.errors import SparkUnavailable
from batch.quality_gate import QualityTally
from batch.replay import ReplayStats, flush_batch, judge_message
from batch.spark_jars import SPARK_VERSION, connector_jars
from streams.acls import REPLAY_GROUP_PREFIX
from streams.batching import PendingBatch
from streams.config import Settings
from streams.connections import kafka_kwargs, warehouse_from_settings
from streams.dlq import DeadLetterPublisher
from streams.domain.quality import DimensionCounts
from streams.rules import rules_from_settings

log = logging.getLogger(__name__)
# py4j logs "Closing down clientserver connection" at INFO from __del__, at interpreter exit,
# after the streams are closed ("I/O operation on closed file"): its INFO lines are noise.
logging.getLogger("py4j").setLevel(logging.WARNING)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: How often the driver reports progress (tasks done of total, readings per second).
PROGRESS_INTERVAL_S = 2.0
#: Messages per Spark task at most (Spark's Kafka source splits a partition's range into tasks
#: of about this size): with one task per Kafka partition, a cluster would use no more cores
#: than the topic has partitions; smaller tasks also make progress and retries finer.
MESSAGES_PER_TASK = 50_000
#: What each task reads of a Kafka record, in the order :func:`_record` unpacks; the time is
#: in milliseconds since the epoch, as aiokafka gives it (no local-time round trip).
COLUMNS = ("topic", "partition", "offset", "unix_millis(timestamp) AS timestamp_ms", "key", "value")


@dataclass(slots=True)
class TaskResult:
    """What one task hands back to the driver (counts only: no reading, no user)."""

    messages: int = 0
    readings: int = 0
    stored: int = 0
    dead_letters: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    quality: dict[str, Any] = field(default_factory=dict)
    erased: int = 0  # readings of erased subjects, refused by the sink (subject_erased)


def spark_replay(settings: Settings, spec: ReplayRange, bounds: dict[int, tuple[int, int]], *, group: str,
                 tally: QualityTally, progress: Callable[[float], None] = lambda f: None,
                 status: Callable[[str], None] = lambda s: None,
                 master: str | None = None) -> tuple[ReplayStats, Counter[str]]:
    """Replay ``bounds`` (``{partition: (first, end exclusive)}``) of ``spec.topic`` on Spark.

    Blocking (call it in a thread). Returns the summed stats and dead letters by reason.
    Every ``PROGRESS_INTERVAL_S`` while tasks run, ``progress`` hears the fraction of tasks
    done and ``status`` a line with tasks done of total and readings per second (logged at INFO
    too)."""
    stats, reasons = ReplayStats(total=sum(hi - lo for lo, hi in bounds.values())), Counter[str]()
    wanted = {p: b for p, b in bounds.items() if b[0] < b[1]}
    if not wanted:
        progress(1.0)
        return stats, reasons
    spark = _session(settings, master or settings.spark_master)
    judged = spark.sparkContext.accumulator(0)  # readings of the tasks done so far (for the rate)
    watcher = _ProgressWatcher(spark, judged, progress, status)
    try:
        starts = {str(p): lo for p, (lo, _) in wanted.items()}
        ends = {str(p): hi for p, (_, hi) in wanted.items()}
        frame = (spark.read.format("kafka").options(**_kafka_options(settings))
                 .option("assign", _json({spec.topic: sorted(wanted)}))
                 .option("startingOffsets", _json({spec.topic: starts}))
                 .option("endingOffsets", _json({spec.topic: ends}))
                 .option("failOnDataLoss", "true")
                 # Its consumers' groups fall under the replay ACLs of the secure mode (streams/acls.py).
                 .option("groupIdPrefix", f"{REPLAY_GROUP_PREFIX}spark")
                 .option("minPartitions", str(max(1, -(-stats.total // MESSAGES_PER_TASK))))
                 .load()
                 .selectExpr(*COLUMNS))
        publish = spec.publish_dead_letters
        watcher.start()
        results = frame.rdd.mapPartitions(lambda rows: _run_task(settings, group, publish, rows, judged)
                                          ).collect()
    except SparkUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - Py4J errors quote Java stack traces: keep the type only
        raise SparkUnavailable(f"the Spark job failed: {type(exc).__name__}") from exc
    finally:
        watcher.stop()
        spark.stop()
    watcher.report(len(results), len(results))  # the last word, however short the run
    for result in results:
        stats.messages += result.messages
        stats.readings += result.readings
        stats.stored += result.stored
        stats.dead_letters += result.dead_letters
        stats.erased += result.erased
        reasons.update(result.reasons)
        tally.counts = tally.counts + DimensionCounts.from_dict(result.quality)
    progress(1.0)
    return stats, reasons


# ---- the driver ------------------------------------------------------------------------------

def _session(settings: Settings, master: str) -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailable("pyspark is not installed") from exc
    jars = ",".join(str(p) for p in connector_jars(settings.spark_jars_dir))
    python = sys.executable
    # Spark starts its Python workers with PYSPARK_PYTHON (default: python3 on the PATH, which
    # is not this virtual environment): the driver's own interpreter, unless one is chosen.
    os.environ.setdefault("PYSPARK_PYTHON", python)
    builder = (SparkSession.builder.master(_with_retries(master, settings.spark_task_max_failures))
               .appName(f"healthmate-replay-{settings.app_id}")
               .config("spark.jars", jars)
               .config("spark.task.maxFailures", str(settings.spark_task_max_failures))
               .config("spark.ui.enabled", "false")
               # The run's own progress lines (tasks done of total, readings/s) replace Spark's bar.
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
               .config("spark.executorEnv.PYSPARK_PYTHON", os.environ["PYSPARK_PYTHON"])
               # Executors import this checkout's streams/ and batch/ (an installed image has them too).
               .config("spark.executorEnv.PYTHONPATH", os.pathsep.join(
                   [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)))
    if master.startswith("local") or "127.0.0.1" in master or "localhost" in master:
        # Every port Spark opens (driver, block manager) on loopback, as the project's servers are.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (builder.config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.bindAddress", "127.0.0.1"))
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - no Java, a master that is down...
        raise SparkUnavailable(f"Spark could not start on {master!r}: {type(exc).__name__}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _with_retries(master: str, max_failures: int) -> str:
    """``local[N]`` ignores ``spark.task.maxFailures``; ``local[N,F]`` is how local mode retries."""
    if master.startswith("local[") and "," not in master:
        return f"{master[:-1]},{max_failures}]"
    if master == "local":
        return f"local[1,{max_failures}]"
    return master


def _kafka_options(settings: Settings) -> dict[str, str]:
    """The Kafka source's ``kafka.*`` options for the configured security protocol."""
    options = {"kafka.bootstrap.servers": settings.kafka_bootstrap,
               "kafka.security.protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # the settings validator checks it
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule"
                  if settings.kafka_sasl_mechanism == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        user = settings.kafka_sasl_username or ""
        secret = settings.kafka_sasl_password.get_secret_value()
        options["kafka.sasl.mechanism"] = settings.kafka_sasl_mechanism
        options["kafka.sasl.jaas.config"] = (
            f'{module} required username="{_escape(user)}" password="{_escape(secret)}";')
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL") and settings.kafka_ssl_cafile:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = settings.kafka_ssl_cafile
    return options


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _json(value: object) -> str:
    import orjson

    return orjson.dumps(value).decode()


class _ProgressWatcher:
    """Reports tasks done of total (Spark's status tracker) and readings per second (the
    readings of the tasks done so far, an accumulator: a task counts once it has finished)."""

    def __init__(self, spark: Any, judged: Any, progress: Callable[[float], None],
                 status: Callable[[str], None]) -> None:
        self.tracker = spark.sparkContext.statusTracker()
        self.judged, self.progress, self.status = judged, progress, status
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="spark-progress", daemon=True)
        self.started = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(PROGRESS_INTERVAL_S):
            done = total = 0
            for stage_id in self.tracker.getActiveStageIds():
                info = self.tracker.getStageInfo(stage_id)
                if info is not None:
                    done, total = done + info.numCompletedTasks, total + info.numTasks
            if total:
                self.report(done, total)

    def report(self, done: int, total: int) -> None:
        """One line; the rate once a task has finished (readings count when their task ends)."""
        judged = self.judged.value
        rate = judged / max(1e-9, time.monotonic() - self.started)
        line = f"spark: {done} of {total} tasks done"
        if judged or done == total:
            line += f", {rate:.0f} readings/s"
        log.info("%s", line)
        self.status(line)
        self.progress(min(0.99, done / total))


# ---- one task -------------------------------------------------------------------------------

def _run_task(settings: Settings, group: str, publish: bool, rows: Iterable[Any], judged: Any
              ) -> Iterator[TaskResult]:
    """One Spark task: judge and write its rows in batches, exactly as the worker path does."""
    result = asyncio.run(_task(settings, group, publish, rows))
    judged.add(result.readings)
    yield result


async def _task(settings: Settings, group: str, publish: bool, rows: Iterable[Any]) -> TaskResult:
    rules = rules_from_settings(settings)
    tally = QualityTally(settings.quality_rules)
    stats = ReplayStats()
    reasons: Counter[str] = Counter()
    warehouse = warehouse_from_settings(settings, pool_max=1)
    dlq = (DeadLetterPublisher(kafka_kwargs(settings), settings.dlq_topic,
                               max_payload_bytes=settings.dlq_max_payload_bytes) if publish else None)
    await warehouse.start()
    if dlq is not None:
        await dlq.start()
    try:
        pending = PendingBatch()
        for row in rows:
            judge_message(settings, rules, _record(row), pending)
            stats.messages += 1
            if pending.size >= settings.sink_batch_size:
                await flush_batch(settings, warehouse, dlq, group, pending, stats, tally)
                reasons.update(str(d.letter.code) for d in pending.dead_letters)
                pending = PendingBatch()
        if pending:
            await flush_batch(settings, warehouse, dlq, group, pending, stats, tally)
            reasons.update(str(d.letter.code) for d in pending.dead_letters)
    finally:
        if dlq is not None:
            await dlq.stop()
        await warehouse.stop()
    return TaskResult(stats.messages, stats.readings, stats.stored, stats.dead_letters, reasons,
                      tally.counts.to_dict(), erased=stats.erased)


def _record(row: Any) -> ConsumerRecord:
    """A Spark Kafka-source row as the aiokafka record the judge reads.

    Unpacked by position (the order of ``COLUMNS``): a PySpark ``Row`` is a tuple, and reading
    its fields by name costs a list search each (8 µs of a reading's ~40 µs of transfer, measured)."""
    topic, partition, offset, timestamp_ms, key, value = row
    key = bytes(key) if key is not None else None
    value = bytes(value) if value is not None else None
    return ConsumerRecord(topic, partition, offset, timestamp_ms, 0, key, value, None,
                          len(key or b""), len(value or b""), ())


__all__ = ["SPARK_VERSION", "TaskResult", "spark_replay"]
