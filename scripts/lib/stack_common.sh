# Shell functions shared by scripts/stack.sh and scripts/secure_stack.sh (sourced, not run).
# The caller sets ROOT, LOGS, KAFKA_VERSION, JARS, PYTHON, STOP_GRACE_SECONDS and LOG_TAG.

log() { printf '[%s] %s\n' "$LOG_TAG" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2; exit 1; }

port_listening() { # port -> 0 if something listens on 127.0.0.1:port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

as_postgres() { # command... (from / so postgres can chdir)
  (cd / && runuser -u postgres -- "$@")
}

broker_pid() { # pidfile -> prints the recorded pid if that process is a Kafka broker, else nothing
  [[ -f "$1" ]] || return 0
  local pid
  pid="$(cat "$1" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka'; then
    echo "$pid"
  fi
}

kafka_fetch_jars() { # once into $JARS, from scripts/kafka/pom.xml
  if [[ -f "$JARS/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven) - needed once to fetch the Kafka jars"
  command -v java >/dev/null || die "java not found (Kafka 4.x needs Java 17+: apt-get install -y openjdk-17-jre-headless)"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into ${JARS#"$ROOT"/} (once)"
  local tmp="$JARS.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp" "$LOGS"
  if ! mvn -q -B -Dstyle.color=never -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$LOGS/maven.out" 2>&1; then
    tail -n 30 "$LOGS/maven.out" >&2
    rm -rf "$tmp"
    die "maven could not fetch Kafka $KAFKA_VERSION (see $LOGS/maven.out)"
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after maven"; }
  local n_slf4j
  n_slf4j="$(find "$tmp" -maxdepth 1 -name 'slf4j-api-*.jar' | wc -l)"
  [[ "$n_slf4j" == 1 ]] || { rm -rf "$tmp"; die "expected exactly one slf4j-api jar, found $n_slf4j (check mvn dependency:tree)"; }
  rm -rf "$JARS"
  mv "$tmp" "$JARS"
}

new_cluster_id() { # Kafka's Uuid text form: URL-safe base64 of 16 random bytes, no padding
  local id
  while :; do # a leading '-' would be taken for a flag by the tool's option parser
    id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && break
  done
  echo "$id"
}

kafka_java() { # heap-flags main-class args... : the broker's JVM command line, logging to $LOGS
  local heap="$1"
  shift
  # shellcheck disable=SC2086
  java $heap -Djava.awt.headless=true -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.yaml" \
    -Dkafka.logs.dir="$LOGS" -cp "$JARS/*" "$@"
}

kafka_wait_ready() { # pid bootstrap timeout [kafka_ready.py options...]
  local pid="$1" bootstrap="$2" timeout="$3" rc=0
  shift 3
  [[ -x "$PYTHON" ]] || command -v "$PYTHON" >/dev/null || die "python not found at '$PYTHON' (set PYTHON=...)"
  "$PYTHON" "$ROOT/scripts/kafka_ready.py" --bootstrap "$bootstrap" --timeout "$timeout" --pid "$pid" \
    --quiet "$@" || rc=$?
  if [[ $rc != 0 ]]; then
    log "last lines of $LOGS/kafka.out:" >&2
    tail -n 20 "$LOGS/kafka.out" >&2 || true
    log "last lines of $LOGS/kafka.log:" >&2
    tail -n 20 "$LOGS/kafka.log" >&2 || true
    die "Kafka did not become ready on $bootstrap"
  fi
}

stop_pid() { # pid name: SIGTERM, then SIGKILL after STOP_GRACE_SECONDS
  local pid="$1" name="$2" i
  kill -0 "$pid" 2>/dev/null || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_GRACE_SECONDS * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.25
  done
  log "$name still alive after ${STOP_GRACE_SECONDS}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.25
  done
  die "$name (pid $pid) survived SIGKILL"
}
