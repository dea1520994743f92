"""Kafka ACLs of the secure mode: who may do what, and a way to create them.

- The worker may read the raw and profile topics, write the DLQ and the profile topic (an
  erasure's profile tombstone), and do anything with its own internal topics (Faust's
  ``<app id>-`` changelogs and increments); it may join its two consumer groups (the ingest
  group and Faust's, named after the app id). Nothing else.
- An ingestion producer may write the raw topic and nothing else.
- The DLQ holds the raw payloads of rejected readings, so it is as sensitive as the raw
  topic: only the worker writes it, and no one but a super user (or a principal granted for
  redrives) reads it.
- A DLQ redrive (``POST /data-pipeline/dlq/redrive``, served by the worker's API) reads the
  DLQ, reads the originals in the raw topic and writes them back to the raw topic, with a
  throwaway consumer group ``healthmate-redrive-<random>``: :func:`redrive_acls` grants
  exactly that, to the principal that serves the API (the worker's, unless the set-up is
  told otherwise).
- A replay or backfill (``python -m batch replay``, the ``healthmate_backfill`` DAG) reads
  the raw topic with a throwaway group ``healthmate-replay-<random>``: :func:`replay_acls`.

``acl_bindings`` is pure; ``create_acls`` applies bindings with the admin client of the
settings it is given (a super user's credentials).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from streams.config import Settings


class Resource(IntEnum):  # Kafka protocol codes
    TOPIC = 2
    GROUP = 3


class Pattern(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    ALL = 2
    READ = 3
    WRITE = 4
    DESCRIBE = 8


ALLOW = 3


@dataclass(frozen=True, slots=True)
class Acl:
    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation


def worker_acls(settings: Settings, principal: str) -> list[Acl]:
    """What the worker's principal needs, for the topics and groups ``settings`` name."""
    acls = []
    read, write = (Operation.READ, Operation.DESCRIBE), (Operation.WRITE, Operation.DESCRIBE)
    for topic, operations in ((settings.raw_topic, read),
                              # WRITE: an erasure publishes the person's profile tombstone
                              (settings.profiles_topic, (Operation.READ, *write)),
                              (settings.dlq_topic, write)):
        acls += [Acl(principal, Resource.TOPIC, topic, Pattern.LITERAL, op) for op in operations]
    acls.append(Acl(principal, Resource.TOPIC, f"{settings.app_id}-", Pattern.PREFIXED, Operation.ALL))
    for group in (settings.consumer_group, settings.app_id):
        acls += [Acl(principal, Resource.GROUP, group, Pattern.LITERAL, op)
                 for op in (Operation.READ, Operation.DESCRIBE)]
    return acls


#: The consumer groups of redrives and replays: a random suffix after these prefixes
#: (``web/redrive.py``, ``batch/replay.py``).
REDRIVE_GROUP_PREFIX = "healthmate-redrive-"
REPLAY_GROUP_PREFIX = "healthmate-replay-"


def _groups(principal: str, prefix: str) -> list[Acl]:
    return [Acl(principal, Resource.GROUP, prefix, Pattern.PREFIXED, op) for op in (Operation.READ,
                                                                                    Operation.DESCRIBE)]


def redrive_acls(settings: Settings, principal: str) -> list[Acl]:
    """A redrive: read (and describe) the DLQ and the raw topic, write the raw topic, and use
    its own throwaway consumer groups. Nothing on the profile topic, no other group."""
    acls = [Acl(principal, Resource.TOPIC, settings.dlq_topic, Pattern.LITERAL, op)
            for op in (Operation.READ, Operation.DESCRIBE)]
    acls += [Acl(principal, Resource.TOPIC, settings.raw_topic, Pattern.LITERAL, op)
             for op in (Operation.READ, Operation.WRITE, Operation.DESCRIBE)]
    return acls + _groups(principal, REDRIVE_GROUP_PREFIX)


def replay_acls(settings: Settings, principal: str) -> list[Acl]:
    """A replay or backfill of the raw topic: read it with its own throwaway consumer groups
    (publishing dead letters, when asked, needs the DLQ write the worker has)."""
    acls = [Acl(principal, Resource.TOPIC, settings.raw_topic, Pattern.LITERAL, op)
            for op in (Operation.READ, Operation.DESCRIBE)]
    return acls + _groups(principal, REPLAY_GROUP_PREFIX)


def producer_acls(settings: Settings, principal: str) -> list[Acl]:
    """An ingestion producer: write (and describe) the raw topic only."""
    return [Acl(principal, Resource.TOPIC, settings.raw_topic, Pattern.LITERAL, op)
            for op in (Operation.WRITE, Operation.DESCRIBE)]


def secure_mode_acls(settings: Settings, *, worker: str, producer: str, redrive: str | None = None,
                     replay: str | None = None) -> list[Acl]:
    """Every grant of the secure mode, each once: the worker's, a producer's, and the
    redrive's and the replays' (to the worker's principal unless another is named; ``"none"``
    leaves that grant out)."""
    acls = worker_acls(settings, worker) + producer_acls(settings, producer)
    for principal, grant in ((redrive or worker, redrive_acls), (replay or worker, replay_acls)):
        if principal != "none":
            acls += grant(settings, principal)
    return list(dict.fromkeys(acls))


async def create_acls(admin_settings: Settings, acls: list[Acl]) -> None:
    """Create ``acls`` (ALLOW, any host) on the cluster; raise on the first refusal."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.admin import CreateAclsRequest

    from streams.connections import kafka_kwargs

    admin = AIOKafkaAdminClient(**kafka_kwargs(admin_settings), client_id="healthmate-acls")
    await admin.start()
    try:
        for acl in acls:
            # aiokafka 0.14 has the request but no public create_acls() yet.
            response = await admin._send_request(CreateAclsRequest(
                acl.resource, acl.name, acl.pattern, acl.principal, "*", acl.operation, ALLOW))
            for error_code, error_message in response.creation_responses:
                if error_code:
                    raise RuntimeError(f"CreateAcls refused {acl}: error {error_code} {error_message}")
    finally:
        await admin.close()
