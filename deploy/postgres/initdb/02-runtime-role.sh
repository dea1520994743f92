#!/bin/sh
# Run once by the postgres image's entrypoint, on an empty data volume, as POSTGRES_USER.
# The runtime role of the least-privilege mode (docker-compose.yml): the worker, its API and
# Airflow's tasks connect as it; it owns nothing, and `python -m streams setup` (the `setup`
# service, as the schema owner) grants it what it needs.
set -eu
password="$(cat "$RUNTIME_ROLE_PASSWORD_FILE")"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v password="$password" <<'SQL'
CREATE ROLE healthmate_app LOGIN PASSWORD :'password';
GRANT CONNECT, TEMP ON DATABASE healthmate TO healthmate_app;
SQL
