#!/bin/bash
# repman's STAND-IN for the official `mariadb:10.11` image's entrypoint (written for tests on
# machines that cannot pull from a registry). It honours the same interface, as far as repman
# and its tests use it:
#   MARIADB_ROOT_PASSWORD | MARIADB_RANDOM_ROOT_PASSWORD | MARIADB_ALLOW_EMPTY_ROOT_PASSWORD,
#   MARIADB_ROOT_HOST, MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD (each also as NAME_FILE),
#   /docker-entrypoint-initdb.d/*.sh (sourced unless executable), *.sql, *.sql.gz,
#   docker_process_sql for sourced scripts, a healthcheck user for healthcheck.sh.
# It is not the official image: no MYSQL_* aliases, no auto-upgrade, no replication helpers.
set -eo pipefail
shopt -s nullglob

SOCKET=/run/mysqld/mysqld.sock
DATADIR=/var/lib/mysql

mysql_note() { echo "$(date -u +%FT%TZ) [Note] [Entrypoint]: $*"; }
mysql_error() { echo "$(date -u +%FT%TZ) [ERROR] [Entrypoint]: $*" >&2; exit 1; }

# NAME or NAME_FILE (not both): as the official image's file_env.
file_env() {
	local var="$1" def="${2:-}" fvar="${1}_FILE" val
	if [ -n "${!var:-}" ] && [ -n "${!fvar:-}" ]; then
		mysql_error "both $var and $fvar are set (but are exclusive)"
	fi
	val="$def"
	if [ -n "${!var:-}" ]; then val="${!var}"
	elif [ -n "${!fvar:-}" ]; then val="$(< "${!fvar}")"
	fi
	export "$var"="$val"
	unset "$fvar"
}

sql_escape() { local v="${1//\\/\\\\}"; printf '%s' "${v//\'/\\\'}"; }

# Run SQL from stdin against the temporary server (root over the socket).
docker_process_sql() {
	local db=()
	if [ -n "${MARIADB_DATABASE:-}" ] && [ "${1:-}" != "--dont-use-mysql-root-password" ]; then db=("--database=$MARIADB_DATABASE"); fi
	[ "${1:-}" = "--dont-use-mysql-root-password" ] && shift
	mariadb --protocol=socket --socket="$SOCKET" -uroot --password="${MARIADB_ROOT_PASSWORD:-}" "${db[@]}" "$@"
}

docker_setup_env() {
	file_env MARIADB_ROOT_PASSWORD
	file_env MARIADB_ROOT_HOST '%'
	file_env MARIADB_DATABASE
	file_env MARIADB_USER
	file_env MARIADB_PASSWORD
	file_env MARIADB_RANDOM_ROOT_PASSWORD
	file_env MARIADB_ALLOW_EMPTY_ROOT_PASSWORD
	DATABASE_ALREADY_EXISTS=
	[ -d "$DATADIR/mysql" ] && DATABASE_ALREADY_EXISTS=true
	return 0
}

docker_verify_minimum_env() {
	if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ]; then
		mysql_error "Database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
	fi
}

docker_temp_server_start() {
	"$@" --skip-networking --socket="$SOCKET" --skip-log-bin --skip-slave-start --wsrep_on=OFF \
		--loose-innodb_buffer_pool_load_at_startup=0 &
	TEMP_PID=$!
	local i
	for i in $(seq 60); do
		if mariadb --protocol=socket --socket="$SOCKET" -uroot --password="${MARIADB_ROOT_PASSWORD_TEMP:-}" -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
		kill -0 "$TEMP_PID" 2>/dev/null || mysql_error "temporary server exited during initialisation"
		sleep 0.5
	done
	mysql_error "unable to start the temporary server"
}

docker_temp_server_stop() {
	kill "$TEMP_PID"; wait "$TEMP_PID" || true
}

docker_setup_db() {
	local root_pw
	if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		MARIADB_ROOT_PASSWORD="$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)"
		export MARIADB_ROOT_PASSWORD
		echo "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
	fi
	root_pw="$(sql_escape "$MARIADB_ROOT_PASSWORD")"
	local hc_pw; hc_pw="$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)"
	local root_host="$(sql_escape "$MARIADB_ROOT_HOST")" extra=""
	if [ "$MARIADB_ROOT_HOST" != "localhost" ]; then
		extra="CREATE USER 'root'@'${root_host}' IDENTIFIED BY '${root_pw}'; GRANT ALL ON *.* TO 'root'@'${root_host}' WITH GRANT OPTION;"
	fi
	# Not binlogged (the temporary server runs without a binlog): each node gets its own accounts.
	MARIADB_ROOT_PASSWORD= docker_process_sql --dont-use-mysql-root-password <<-EOSQL
		SET @@SESSION.SQL_LOG_BIN=0;
		DELETE FROM mysql.global_priv WHERE user NOT IN ('mysql.sys', 'mariadb.sys', 'root') OR host NOT IN ('localhost');
		ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('${root_pw}') OR unix_socket;
		${extra}
		CREATE USER 'healthcheck'@'127.0.0.1' IDENTIFIED BY '${hc_pw}';
		CREATE USER 'healthcheck'@'::1' IDENTIFIED BY '${hc_pw}';
		CREATE USER 'healthcheck'@'localhost' IDENTIFIED BY '${hc_pw}';
		GRANT USAGE ON *.* TO 'healthcheck'@'127.0.0.1', 'healthcheck'@'::1', 'healthcheck'@'localhost';
		DROP DATABASE IF EXISTS test;
	EOSQL
	printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\n' "$SOCKET" "$hc_pw" \
		> "$DATADIR/.my-healthcheck.cnf"
	chmod 0600 "$DATADIR/.my-healthcheck.cnf"
	if [ -n "$MARIADB_DATABASE" ]; then
		docker_process_sql --database=mysql <<<"CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
	fi
	if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
		local u p; u="$(sql_escape "$MARIADB_USER")"; p="$(sql_escape "$MARIADB_PASSWORD")"
		docker_process_sql --database=mysql <<<"CREATE USER '$u'@'%' IDENTIFIED BY '$p';"
		if [ -n "$MARIADB_DATABASE" ]; then
			docker_process_sql --database=mysql <<<"GRANT ALL ON \`${MARIADB_DATABASE//_/\\_}\`.* TO '$u'@'%';"
		fi
	fi
}

docker_process_init_files() {
	local f
	for f in "$@"; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then mysql_note "$0: running $f"; "$f"
				else mysql_note "$0: sourcing $f"; . "$f"; fi ;;
			*.sql) mysql_note "$0: running $f"; docker_process_sql < "$f" ;;
			*.sql.gz) mysql_note "$0: running $f"; gunzip -c "$f" | docker_process_sql ;;
			*) mysql_note "$0: ignoring $f" ;;
		esac
	done
}

_main() {
	if [ "${1:0:1}" = '-' ]; then set -- mariadbd "$@"; fi
	if [ "$1" = 'mariadbd' ] || [ "$1" = 'mysqld' ]; then
		mysql_note "Entrypoint script for the repman stand-in of mariadb:10.11 started."
		mkdir -p "$DATADIR" /run/mysqld
		if [ "$(id -u)" = "0" ]; then
			chown -R mysql:mysql "$DATADIR" /run/mysqld
			exec setpriv --reuid=mysql --regid=mysql --init-groups "$BASH_SOURCE" "$@"
		fi
		docker_setup_env
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			docker_verify_minimum_env
			mysql_note "Initializing database files"
			mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
				--skip-test-db --skip-log-bin --cross-bootstrap >/dev/null
			docker_temp_server_start "$@"
			docker_setup_db
			docker_process_init_files /docker-entrypoint-initdb.d/*
			docker_temp_server_stop
			mysql_note "MariaDB init process done. Ready for start up."
		fi
		unset MARIADB_ROOT_PASSWORD MARIADB_PASSWORD
	fi
	exec "$@"
}

_main "$@"
