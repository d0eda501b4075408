#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft, broker+controller in one JVM) for
# tests, benchmarks and local development. Jars come from Maven Central into the cache,
# once; each broker lives in its own run directory (config, data, log, pid), so several
# can run side by side and a stopped broker restarts with its data on the same ports.
#
#   scripts/kafka.sh provision                     download the jars (idempotent)
#   scripts/kafka.sh start [--dir D] [--port P] [--owner-pid PID]
#                                                  start (P=0: a free port; default 9092); prints host:port;
#                                                  with --owner-pid, the broker stops when that process is gone
#   scripts/kafka.sh stop  [--dir D] [--kill]      stop (SIGTERM, or SIGKILL for a crash); keeps the data
#   scripts/kafka.sh status [--dir D]              prints host:port and exits 0 when running
#   scripts/kafka.sh clean [--dir D]               stop and delete the run directory
#
# Environment: SPECSERVE_CACHE (default ~/.cache/specserve), KAFKA_VERSION, JAVA (default java).
set -euo pipefail

CACHE="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
# Absolute: mvn runs in the pom's directory, where a relative path would name another place.
[[ "$CACHE" == /* ]] || CACHE="$PWD/$CACHE"
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
LOG4J_VERSION="2.24.3"
DEPENDENCY_PLUGIN_VERSION="2.8"
HOME_DIR="$CACHE/kafka"
LIB="$HOME_DIR/lib-$KAFKA_VERSION"
JAVA="${JAVA:-java}"
HOST=127.0.0.1

die() { echo "kafka.sh: $*" >&2; exit 1; }

provision() {
  [[ -f "$LIB/.complete" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  mkdir -p "$HOME_DIR"
  # Concurrent callers (test files, a bench beside them) serialize here; the second finds the jars
  # complete. $LIB is replaced only while it is incomplete, so never under a running broker.
  # fd 9 is closed before a broker starts: it must not hold the lock.
  exec 9>"$HOME_DIR/.lib-$KAFKA_VERSION.lock"
  flock 9
  if [[ ! -f "$LIB/.complete" ]]; then
    fetch_jars
  fi
  exec 9>&-
}

# fetch_jars: the jars into a fresh directory beside $LIB (the same filesystem: the final mv is a
# rename), which then replaces $LIB. Called with the lock held.
fetch_jars() {
  local pom_dir="$HOME_DIR/pom-$KAFKA_VERSION" tmp
  mkdir -p "$pom_dir"
  # kafka_2.13 logs through slf4j 1.x; log4j-slf4j-impl binds it to log4j2.
  cat >"$pom_dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>specserve</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  # What an interrupted fetch left (no one else fetches this version: the lock is ours).
  rm -rf "$HOME_DIR/.lib-$KAFKA_VERSION".tmp.*
  tmp="$(mktemp -d "$HOME_DIR/.lib-$KAFKA_VERSION.tmp.XXXXXX")"
  chmod 755 "$tmp"
  echo "kafka.sh: fetching Kafka $KAFKA_VERSION from Maven Central into $LIB" >&2
  # -C: a checksum mismatch fails the download (Maven only warns by default). The plugin
  # version is pinned so the build does not depend on whichever one this mvn defaults to.
  (cd "$pom_dir" && mvn -q -B -C -Dmaven.repo.local="$HOME_DIR/m2" \
      "org.apache.maven.plugins:maven-dependency-plugin:$DEPENDENCY_PLUGIN_VERSION:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$tmp") >&2 || { rm -rf "$tmp"; die "mvn dependency:copy-dependencies failed"; }
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "kafka_2.13 jar missing after download"; }
  touch "$tmp/.complete"
  rm -rf "$LIB" && mv "$tmp" "$LIB"
}

free_port() {
  # A port below the range outgoing connections take theirs from (as test/helpers.ts freePort):
  # the JVM binds it a second or more later, and a load generator's connection may hold a port
  # the kernel handed out from that range meanwhile. Else bind port 0 and read back what it gave.
  local low port tries
  low="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
  for ((tries = 0; low > 11000 && tries < 100; tries++)); do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
    if python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.close()' "$port" 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
    || node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

listening() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Whether PID is this directory's broker. A pid file outlives a reboot or a container
# restart, and by then its pid may belong to any other process: only one whose command
# line runs kafka.Kafka on this DIR's server.properties is ours to report or to signal.
is_our_broker() {
  local pid="$1" args
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  args="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ $'\n'"$args"$'\n' == *$'\nkafka.Kafka\n'"$DIR/server.properties"$'\n'* ]]
}

running() {
  [[ -f "$DIR/pid" ]] && is_our_broker "$(cat "$DIR/pid")"
}

write_config() {
  local port="$1" controller="$2"
  mkdir -p "$DIR/data"
  cat >"$DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://$HOST:$port,CONTROLLER://$HOST:$controller
advertised.listeners=PLAINTEXT://$HOST:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
controller.quorum.bootstrap.servers=$HOST:$controller
log.dirs=$DIR/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# A broker started again after a crash (stop --kill) is let in only once its previous
# incarnation's session has expired (9 s at the default). The controller is in the same JVM,
# so heartbeats never cross a network: a short session loses nothing.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=500
group.consumer.session.timeout.ms=45000
group.consumer.min.session.timeout.ms=6000
EOF
  cat >"$DIR/log4j2.properties" <<EOF
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$DIR/server.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.apache.name=org.apache.kafka
logger.apache.level=INFO
EOF
}

# A cluster id in the form StorageTool random-uuid prints (a UUID's 16 bytes, base64url, unpadded,
# never leading "-"; here all 128 bits random, which Kafka accepts), without the second JVM start
# it costs (~1.5 s of every fresh broker's start).
cluster_id() {
  local id
  while id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"; [[ "$id" == -* ]]; do :; done
  (( ${#id} == 22 )) || die "cannot make a cluster id from /dev/urandom"
  echo "$id"
}

bootstrap() { sed -n 's/^advertised.listeners=PLAINTEXT:\/\///p' "$DIR/server.properties"; }

start() {
  provision
  mkdir -p "$DIR"
  if running; then bootstrap; return 0; fi
  local cp="$LIB/*"
  if [[ ! -f "$DIR/data/meta.properties" ]]; then
    [[ "$PORT" == 0 ]] && PORT="$(free_port)"
    local controller
    controller="$(free_port)"
    while [[ "$controller" == "$PORT" ]]; do controller="$(free_port)"; done
    write_config "$PORT" "$controller"
    local cluster
    cluster="$(cluster_id)"
    # C1 only: a one-shot tool, done before the JIT's second tier would pay off.
    "$JAVA" -XX:TieredStopAtLevel=1 -cp "$cp" -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
      kafka.tools.StorageTool format --standalone -t "$cluster" -c "$DIR/server.properties" >"$DIR/format.log" 2>&1 \
      || { cat "$DIR/format.log" >&2; die "StorageTool format failed"; }
  fi
  # A restart reuses the formatted data and the ports recorded in server.properties.
  local port
  port="$(bootstrap)"; port="${port##*:}"
  listening "$port" && die "port $port is already in use (by something other than this broker)"
  nohup "$JAVA" -Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$DIR/log4j2.properties" -cp "$cp" \
    kafka.Kafka "$DIR/server.properties" >"$DIR/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$DIR/pid"
  if [[ -n "$OWNER" ]]; then
    # Tied to a test run: if the owner dies without stopping the broker, stop it anyway.
    ( while kill -0 "$OWNER" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 2; done; ! is_our_broker "$pid" || kill -TERM "$pid" 2>/dev/null ) \
      >/dev/null 2>&1 </dev/null &
  fi
  local until=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until listening "$port"; do
    # kill -0, not running(): until the child has exec'd java its command line is still this script's.
    kill -0 "$pid" 2>/dev/null || { tail -n 40 "$DIR/stdout.log" "$DIR/server.log" >&2 2>/dev/null; die "broker exited during start"; }
    (( SECONDS < until )) || die "broker not listening on $port after ${KAFKA_START_TIMEOUT:-90}s (see $DIR/server.log)"
    sleep 0.2
  done
  bootstrap
}

stop() {
  # No broker, or a stale pid file naming some other process: nothing to signal.
  running || { rm -f "$DIR/pid"; return 0; }
  local pid
  pid="$(cat "$DIR/pid")"
  kill "-$SIGNAL" "$pid" 2>/dev/null || true
  local until=$((SECONDS + 60))
  while is_our_broker "$pid"; do
    (( SECONDS < until )) || { kill -KILL "$pid" 2>/dev/null || true; }
    sleep 0.1
  done
  # Its command line is gone once its main thread has exited, while other threads may still
  # hold the sockets: a start right after would find the port taken.
  local port
  port="$(bootstrap)"; port="${port##*:}"
  while listening "$port" && (( SECONDS < until )); do sleep 0.1; done
  rm -f "$DIR/pid"
}

cmd="${1:-}"; shift || true
DIR="$HOME_DIR/run/default"
PORT="${KAFKA_PORT:-9092}"
SIGNAL=TERM
OWNER=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --kill) SIGNAL=KILL; shift ;;
    --owner-pid) OWNER="$2"; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
mkdir -p "$HOME_DIR"
DIR="$(mkdir -p "$DIR" && cd "$DIR" && pwd)"

case "$cmd" in
  provision) provision ;;
  start) start ;;
  stop) stop ;;
  status) running && bootstrap ;;
  clean) stop; rm -rf "$DIR" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
