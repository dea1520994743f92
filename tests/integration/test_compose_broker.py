"""The compose stack's Kafka broker configuration, run here without Docker.

``deploy/kafka/start.sh`` (what the ``kafka`` service runs) and ``deploy/tls/make_certs.sh``
(the ``tls`` service) are run as they are, with the jars of the local stack instead of the
image's, on private loopback ports: the broker must speak SASL_SSL only (SCRAM-SHA-512,
the certificate verified against the generated CA for ``localhost``), refuse a wrong
password and an unknown CA, and enforce ACLs (the worker may create nothing until granted).
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from pipeline_support import ROOT, create_topic_as, free_port

from streams.config import Settings
from streams.connections import kafka_kwargs

pytestmark = [pytest.mark.integration, pytest.mark.slow]
JARS = ROOT / ".stack" / "kafka-jars" / "4.4.0"
PASSWORDS = {"admin": "admin-pw-1", "worker": "worker-pw-2", "producer": "producer-pw-3"}


def settings(bootstrap: str, user: str, password: str, cafile: Path) -> Settings:
    return Settings(dev_mode=True, kafka_bootstrap=bootstrap, kafka_security_protocol="SASL_SSL",
                    kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username=user,
                    kafka_sasl_password=password, kafka_ssl_cafile=str(cafile))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[dict[str, object]]:
    assert (JARS / "kafka_2.13-4.4.0.jar").is_file(), "run `bash scripts/stack.sh up` (it fetches the jars)"
    tls, secrets = tmp_path / "tls", tmp_path / "secrets"
    uid = str(os.getuid())
    subprocess.run(["sh", str(ROOT / "deploy" / "tls" / "make_certs.sh")], check=True, capture_output=True,
                   env={**os.environ, "TLS_DIR": str(tls), "KAFKA_UID": uid, "PG_UID": uid})
    secrets.mkdir()
    for user, password in PASSWORDS.items():
        (secrets / f"healthmate_kafka_{user}_password").write_text(password)
    run = tmp_path / "kafka-run-class"  # the image's kafka-run-class.sh, with the local jars
    run.write_text(f'#!/bin/sh\nexec java -Xms64m -Xmx256m -Dkafka.logs.dir={tmp_path} '
                   f'-Dlog4j2.configurationFile={ROOT}/scripts/kafka/log4j2.yaml -cp "{JARS}/*" "$@"\n')
    run.chmod(0o755)
    start = tmp_path / "kafka-server-start"  # the image's kafka-server-start.sh
    start.write_text(f'#!/bin/sh\nexec {run} kafka.Kafka "$@"\n')
    start.chmod(0o755)
    port, external, controller = free_port(), free_port(), free_port()
    env = {**os.environ, "CLUSTER_ID": "p7-ECCreS7mY36AyawobbQ",
           "KAFKA_RUN": str(run), "KAFKA_START": str(start),
           "HM_BROKER_LISTEN": f"127.0.0.1:{port}", "HM_BROKER_ADVERTISED": f"localhost:{port}",
           "HM_BROKER_EXTERNAL_LISTEN": f"127.0.0.1:{external}",
           "HM_BROKER_EXTERNAL_ADVERTISED": f"localhost:{external}",
           "HM_BROKER_CONTROLLER": f"127.0.0.1:{controller}",
           "HM_BROKER_CONTROLLER_LISTEN": f"127.0.0.1:{controller}",
           "HM_BROKER_TLS_DIR": str(tls), "HM_BROKER_SECRETS_DIR": str(secrets),
           "HM_BROKER_CONFIG_DIR": str(tmp_path / "config"), "KAFKA_LOG_DIRS": str(tmp_path / "data")}
    log = (tmp_path / "broker.out").open("w")
    proc = subprocess.Popen(["bash", str(ROOT / "deploy" / "kafka" / "start.sh")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield {"port": port, "external": external, "ca": tls / "ca.pem", "dir": tmp_path}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


async def list_topics(s: Settings) -> list[str]:
    """One metadata request with ``s``' credentials and CA; a refusal raises a KafkaError."""
    admin = AIOKafkaAdminClient(**kafka_kwargs(s), request_timeout_ms=5_000)
    try:
        await admin.start()
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def wait_ready(s: Settings, out: Path, timeout: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await list_topics(s)
            return
        except KafkaError:
            if loop.time() > deadline:
                raise AssertionError("broker not ready:\n" + out.read_text()[-3000:]) from None
            await asyncio.sleep(1)


async def test_the_compose_broker_speaks_sasl_ssl_with_acls(broker) -> None:  # type: ignore[no-untyped-def]
    bootstrap, ca = f"localhost:{broker['port']}", broker["ca"]
    admin = settings(bootstrap, "admin", PASSWORDS["admin"], ca)
    await wait_ready(admin, broker["dir"] / "broker.out")
    await create_topic_as(admin, "compose.check")
    # the worker authenticates, but ACLs are on: it may create nothing it was not granted
    worker = settings(bootstrap, "healthmate-worker", PASSWORDS["worker"], ca)
    with pytest.raises(TopicAuthorizationFailedError):
        await create_topic_as(worker, "compose.not-granted")
    # the host's listener is SASL_SSL too
    external = settings(f"localhost:{broker['external']}", "admin", PASSWORDS["admin"], ca)
    await create_topic_as(external, "compose.ext")
    # a wrong password and a CA that did not sign the broker's certificate are refused
    assert "compose.check" in await list_topics(admin)
    producer = settings(bootstrap, "healthmate-producer", PASSWORDS["producer"], ca)
    assert await list_topics(producer) == [], "authenticated, but granted nothing: sees nothing"
    with pytest.raises(KafkaError):
        await list_topics(settings(bootstrap, "healthmate-producer", "wrong", ca))
    other_ca = ssl.get_default_verify_paths().openssl_cafile
    assert Path(other_ca).is_file()
    with pytest.raises(KafkaError):
        await list_topics(settings(bootstrap, "admin", PASSWORDS["admin"], Path(other_ca)))
    # the config the healthcheck uses names SASL_SSL and the CA
    client = (broker["dir"] / "config" / "admin-client.properties").read_text()
    assert "security.protocol=SASL_SSL" in client and f"ssl.truststore.location={ca}" in client
