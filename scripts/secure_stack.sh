#!/usr/bin/env bash
# The secure local stack, separate from scripts/stack.sh (other ports, own data):
# a Kafka broker with a SASL_SSL listener (SCRAM-SHA-512, ACLs on) beside a plaintext one,
# and a PostgreSQL cluster that only accepts TLS with scram-sha-256 passwords.
#
#   scripts/secure_stack.sh up       certificates and users (once), broker, cluster, ACLs
#   scripts/secure_stack.sh down     stop what `up` started (recorded pids), nothing else
#   scripts/secure_stack.sh status   each component's state (always exits 0)
#   scripts/secure_stack.sh reset    down, then wipe the broker's data
#
# Environment (defaults in brackets):
#   HEALTHMATE_SECURE_KAFKA_PORT             SASL_SSL listener                [29494]
#   HEALTHMATE_SECURE_KAFKA_PLAINTEXT_PORT   plaintext listener (no rights)   [29492]
#   HEALTHMATE_SECURE_KAFKA_CONTROLLER_PORT  KRaft controller (SASL PLAIN)    [29493]
#   HEALTHMATE_SECURE_PG_PORT                PostgreSQL cluster "secure"      [55494]
#   PYTHON                                   python with the project          [.venv/bin/python]
#
# Everything lives under .stack/secure/ (git-ignored): tls/ (CA, certificates: they name
# `localhost` only), secrets/ (generated passwords and DSNs, mode 0600), admin.env,
# worker.env, producer.env (HEALTHMATE_* settings for each principal, secrets as *_FILE),
# kafka/, logs/, pids/. The PostgreSQL cluster is Debian's `15/secure` (pg_createcluster).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

KAFKA_VERSION="${HEALTHMATE_KAFKA_VERSION:-4.4.0}"
SASL_PORT="${HEALTHMATE_SECURE_KAFKA_PORT:-29494}"
PLAIN_PORT="${HEALTHMATE_SECURE_KAFKA_PLAINTEXT_PORT:-29492}"
CONTROLLER_PORT="${HEALTHMATE_SECURE_KAFKA_CONTROLLER_PORT:-29493}"
PG_PORT="${HEALTHMATE_SECURE_PG_PORT:-55494}"
PG_VERSION=15
PG_CLUSTER=secure
PYTHON="${PYTHON:-.venv/bin/python}"
STOP_GRACE_SECONDS=20
LOG_TAG=secure-stack

SECURE="$ROOT/.stack/secure"
JARS="$ROOT/.stack/kafka-jars/$KAFKA_VERSION"
TLS="$SECURE/tls"
SECRETS="$SECURE/secrets"
KAFKA_DIR="$SECURE/kafka"
LOGS="$SECURE/logs"
PIDS="$SECURE/pids"
KAFKA_PIDFILE="$PIDS/kafka.pid"
PG_PIDFILE="$PIDS/postgres.pid"
PG_CONF_DIR="/etc/postgresql/$PG_VERSION/$PG_CLUSTER"

# shellcheck source=scripts/lib/stack_common.sh
source "$ROOT/scripts/lib/stack_common.sh"

# --------------------------------------------------------------------------- certificates, secrets

make_tls() {
  if [[ -s "$TLS/ca.pem" && -s "$TLS/server.pem" ]] \
      && openssl x509 -checkend 604800 -noout -in "$TLS/server.pem" >/dev/null 2>&1; then
    return 0 # valid for at least another week
  fi
  command -v openssl >/dev/null || die "openssl not found"
  log "generating a throwaway CA and a server certificate for localhost in ${TLS#"$ROOT"/}"
  rm -rf "$TLS"
  mkdir -p "$TLS"
  (
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj "/CN=HealthMate local test CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server.key 2>/dev/null
    openssl req -new -key server.key -subj "/CN=localhost" -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 90 \
      -extfile server.ext -out server.pem 2>/dev/null
    cat server.key server.pem >broker-keystore.pem # Kafka's PEM keystore: key + chain
    chmod 600 ca.key server.key broker-keystore.pem
    rm -f server.csr server.ext ca.srl
  )
}

secret() { # name -> prints the secret, generating it once
  local file="$SECRETS/$1"
  if [[ ! -s "$file" ]]; then
    mkdir -p "$SECRETS" && chmod 700 "$SECRETS"
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' 'xy' | tr -d '=\n' >"$file")
  fi
  cat "$file"
}

write_secret() { # name value
  (umask 077 && printf '%s' "$2" >"$SECRETS/$1")
}

write_env_files() {
  local owner_dsn="postgresql://healthmate:$(secret pg-owner)@localhost:$PG_PORT/healthmate"
  local app_dsn="postgresql://healthmate_app:$(secret pg-app)@localhost:$PG_PORT/healthmate"
  write_secret pg-owner-dsn "$owner_dsn"
  write_secret pg-app-dsn "$app_dsn"
  local common="HEALTHMATE_KAFKA_BOOTSTRAP=localhost:$SASL_PORT
HEALTHMATE_KAFKA_SECURITY_PROTOCOL=SASL_SSL
HEALTHMATE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
HEALTHMATE_KAFKA_SSL_CAFILE=$TLS/ca.pem
HEALTHMATE_PG_SSLMODE=verify-full
HEALTHMATE_PG_SSL_ROOTCERT=$TLS/ca.pem
HEALTHMATE_PG_DSN_FILE=$SECRETS/pg-app-dsn"
  printf '%s\nHEALTHMATE_KAFKA_SASL_USERNAME=admin\nHEALTHMATE_KAFKA_SASL_PASSWORD_FILE=%s\nHEALTHMATE_PG_MIGRATION_DSN_FILE=%s\n' \
    "$common" "$SECRETS/kafka-admin" "$SECRETS/pg-owner-dsn" >"$SECURE/admin.env"
  printf '%s\nHEALTHMATE_KAFKA_SASL_USERNAME=healthmate-worker\nHEALTHMATE_KAFKA_SASL_PASSWORD_FILE=%s\n' \
    "$common" "$SECRETS/kafka-worker" >"$SECURE/worker.env"
  printf '%s\nHEALTHMATE_KAFKA_SASL_USERNAME=healthmate-producer\nHEALTHMATE_KAFKA_SASL_PASSWORD_FILE=%s\n' \
    "$common" "$SECRETS/kafka-producer" >"$SECURE/producer.env"
}

# --------------------------------------------------------------------------- Kafka

kafka_write_props() {
  local admin_pw
  admin_pw="$(secret kafka-admin)"
  mkdir -p "$KAFKA_DIR" "$LOGS"
  (umask 077 && cat >"$KAFKA_DIR/server.properties" <<EOF
# Generated by scripts/secure_stack.sh - edits are overwritten on every \`up\`.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=SASL_SSL://127.0.0.1:$SASL_PORT,PLAINTEXT://127.0.0.1:$PLAIN_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=SASL_SSL://localhost:$SASL_PORT,PLAINTEXT://127.0.0.1:$PLAIN_PORT
listener.security.protocol.map=SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
log.dirs=$KAFKA_DIR/data

# SCRAM-SHA-512 on SASL_SSL (users are created at format time); the controller listener
# uses PLAIN, as SCRAM credentials live in the metadata the controller serves.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw" user_admin="$admin_pw";
ssl.keystore.type=PEM
ssl.keystore.location=$TLS/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem

# ACLs: nothing is allowed unless granted (the plaintext listener's ANONYMOUS has no grants)
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false

offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
message.max.bytes=4194304
replica.fetch.max.bytes=4194304
log.cleaner.enable=true
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
EOF
  )
}

kafka_format() { # once: the SCRAM users are created here (their passwords persist in secrets/)
  [[ -f "$KAFKA_DIR/data/meta.properties" ]] && return 0
  local scram=()
  for user in admin healthmate-worker healthmate-producer; do
    scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$(secret "kafka-${user#healthmate-}")]")
  done
  kafka_java -Xmx256m kafka.tools.StorageTool format -t "$(new_cluster_id)" -c "$KAFKA_DIR/server.properties" \
    "${scram[@]}" >"$LOGS/kafka-format.out" 2>&1 \
    || { tail -n 20 "$LOGS/kafka-format.out" >&2; die "kafka storage format failed (see $LOGS/kafka-format.out)"; }
}

kafka_up() {
  local pid
  pid="$(broker_pid "$KAFKA_PIDFILE")"
  if [[ -n "$pid" ]]; then
    log "kafka      running  localhost:$SASL_PORT (pid $pid, already running)"
    return 0
  fi
  for p in "$SASL_PORT" "$PLAIN_PORT" "$CONTROLLER_PORT"; do
    port_listening "$p" && die "port 127.0.0.1:$p is already in use (set HEALTHMATE_SECURE_KAFKA_*_PORT)"
  done
  kafka_fetch_jars
  mkdir -p "$PIDS"
  kafka_write_props
  kafka_format
  log "starting Kafka $KAFKA_VERSION (SASL_SSL localhost:$SASL_PORT, plaintext :$PLAIN_PORT, ACLs on)"
  setsid java -Xms128m -Xmx384m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.yaml" -Dkafka.logs.dir="$LOGS" \
    -cp "$JARS/*" kafka.Kafka "$KAFKA_DIR/server.properties" </dev/null >>"$LOGS/kafka.out" 2>&1 &
  pid=$!
  echo "$pid" >"$KAFKA_PIDFILE"
  (set -a && source "$SECURE/admin.env" && kafka_wait_ready "$pid" "localhost:$SASL_PORT" 90 --settings)
  log "kafka      ready    localhost:$SASL_PORT (pid $pid)"
}

kafka_down() {
  local pid
  pid="$(broker_pid "$KAFKA_PIDFILE")"
  [[ -n "$pid" ]] && stop_pid "$pid" "secure kafka"
  rm -f "$KAFKA_PIDFILE"
}

# --------------------------------------------------------------------------- PostgreSQL

pg_pid() { # the postmaster's pid if it is the one `up` recorded
  [[ -f "$PG_PIDFILE" ]] || return 0
  local pid data
  pid="$(cat "$PG_PIDFILE")"
  data="/var/lib/postgresql/$PG_VERSION/$PG_CLUSTER"
  [[ "$(head -n 1 "$data/postmaster.pid" 2>/dev/null)" == "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
  return 0
}

pg_configure() {
  if [[ ! -d "$PG_CONF_DIR" ]]; then
    log "creating PostgreSQL cluster $PG_VERSION/$PG_CLUSTER on port $PG_PORT"
    pg_createcluster "$PG_VERSION" "$PG_CLUSTER" -p "$PG_PORT" >/dev/null
  fi
  install -o postgres -g postgres -m 644 "$TLS/server.pem" "$PG_CONF_DIR/server.pem"
  install -o postgres -g postgres -m 600 "$TLS/server.key" "$PG_CONF_DIR/server.key"
  cat >"$PG_CONF_DIR/conf.d/healthmate-secure.conf" <<EOF
# Generated by scripts/secure_stack.sh
port = $PG_PORT
listen_addresses = '127.0.0.1'
ssl = on
ssl_cert_file = '$PG_CONF_DIR/server.pem'
ssl_key_file = '$PG_CONF_DIR/server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
EOF
  cat >"$PG_CONF_DIR/pg_hba.conf" <<EOF
# Generated by scripts/secure_stack.sh: TLS + scram-sha-256 over TCP, nothing else.
local     all  postgres                peer
hostssl   all  all       127.0.0.1/32  scram-sha-256
hostnossl all  all       127.0.0.1/32  reject
EOF
  chown postgres:postgres "$PG_CONF_DIR/conf.d/healthmate-secure.conf" "$PG_CONF_DIR/pg_hba.conf"
}

pg_admin() { # sql
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -At -p "$PG_PORT" -d postgres -c "$1"
}

pg_roles() {
  pg_admin "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'healthmate') THEN CREATE ROLE healthmate LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'healthmate_app') THEN CREATE ROLE healthmate_app LOGIN; END IF;
END \$\$;
ALTER ROLE healthmate PASSWORD '$(secret pg-owner)';
ALTER ROLE healthmate_app PASSWORD '$(secret pg-app)';" >/dev/null
  if [[ "$(pg_admin "SELECT 1 FROM pg_database WHERE datname = 'healthmate'")" != 1 ]]; then
    pg_admin "CREATE DATABASE healthmate OWNER healthmate" >/dev/null
  fi
  # the runtime role may connect and use temp tables (the sink's staging), nothing more
  pg_admin "REVOKE ALL ON DATABASE healthmate FROM PUBLIC; GRANT CONNECT, TEMP ON DATABASE healthmate TO healthmate_app" >/dev/null
}

pg_up() {
  command -v pg_createcluster >/dev/null || die "PostgreSQL is not installed (apt-get install -y postgresql)"
  local pid
  pid="$(pg_pid)"
  if [[ -z "$pid" ]]; then
    port_listening "$PG_PORT" && die "port 127.0.0.1:$PG_PORT is already in use (set HEALTHMATE_SECURE_PG_PORT)"
    pg_configure
    log "starting PostgreSQL $PG_VERSION/$PG_CLUSTER (TLS only, 127.0.0.1:$PG_PORT)"
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start \
      || die "pg_ctlcluster start failed (see /var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log)"
    mkdir -p "$PIDS"
    head -n 1 "/var/lib/postgresql/$PG_VERSION/$PG_CLUSTER/postmaster.pid" >"$PG_PIDFILE"
    pid="$(pg_pid)"
  fi
  pg_roles
  log "postgres   ready    localhost:$PG_PORT (pid $pid)"
}

pg_down() {
  local pid
  pid="$(pg_pid)"
  if [[ -n "$pid" ]]; then
    log "stopping PostgreSQL $PG_VERSION/$PG_CLUSTER (pid $pid)"
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" stop -m fast \
      || as_postgres "/usr/lib/postgresql/$PG_VERSION/bin/pg_ctl" -D "/var/lib/postgresql/$PG_VERSION/$PG_CLUSTER" \
        -m immediate -w -t 10 stop >/dev/null || true
  fi
  rm -f "$PG_PIDFILE"
}

# --------------------------------------------------------------------------- main

cmd_up() {
  local t0=$SECONDS
  mkdir -p "$SECURE" "$PIDS" "$LOGS"
  make_tls
  write_env_files
  pg_up
  kafka_up
  (set -a && source "$SECURE/admin.env" && HEALTHMATE_DEV_MODE=true PYTHONPATH="$ROOT" "$PYTHON" -m streams acls >"$LOGS/acls.out") \
    || die "applying Kafka ACLs failed (see $LOGS/acls.out)"
  log "secure stack up in $((SECONDS - t0))s; settings per principal: .stack/secure/{admin,worker,producer}.env"
}

cmd_status() {
  local pid
  pid="$(broker_pid "$KAFKA_PIDFILE")"
  if [[ -n "$pid" ]]; then echo "kafka      running  pid $pid, SASL_SSL localhost:$SASL_PORT"; else echo "kafka      stopped"; fi
  pid="$(pg_pid)"
  if [[ -n "$pid" ]]; then echo "postgres   running  pid $pid, TLS localhost:$PG_PORT"; else echo "postgres   stopped"; fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) kafka_down; pg_down; log "secure stack down" ;;
  reset) kafka_down; pg_down; rm -rf "$KAFKA_DIR" "$LOGS"; log "secure Kafka data wiped (certificates, secrets and the PostgreSQL cluster kept)" ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 up|down|status|reset" >&2
    exit 2
    ;;
esac
