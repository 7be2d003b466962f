#!/usr/bin/env bash
# Build repman's container images without any registry:
#   repman/debian-base:bookworm   debootstrap (minbase) of Debian 12 + MariaDB 10.11, Python 3.11, HAProxy,
#                                 imported with `docker import` (built once; cached in $CACHE)
#   repman/mariadb:10.11-standin  a STAND-IN of the official mariadb:10.11 (docker/mariadb/)
#   repman/haproxy:2.6-standin    a STAND-IN of the official haproxy:2.6 (docker/haproxy/)
#   repman/watcher:0.1.0          the watcher image (docker/watcher/), repman from wheels built here
# Each image carries the digest of its inputs (label repman.input-digest) and is skipped when an image
# with the same digest exists. Starts dockerd when none answers (data under $REPMAN_DOCKER_ROOT).
# Options: --base-from-registry IMAGE  build the watcher FROM IMAGE (e.g. python:3.11-slim) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}; [ -x "$PY" ] || PY=python3
DOCKER=${DOCKER:-docker}
export DOCKER_BUILDKIT=0          # the classic builder: no frontend image to pull
CACHE=${REPMAN_IMAGE_CACHE:-/var/cache/repman-images}
BASE_IMAGE=repman/debian-base:bookworm
DB_IMAGE=${REPMAN_DB_IMAGE:-repman/mariadb:10.11-standin}
WATCHER_IMAGE=${REPMAN_WATCHER_IMAGE:-repman/watcher:0.1.0}
PROXY_IMAGE=${REPMAN_PROXY_IMAGE:-repman/haproxy:2.6-standin}
BASE_PACKAGES=mariadb-server,mariadb-client,mariadb-backup,python3,python3-venv,haproxy,procps,iproute2,ca-certificates
WATCHER_BASE=$BASE_IMAGE
case "${1:-}" in
  --base-from-registry) WATCHER_BASE=${2:?--base-from-registry needs an image, e.g. python:3.11-slim} ;;
  "") ;;
  *) echo "build-images.sh: unknown option $1 (use --base-from-registry IMAGE)" >&2; exit 2 ;;
esac

note() { echo "==> $*" >&2; }

ensure_dockerd() {
  if $DOCKER info >/dev/null 2>&1; then return; fi
  command -v dockerd >/dev/null || { echo "build-images.sh: dockerd not installed (apt-get install docker.io)" >&2; exit 1; }
  local root=${REPMAN_DOCKER_ROOT:-/var/lib/repman-docker}
  mkdir -p "$root/data" "$root/exec"
  note "starting dockerd (data in $root)"
  nohup dockerd --data-root "$root/data" --exec-root "$root/exec" -H unix:///var/run/docker.sock \
    --pidfile "$root/dockerd.pid" --default-ulimit nofile=20000:20000 >"$root/dockerd.log" 2>&1 &
  for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && return; sleep 0.5; done
  echo "build-images.sh: dockerd did not answer in 30 s (see $root/dockerd.log)" >&2; exit 1
}

label_of() { $DOCKER image inspect -f '{{ index .Config.Labels "repman.input-digest" }}' "$1" 2>/dev/null || true; }

digest_of() {  # files (sorted, contents and names) + extra words
  local extra=$1; shift
  { printf '%s\n' "$extra"; for f in "$@"; do printf '%s\n' "$f"; sha256sum < "$f"; done; } | sha256sum | cut -c1-32
}

build_base() {
  local digest; digest=$(printf 'debootstrap minbase bookworm %s' "$BASE_PACKAGES" | sha256sum | cut -c1-32)
  if [ "$(label_of $BASE_IMAGE)" = "$digest" ]; then note "$BASE_IMAGE up to date"; return; fi
  command -v debootstrap >/dev/null || { echo "build-images.sh: debootstrap not installed" >&2; exit 1; }
  local dir=$CACHE/rootfs-$digest
  if [ ! -f "$dir/.complete" ]; then
    note "debootstrap bookworm into $dir"
    rm -rf "$dir"; mkdir -p "$CACHE"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$dir" \
      "${REPMAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    rm -rf "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/lib/apt/lists/* \
           "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
    touch "$dir/.complete"
  fi
  note "importing $BASE_IMAGE"
  tar --exclude=./.complete --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -C "$dir" -c . \
    | $DOCKER import --change "LABEL repman.input-digest=$digest" --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
}

build_standin() {  # IMAGE DIR: an image FROM the local base whose inputs are DIR's files
  local image=$1 dir=$2 digest
  digest=$(digest_of "$($DOCKER image inspect -f '{{.Id}}' $BASE_IMAGE)" "$dir"/*)
  if [ "$(label_of "$image")" = "$digest" ]; then note "$image up to date"; return; fi
  note "building $image"
  $DOCKER build -q --label "repman.input-digest=$digest" --build-arg BASE=$BASE_IMAGE -t "$image" "$dir" >/dev/null
}

build_watcher() {
  local base_id files digest ctx
  base_id=$($DOCKER image inspect -f '{{.Id}}' "$WATCHER_BASE" 2>/dev/null || echo "$WATCHER_BASE")
  mapfile -t files < <(cd "$ROOT" && { git ls-files pyproject.toml README.md repman templates service_plans nix docker/watcher 2>/dev/null \
    || find pyproject.toml README.md repman templates service_plans nix docker/watcher -type f ! -name '*.pyc'; } | sort)
  digest=$(digest_of "$base_id" "${files[@]}")
  if [ "$(label_of "$WATCHER_IMAGE")" = "$digest" ]; then note "$WATCHER_IMAGE up to date"; return; fi
  ctx=$(mktemp -d); trap 'rm -rf "$ctx"' RETURN
  note "wheels of repman and its dependencies"
  "$PY" -m pip wheel -q --wheel-dir "$ctx/wheels" "$ROOT" >"$ctx/pip.log" 2>&1 || { cat "$ctx/pip.log" >&2; exit 1; }
  cp docker/watcher/Dockerfile "$ctx/"
  note "building $WATCHER_IMAGE FROM $WATCHER_BASE"
  $DOCKER build -q --label "repman.input-digest=$digest" --build-arg BASE="$WATCHER_BASE" -t "$WATCHER_IMAGE" "$ctx" >/dev/null
}

ensure_dockerd
build_base
build_standin "$DB_IMAGE" docker/mariadb
build_standin "$PROXY_IMAGE" docker/haproxy
build_watcher
note "images ready: $DB_IMAGE $PROXY_IMAGE $WATCHER_IMAGE"
