#!/bin/sh
# dlbox entrypoint: containers run as the host user's UID/GID so that files they write in the
# bind-mounted workspace belong to that user. The image gave that UID a name when it was built
# (/etc/passwd is read-only here); for another UID (a baked image on a server) USER and LOGNAME
# name it, which is what getpass reads first.
if ! grep -q "^[^:]*:[^:]*:$(id -u):" /etc/passwd 2>/dev/null; then
  export USER=dlbox LOGNAME=dlbox
fi
# Secrets and the proxy arrive as files (a read-only bind mount of a 0600 file each), never as
# `docker run -e NAME=value`: exported here, they are in no `docker inspect`, argv or image.
if [ -d /run/secrets ]; then
  for f in /run/secrets/*; do
    [ -f "$f" ] && [ -r "$f" ] || continue
    name=${f##*/}
    case $name in
      *[!A-Za-z0-9_]*|[0-9]*|dlbox_*) continue ;;
    esac
    export "$name=$(cat "$f")"
  done
fi
if [ -s /etc/ssl/certs/dlbox-ca-bundle.pem ]; then
  for name in SSL_CERT_FILE REQUESTS_CA_BUNDLE PIP_CERT CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO; do
    eval "[ -n \"\${$name:-}\" ]" || export "$name=/etc/ssl/certs/dlbox-ca-bundle.pem"
  done
fi
exec "$@"
