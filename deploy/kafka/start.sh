#!/usr/bin/env bash
# The compose Kafka broker (docker-compose.yml, service `kafka`, the apache/kafka image):
# writes server.properties from the environment and the mounted secrets, formats the storage
# once (creating the SCRAM users), and runs the broker. The same broker configuration as the
# tested local secure stack (scripts/secure_stack.sh).
#
# HM_BROKER_TRANSPORT=secure (the default): SASL_SSL listeners (SCRAM-SHA-512, TLS 1.2+ with
#   the certificate of the `tls` volume), ACLs on (StandardAuthorizer; nothing is allowed
#   unless granted; super user `admin`), the controller listener with SASL PLAIN.
# HM_BROKER_TRANSPORT=plaintext: the plaintext listeners of local development, no users, no
#   ACLs (docker-compose.dev.yml only).
#
# Environment (defaults are the compose service's):
#   CLUSTER_ID                   KRaft cluster id, fixed so the volume's format matches
#   HM_BROKER_LISTEN / _ADVERTISED           internal listener      [:9092 / kafka:9092]
#   HM_BROKER_EXTERNAL_LISTEN / _ADVERTISED  listener for the host  [:29092 / localhost:29092]
#   HM_BROKER_CONTROLLER         the controller voter               [kafka:9093]
#   HM_BROKER_CONTROLLER_LISTEN  its listener                       [:9093]
#   HM_BROKER_TLS_DIR            ca.pem, kafka-keystore.pem         [/etc/kafka/tls]
#   HM_BROKER_SECRETS_DIR        healthmate_kafka_{admin,worker,producer}_password [/run/secrets]
#   HM_BROKER_CONFIG_DIR         server.properties, admin-client.properties (0600) [/tmp/healthmate-kafka]
#   KAFKA_LOG_DIRS               data                               [/var/lib/kafka/data]
#   KAFKA_RUN                    runs a class with Kafka's classpath [/opt/kafka/bin/kafka-run-class.sh]
#   KAFKA_START                  starts the broker on a properties file [/opt/kafka/bin/kafka-server-start.sh]
#
# The SCRAM users (admin, healthmate-worker, healthmate-producer) are created when the
# storage is formatted, from the secrets at that time: a later password change needs
# `kafka-configs --alter --add-config 'SCRAM-SHA-512=[password=...]'` (or a new volume).
set -euo pipefail
transport=${HM_BROKER_TRANSPORT:-secure}
listen=${HM_BROKER_LISTEN:-:9092}
advertised=${HM_BROKER_ADVERTISED:-kafka:9092}
external_listen=${HM_BROKER_EXTERNAL_LISTEN:-:29092}
external_advertised=${HM_BROKER_EXTERNAL_ADVERTISED:-localhost:29092}
controller=${HM_BROKER_CONTROLLER:-kafka:9093}
controller_listen=${HM_BROKER_CONTROLLER_LISTEN:-:9093}
tls=${HM_BROKER_TLS_DIR:-/etc/kafka/tls}
secrets=${HM_BROKER_SECRETS_DIR:-/run/secrets}
config=${HM_BROKER_CONFIG_DIR:-/tmp/healthmate-kafka}
data=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}
run=${KAFKA_RUN:-/opt/kafka/bin/kafka-run-class.sh}
start=${KAFKA_START:-/opt/kafka/bin/kafka-server-start.sh}
: "${CLUSTER_ID:?set CLUSTER_ID}"

secret() { # name -> the secret's value (the file compose mounts)
  local file="$secrets/healthmate_kafka_$1_password"
  [[ -s "$file" ]] || { echo "kafka: missing secret $file" >&2; exit 1; }
  cat "$file"
}

umask 077
mkdir -p "$config" "$data"
props="$config/server.properties"
cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$controller
controller.listener.names=CONTROLLER
log.dirs=$data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=4
group.initial.rebalance.delay.ms=0
# topics are created by \`python -m streams setup\`
auto.create.topics.enable=false
message.max.bytes=4194304
replica.fetch.max.bytes=4194304
PROPS
if [[ "$transport" == plaintext ]]; then
  cat >>"$props" <<PROPS
listeners=PLAINTEXT://$listen,CONTROLLER://$controller_listen,EXTERNAL://$external_listen
advertised.listeners=PLAINTEXT://$advertised,EXTERNAL://$external_advertised
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,EXTERNAL:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
PROPS
  printf 'security.protocol=PLAINTEXT\n' >"$config/admin-client.properties"
  scram=()
elif [[ "$transport" == secure ]]; then
  admin_pw=$(secret admin)
  cat >>"$props" <<PROPS
listeners=SASL_SSL://$listen,CONTROLLER://$controller_listen,EXTERNAL://$external_listen
advertised.listeners=SASL_SSL://$advertised,EXTERNAL://$external_advertised
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT,EXTERNAL:SASL_SSL
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
listener.name.external.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw" user_admin="$admin_pw";
ssl.keystore.type=PEM
ssl.keystore.location=$tls/kafka-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
ssl.enabled.protocols=TLSv1.3,TLSv1.2
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
PROPS
  cat >"$config/admin-client.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
PROPS
  scram=()
  for user in admin worker producer; do
    name=$user
    [[ "$user" == admin ]] || name="healthmate-$user"
    scram+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$(secret "$user")]")
  done
else
  echo "kafka: HM_BROKER_TRANSPORT must be secure or plaintext, not '$transport'" >&2
  exit 2
fi

if [[ ! -f "$data/meta.properties" ]]; then
  echo "kafka: formatting $data (cluster $CLUSTER_ID, transport $transport)"
  "$run" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$props" "${scram[@]}"
fi
exec "$start" "$props"
