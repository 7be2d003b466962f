#!/bin/sh
# repman's stand-in of the official haproxy image's entrypoint: options alone run haproxy;
# haproxy runs in the foreground in master-worker mode (-W -db), as in the official image.
set -e
if [ "${1#-}" != "$1" ]; then set -- haproxy "$@"; fi
if [ "$1" = "haproxy" ]; then shift; set -- haproxy -W -db "$@"; fi
exec "$@"
