"""``make bench`` rows for the HTTP ingest gateway: one ``python -m web gateway`` process.

A load generator that ships with the project (aiohttp client, loopback only, bounded in
count and in time) measures, on a topic of its own on the local stack (removed at the end):

- **batched**: NDJSON requests of 100 single readings, ``GATEWAY_BENCH_CONCURRENCY``
  (default 8) clients back to back for ``GATEWAY_BENCH_S`` seconds (default 10, at most
  ``GATEWAY_BENCH_MAX_REQUESTS`` requests): readings/s answered 202.
- **latency**: the same requests offered at a fixed rate of half the batched rate (open
  loop: a request is sent on schedule whether or not earlier ones were answered): p50/p99
  of request -> 202.
- **singles**: one reading per request, ``GATEWAY_BENCH_SINGLE_CONCURRENCY`` (default 32)
  clients back to back: requests/s answered 202.

Every answer must be 202 (any other status fails the run): each 202 means Kafka acknowledged
(``acks=all``) every message of it. Targets (issue 22): >= 20 000 readings/s batched,
p99 < 100 ms at half that load, >= 2 000 single requests/s. ``GATEWAY_BENCH_PROFILE=1``
records a py-spy profile of the gateway (collapsed stacks) into ``bench/profiles/gateway.txt``
(summarise it with ``bench/profile_top.py``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import aiohttp  # noqa: E402
import orjson  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from gateway_support import GatewayProcess  # noqa: E402
from pipeline_support import vm_hwm_mb  # noqa: E402

from streams.config import Settings  # noqa: E402
from web.auth import mint_token  # noqa: E402

SECONDS = float(os.environ.get("GATEWAY_BENCH_S", 10))
MAX_REQUESTS = int(os.environ.get("GATEWAY_BENCH_MAX_REQUESTS", 20_000))
CONCURRENCY = int(os.environ.get("GATEWAY_BENCH_CONCURRENCY", 8))
SINGLE_CONCURRENCY = int(os.environ.get("GATEWAY_BENCH_SINGLE_CONCURRENCY", 32))
BATCH = 100
POOL = 500  # distinct request bodies per phase
USERS = 50
TARGETS = {"batched": 20_000, "p99_ms": 100, "singles": 2_000}


class Readings:
    """Distinct readings (unique instants), so that every one is a new event id."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC) - timedelta(days=1)
        self.n = 0

    def line(self) -> bytes:
        self.n += 1
        at = self.start + timedelta(milliseconds=self.n)
        return orjson.dumps({"metric": "heart_rate", "value": 60 + self.n % 40, "unit": "bpm",
                             "timestamp": at.isoformat(), "source": "fitbit", "device_id": "bench"})

    def ndjson(self, count: int) -> bytes:
        return b"\n".join(self.line() for _ in range(count))


def log(msg: str) -> None:
    print(f"[gateway bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def post(session: aiohttp.ClientSession, url: str, token: str, body: bytes, ndjson: bool) -> int:
    headers = {"Authorization": f"Bearer {token}",
               "Content-Type": "application/x-ndjson" if ndjson else "application/json"}
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 202:
            raise RuntimeError(f"answer {response.status}: {(await response.text())[:200]}")
        return response.status


async def closed_loop(url: str, tokens: list[str], data: Readings, *, per_request: int, clients: int
                      ) -> tuple[int, float]:
    """``clients`` back-to-back senders for SECONDS (at most MAX_REQUESTS): (requests, seconds)."""
    done = 0
    stop_at = time.monotonic() + SECONDS

    # Built before the clock starts and sent in turn: the load generator shares the machine's
    # cores with the gateway, so it does no JSON work while measuring (the gateway does the
    # same work for a body it has seen before: it keeps no state between requests).
    bodies = [data.ndjson(per_request) if per_request > 1 else data.line() for _ in range(POOL)]

    async def client(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < stop_at and done < MAX_REQUESTS:
            n = done
            done += 1
            await post(session, url, tokens[(i + n) % len(tokens)], bodies[n % POOL], per_request > 1)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(*(client(i, session) for i in range(clients)))
        return done, time.monotonic() - started


async def open_loop(url: str, tokens: list[str], data: Readings, rate: float) -> list[float]:
    """Requests of BATCH readings offered at ``rate`` requests/s for SECONDS: latencies (s)."""
    count = min(MAX_REQUESTS, max(1, int(rate * SECONDS)))
    bodies = [data.ndjson(BATCH) for _ in range(min(count, POOL))]  # built before the clock starts
    latencies: list[float] = []

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        sent = time.perf_counter()
        await post(session, url, tokens[i % len(tokens)], bodies[i % len(bodies)], True)
        latencies.append(time.perf_counter() - sent)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        started = time.perf_counter()
        tasks = []
        for i in range(count):
            ahead = started + i / rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
            tasks.append(asyncio.create_task(one(session, i)))
        await asyncio.gather(*tasks)
    return sorted(latencies)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (``/proc/PID/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def ack_buckets(base: str) -> dict[float, float]:
    """The gateway's own ``healthmate_gateway_kafka_ack_seconds`` buckets (upper bound -> count)."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        text = await response.text()
    buckets = {}
    for line in text.splitlines():
        if line.startswith("healthmate_gateway_kafka_ack_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile ``q`` of what was observed in between."""
    counts = {b: after[b] - before.get(b, 0) for b in sorted(after)}
    total = counts[float("inf")]
    return next(b for b, n in counts.items() if n >= q * total)


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def main() -> int:
    topic = f"gwbench_{uuid.uuid4().hex[:8]}.raw"
    settings = Settings(dev_mode=True)  # type: ignore[call-arg]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    env = {"HEALTHMATE_DEV_MODE": "true", "HEALTHMATE_RAW_TOPIC": topic, "HEALTHMATE_LOG_LEVEL": "warn",
           "HEALTHMATE_GATEWAY_RATE_PER_TOKEN": "100000", "HEALTHMATE_GATEWAY_BURST_PER_TOKEN": "100000"}
    gateway = GatewayProcess(env, Path(tempfile.gettempdir()) / f"{topic}.log")
    profiler: subprocess.Popen | None = None
    tokens = [mint_token(settings, subject=f"bench-user-{i}", roles=["producer"]) for i in range(USERS)]
    data = Readings()
    try:
        gateway.start()
        await gateway.wait_ready()
        await closed_loop(gateway.url, tokens, data, per_request=BATCH, clients=2)  # warm-up
        if os.environ.get("GATEWAY_BENCH_PROFILE") and gateway.proc is not None:
            out = ROOT / "bench" / "profiles"
            out.mkdir(parents=True, exist_ok=True)
            py_spy = str(Path(sys.executable).with_name("py-spy"))
            profiler = subprocess.Popen(
                [py_spy, "record", "-p", str(gateway.proc.pid), "--format", "raw", "-o",
                 str(out / "gateway.txt"), "-d", str(int(3 * SECONDS + 10))],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert gateway.proc is not None
        cpu0 = cpu_seconds(gateway.proc.pid)
        requests, seconds = await closed_loop(gateway.url, tokens, data, per_request=BATCH,
                                              clients=CONCURRENCY)
        batched = requests * BATCH / seconds
        batched_cpu = cpu_seconds(gateway.proc.pid) - cpu0
        log(f"batched: {requests} requests of {BATCH} in {seconds:.1f}s")
        acks_before = await ack_buckets(gateway.base)
        latencies = await open_loop(gateway.url, tokens, data, batched / 2 / BATCH)
        ack_p99 = bucket_quantile(acks_before, await ack_buckets(gateway.base), 0.99) * 1000
        p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
        cpu0 = cpu_seconds(gateway.proc.pid)
        singles_n, singles_s = await closed_loop(gateway.url, tokens, data, per_request=1,
                                                 clients=SINGLE_CONCURRENCY)
        singles = singles_n / singles_s
        singles_cpu = cpu_seconds(gateway.proc.pid) - cpu0
        peak_rss_mb = vm_hwm_mb(gateway.proc.pid) or float("nan")
    finally:
        status = gateway.stop()
        if profiler is not None:
            profiler.wait(timeout=120)
        await admin.delete_topics([topic])
        await admin.close()
    rows = [("gateway batched (NDJSON x100)", f"{batched:,.0f} readings/s", f">= {TARGETS['batched']:,}",
             batched >= TARGETS["batched"]),
            ("gateway p99 at half load", f"{p99:.1f} ms (p50 {p50:.1f})", f"< {TARGETS['p99_ms']} ms",
             p99 < TARGETS["p99_ms"]),
            ("gateway single readings", f"{singles:,.0f} requests/s", f">= {TARGETS['singles']:,}",
             singles >= TARGETS["singles"])]
    print()
    for name, value, target, met in rows:
        print(f"  {name:<32} {value:>28}   target {target:<14} {'met' if met else 'NOT MET'}")
    print(f"  of the p99 at half load, Kafka's acknowledgement alone (the gateway's histogram): "
          f"p99 <= {ack_p99:.0f} ms")
    per_reading = batched_cpu / (requests * BATCH) * 1e6
    per_single = singles_cpu / singles_n * 1e6
    print(f"  gateway CPU: {per_reading:.1f} us a reading batched ({1e6 / per_reading:,.0f} readings/s per "
          f"core), {per_single:.0f} us a single request ({1e6 / per_single:,.0f} requests/s per core); "
          f"peak RSS {peak_rss_mb:.0f} MB")
    print(f"  (one gateway process, {os.cpu_count()} cores shared with the load generator and Kafka; "
          f"load average {os.getloadavg()[0]:.1f}; gateway exit status {status})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
