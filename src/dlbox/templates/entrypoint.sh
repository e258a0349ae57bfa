#!/bin/sh
# dlbox entrypoint: containers run as the host user's UID/GID so that files they write in the
# bind-mounted workspace belong to that user. Give such a UID a passwd/group entry and a HOME.
uid=$(id -u) gid=$(id -g)
if ! grep -q "^[^:]*:[^:]*:$uid:" /etc/passwd 2>/dev/null; then
  echo "dlbox:x:$uid:$gid:dlbox:${HOME:-/home/dlbox}:/bin/bash" >>/etc/passwd 2>/dev/null || true
fi
if ! grep -q "^[^:]*:[^:]*:$gid:" /etc/group 2>/dev/null; then
  echo "dlbox:x:$gid:" >>/etc/group 2>/dev/null || true
fi
exec "$@"
