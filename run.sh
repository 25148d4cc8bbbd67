#!/usr/bin/env bash
# Run Terapage on this machine: virtualenv, requirements, migrations, demo data, then the
# embedded Redis (unless REDIS_URL), the Salesforce emulator as the demo org, a worker with the
# scheduler, and the web app. Ctrl-C stops everything this script started.
#
#   ./run.sh                 PORT=5000 by default; state (SQLite, keys, Redis data) in .state/
#   PORT=8000 ./run.sh       another port
#   REDIS_URL=redis://... DATABASE_URL=postgresql+psycopg://... ./run.sh   external services
#   NO_EMULATOR=1 ./run.sh   without the emulator
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
PORT=${PORT:-5000}
EMULATOR_PORT=${EMULATOR_PORT:-8443}
export FLASK_APP=wsgi
export TERAPAGE_ENV=${TERAPAGE_ENV:-development}
export STATE_DIR=${STATE_DIR:-$ROOT/.state}
mkdir -p "$STATE_DIR/logs"

# --- virtualenv and requirements (reinstalled only when requirements.txt changes) --------------
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements.txt"
  # (this machine's pip prints "Location ... is ignored" warnings for its own config; hidden)
  .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }
  echo "$want" > .venv/.requirements.sha256
fi
FLASK=(.venv/bin/python -m flask)

# --- processes: started in the background, stopped together ----------------------------------
PIDS=()
REDIS_PID=""
stopping=""
stop_all() {
  [ -n "$stopping" ] && return
  stopping=1
  trap - INT TERM
  echo
  echo "==> stopping"
  # The web app, worker and emulator first (the worker finishes its current job), Redis last.
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ -n "$REDIS_PID" ]; then
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
}
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq $((seconds * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2 & wait $!
  done
  echo "!! $what did not come up in ${seconds}s; see $STATE_DIR/logs/"; exit 1
}

# --- Redis -------------------------------------------------------------------------------------
if [ -z "${REDIS_URL:-}" ]; then
  echo "==> starting the embedded Redis"
  "${FLASK[@]}" embedded-redis > "$STATE_DIR/logs/redis.log" 2>&1 &
  REDIS_PID=$!
  wait_for 20 "embedded Redis" grep -q '^REDIS_URL=' "$STATE_DIR/logs/redis.log"
  export REDIS_URL=$(sed -n 's/^REDIS_URL=//p' "$STATE_DIR/logs/redis.log" | head -1)
  wait_for 20 "embedded Redis" .venv/bin/python -c "import redis,sys; redis.Redis.from_url(sys.argv[1]).ping()" "$REDIS_URL"
fi
echo "    Redis: $REDIS_URL"

# --- database and demo data ----------------------------------------------------------------------
# Steps run in the background and are waited for: a foreground child that catches Ctrl-C
# itself would keep bash from running the trap.
step() { "$@" & wait $!; }
echo "==> migrating the database"
step "${FLASK[@]}" db upgrade > "$STATE_DIR/logs/migrate.log" 2>&1 \
  || { cat "$STATE_DIR/logs/migrate.log"; echo "!! flask db upgrade failed"; exit 1; }
echo "==> demo data"
step "${FLASK[@]}" seed-demo > "$STATE_DIR/logs/seed.log" 2>&1 \
  || { cat "$STATE_DIR/logs/seed.log"; echo "!! flask seed-demo failed"; exit 1; }
SEED_OUTPUT=$(cat "$STATE_DIR/logs/seed.log")
echo "$SEED_OUTPUT"

# --- the Salesforce emulator (the demo org) ------------------------------------------------------
EMULATOR_LINE=""
if [ -f emulator/__main__.py ] && [ -z "${NO_EMULATOR:-}" ]; then
  echo "==> starting the Salesforce emulator on 127.0.0.1:$EMULATOR_PORT"
  EMU_DIR="$STATE_DIR/emulator"
  mkdir -p "$EMU_DIR"
  # The demo org is generated on the first start only; later starts keep its records (and your
  # edits) and the tokens it issued, so connections made against it stay connected.
  if [ -s "$EMU_DIR/store.sqlite" ]; then
    EMU_DATA=(--keep-data)
  else
    EMU_DATA=(--generate 2000 --seed 7)
  fi
  .venv/bin/python -m emulator serve --state-dir "$EMU_DIR" "${EMU_DATA[@]}" \
    --port "$EMULATOR_PORT" > "$STATE_DIR/logs/emulator.log" 2>&1 &
  PIDS+=($!)
  wait_for 120 "the Salesforce emulator" grep -q 'emulator ready' "$STATE_DIR/logs/emulator.log"
  export SALESFORCE_EMULATOR_APP="$EMU_DIR/connected-app.json"
  export SALESFORCE_CA_FILE="$EMU_DIR/ca.pem"
  export SALESFORCE_EXTRA_LOGIN_HOSTS="127.0.0.1:$EMULATOR_PORT"
  EMULATOR_LINE=$(.venv/bin/python - "$SALESFORCE_EMULATOR_APP" <<'EOF'
import json, sys
app = json.load(open(sys.argv[1]))
user = next(u for u in app["users"] if u["username"] == app.get("default_user")) if app.get("users") else None
print(f"    Salesforce emulator: {app['login_url']}"
      + (f"  (log in to the org as {user['username']} / {user['password']})" if user else ""))
EOF
)
fi

# --- worker and web app --------------------------------------------------------------------------
echo "==> starting a worker with the scheduler"
"${FLASK[@]}" worker > "$STATE_DIR/logs/worker.log" 2>&1 &
PIDS+=($!)

echo "==> starting the web app"
"${FLASK[@]}" run --host 127.0.0.1 --port "$PORT" --no-reload --no-debugger > "$STATE_DIR/logs/web.log" 2>&1 &
PIDS+=($!)
URL="http://127.0.0.1:$PORT"
wait_for 60 "the web app" .venv/bin/python -c "import urllib.request,urllib.error,sys
try: urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError: pass" "$URL/"

cat <<EOF

  Terapage is running at $URL/
$(echo "$SEED_OUTPUT" | grep -E 'admin:|researcher:' | sed 's/^ */    /')
$EMULATOR_LINE
    Logs: $STATE_DIR/logs/   Stop: Ctrl-C

EOF

# Stop everything when any process ends on its own (Ctrl-C is handled by the trap).
while :; do
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "!! a process ended on its own; see $STATE_DIR/logs/"
      exit 1
    fi
  done
  # `wait` (unlike a foreground command) returns at once on Ctrl-C, so the trap runs first.
  sleep 1 & wait $!
done
