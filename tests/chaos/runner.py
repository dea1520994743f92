"""``make chaos``: every scenario on a private stack, then one table.

``python scripts/chaos.py [scenario ...]`` runs a subset (names: kill9, pg-restart,
pg-stop-start, broker-kill, rebalance, overload, poison, gateway-broker-kill). Worker logs are kept under
``.stack/chaos-logs/`` for the last run. Exit status 1 if any scenario fails.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable

from pipeline_support import ROOT

from chaos import scenarios
from chaos.gateway import gateway_broker_kill
from chaos.pipeline import Pipeline, isolated
from chaos.scenarios import Row
from chaos.stack import PrivateStack

LOG_DIR = ROOT / ".stack" / "chaos-logs"
Scenario = Callable[[Pipeline, PrivateStack], Awaitable[Row]]
SCENARIOS: dict[str, Scenario] = {
    "kill9": lambda p, s: scenarios.kill_9(p),
    "pg-restart": scenarios.postgres_restart,
    "pg-stop-start": scenarios.postgres_stop_start,
    "broker-kill": scenarios.broker_kill,
    "rebalance": lambda p, s: scenarios.rebalance(p),
    "overload": lambda p, s: scenarios.overload(p),
    "poison": lambda p, s: scenarios.poison(p),
    "gateway-broker-kill": gateway_broker_kill,
}
HEADER = ("scenario", "sent", "stored", "dlq", "lost", "dup", "wrong", "no-dlq", "deaths", "offsets", "s",
          "result")


def table(rows: list[Row]) -> str:
    lines = [HEADER]
    for r in rows:
        v = r.verdict
        lines.append((r.scenario, str(v.sent), str(v.stored), str(v.dlq), str(v.lost), str(v.duplicated),
                      str(v.wrong), str(v.undead), str(len(r.deaths)), "ok" if v.offsets_ok else "BAD",
                      f"{r.seconds:.0f}", "PASS" if r.ok else "FAIL"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    out = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths,
                                                                                       strict=True)))
           for line in lines]
    for r in rows:
        details = [*r.problems, *r.verdict.problems, *(f"uncaused death: {d}" for d in r.deaths)]
        if r.notes or details:
            out.append(f"- {r.scenario}: {r.notes}")
            out.extend(f"    {d}" for d in details[:12])
    return "\n".join(out)


async def run(names: list[str], stack: PrivateStack) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        print(f"[chaos] {name} ...", flush=True)
        async with isolated(stack.address, LOG_DIR) as pipeline:
            try:
                row = await SCENARIOS[name](pipeline, stack)
            except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others
                row = Row(name, problems=[f"harness error: {type(exc).__name__}: {exc}"[:300]])
        rows.append(row)
        print(f"[chaos] {name}: {'PASS' if row.ok else 'FAIL'} in {row.seconds:.0f}s", flush=True)
    return rows


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through every finally: workers stopped, stack down


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupted)
    logging.basicConfig(level=logging.CRITICAL)  # aiokafka logs every retry during broker faults
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    stack = PrivateStack()
    try:
        stack.up()
        rows = asyncio.run(run(names, stack))
    finally:
        stack.down()
    print(table(rows))
    return 0 if all(r.ok for r in rows) else 1
