#!/usr/bin/env bash
# One-command set-up. `scripts/setup.sh` installs system packages and a virtualenv;
# `--test` then runs the linters (scripts/lint.sh) and the test suite; `--up` then deploys the local stack.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${REPMAN_VENV:-.venv}
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_PACKAGES=(mariadb-server mariadb-client mariadb-backup sysbench haproxy openssh-server iproute2 iptables nix-bin chromium chromium-driver mariadb-plugin-spider mariadb-plugin-mroonga libconfig9
  restic mydumper percona-toolkit mha4mysql-manager mha4mysql-node etcd-server etcd-client prometheus
  docker.io debootstrap podman catatonit)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged MariaDB service is not used: repman starts its own mariadbd per node.
if pgrep -x mariadbd >/dev/null && [ -f /run/mysqld/mysqld.pid ]; then $SUDO service mariadb stop >/dev/null 2>&1 || true; fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
echo "==> pip install -e .[test]"
"$VENV/bin/pip" install -q -e ".[test]"
case "${1:-}" in
  --test) shift
    # The linters first: a finding fails the run before the (long) test suite starts.
    REPMAN_PYTHON="$VENV/bin/python" bash scripts/lint.sh
    # Two workers (REPMAN_TEST_WORKERS; 0 runs in this process): the tests mostly wait on real
    # servers, so two share two cores well; a module never splits across workers.
    workers="${REPMAN_TEST_WORKERS:-2}"
    if [ "$workers" = "0" ]; then exec "$VENV/bin/python" -m pytest "$@"; fi
    exec "$VENV/bin/python" -m pytest -n "$workers" --dist loadgroup "$@" ;;
  --up) shift
    # The local example's credentials are secure values under the documented example passphrase.
    if [ -z "${PULUMI_CONFIG_PASSPHRASE+x}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
      export PULUMI_CONFIG_PASSPHRASE=repman-example
    fi
    exec "$VENV/bin/python" -m embedded_engine up --yes --refresh --stack local "$@" ;;
  "") echo "==> ready: source $VENV/bin/activate" ;;
  *) echo "unknown option ${1}: use --test or --up" >&2; exit 2 ;;
esac
