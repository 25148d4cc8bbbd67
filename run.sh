#!/usr/bin/env bash
# Run Terapage on this machine: virtualenv, requirements, migrations, demo data, then the
# embedded Redis (unless REDIS_URL), the Salesforce emulator as the demo org, a worker with the
# scheduler, and the web app. Ctrl-C stops everything this script started.
#
#   ./run.sh                 PORT=5000 by default; state (SQLite, keys, Redis data) in .state/
#   PORT=8000 ./run.sh       another port
#   PUBLIC_BASE_URL=https://... ./run.sh   the address in email links (default http://127.0.0.1:$PORT)
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
# Links inside emails (invitations, reminders, unsubscribe) point here; a deployment sets its own.
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}
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

# --- ports: refuse to start when one is taken (before anything is started) -----------------------
port_taken() {  # port_taken PORT: something already listens on 127.0.0.1:PORT
  ! .venv/bin/python -c "import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))" "$1" 2>/dev/null
}
if port_taken "$PORT"; then
  echo "!! port $PORT is taken (another ./run.sh?); pick another: PORT=5001 ./run.sh"; exit 1
fi
if [ -f emulator/__main__.py ] && [ -z "${NO_EMULATOR:-}" ] && port_taken "$EMULATOR_PORT"; then
  echo "!! port $EMULATOR_PORT (the emulator) is taken; pick another: EMULATOR_PORT=8444 ./run.sh"; exit 1
fi

# Keep the previous start's logs: each *.log becomes *.log.1 (one generation). Only now that the
# ports are free: a refused second start must not rotate the running instance's logs.
for log in "$STATE_DIR"/logs/*.log; do
  [ -f "$log" ] && mv -f "$log" "$log.1"
done

# --- processes: started in the background, stopped together ----------------------------------
# Each process starts in a session of its own (setsid), so everything it starts can be found and
# stopped later, even processes that left its process group (RQ's work horse calls os.setpgrp) or
# lost their parent (a work horse whose worker died).
PIDS=()
NAMES=()
REDIS_PID=""
WORKER_PID=""
stopping=""
if command -v setsid >/dev/null; then SETSID=(setsid); else SETSID=(); fi

tree_of() {  # tree_of PID...: those processes, everything in their sessions, and all their descendants
  local -A root=() parent=() session=() found=()
  local f line pid rest p changed
  for p in "$@"; do [ -n "$p" ] && root[$p]=1; done
  for f in /proc/[0-9]*/stat; do
    { read -r line < "$f"; } 2>/dev/null || continue
    pid=${f#/proc/}; pid=${pid%/stat}
    rest=${line##*) }           # after "pid (comm) ": state ppid pgrp session ...
    read -r _ p _ session[$pid] _ <<< "$rest"
    parent[$pid]=$p
  done
  for pid in "${!parent[@]}"; do
    [ -n "${root[$pid]:-}" ] || [ -n "${root[${session[$pid]}]:-}" ] && found[$pid]=1
  done
  changed=1
  while [ -n "$changed" ]; do
    changed=""
    for pid in "${!parent[@]}"; do
      if [ -z "${found[$pid]:-}" ] && [ -n "${found[${parent[$pid]}]:-}" ]; then found[$pid]=1; changed=1; fi
    done
  done
  echo "${!found[@]}"
}

stop_tree() {  # stop_tree SECONDS PID...: SIGTERM the PIDs, wait, then SIGTERM what is left of their trees, wait, SIGKILL
  local seconds=$1; shift
  local roots=("$@") before after alive pid
  before=$(tree_of "${roots[@]}")
  for pid in "${roots[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq $((seconds * 5))); do
    alive=""
    for pid in "${roots[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.2
  done
  after=$(tree_of "${roots[@]}")
  # shellcheck disable=SC2086
  set -- $(printf '%s\n' $before $after | sort -un)
  [ $# = 0 ] && return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 25); do
    alive=""
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.2
  done
  kill -KILL "$@" 2>/dev/null || true
  for pid in "${roots[@]}"; do wait "$pid" 2>/dev/null || true; done
}

stop_all() {
  [ -n "$stopping" ] && return
  stopping=1
  trap - INT TERM HUP
  echo
  echo "==> stopping"
  # The web app, worker and emulator first (the worker gets 20 s to finish its current job),
  # then whatever is left of their process trees, Redis last.
  stop_tree 20 "${PIDS[@]}"
  if [ -n "$REDIS_PID" ]; then stop_tree 10 "$REDIS_PID"; fi
  rm -f "$STATE_DIR/run.pid"
  echo "==> stopped"
}
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT
echo $$ > "$STATE_DIR/run.pid"

WATCH=""      # pid of the process wait_for waits for: it gives up at once when that process ends
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq $((seconds * 5))); do
    if [ -n "$WATCH" ] && ! kill -0 "$WATCH" 2>/dev/null; then
      echo "!! $what exited while starting (port taken?); see $STATE_DIR/logs/"; exit 1
    fi
    "$@" >/dev/null 2>&1 && { [ -z "$WATCH" ] || kill -0 "$WATCH" 2>/dev/null; } && return 0
    sleep 0.2 & wait $!
  done
  echo "!! $what did not come up in ${seconds}s; see $STATE_DIR/logs/"; exit 1
}

# --- Redis -------------------------------------------------------------------------------------
if [ -z "${REDIS_URL:-}" ]; then
  echo "==> starting the embedded Redis"
  "${SETSID[@]}" "${FLASK[@]}" embedded-redis > "$STATE_DIR/logs/redis.log" 2>&1 &
  REDIS_PID=$!; WATCH=$REDIS_PID
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
  "${SETSID[@]}" .venv/bin/python -m emulator serve --state-dir "$EMU_DIR" "${EMU_DATA[@]}" \
    --port "$EMULATOR_PORT" > "$STATE_DIR/logs/emulator.log" 2>&1 &
  PIDS+=($!); NAMES+=(emulator); WATCH=$!
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
start_worker() {  # appends to worker.log, so a worker restarted with SIGHUP keeps the earlier lines
  "${SETSID[@]}" "${FLASK[@]}" worker >> "$STATE_DIR/logs/worker.log" 2>&1 &
  WORKER_PID=$!
}
restart_worker() {  # kill -HUP <run.sh's pid>: the worker finishes its current job (20 s at most) and starts again
  local i
  echo "==> restarting the worker"
  for i in "${!PIDS[@]}"; do [ "${PIDS[$i]}" = "$WORKER_PID" ] && PIDS[$i]=""; done
  stop_tree 20 "$WORKER_PID"
  start_worker
  for i in "${!PIDS[@]}"; do [ -z "${PIDS[$i]}" ] && PIDS[$i]=$WORKER_PID; done
  echo "    worker restarted (pid $WORKER_PID)"
}
echo "==> starting a worker with the scheduler"
start_worker
PIDS+=("$WORKER_PID"); NAMES+=(worker)
trap restart_worker HUP

echo "==> starting the web app"
"${SETSID[@]}" "${FLASK[@]}" run --host 127.0.0.1 --port "$PORT" --no-reload --no-debugger \
  > "$STATE_DIR/logs/web.log" 2>&1 &
PIDS+=($!); NAMES+=(web); WATCH=$!
URL="http://127.0.0.1:$PORT"
wait_for 60 "the web app" .venv/bin/python -c "import urllib.request,urllib.error,sys
try: urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError: pass" "$URL/"
WATCH=""

cat <<EOF

  Terapage is running at $URL/
$(echo "$SEED_OUTPUT" | grep -E 'admin:|researcher:' | sed 's/^ */    /')
$EMULATOR_LINE
    Logs: $STATE_DIR/logs/   Stop: Ctrl-C   Restart the worker: kill -HUP $$

EOF

# Stop everything when any process ends on its own (Ctrl-C is handled by the trap).
while :; do
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      echo "!! the ${NAMES[$i]} process ended on its own; stopping everything; see $STATE_DIR/logs/${NAMES[$i]}.log"
      exit 1
    fi
  done
  # `wait` (unlike a foreground command) returns at once on Ctrl-C, so the trap runs first; after
  # the SIGHUP trap (worker restart) it returns 129, which must not end the script.
  sleep 1 & wait $! || true
done
