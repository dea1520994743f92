"""A private Kafka + PostgreSQL that the fault suite may kill and restart freely.

It is ``scripts/stack.sh`` run with other ports, its own folder (``.stack/chaos/``, the
jar cache is shared) and its own Debian cluster ``15/chaos``, so the shared stack of
everyone else is never touched. The broker is killed by its recorded pid; the cluster is
stopped and dropped at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline_support import ROOT

PG_VERSION = "15"
PG_CLUSTER = "chaos"


@dataclass(frozen=True)
class StackAddress:
    """Where the pipeline under test finds its broker and database."""

    kafka_bootstrap: str
    pg_dsn: str


class PrivateStack:
    """``up()`` / ``down()`` a disposable stack; broker and database faults in between."""

    # Below the ephemeral range (32768-60999), where other tests' free ports come from.
    def __init__(self, kafka_port: int = 19392, pg_port: int = 15433) -> None:
        self.dir = ROOT / ".stack" / "chaos"
        self.kafka_port = kafka_port
        self.pg_port = pg_port
        self.env = {
            **os.environ,
            "HEALTHMATE_STACK_DIR": str(self.dir),
            "HEALTHMATE_KAFKA_PORT": str(kafka_port),
            "HEALTHMATE_KAFKA_CONTROLLER_PORT": str(kafka_port + 1),
            "HEALTHMATE_PG_PORT": str(pg_port),
            "HEALTHMATE_PG_CLUSTER": PG_CLUSTER,
        }
        self.address = StackAddress(
            f"127.0.0.1:{kafka_port}",
            f"postgresql://healthmate:healthmate@127.0.0.1:{pg_port}/healthmate")

    def _stack(self, command: str) -> None:
        subprocess.run(["bash", str(ROOT / "scripts" / "stack.sh"), command], env=self.env,
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    def _pg(self, action: str) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, PG_CLUSTER, action],
                       check=True, stdout=subprocess.DEVNULL)

    def up(self) -> None:
        if not self._cluster_exists():
            subprocess.run(["pg_createcluster", PG_VERSION, PG_CLUSTER, "-p", str(self.pg_port)],
                           check=True, stdout=subprocess.DEVNULL)
        self._stack("up")

    def down(self) -> None:
        try:
            self._stack("down")
        finally:
            if self._cluster_exists():
                subprocess.run(["pg_dropcluster", "--stop", PG_VERSION, PG_CLUSTER], check=False)
            subprocess.run(["rm", "-rf", str(self.dir)], check=False)

    def _cluster_exists(self) -> bool:
        return Path(f"/etc/postgresql/{PG_VERSION}/{PG_CLUSTER}").is_dir()

    # ---- faults ------------------------------------------------------------------------
    def kill_broker(self) -> None:
        _kill9((self.dir / "pids" / "kafka.pid").read_text())

    def start_broker(self) -> None:
        self._stack("up")

    def restart_postgres(self) -> None:
        self._pg("restart")

    def stop_postgres(self) -> None:
        self._pg("stop")

    def start_postgres(self) -> None:
        self._stack("up")  # records the new postmaster pid, so `down` stops it


class PrivateKafka:
    """A disposable broker alone (``stack.sh kafka-up``) in its own folder and on its own ports,
    for a test that kills Kafka beside the shared PostgreSQL (which it never touches)."""

    def __init__(self, name: str, kafka_port: int) -> None:
        self.dir = ROOT / ".stack" / name
        self.env = {**os.environ, "HEALTHMATE_STACK_DIR": str(self.dir), "PYTHON": sys.executable,
                    "HEALTHMATE_KAFKA_PORT": str(kafka_port),
                    "HEALTHMATE_KAFKA_CONTROLLER_PORT": str(kafka_port + 1)}
        self.bootstrap = f"127.0.0.1:{kafka_port}"

    def _stack(self, command: str) -> None:
        subprocess.run(["bash", str(ROOT / "scripts" / "stack.sh"), command], env=self.env,
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    def up(self) -> None:
        self._stack("kafka-up")

    def down(self) -> None:
        try:
            self._stack("kafka-down")
        finally:
            subprocess.run(["rm", "-rf", str(self.dir)], check=False)

    def kill_broker(self) -> None:
        _kill9((self.dir / "pids" / "kafka.pid").read_text())

    def start_broker(self) -> None:
        self._stack("kafka-up")


def _kill9(pid_text: str) -> None:
    pid = int(pid_text)
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    raise RuntimeError(f"broker pid {pid} survived SIGKILL")
