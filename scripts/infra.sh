#!/usr/bin/env bash
# Local infrastructure for faceflow's streaming pipeline and its integration tests:
#   - a real single-node Apache Kafka broker in KRaft mode (broker+controller in one JVM), its jars resolved
#     from Maven Central with Maven (scripts/kafka/pom.xml) and cached under .infra/kafka/libs;
#   - Debian's redis-server, no persistence.
# Both listen on 127.0.0.1 only, on project ports that do not clash with a system Kafka/Redis.
#
# Usage: bash scripts/infra.sh up | down | status | env | clean
#   up      install what is missing (redis-server via apt, the Kafka jars via Maven), start both, wait until
#           they answer; idempotent: whatever is already up is left alone. Prints `export ...` lines on stdout
#           (so `eval "$(bash scripts/infra.sh up)"` works); progress goes to stderr.
#   down    stop both (Kafka gets a controlled shutdown, then SIGKILL after 30 s); data is kept.
#   status  say what runs; exit 0 when both answer, 3 otherwise.
#   env     print the `export ...` lines only.
#   clean   down, then delete Kafka's and Redis's data (the jar cache is kept).
#
# Settings (environment):
#   FACEFLOW_INFRA_DIR              state directory (default <repo>/.infra; gitignored)
#   FACEFLOW_KAFKA_PORT             client port (default 19092)  -> FACEFLOW_KAFKA_BROKERS=127.0.0.1:<port>
#   FACEFLOW_KAFKA_CONTROLLER_PORT  KRaft controller port (default 19093)
#   FACEFLOW_REDIS_PORT             Redis port (default 16379)   -> FACEFLOW_REDIS_URL=redis://127.0.0.1:<port>
#   FACEFLOW_KAFKA_HEAP             JVM heap flags (default "-Xms128m -Xmx512m")
#   FACEFLOW_INFRA_TIMEOUT          seconds to wait for each service to answer (default 120)
#
# Secured mode (issue 15), FACEFLOW_INFRA_SECURE=1: the plaintext ports stay (the readiness checks use them),
# and the script adds, with a CA, certificates and passwords it generates under <infra dir>/tls (mode 0600):
#   FACEFLOW_KAFKA_SASL_PORT        SASL_SSL listener, SCRAM-SHA-512 user "faceflow" (default 19094)
#   FACEFLOW_KAFKA_MTLS_PORT        SSL listener that requires a client certificate (mTLS; default 19095)
#   FACEFLOW_REDIS_TLS_PORT         Redis TLS port (default 16380); Redis's default user is turned off, so
#                                   both Redis ports need the ACL user "faceflow" and its password
# `up`/`env` then print the FACEFLOW_KAFKA_SECURITY/_SASL_*/_CA_FILE and FACEFLOW_REDIS_* lines of the
# SASL_SSL and TLS+ACL endpoints (docs/security.md). SCRAM credentials of a KRaft broker are written when its
# storage is formatted: turning the mode on over a broker formatted without it needs `clean` first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA_DIR="${FACEFLOW_INFRA_DIR:-$ROOT/.infra}"
KAFKA_PORT="${FACEFLOW_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${FACEFLOW_KAFKA_CONTROLLER_PORT:-19093}"
REDIS_PORT="${FACEFLOW_REDIS_PORT:-16379}"
KAFKA_HEAP="${FACEFLOW_KAFKA_HEAP:--Xms128m -Xmx512m}"
TIMEOUT="${FACEFLOW_INFRA_TIMEOUT:-120}"
SECURE="${FACEFLOW_INFRA_SECURE:-0}"
case "$SECURE" in 1 | true | yes | on) SECURE=1 ;; *) SECURE=0 ;; esac
KAFKA_SASL_PORT="${FACEFLOW_KAFKA_SASL_PORT:-19094}"
KAFKA_MTLS_PORT="${FACEFLOW_KAFKA_MTLS_PORT:-19095}"
REDIS_TLS_PORT="${FACEFLOW_REDIS_TLS_PORT:-16380}"

KAFKA_DIR="$INFRA_DIR/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_POM="$ROOT/scripts/kafka/pom.xml"
REDIS_DIR="$INFRA_DIR/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
TLS_DIR="$INFRA_DIR/tls"
SECURE_USER=faceflow

KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }

print_env() {
  if [ "$SECURE" = 1 ]; then
    echo "export FACEFLOW_KAFKA_BROKERS=127.0.0.1:$KAFKA_SASL_PORT"
    echo "export FACEFLOW_KAFKA_SECURITY=sasl_ssl"
    echo "export FACEFLOW_KAFKA_SASL_MECHANISM=scram-sha-512"
    echo "export FACEFLOW_KAFKA_SASL_USERNAME=$SECURE_USER"
    echo "export FACEFLOW_KAFKA_SASL_PASSWORD_FILE=$TLS_DIR/kafka.password"
    echo "export FACEFLOW_KAFKA_CA_FILE=$TLS_DIR/ca.crt"
    echo "export FACEFLOW_REDIS_URL=rediss://127.0.0.1:$REDIS_TLS_PORT"
    echo "export FACEFLOW_REDIS_USERNAME=$SECURE_USER"
    echo "export FACEFLOW_REDIS_PASSWORD_FILE=$TLS_DIR/redis.password"
    echo "export FACEFLOW_REDIS_CA_FILE=$TLS_DIR/ca.crt"
    # kcat (the tests' external client; librdkafka 2.0) fails the SCRAM login that kafkajs passes on this
    # broker: the tests point it at the mTLS listener
    echo "export FACEFLOW_KCAT_BROKERS=127.0.0.1:$KAFKA_MTLS_PORT"
    echo "export FACEFLOW_KCAT_CONFIG=$TLS_DIR/kcat.conf"
    echo "# mTLS instead of SASL: FACEFLOW_KAFKA_BROKERS=127.0.0.1:$KAFKA_MTLS_PORT FACEFLOW_KAFKA_SECURITY=ssl FACEFLOW_KAFKA_CERT_FILE=$TLS_DIR/client.crt FACEFLOW_KAFKA_KEY_FILE=$TLS_DIR/client.key (unset the SASL lines)"
  else
    echo "export FACEFLOW_KAFKA_BROKERS=$KAFKA_BROKERS"
    echo "export FACEFLOW_REDIS_URL=$REDIS_URL"
  fi
}

# --------------------------------------------------------------------------------------- secured mode
# A CA of the infra dir's own, a server certificate for 127.0.0.1/localhost (the broker's, also Redis's), a
# client certificate (mTLS), and the two passwords; made once, kept across up/down, deleted by `clean`.
tls_generate() {
  [ -s "$TLS_DIR/ca.crt" ] && [ -s "$TLS_DIR/client.crt" ] && [ -s "$TLS_DIR/broker.p12" ] && return 0
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  log "generating a test CA, server and client certificates and passwords in $TLS_DIR"
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  (
    umask 077
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=faceflow test CA" \
      -keyout ca.key -out ca.crt -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    local name
    for name in server client; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=faceflow-$name" -keyout "$name.key" -out "$name.csr" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' "$([ $name = server ] && echo serverAuth || echo clientAuth)" >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
      rm -f "$name.csr" "$name.ext"
    done
    head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >kafka.password
    head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >redis.password
    head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >keystore.password
    printf 'security.protocol=ssl\nssl.ca.location=%s\nssl.certificate.location=%s\nssl.key.location=%s\n' "$TLS_DIR/ca.crt" "$TLS_DIR/client.crt" "$TLS_DIR/client.key" >kcat.conf
    # the broker's keystore (PKCS12: Kafka's PEM keystore wants an encrypted PKCS#8 key); truststore: ca.crt (PEM)
    openssl pkcs12 -export -in server.crt -inkey server.key -certfile ca.crt -name broker \
      -passout "file:keystore.password" -out broker.p12
  ) || die "openssl could not generate the test certificates in $TLS_DIR"
}


# ---------------------------------------------------------------------------------------------- helpers
# apt_install: scripts/lib/apt.sh (shared with scripts/setup.sh)
# shellcheck source=lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

# A service that answers on our port but was not started from this state directory (another checkout's
# infra, or a system one): its data, certificates and passwords are not ours. Secured, the tests would fail on
# credentials they do not have, so it is refused; in plaintext it is used, and the line says so and how to
# run a separate one.
foreign() { # name pidfile cmdline-substring port port-variable
  pid_alive "$2" "$3" >/dev/null && return 0
  if [ "$SECURE" = 1 ]; then
    die "$1 on port $4 was not started from $INFRA_DIR (another checkout's infra?): its certificates and passwords are not this checkout's; stop it with that checkout's 'bash scripts/infra.sh down', or set $5 (and the other ports) to run one of this checkout's own"
  fi
  log "note: $1 on port $4 was not started from $INFRA_DIR (another checkout's infra?); using it. Stop it with that checkout's 'bash scripts/infra.sh down', or set $5 to run this checkout's own"
}

pid_alive() { # pidfile [cmdline-substring]
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -n "${2:-}" ] && [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2" || return 1
  fi
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ------------------------------------------------------------------------------------------------ redis
redis_ping() {
  local reply=""
  {
    exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3 || true
    exec 3>&-
  } 2>/dev/null
  # secured mode: the default user is off, so a Redis that answers "authentication required" is up
  [[ "$reply" == "+PONG"* ]] || { [ "$SECURE" = 1 ] && [[ "$reply" == "-NOAUTH"* ]]; }
}

redis_up() {
  if redis_ping; then
    if [ "$SECURE" = 1 ] && ! port_open "$REDIS_TLS_PORT"; then die "redis on $REDIS_PORT runs without the TLS port $REDIS_TLS_PORT of the secured mode: stop it ('bash scripts/infra.sh down') and run 'up' again"; fi
    foreign redis "$REDIS_PID" redis-server "$REDIS_PORT" FACEFLOW_REDIS_PORT
    log "redis already up on $REDIS_URL"; return 0
  fi
  if port_open "$REDIS_PORT"; then die "port $REDIS_PORT is taken by something that does not answer PING like Redis"; fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  command -v redis-server >/dev/null 2>&1 || die "redis-server is still not installed"
  mkdir -p "$REDIS_DIR"
  local secure=()
  if [ "$SECURE" = 1 ]; then
    tls_generate
    if port_open "$REDIS_TLS_PORT"; then die "port $REDIS_TLS_PORT (FACEFLOW_REDIS_TLS_PORT) is taken"; fi
    # the ACL goes in a config file read from stdin ("-"), so that the password is not on a command line
    secure=(--tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS_DIR/server.crt" --tls-key-file "$TLS_DIR/server.key"
      --tls-ca-cert-file "$TLS_DIR/ca.crt" --tls-auth-clients optional)
    log "starting redis on 127.0.0.1:$REDIS_PORT and TLS 127.0.0.1:$REDIS_TLS_PORT (ACL user $SECURE_USER)"
  else
    log "starting redis on 127.0.0.1:$REDIS_PORT"
  fi
  if [ "$SECURE" = 1 ]; then
    printf 'user default off\nuser %s on >%s ~* &* +@all\n' "$SECURE_USER" "$(cat "$TLS_DIR/redis.password")" |
      redis-server - --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes "${secure[@]}" \
        --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_DIR/redis.log" --dir "$REDIS_DIR" \
        --save '' --appendonly no --loglevel warning >&2 9>&-
  else
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
      --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_DIR/redis.log" --dir "$REDIS_DIR" \
      --save '' --appendonly no --loglevel warning >&2 9>&-
  fi
  local i
  for ((i = 0; i < TIMEOUT * 5; i++)); do
    if redis_ping; then log "redis up on $REDIS_URL"; return 0; fi
    sleep 0.2
  done
  tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
  die "redis did not answer PING within ${TIMEOUT}s"
}

redis_down() {
  local pid
  if pid="$(pid_alive "$REDIS_PID" redis-server)"; then
    log "stopping redis (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || { log "redis did not stop; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  elif redis_ping; then
    log "redis on port $REDIS_PORT was not started by this checkout ($REDIS_PID); leaving it alone"
  else
    log "redis not running"
  fi
  rm -f "$REDIS_PID"
}

# ------------------------------------------------------------------------------------------------ kafka
kafka_ready() { node "$ROOT/scripts/kafka/ready.mjs" "$KAFKA_BROKERS" 3000 --quiet >/dev/null 2>&1; }

kafka_resolve_jars() {
  local stamp="$KAFKA_LIBS/.pom.sha256" want
  want="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null 2>&1 || apt_install maven
  log "resolving the Kafka broker jars from Maven Central (scripts/kafka/pom.xml) into $KAFKA_LIBS"
  local tmp="$KAFKA_DIR/libs.tmp.$$"
  rm -rf "$tmp"
  mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 \
    || { rm -rf "$tmp"; die "maven could not resolve the Kafka jars"; }
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
}

kafka_write_props() {
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT" protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [ "$SECURE" = 1 ]; then
    listeners+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_MTLS_PORT"
    protocols+=",SASL_SSL:SASL_SSL,SSL:SSL"
  fi
  (umask 077; cat >"$KAFKA_PROPS" <<EOF
# generated by scripts/infra.sh; edits are overwritten on every 'up'
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=$listeners,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$KAFKA_DATA
# tests create (and delete) their own topics
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# no waiting for more members before the first rebalance of a consumer group
group.initial.rebalance.delay.ms=0
# a small, quiet machine: few threads, small segments, short retention
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.segment.bytes=16777216
log.retention.hours=24
EOF
  )
  if [ "$SECURE" = 1 ]; then
    cat >>"$KAFKA_PROPS" <<EOF
# secured mode (FACEFLOW_INFRA_SECURE=1): SASL_SSL with SCRAM-SHA-512, and SSL with a required client certificate
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$(cat "$TLS_DIR/keystore.password")
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.crt
ssl.endpoint.identification.algorithm=https
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.ssl.ssl.client.auth=required
EOF
  fi
}

kafka_format() {
  if [ -f "$KAFKA_DATA/meta.properties" ]; then
    if [ "$SECURE" = 1 ] && [ ! -f "$KAFKA_DATA/.scram-users" ]; then
      die "the Kafka storage in $KAFKA_DATA was formatted without the SCRAM user of the secured mode: run 'bash scripts/infra.sh clean' (with the same FACEFLOW_INFRA_DIR) first"
    fi
    return 0
  fi
  local id="" scram=()
  # KRaft: SCRAM credentials are metadata records, written at format time (later: kafka-configs.sh --alter)
  if [ "$SECURE" = 1 ]; then scram=(--add-scram "SCRAM-SHA-512=[name=$SECURE_USER,password=$(cat "$TLS_DIR/kafka.password")]"); fi
  # a Kafka Uuid: 16 random bytes, URL-safe base64 without padding; never starting with '-' (like Uuid.randomUuid)
  while [ -z "$id" ] || [[ "$id" == -* ]]; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  log "formatting Kafka storage (cluster id $id)"
  java $KAFKA_HEAP -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.xml" -Dkafka.logs.dir="$KAFKA_LOGS" \
    -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format -t "$id" -c "$KAFKA_PROPS" "${scram[@]}" >&2 \
    || die "kafka storage format failed"
  [ "$SECURE" = 1 ] && touch "$KAFKA_DATA/.scram-users"
  return 0
}

kafka_up() {
  if kafka_ready; then
    if [ "$SECURE" = 1 ] && ! port_open "$KAFKA_SASL_PORT"; then die "kafka on $KAFKA_PORT runs without the SASL_SSL listener $KAFKA_SASL_PORT of the secured mode: 'bash scripts/infra.sh down', 'clean' (SCRAM users are made at format time), then 'up' again"; fi
    foreign kafka "$KAFKA_PID" kafka.Kafka "$KAFKA_PORT" FACEFLOW_KAFKA_PORT
    log "kafka already up on $KAFKA_BROKERS"; return 0
  fi
  command -v node >/dev/null 2>&1 || die "node is needed (for the readiness check)"
  local pid
  if pid="$(pid_alive "$KAFKA_PID" kafka.Kafka)"; then
    log "kafka (pid $pid) is running but not answering yet; waiting"
  else
    if port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; then
      die "port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT is taken by something that is not a ready Kafka (set FACEFLOW_KAFKA_PORT / FACEFLOW_KAFKA_CONTROLLER_PORT)"
    fi
    if [ "$SECURE" = 1 ] && { port_open "$KAFKA_SASL_PORT" || port_open "$KAFKA_MTLS_PORT"; }; then
      die "port $KAFKA_SASL_PORT or $KAFKA_MTLS_PORT is taken (set FACEFLOW_KAFKA_SASL_PORT / FACEFLOW_KAFKA_MTLS_PORT)"
    fi
    command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
    kafka_resolve_jars
    [ "$SECURE" = 1 ] && tls_generate
    kafka_write_props
    kafka_format
    log "starting kafka (KRaft, broker+controller) on $KAFKA_BROKERS"
    # setsid: the broker must outlive this script and not get the terminal's / test runner's signals
    # shellcheck disable=SC2086
    setsid nohup java $KAFKA_HEAP -server -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -Djava.awt.headless=true -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.xml" \
      -Dkafka.logs.dir="$KAFKA_LOGS" -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS" \
      >"$KAFKA_LOGS/stdout.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$KAFKA_PID"
  fi
  local start=$SECONDS
  while ((SECONDS - start < TIMEOUT)); do
    if kafka_ready; then log "kafka up on $KAFKA_BROKERS ($((SECONDS - start))s)"; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$KAFKA_LOGS/stdout.log" "$KAFKA_LOGS/server.log" >&2 2>/dev/null || true
      die "kafka exited during start-up (logs: $KAFKA_LOGS)"
    fi
    sleep 1
  done
  tail -n 30 "$KAFKA_LOGS/stdout.log" "$KAFKA_LOGS/server.log" >&2 2>/dev/null || true
  die "kafka did not answer within ${TIMEOUT}s (logs: $KAFKA_LOGS)"
}

wait_gone() { # pid seconds
  local i
  for ((i = 0; i < $2 * 5; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
  return 1
}

kafka_down() {
  local pid
  if pid="$(pid_alive "$KAFKA_PID" kafka.Kafka)"; then
    log "stopping kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 30 || { log "kafka did not stop within 30s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 5 || true; }
  elif kafka_ready; then
    log "kafka on port $KAFKA_PORT was not started by this checkout ($KAFKA_PID); leaving it alone"
  else
    log "kafka not running"
  fi
  rm -f "$KAFKA_PID"
}

# ------------------------------------------------------------------------------------------------- main
status() {
  local rc=0 pid
  if kafka_ready; then
    pid="$(pid_alive "$KAFKA_PID" kafka.Kafka || echo '?')"
    echo "kafka: up   $KAFKA_BROKERS (pid $pid)"
  else
    echo "kafka: down $KAFKA_BROKERS"; rc=3
  fi
  if redis_ping; then
    pid="$(pid_alive "$REDIS_PID" redis-server || echo '?')"
    echo "redis: up   $REDIS_URL (pid $pid)"
  else
    echo "redis: down $REDIS_URL"; rc=3
  fi
  return $rc
}

# Tools of the pipeline and its tests: ffmpeg (video and stream sources), kcat (the tests' external Kafka
# client), promtool (Debian's prometheus package: the tests check every /metrics output with it).
ensure_apt_packages() {
  local missing=()
  command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
  command -v kcat >/dev/null 2>&1 || missing+=(kcat)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

with_lock() {
  mkdir -p "$INFRA_DIR"
  # fd 9 holds the lock; the daemons started under it close it (9>&-) so that they do not keep it held
  exec 9>"$INFRA_DIR/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w $((TIMEOUT * 3)) 9 || die "another infra.sh holds $INFRA_DIR/.lock"
  fi
}

cmd="${1:-}"
case "$cmd" in
  up)
    with_lock
    ensure_apt_packages
    redis_up
    kafka_up
    print_env
    ;;
  down)
    with_lock
    kafka_down
    redis_down
    ;;
  status) status ;;
  env) print_env ;;
  clean)
    with_lock
    kafka_down
    redis_down
    log "deleting $KAFKA_DATA, $KAFKA_LOGS, $REDIS_DIR and $TLS_DIR"
    rm -rf "$KAFKA_DATA" "$KAFKA_LOGS" "$KAFKA_PROPS" "$REDIS_DIR" "$TLS_DIR"
    ;;
  *)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
