#!/usr/bin/env bash
# setup-host.sh — everything dlbox and its tests need on a fresh Debian/Ubuntu machine:
# python3 with venv, the project's virtualenv (.venv) with dlbox installed, and a Docker engine
# answering (scripts/world.sh). Idempotent and quick when everything is already there.
#
#   bash scripts/setup-host.sh          # dlbox + engine
#   WITH_TESTS=1 bash scripts/setup-host.sh   # + test extras, registry/SSH world, compose, devcontainers CLI
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo

# The distribution's Python (not a per-user pyenv under /root): other users, such as the
# non-root test user, must be able to run .venv/bin/dlbox.
PY=/usr/bin/python3
need_apt=()
[ -x $PY ] || need_apt+=(python3)
{ [ -x $PY ] && $PY -c 'import venv, ensurepip' 2>/dev/null; } || need_apt+=(python3-venv)
command -v git >/dev/null || need_apt+=(git)
if [ "${WITH_TESTS:-0}" = 1 ]; then
  command -v docker-compose >/dev/null || need_apt+=(docker-compose)
  command -v npm >/dev/null || need_apt+=(npm)
  command -v runuser >/dev/null || need_apt+=(util-linux)
fi
if ((${#need_apt[@]})); then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || [ "$(readlink -f .venv/bin/python)" != "$(readlink -f $PY)" ]; then
  rm -rf .venv && $PY -m venv .venv
fi
extras=""; [ "${WITH_TESTS:-0}" = 1 ] && extras="[test]"
stamp=.venv/.dlbox-installed$extras
if [ ! -e "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/pip install -q -c constraints.txt -e ".$extras"
  touch "$stamp"
fi

WORLD_REMOTE=${WITH_TESTS:-0} bash scripts/world.sh up
