#!/bin/bash
# repman: sourced by the MariaDB image's entrypoint, on an empty datadir only.
# Creates repman's admin account from the Secret's environment (never from a file in
# the image or a ConfigMap); not binlogged, so every pod gets its own copy.
# REPMAN_ADMIN_PASSWORD_HASH ('*' + hex, made by the deployer) is preferred: then the
# clear password is neither in the pod's environment nor in any statement the server logs.
repman_sql_escape() {
  local v="${1//\\/\\\\}"
  printf '%s' "${v//\'/\\\'}"
}
# The docker backend passes the password as a file (REPMAN_ADMIN_PASSWORD_FILE), never in the environment.
if [ -n "${REPMAN_ADMIN_PASSWORD_FILE:-}" ]; then REPMAN_ADMIN_PASSWORD="$(cat "$REPMAN_ADMIN_PASSWORD_FILE")"; fi
repman_admin_user="$(repman_sql_escape "$REPMAN_ADMIN_USER")"
if [ -n "${REPMAN_ADMIN_PASSWORD_HASH:-}" ]; then
  repman_admin_auth="IDENTIFIED BY PASSWORD '$(repman_sql_escape "$REPMAN_ADMIN_PASSWORD_HASH")'"
else
  repman_admin_auth="IDENTIFIED BY '$(repman_sql_escape "$REPMAN_ADMIN_PASSWORD")'"
fi
docker_process_sql --binary-mode <<EOSQL
SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS '${repman_admin_user}'@'%' ${repman_admin_auth};
ALTER USER '${repman_admin_user}'@'%' ${repman_admin_auth};
GRANT ALL PRIVILEGES ON *.* TO '${repman_admin_user}'@'%' WITH GRANT OPTION;
EOSQL
unset repman_admin_user repman_admin_auth REPMAN_ADMIN_PASSWORD
