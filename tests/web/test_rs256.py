"""An RS256-configured API, served in-process by the real Faust app's aiohttp application.

The session worker uses HS256; this checks the other configuration over HTTP, in particular
that an HS256 token signed with the RS256 *public* key (algorithm confusion) is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import CollectorRegistry

from healthmate.worker import build_worker
from streams.config import Settings
from web.auth import mint_token

pytestmark = pytest.mark.integration


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
async def rs_api(pg_dsn: str, pg_schema: str, tmp_path: Path
                 ) -> AsyncIterator[tuple[str, Settings, str, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings = Settings(dev_mode=True, pg_dsn=pg_dsn, warehouse_schema=pg_schema, app_id=f"hm-{pg_schema}",
                        data_dir=str(tmp_path), api_jwt_algorithm="RS256", api_jwt_public_key=public,
                        api_jwt_audience="rs-api")
    app, services = build_worker(settings, registry=CollectorRegistry())
    await services.warehouse.start()
    server = TestServer(await app.web.wsgi(), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/data-pipeline/dlq")), settings, private, public
    finally:
        await server.close()
        await services.warehouse.stop()


async def _get(url: str, token: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(
            url, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status


async def test_rs256_api_accepts_its_tokens_and_refuses_confusion(rs_api) -> None:  # type: ignore[no-untyped-def]
    url, settings, private, public = rs_api
    assert await _get(url, mint_token(settings, subject="rita", roles=["viewer"], private_key=private)) == 200

    claims = {"sub": "mallory", "roles": ["admin"], "aud": "rs-api", "exp": int(time.time()) + 300}
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    mac = hmac.new(public.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert await _get(url, f"{header}.{payload}.{_b64(mac)}") == 401, "HS256 with the public key as secret"

    none = f"{_b64(json.dumps({'alg': 'none'}).encode())}.{payload}."
    assert await _get(url, none) == 401
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await _get(url, jwt.encode(claims, other, "RS256")) == 401, "signed by another key"
    assert await _get(url, jwt.encode({**claims, "aud": "elsewhere"}, private, "RS256")) == 401
