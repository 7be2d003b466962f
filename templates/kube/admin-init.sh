#!/bin/bash
# repman: sourced by the MariaDB image's entrypoint, on an empty datadir only.
# Creates repman's admin account from the Secret's environment (never from a file in
# the image or a ConfigMap); not binlogged, so every pod gets its own copy.
repman_sql_escape() {
  local v="${1//\\/\\\\}"
  printf '%s' "${v//\'/\\\'}"
}
# The docker backend passes the password as a file (REPMAN_ADMIN_PASSWORD_FILE), never in the environment.
if [ -n "${REPMAN_ADMIN_PASSWORD_FILE:-}" ]; then REPMAN_ADMIN_PASSWORD="$(cat "$REPMAN_ADMIN_PASSWORD_FILE")"; fi
repman_admin_user="$(repman_sql_escape "$REPMAN_ADMIN_USER")"
repman_admin_pass="$(repman_sql_escape "$REPMAN_ADMIN_PASSWORD")"
docker_process_sql --binary-mode <<EOSQL
SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS '${repman_admin_user}'@'%' IDENTIFIED BY '${repman_admin_pass}';
ALTER USER '${repman_admin_user}'@'%' IDENTIFIED BY '${repman_admin_pass}';
GRANT ALL PRIVILEGES ON *.* TO '${repman_admin_user}'@'%' WITH GRANT OPTION;
EOSQL
unset repman_admin_user repman_admin_pass REPMAN_ADMIN_PASSWORD
