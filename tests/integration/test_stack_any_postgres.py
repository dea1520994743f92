"""``scripts/stack.sh`` with ``HEALTHMATE_PG_PORT`` on a PostgreSQL it did not start.

A throwaway Debian cluster on a free port stands for "any PostgreSQL"; Kafka runs privately
(own ports, own ``HEALTHMATE_STACK_DIR``). ``up`` must use that PostgreSQL (roles and
database created in it) and start Kafka both when the Debian cluster ``stack.sh`` manages is
down (a second throwaway cluster, created and never started) and when it is up on another
port (the machine's ``15/main``, which is only read, never stopped); ``down`` stops Kafka and
neither cluster. Both clusters are dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from pipeline_support import ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PG_VERSION = "15"


def clusters() -> dict[str, tuple[str, str]]:
    """``{name: (port, status)}`` of the version's Debian clusters."""
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout
    return {f[1]: (f[2], f[3]) for f in (line.split() for line in out.splitlines()) if f[0] == PG_VERSION}


def postmaster_pid(name: str) -> str:
    return Path(f"/var/lib/postgresql/{PG_VERSION}/{name}/postmaster.pid").read_text().split()[0]


@pytest.fixture
def throwaway_clusters() -> Iterator[tuple[str, int, str]]:
    """(the started cluster, its port, a cluster created and left stopped)."""
    tag = uuid.uuid4().hex[:6]
    started, stopped, port = f"ops_any_{tag}", f"ops_down_{tag}", free_port()
    try:
        subprocess.run(["pg_createcluster", PG_VERSION, started, "-p", str(port)], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["pg_createcluster", PG_VERSION, stopped, "-p", str(free_port())], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, started, "start"],
                       check=True)
        yield started, port, stopped
    finally:
        for name in (started, stopped):
            subprocess.run(["pg_dropcluster", "--stop", PG_VERSION, name], check=False)


def stack(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "scripts" / "stack.sh"), command], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


async def test_stack_up_uses_any_postgres_on_the_port(throwaway_clusters, tmp_path) -> None:  # type: ignore[no-untyped-def]
    started, pg_port, stopped = throwaway_clusters
    main_before = clusters().get("main")
    kafka_port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HEALTHMATE_")},
           "HEALTHMATE_STACK_DIR": str(tmp_path / "stack"), "HEALTHMATE_KAFKA_PORT": str(kafka_port),
           "HEALTHMATE_KAFKA_CONTROLLER_PORT": str(free_port()), "HEALTHMATE_KAFKA_HEAP": "-Xms128m -Xmx256m",
           "HEALTHMATE_PG_PORT": str(pg_port), "HEALTHMATE_PG_CLUSTER": stopped, "PYTHON": sys.executable}
    try:
        # The cluster stack.sh manages is down; another PostgreSQL serves the port.
        up = stack("up", env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"postgres   ready   127.0.0.1:{pg_port} (a PostgreSQL not started by stack.sh" in up.stdout
        assert f"kafka      ready   127.0.0.1:{kafka_port}" in up.stdout
        conn = await asyncpg.connect(f"postgresql://healthmate:healthmate@127.0.0.1:{pg_port}/healthmate")
        try:
            assert await conn.fetchval("SELECT current_user") == "healthmate"
            assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = 'healthmate_app'") == 1
        finally:
            await conn.close()
        status = stack("status", env)
        expected = f"postgres   running  127.0.0.1:{pg_port} (a PostgreSQL not started by stack.sh)"
        assert expected in status.stdout

        # The machine's main cluster, when it is up, is on another port: the same answer.
        if main_before and main_before[1] == "online":
            main_pid = postmaster_pid("main")
            again = stack("up", {**env, "HEALTHMATE_PG_CLUSTER": "main"})
            assert again.returncode == 0, again.stdout + again.stderr
            assert "not started by stack.sh" in again.stdout
            assert postmaster_pid("main") == main_pid
    finally:
        down = stack("down", env)
    assert down.returncode == 0, down.stdout + down.stderr
    after = clusters()
    assert after[started][1] == "online", "down must not stop a PostgreSQL it did not start"
    assert after[stopped][1] == "down"
    assert after.get("main") == main_before, "the machine's main cluster is left as it was"
