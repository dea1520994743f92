"""A real ``python -m web gateway`` process for tests, the chaos suite and the benchmark."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from pipeline_support import ROOT, free_port

INGEST = "/ingest/v1/readings"


class GatewayProcess:
    """Started by :meth:`start`, stopped by its pid (SIGTERM, then SIGKILL after a grace)."""

    def __init__(self, env: dict[str, str], log_path: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env, "HEALTHMATE_GATEWAY_PORT": str(self.port),
                    "HEALTHMATE_GATEWAY_HOST": "127.0.0.1"}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{INGEST}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "web", "gateway"], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``/health`` answers 200 (the producer is connected)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.alive(), f"the gateway exited: {self.log_tail()}"
                try:
                    async with session.get(f"{self.base}/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"the gateway did not become ready in {timeout:.0f}s: {self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM and wait; SIGKILL after ``grace``. The exit status (None if never started)."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
