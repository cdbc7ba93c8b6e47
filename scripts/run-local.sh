#!/usr/bin/env bash
# `make run`: starts pinhole on examples/pinhole.yaml (a registrar for "localhost" on 127.0.0.1),
# adds the demo user once the admin port answers, prints how to register a softphone, and stays in
# the foreground until Ctrl-C (which stops pinhole cleanly).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PINHOLE_BIN:-./build/release/src/app/pinhole}
CONFIG=examples/pinhole.yaml
ADMIN=127.0.0.1:9060

bash scripts/dev-cert.sh build/run/tls
"$BIN" --check-config "$CONFIG"
"$BIN" --config "$CONFIG" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID' INT TERM

for _ in $(seq 1 50); do  # up to 5 s for the admin port
  if "$BIN" ctl --admin "$ADMIN" stats >/dev/null 2>&1; then break; fi
  kill -0 $PID 2>/dev/null || { wait $PID; exit 1; }
  sleep 0.1
done
if ! "$BIN" ctl --admin "$ADMIN" --json users list | grep -q '"username": *"demo"'; then
  "$BIN" ctl --admin "$ADMIN" users add demo@localhost --password demo
fi

cat <<'TEXT'

pinhole is running: a registrar for the domain "localhost".
Register a softphone with
  user / AOR:     demo@localhost          password: demo
  registrar:      127.0.0.1:5060 (UDP or TCP), or 127.0.0.1:5061 over TLS (self-signed certificate
                  in build/run/tls/: tell the phone to accept it)
More users:       ./build/release/src/app/pinhole ctl users add alice@localhost --password secret
Registrations:    ./build/release/src/app/pinhole ctl registrations
Metrics:          curl 127.0.0.1:9060/metrics
Ctrl-C stops pinhole.
TEXT
wait $PID
