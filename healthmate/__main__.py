"""``python -m healthmate`` prints every command; each module's ``--help`` has the details."""

from __future__ import annotations

import sys

COMMANDS = """HealthMate Pipeline commands (each takes --help):

  python -m streams worker            run the pipeline worker (ingest, quality, web API, console)
  python -m streams setup             create topics, apply migrations, create the coming partitions
  python -m streams produce           publish synthetic readings (--rate --count --bad-ratio --batch-size)
  python -m streams acls              create the secure mode's Kafka ACLs (--worker, --producer principals)
  python -m streams import PATH...    import Apple Health, Garmin FIT, Fitbit, Dexcom exports (--user-id)
  python -m batch run-job JOB_ID      run a registered ETL job now (--start/--end for an interval)
  python -m batch replay              replay a topic range: TOPIC START [END] [--engine spark]
  python -m web token                 mint an API bearer token (--role --sub [--ttl] [--private-key])
  python -m web gateway               run the HTTP ingest gateway (POST /ingest/v1/readings)

On the local stack (Kafka and PostgreSQL on 127.0.0.1, no HEALTHMATE_PSEUDONYM_KEY) they use the
development configuration, as `make run` does. Exit status 2: configuration; 3: Kafka or
PostgreSQL unreachable.
"""


def main() -> int:
    sys.stdout.write(COMMANDS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
