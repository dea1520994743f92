"""Worker processes under watch: deaths the scenario did not cause are counted (and the
worker restarted, as an orchestrator would), /health and group membership are probed."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
from aiokafka.admin import AIOKafkaAdminClient
from pipeline_support import WorkerProcess, free_port

RSS_FIELD = "VmRSS:"


class Worker(WorkerProcess):
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__({**env, "HEALTHMATE_WEB_PORT": str(free_port()),
                          "HEALTHMATE_DATA_DIR": str(log_path.with_suffix(".data"))}, log_path)
        self.port = int(self.env["HEALTHMATE_WEB_PORT"])

    async def health(self, timeout: float = 5.0) -> int | None:
        """The HTTP status of /health, or None when it does not answer within ``timeout``."""
        url = f"http://127.0.0.1:{self.port}/health"
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                return r.status
        except (TimeoutError, aiohttp.ClientError):
            return None

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(RSS_FIELD):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def sigterm_seconds(self, limit: float = 15.0) -> float | None:
        """SIGTERM and time the exit; None (and SIGKILL) if it takes longer than ``limit``."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None
        return time.monotonic() - started


class Fleet:
    """The scenario's workers; a watcher restarts and counts any death not caused here."""

    def __init__(self, env: dict[str, str], log_dir: Path, size: int = 1) -> None:
        self.workers = [Worker(env, log_dir / f"worker-{i}.log") for i in range(size)]
        self.uncaused: list[str] = []
        self._watch: asyncio.Task | None = None

    def __enter__(self) -> Fleet:
        for w in self.workers:
            w.start()
        self._watch = asyncio.get_running_loop().create_task(self._watcher())
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_watching()
        for w in self.workers:
            w.stop()

    def alive(self) -> bool:
        return any(w.alive() for w in self.workers)

    async def _watcher(self) -> None:
        while True:
            for w in self.workers:
                if w.proc is not None and not w.alive():
                    tail = w.log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
                    self.uncaused.append(f"{w.log_path.name} exit {w.proc.returncode}: {tail[0][-160:]}")
                    w.start()
            await asyncio.sleep(0.2)

    def kill9(self, worker: Worker, *, restart: bool = True) -> None:
        """kill -9 (a death caused here); restart now, or leave it down until ``start()``."""
        worker.kill9()  # synchronous: the watcher never sees the gap before start()
        if restart:
            worker.start()
        else:
            worker.proc = None

    def stop_watching(self) -> None:
        """Before stopping workers on purpose (SIGTERM timing)."""
        assert self._watch is not None
        self._watch.cancel()


async def group_members(bootstrap: str, group: str) -> tuple[str, frozenset[str]]:
    """(state, member ids) of a consumer group, as the broker's coordinator sees it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        (described,) = response.to_object()["groups"]
        return described["state"], frozenset(m["member_id"] for m in described["members"])
    finally:
        await admin.close()
