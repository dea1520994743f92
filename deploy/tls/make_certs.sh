#!/bin/sh
# The compose stack's certificates (docker-compose.yml, service `tls`; run as root before
# Kafka and PostgreSQL start). Once, into $TLS_DIR (the `tls` volume):
#
#   ca.pem              a throwaway CA, the one every client verifies against (public)
#   server.pem          the servers' certificate: DNS kafka, postgres, localhost (public)
#   kafka-keystore.pem  key + certificate for Kafka's PEM keystore, owner $KAFKA_UID, 0600
#   postgres.key        the key for PostgreSQL's ssl_key_file, owner $PG_UID, 0600
#
# The CA's key is deleted once the certificate is signed, so nothing in the volume can
# sign another certificate. When the certificate is due to expire within a week, all of it
# is made anew (a new CA): restart the services afterwards. To use your own CA instead,
# put these four files in the volume; a valid set is left alone.
set -eu
dir=${TLS_DIR:-/tls}
days=${TLS_DAYS:-825}
kafka_uid=${KAFKA_UID:-1000}  # apache/kafka runs as appuser (1000)
pg_uid=${PG_UID:-999}         # the postgres image's postgres user
if [ -s "$dir/ca.pem" ] && [ -s "$dir/kafka-keystore.pem" ] && [ -s "$dir/postgres.key" ] \
    && openssl x509 -checkend 604800 -noout -in "$dir/server.pem" >/dev/null 2>&1; then
  echo "tls: certificates in $dir are valid; nothing to do"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=HealthMate compose CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server.key 2>/dev/null
openssl req -new -key server.key -subj "/CN=kafka" -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:kafka,DNS:postgres,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
  -extfile server.ext -out server.pem 2>/dev/null
mkdir -p "$dir"
install -m 0644 ca.pem "$dir/ca.pem"
install -m 0644 server.pem "$dir/server.pem"
cat server.key server.pem >kafka-keystore.pem
install -m 0600 -o "$kafka_uid" -g "$kafka_uid" kafka-keystore.pem "$dir/kafka-keystore.pem"
install -m 0600 -o "$pg_uid" -g "$pg_uid" server.key "$dir/postgres.key"
echo "tls: new CA and server certificate (kafka, postgres, localhost) in $dir, valid $days days"
