#!/bin/bash
# repman's STAND-IN for the official mariadb image's healthcheck.sh: the two tests repman uses.
#   --connect              a TCP connection as the healthcheck user succeeds
#   --innodb_initialized   InnoDB is initialised (ENGINES lists it as usable)
# Any other test name is refused (exit 2), so a probe this stand-in cannot judge never passes.
set -eo pipefail
CNF=/var/lib/mysql/.my-healthcheck.cnf
[ -r "$CNF" ] || { echo "healthcheck: $CNF missing (datadir not initialised)" >&2; exit 1; }
sql() { mariadb --defaults-extra-file="$CNF" --protocol=tcp -h127.0.0.1 --skip-column-names -e "$1"; }
[ $# -gt 0 ] || set -- --connect
for t in "$@"; do
	case "$t" in
		--connect) sql 'SELECT 1' >/dev/null ;;
		--innodb_initialized)
			[ "$(sql "SELECT 1 FROM information_schema.ENGINES WHERE engine='InnoDB' AND support IN ('YES','DEFAULT','ENABLED')")" = 1 ] ;;
		--su-mysql|--no-defaults|--defaults-file=*|--defaults-extra-file=*|--datadir=*) ;;
		*) echo "healthcheck: test $t is not implemented by this stand-in" >&2; exit 2 ;;
	esac
done
