"""``make run``'s worker (scripts/run_local.sh) runs as the runtime role: least privilege by
default. The owner role only migrates; as the DSN the worker got, ``TRUNCATE audit_log``,
``ALTER TABLE … DISABLE TRIGGER`` and ``DELETE FROM audit_log`` are all refused.

The script runs as ``make run`` runs it (after ``scripts/stack.sh up``), with the test's own
topics, schema, consumer group and web port, and a short demo producer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from pipeline_support import ROOT, RUNTIME_USER, drop_schema, runtime_dsn

from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REFUSED = [
    "TRUNCATE {s}.audit_log",
    "ALTER TABLE {s}.audit_log DISABLE TRIGGER audit_log_append_only",
    "ALTER TABLE {s}.audit_log DISABLE TRIGGER ALL",
    "DELETE FROM {s}.audit_log",
]


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [c for c, p in parents.items() if p in frontier]
        found += children
        frontier = children
    return found


def _pg_client_ports(pid: int, pg_port: int) -> set[int]:
    """Local ports of ``pid``'s TCP connections to ``pg_port`` (its environment is not
    readable: Faust's process title overwrites it)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == pg_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")


@pytest.fixture
def run_local(pipeline_env: dict[str, str], tmp_path: Path
              ) -> Iterator[tuple[subprocess.Popen, dict[str, str]]]:
    env = {**os.environ, **pipeline_env, "PYTHON": sys.executable, "DEMO_COUNT": "200", "DEMO_RATE": "100",
           "HEALTHMATE_DEV_MODE": "true", "HEALTHMATE_DATA_DIR": str(tmp_path / "data")}
    for name in ("HEALTHMATE_PG_DSN", "HEALTHMATE_PG_MIGRATION_DSN", "HEALTHMATE_PSEUDONYM_KEY"):
        env.pop(name, None)  # as on a fresh clone: the script's own defaults
    log = (tmp_path / "run_local.log").open("wb")
    proc = subprocess.Popen(["bash", "scripts/run_local.sh"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc, env
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a person stops `make run`
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


async def _until_healthy(port: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        await asyncio.sleep(0.5)
    raise AssertionError("make run's worker never became healthy: " + log.read_text(errors="replace")[-3000:])


async def test_make_run_runs_the_worker_as_the_runtime_role(run_local, pipeline_env, pg_dsn, tmp_path
                                                            ) -> None:  # type: ignore[no-untyped-def]
    proc, env = run_local
    schema = pipeline_env["HEALTHMATE_WAREHOUSE_SCHEMA"]
    try:
        await _until_healthy(pipeline_env["HEALTHMATE_WEB_PORT"], proc, tmp_path / "run_local.log")
        [worker] = [p for p in _descendants(proc.pid) if "worker" in " ".join(_cmdline(p)).lower()]
        owner = await asyncpg.connect(pg_dsn)
        runtime = await asyncpg.connect(runtime_dsn(pg_dsn))
        s = quote_ident(schema)
        try:
            # Every connection of the worker to PostgreSQL is the runtime role's.
            ports = _pg_client_ports(worker, urlsplit(pg_dsn).port or 5432)
            assert ports, "the worker holds no PostgreSQL connection"
            # (a role sees the client ports of its own sessions only)
            mine = await runtime.fetch("SELECT client_port FROM pg_stat_activity WHERE usename = current_user"
                                       " AND client_port = ANY($1::int[])", sorted(ports))
            assert {r["client_port"] for r in mine} == ports
            # The worker as that role really works: the demo readings arrive.
            for _ in range(120):
                if await owner.fetchval(f"SELECT count(*) FROM {s}.health_readings"):
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError("no demo reading was stored")
            await runtime.execute(f"INSERT INTO {s}.audit_log (action, outcome, status, request_id)"
                                  " VALUES ('probe', 'ok', 200, 'r-probe')")
            before = await owner.fetchval(f"SELECT count(*) FROM {s}.audit_log")
            for sql in REFUSED:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await runtime.execute(sql.replace("{s}", s))
            assert await owner.fetchval(f"SELECT count(*) FROM {s}.audit_log") >= before
            assert await runtime.fetchval("SELECT current_user") == RUNTIME_USER
        finally:
            await runtime.close()
            await owner.close()
    finally:
        await drop_schema(pg_dsn, schema)
