#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `source scripts/postgres.sh; postgres_start` installs Debian's
# PostgreSQL when missing, runs initdb as the unprivileged `postgres` user (initdb refuses root, and CI runs as
# root) in a temporary directory that user owns, starts it on 127.0.0.1 at a free port, and exports its URL as
# WASM_HOST_TEST_POSTGRES. `postgres_stop` stops it by its PID and removes the directory; postgres_start sets an
# EXIT trap that does so on any exit.
# Run alone (`bash scripts/postgres.sh`), it starts a cluster, prints the export line and, on a second line, its
# directory, and leaves it running until `bash scripts/postgres.sh stop DIR`; `down DIR` and `up DIR` stop and
# start its server without removing it (a database restart, for tests). `bash scripts/postgres.sh tls CERT KEY`
# does the same with TLS on (`ssl=on`), serving the PEM certificate CERT (its chain) and key KEY: postgres_start
# does so whenever POSTGRES_TLS_CERT and POSTGRES_TLS_KEY are set.

postgres_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$bin" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  echo "$bin"
}

# As the `postgres` user when we are root; as ourselves otherwise.
postgres_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_start() {
  local bin port
  bin=$(postgres_bin)
  POSTGRES_DIR=$(mktemp -d /tmp/wasm-host-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$POSTGRES_DIR"
  chmod 700 "$POSTGRES_DIR"
  postgres_as "$bin/initdb" -D "$POSTGRES_DIR/data" -U postgres --auth=trust -E UTF8 >"$POSTGRES_DIR/initdb.log" 2>&1 \
    || { cat "$POSTGRES_DIR/initdb.log"; return 1; }
  if [ -n "${POSTGRES_TLS_CERT:-}" ]; then
    # The server reads them as its own user and refuses a key others can read.
    install -m 600 "$POSTGRES_TLS_CERT" "$POSTGRES_DIR/server.crt"
    install -m 600 "$POSTGRES_TLS_KEY" "$POSTGRES_DIR/server.key"
    [ "$(id -u)" = 0 ] && chown postgres: "$POSTGRES_DIR/server.crt" "$POSTGRES_DIR/server.key"
  fi
  local started=
  for port in $(seq 54320 54420); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    echo "$port" >"$POSTGRES_DIR/port"
    rm -f "$POSTGRES_DIR/server.log"
    if postgres_try_up "$POSTGRES_DIR"; then started=1; break; fi
    # Another cluster took the port between the probe and the bind (tests start clusters in parallel): the next.
    grep -q "Address already in use" "$POSTGRES_DIR/server.log" \
      || { cat "$POSTGRES_DIR/server.log" "$POSTGRES_DIR/pg_ctl.err"; return 1; }
  done
  [ -n "$started" ] || { echo "no free port for PostgreSQL in 54320-54420" >&2; return 1; }
  POSTGRES_PID=$(head -1 "$POSTGRES_DIR/data/postmaster.pid")
  export WASM_HOST_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
  export POSTGRES_DIR POSTGRES_PID
  trap postgres_stop EXIT
}

# Starts the server of the cluster in DIR on the port it was made with (again, after postgres_down).
postgres_up() {
  postgres_try_up "$1" || { cat "$1/server.log" "$1/pg_ctl.err"; return 1; }
}

# As postgres_up, saying nothing when it fails (server.log and pg_ctl.err in DIR say why).
postgres_try_up() {
  local bin tls=
  bin=$(postgres_bin)
  [ -f "$1/server.key" ] && tls="-c ssl=on -c ssl_cert_file=$1/server.crt -c ssl_key_file=$1/server.key"
  postgres_as "$bin/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
    -o "-p $(cat "$1/port") -k $1 -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${POSTGRES_FSYNC:-off} $tls" start >/dev/null 2>"$1/pg_ctl.err"
}

# Stops the server of the cluster in DIR (fast shutdown: sessions are cut), keeping its data.
postgres_down() {
  postgres_as "$(postgres_bin)/pg_ctl" -D "$1/data" -m fast -w -t 60 stop >/dev/null
}

postgres_stop() {
  [ -n "${POSTGRES_DIR:-}" ] || return 0
  if [ -n "${POSTGRES_PID:-}" ] && kill -0 "$POSTGRES_PID" 2>/dev/null; then
    kill -INT "$POSTGRES_PID"  # fast shutdown
    for _ in $(seq 1 100); do kill -0 "$POSTGRES_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$POSTGRES_DIR"
  POSTGRES_DIR=
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    stop) POSTGRES_DIR=$2; POSTGRES_PID=$(head -1 "$2/data/postmaster.pid" 2>/dev/null || true); postgres_stop ;;
    down) postgres_down "$2" ;;
    up) postgres_up "$2" ;;
    *)
      if [ "${1:-}" = tls ]; then POSTGRES_TLS_CERT=$2 POSTGRES_TLS_KEY=$3; fi
      postgres_start
      trap - EXIT
      echo "export WASM_HOST_TEST_POSTGRES=$WASM_HOST_TEST_POSTGRES  # stop: bash scripts/postgres.sh stop $POSTGRES_DIR"
      echo "$POSTGRES_DIR"
      ;;
  esac
fi
