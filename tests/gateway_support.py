"""A real ``python -m web gateway`` process for tests, the chaos suite and the benchmark."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from pipeline_support import ROOT, WorkerProcess, end_offsets, free_port
from pydantic import SecretStr

from streams.config import Settings
from web.auth import mint_token

INGEST = "/ingest/v1/readings"
SECRET = "gateway-integration-secret-of-32-bytes-or-more"
#: The token settings of a test gateway; :func:`token` mints for them.
JWT_ENV = {"HEALTHMATE_API_JWT_SECRET": SECRET, "HEALTHMATE_API_JWT_ISSUER": "hm-tests",
           "HEALTHMATE_API_JWT_AUDIENCE": "hm-ingest"}


def settings_for_tokens(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_jwt_secret": SecretStr(SECRET), "api_jwt_issuer": "hm-tests",
                                       "api_jwt_audience": "hm-ingest"})


def token(settings: Settings, sub: str = "alice", roles: tuple[str, ...] = ("producer",),
          ttl: int = 600) -> str:
    return mint_token(settings_for_tokens(settings), subject=sub, roles=roles, ttl_s=ttl)


async def raw_topic_size(settings: Settings) -> int:
    """Messages on the raw topic (every partition's end offset)."""
    return sum((await end_offsets(settings.kafka_bootstrap, settings.raw_topic)).values())


class GatewayProcess(WorkerProcess):
    """Started by :meth:`start`, stopped by its pid (SIGTERM, then SIGKILL after a grace)."""

    def __init__(self, env: dict[str, str], log_path: Path, *, port: int | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.port = port or free_port()
        self.tls = tls  # the client side of HTTPS (HEALTHMATE_GATEWAY_TLS_* set), None for HTTP
        super().__init__({**env, "HEALTHMATE_GATEWAY_PORT": str(self.port),
                          "HEALTHMATE_GATEWAY_HOST": "127.0.0.1"}, log_path)

    @property
    def url(self) -> str:
        return f"{self.base}{INGEST}"

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

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
                    async with session.get(f"{self.base}/health", ssl=self.tls or True) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"the gateway did not become ready in {timeout:.0f}s: {self.log_tail()}")

    def stop(self, grace: float = 30.0) -> int | None:  # type: ignore[override]
        """SIGTERM and wait (SIGKILL after ``grace``); the exit status, None if never started."""
        super().stop(grace)
        return None if self.proc is None else self.proc.returncode

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@asynccontextmanager
async def running_gateway(env: dict[str, str], log_path: Path, *, tls: ssl.SSLContext | None = None
                          ) -> AsyncIterator[GatewayProcess]:
    """A ready gateway; on exit it must stop with status 0 (a graceful drain)."""
    process = GatewayProcess(env, log_path, tls=tls)
    process.start()
    try:
        await process.wait_ready()
        yield process
    finally:
        assert process.stop() == 0, process.log_tail()
