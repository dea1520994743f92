"""``python -m streams import`` under faults, as an outside fault-injection suite would run it:
real importer processes, a real worker, the shared Kafka and PostgreSQL.

- the importer killed (SIGKILL) part-way through a large export, then run again to the end:
  the warehouse holds exactly the readings the file holds, once each;
- two importers of the same file at the same time: the same, once each; their stdout and
  stderr are pipes: plain progress lines (no terminal control), peak RSS within the
  documented bound;
- Kafka out of reach (a closed port; a port that accepts and never answers), the raw topic
  missing, Kafka refusing the messages part-way: one line and the documented exit status
  (docs/how-to/importing.md) within a bounded time, never a hang or a traceback;
- the dry run's output closed early (``| head``): one line, the import stops, no file blamed.

What the file holds is counted independently of the importer (``count_apple_readings``:
``Record`` elements by type, read with the standard library's XML parser).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import orjson
import pytest
from import_files import apple_export, count_apple_readings, large_apple_export, record
from pipeline_support import (
    ROOT,
    PeakRss,
    WorkerProcess,
    assert_stored_once,
    end_offsets,
    wait_until_caught_up,
)

from streams.config import Settings
from streams.connections import kafka_kwargs

pytestmark = pytest.mark.integration

USER = "fault-user"
EXPORT_BYTES = 70_000_000  # about 170 000 readings: a few seconds of importing
RSS_LIMIT_MB = 250  # docs/how-to/importing.md, "Memory" (the benchmark's bound)
PROGRESS = re.compile(r"import: (\d+)/(\d+) B")
CLOSED_PORT = "127.0.0.1:9"  # discard port: nothing listens on loopback


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter[str]]:
    path = tmp_path_factory.mktemp("large-export") / "export.xml"
    _, generated = large_apple_export(path, EXPORT_BYTES)
    counted = count_apple_readings(path)
    assert sum(counted.values()) == generated  # the generator and the plain count agree
    return path, counted


@pytest.fixture
def small_export(tmp_path: Path) -> Path:
    path = tmp_path / "export.xml"
    path.write_bytes(apple_export("".join(record("HeartRate", str(60 + i % 40), "count/min",
                                                 f"2024-05-01 08:{i // 60:02d}:{i % 60:02d} +0200")
                                          for i in range(600))))
    return path


@dataclass
class Finished:
    status: int
    stdout: bytes
    stderr: str
    peak_rss_mb: float
    seconds: float


def _importer(paths: list[Path], env: dict[str, str], *extra: str, log: Path | None = None
              ) -> subprocess.Popen[bytes]:
    """The importer as a process; its stdout and stderr are pipes (or both go to ``log``)."""
    out = log.open("ab") if log else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "streams", "import", *map(str, paths), "--user-id", USER,
                             *extra], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT if log else subprocess.PIPE)


def _finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> Finished:
    """Read both pipes to their end, sample its peak RSS until it exits, reap it."""
    started = time.monotonic()
    peak = PeakRss(proc.pid)
    outputs: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda name=name, pipe=pipe: outputs.__setitem__(name, pipe.read()))
               for name, pipe in (("out", proc.stdout), ("err", proc.stderr)) if pipe and not pipe.closed]
    for reader in readers:
        reader.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status = os.waitpid(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(10)
    stderr = outputs.get("err", b"").decode(errors="replace")
    return Finished(proc.returncode, outputs.get("out", b""), stderr, peak.result(),
                    time.monotonic() - started)


def _env(pipeline_env: dict[str, str], **overrides: str) -> dict[str, str]:
    return {**os.environ, **pipeline_env, **overrides}


async def _messages(settings: Settings) -> int:
    return sum((await end_offsets(kafka_kwargs(settings), settings.raw_topic)).values())


async def _wait_for_messages(settings: Settings, at_least: int, importer: subprocess.Popen[bytes],
                             timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = await _messages(settings)
        if seen >= at_least:
            return seen
        assert importer.poll() is None, f"the importer ended (status {importer.returncode}) first"
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} messages in {timeout}s")


def _summaries(stderr: str) -> list[dict]:
    return [orjson.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _one_line(result: Finished) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("healthmate: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.slow
async def test_an_importer_killed_mid_import_then_run_again_stores_every_reading_once(
        export: tuple[Path, Counter[str]], pipeline_settings: Settings, pipeline_env: dict[str, str],
        worker_process: WorkerProcess, pg: asyncpg.Connection, tmp_path: Path) -> None:
    path, expected = export
    env = _env(pipeline_env)
    worker_process.start()
    first = _importer([path], env, "--json", log=tmp_path / "first.log")
    await _wait_for_messages(pipeline_settings, 3, first)
    first.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    published = await _messages(pipeline_settings)

    second = _finish(_importer([path], env, "--json"))
    assert second.status == 0, second.stderr
    (summary,) = _summaries(second.stderr)
    assert summary["readings"] == sum(expected.values()) and summary["error"] is None
    assert published < summary["messages"], "the first importer was not killed part-way"
    await wait_until_caught_up(pipeline_settings, pg, alive=worker_process.alive)
    await assert_stored_once(pg, pipeline_settings.warehouse_schema, expected)


@pytest.mark.slow
async def test_two_importers_of_one_file_at_once_store_every_reading_once(
        export: tuple[Path, Counter[str]], pipeline_settings: Settings, pipeline_env: dict[str, str],
        worker_process: WorkerProcess, pg: asyncpg.Connection) -> None:
    path, expected = export
    env = _env(pipeline_env)
    worker_process.start()
    importers = [_importer([path], env, "--json") for _ in range(2)]
    results = [_finish(importer) for importer in importers]
    for result in results:
        assert result.status == 0, result.stderr
        # stderr is a pipe: progress lines (no bar, no carriage return, no escape), the summary
        assert "\r" not in result.stderr and "\x1b" not in result.stderr
        lines = result.stderr.splitlines()
        progress = [PROGRESS.fullmatch(line) for line in lines if not line.startswith("{")]
        assert progress and all(progress), lines
        done = [int(m[1]) for m in progress if m]
        assert done == sorted(done) and done[-1] == int(progress[-1][2]) == path.stat().st_size  # type: ignore[index]
        assert len(_summaries(result.stderr)) == 1 and result.stdout == b""
        assert result.peak_rss_mb < RSS_LIMIT_MB, f"peak RSS {result.peak_rss_mb:.0f} MB"
    await wait_until_caught_up(pipeline_settings, pg, alive=worker_process.alive)
    await assert_stored_once(pg, pipeline_settings.warehouse_schema, expected)


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A port that accepts connections and never answers (a broker hung or cut off)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)  # never accept()ed: the kernel completes the handshakes, nobody replies
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("where", ["closed port", "silent port"])
def test_kafka_out_of_reach_is_one_line_and_exit_3_in_bounded_time(
        where: str, silent_port: str, small_export: Path, pipeline_env: dict[str, str]) -> None:
    bootstrap = CLOSED_PORT if where == "closed port" else silent_port
    result = _finish(_importer([small_export], _env(pipeline_env, HEALTHMATE_KAFKA_BOOTSTRAP=bootstrap)),
                     timeout=60)
    assert result.status == 3, result.stderr  # "3 when Kafka cannot be reached"
    assert f"Kafka is unreachable at {bootstrap}" in _one_line(result)
    assert result.seconds < 15


def test_a_missing_raw_topic_is_one_line_and_exit_2_in_bounded_time(
        small_export: Path, pipeline_env: dict[str, str]) -> None:
    # pipeline_env names topics nobody created (pipeline_settings would create them)
    result = _finish(_importer([small_export], _env(pipeline_env)), timeout=90)
    assert result.status == 2, result.stderr
    line = _one_line(result)
    assert pipeline_env["HEALTHMATE_RAW_TOPIC"] in line and "python -m streams setup" in line, line
    assert result.seconds < 15


async def test_kafka_refusing_the_messages_stops_the_import_in_one_line(
        export: tuple[Path, Counter[str]], pipeline_settings: Settings, pipeline_env: dict[str, str]) -> None:
    # Envelopes up to 8 MB, a topic that takes 4 MB (streams setup): the broker refuses them.
    result = _finish(_importer([export[0]], _env(pipeline_env, HEALTHMATE_MAX_MESSAGE_BYTES="8000000")))
    assert result.status == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if not PROGRESS.fullmatch(line)]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "Kafka did not take the messages (MessageSizeTooLargeError)" in lines[0], lines[0]
    assert result.seconds < 60


def test_a_dry_run_whose_output_closes_stops_in_one_line_and_blames_no_file(
        small_export: Path, pipeline_env: dict[str, str]) -> None:
    proc = _importer([small_export, small_export, small_export], _env(pipeline_env), "--dry-run")
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # `… --dry-run | head -1`
    result = _finish(proc, timeout=60)
    assert result.status == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if not PROGRESS.fullmatch(line)
             and not line.startswith("import: " + str(small_export))]
    assert lines == ["healthmate: the output closed before the import ended (BrokenPipeError); "
                     "the import stopped"], result.stderr
    assert "cannot read" not in result.stderr and "Exception ignored" not in result.stderr
