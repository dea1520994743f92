"""The secure mode's grants as `python -m streams acls` composes them (pure; no Kafka)."""

from __future__ import annotations

from streams.acls import Operation, Pattern, Resource, secure_mode_acls
from streams.config import Settings

SETTINGS = Settings(dev_mode=True, raw_topic="r.raw", dlq_topic="r.dlq", profiles_topic="r.profiles",
                    consumer_group="r-sink", app_id="r-app")
WORKER, PRODUCER = "User:w", "User:p"


def grants(acls, principal):  # type: ignore[no-untyped-def]
    return {(a.resource, a.name, a.pattern, a.operation) for a in acls if a.principal == principal}


def test_the_redrive_and_replay_grants_go_to_the_worker_by_default_each_once() -> None:
    acls = secure_mode_acls(SETTINGS, worker=WORKER, producer=PRODUCER)
    assert len(acls) == len(set(acls)), "each grant once"
    worker = grants(acls, WORKER)
    assert (Resource.TOPIC, "r.dlq", Pattern.LITERAL, Operation.READ) in worker
    assert (Resource.TOPIC, "r.raw", Pattern.LITERAL, Operation.WRITE) in worker
    assert (Resource.GROUP, "healthmate-redrive-", Pattern.PREFIXED, Operation.READ) in worker
    assert (Resource.GROUP, "healthmate-replay-", Pattern.PREFIXED, Operation.READ) in worker
    assert {op for _, name, _, op in worker if name == "r.profiles"} == {
        Operation.READ, Operation.DESCRIBE, Operation.WRITE}, "read it, and write an erasure's tombstone"
    assert grants(acls, PRODUCER) == {(Resource.TOPIC, "r.raw", Pattern.LITERAL, op)
                                      for op in (Operation.WRITE, Operation.DESCRIBE)}


def test_none_leaves_redrives_to_a_super_user_and_another_principal_gets_them_alone() -> None:
    alone = secure_mode_acls(SETTINGS, worker=WORKER, producer=PRODUCER, redrive="none", replay="none")
    worker = grants(alone, WORKER)
    assert (Resource.TOPIC, "r.dlq", Pattern.LITERAL, Operation.READ) not in worker
    assert (Resource.TOPIC, "r.raw", Pattern.LITERAL, Operation.WRITE) not in worker
    assert not any(resource is Resource.GROUP and name.startswith("healthmate-")
                   for resource, name, _, _ in worker)
    other = secure_mode_acls(SETTINGS, worker=WORKER, producer=PRODUCER, redrive="User:api", replay="none")
    assert grants(other, "User:api") == {
        (Resource.TOPIC, "r.dlq", Pattern.LITERAL, Operation.READ),
        (Resource.TOPIC, "r.dlq", Pattern.LITERAL, Operation.DESCRIBE),
        (Resource.TOPIC, "r.raw", Pattern.LITERAL, Operation.READ),
        (Resource.TOPIC, "r.raw", Pattern.LITERAL, Operation.WRITE),
        (Resource.TOPIC, "r.raw", Pattern.LITERAL, Operation.DESCRIBE),
        (Resource.GROUP, "healthmate-redrive-", Pattern.PREFIXED, Operation.READ),
        (Resource.GROUP, "healthmate-redrive-", Pattern.PREFIXED, Operation.DESCRIBE)}
    assert grants(other, WORKER) == worker
