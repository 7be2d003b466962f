#!/bin/sh
# repman: keeps one mariadbd running on a host without systemd (pushed by the on-premise backend).
# Usage: supervise.sh MARIADBD DEFAULTS_FILE RUN_DIR
# Restarts the server when it dies abnormally (like systemd's Restart=on-failure);
# SIGTERM stops the server cleanly and ends the supervisor.
server=$1; cnf=$2; run=$3
echo $$ > "$run/supervisor.pid"
child=""
stop() {
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"
  rm -f "$run/supervisor.pid"
  exit 0
}
trap stop TERM INT
while :; do
  "$server" --defaults-file="$cnf" &
  child=$!
  wait "$child"
  rc=$?
  [ "$rc" -eq 0 ] && break
  echo "$(date -u +%FT%TZ) mariadbd exited with $rc, restarting" >> "$run/supervisor.log"
  sleep 1
done
rm -f "$run/supervisor.pid"
