"""Two checkouts' workers, alternately, on the same data: worker CPU per reading and rate.

    python bench/compare.py OLD_CHECKOUT [NEW_CHECKOUT] [--forms single,envelope] [--rounds 2] [-n 100000]

``make bench`` compares the worker with the limit inside one run; across runs the machine
(shared, 2 cores) drifts by up to 2x. To see what a change did, run the two versions
back to back, several rounds: e.g. ``git worktree add /tmp/old <commit>`` then
``python bench/compare.py /tmp/old``. Each run: its own topic, group and schema, ``N``
readings pre-produced, the worker started (from that checkout, with this venv), CPU
measured from its first commit until it caught up (as in ``bench/run.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import asyncpg  # noqa: E402
from pipeline_support import end_offsets  # noqa: E402

from bench.data import BOOTSTRAP, PG_DSN, cleanup, create_topics, make_data, produce  # noqa: E402
from bench.metering import CpuMeter, cpu_us_per_reading  # noqa: E402
from bench.workers import Worker  # noqa: E402


async def one_run(checkout: Path, form: str, n: int) -> tuple[int, float | None]:
    run_id = f"cmp_{uuid.uuid4().hex[:8]}"
    topic = f"{run_id}.{form}"
    await create_topics([topic])
    pg = await asyncpg.connect(PG_DSN)
    worker = Worker(run_id, form, topic, checkout=checkout)
    try:
        singles, envelopes = make_data(n, seed=7)
        await produce(topic, singles if form == "single" else envelopes)
        ends = await end_offsets(BOOTSTRAP, topic)
        worker.start()
        meter = CpuMeter(worker.pid)
        await worker.wait_caught_up(pg, ends, timeout=60 + n / 1000, meter=meter)
        busy = meter.busy()
        rate = (await worker.throughput(pg, n))["rate"]
        per_message = 100 if form == "envelope" else 1
        return rate, cpu_us_per_reading(busy, n - worker.messages_at_mark * per_message)
    finally:
        worker.stop()
        await cleanup(run_id, [worker.schema])
        await pg.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path, nargs="?", default=ROOT)
    parser.add_argument("--forms", default="single,envelope")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("-n", type=int, default=100_000)
    opts = parser.parse_args()
    print(f"{'round':>5} {'form':9} {'checkout':30} {'readings/s':>10} {'CPU us/reading':>15}")
    for round_ in range(1, opts.rounds + 1):
        for form in opts.forms.split(","):
            for checkout in (opts.old, opts.new):
                rate, cpu = await one_run(checkout.resolve(), form, opts.n)
                line = f"{round_:>5} {form:9} {str(checkout)[-30:]:30} {rate:>10,} {cpu or 0:>15.1f}"
                print(line, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
