#!/usr/bin/env bash
# world.sh — the project's own Docker world for tests and for the bundled example.
# Idempotent: every step is skipped when its result is already there.
#
#   bash scripts/world.sh up        # packages, dockerd, (optional) registry + remote engine over SSH
#   bash scripts/world.sh down      # stop only what this script started (by pid file)
#
# Environment knobs:
#   WORLD_DIR     runtime state (pids, logs, keys)      default /tmp/dlbox-world
#   WORLD_REMOTE  1 = also start a registry on 127.0.0.1:5000 and a second dockerd
#                 reached through sshd in its own network namespace (ship tests)
set -euo pipefail

W=${WORLD_DIR:-/tmp/dlbox-world}
DOCKER=/usr/bin/docker          # Debian 20.10 CLI: BuildKit built in (a newer CLI on PATH may lack buildx)
export DOCKER_BUILDKIT=1
NS=dlboxremote HOST_IP=10.251.0.1 REMOTE_IP=10.251.0.2 REG_PORT=${WORLD_REG_PORT:-5000}

T0=$EPOCHREALTIME
log() { awk -v a="$T0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[world %6.2fs] %s\n", b-a, m}' >&2; }
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
wait_for() { local n=$1; shift; for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done; "$@"; }
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo

install_packages() {
  local pkgs=()
  { command -v dockerd >/dev/null && [ -x /usr/bin/docker ]; } || pkgs+=(docker.io)
  command -v mmdebstrap >/dev/null || pkgs+=(mmdebstrap)
  command -v zstd >/dev/null || pkgs+=(zstd)
  command -v curl >/dev/null || pkgs+=(curl)
  command -v python3 >/dev/null || pkgs+=(python3 python3-venv)
  python3 -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
  if [ "${WORLD_REMOTE:-0}" = 1 ]; then
    command -v docker-registry >/dev/null || pkgs+=(docker-registry)
    [ -x /usr/sbin/sshd ] || pkgs+=(openssh-server)
    command -v nsenter >/dev/null || pkgs+=(util-linux)
    command -v ip >/dev/null || pkgs+=(iproute2)
  fi
  ((${#pkgs[@]})) || { log "packages: all present"; return 0; }
  local mandb=/var/lib/man-db/auto-update had_mandb=0
  [ -e $mandb ] && had_mandb=1 && $SUDO rm -f $mandb      # the man-db trigger costs 3-6 s per apt run
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  ((had_mandb)) && $SUDO touch $mandb
  log "packages: installed ${pkgs[*]}"
}

start_engine() {
  if $DOCKER version >/dev/null 2>&1; then log "dockerd: already answering"; return 0; fi
  mkdir -p "$W/pids"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl start docker && wait_for 400 $DOCKER version && { log "dockerd: started by systemd"; return 0; }
  fi
  # /run may live on a persistent disk: a pid file left by an earlier boot whose pid now belongs
  # to another process makes dockerd refuse to start.
  local pf=/var/run/docker.pid
  [ -s $pf ] && [ "$(cat /proc/"$(cat $pf)"/comm 2>/dev/null)" != dockerd ] && $SUDO rm -f $pf /var/run/docker/containerd/containerd.pid
  $SUDO setsid dockerd --shutdown-timeout 2 >"$W/dockerd.log" 2>&1 </dev/null &
  echo $! >"$W/pids/dockerd.pid"
  wait_for 600 $DOCKER version
  log "dockerd: started (log $W/dockerd.log)"
  if ! ip link show docker0 >/dev/null 2>&1 && command -v ip >/dev/null; then   # a --bridge=none daemon deletes it
    $SUDO ip link add name docker0 type bridge && $SUDO ip addr add 172.17.0.1/16 dev docker0 && $SUDO ip link set docker0 up
  fi
}

registry_up() {
  alive "$W/pids/registry.pid" && return 0
  mkdir -p "$W/registry/data"
  cat >"$W/registry/config.yml" <<EOC
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/registry/data}, delete: {enabled: true}}
http: {addr: "127.0.0.1:$REG_PORT", secret: dlbox-world-secret}
EOC
  setsid docker-registry serve "$W/registry/config.yml" >"$W/registry/log" 2>&1 </dev/null &
  echo $! >"$W/pids/registry.pid"
  wait_for 200 curl -fsS "http://127.0.0.1:$REG_PORT/v2/"
  log "registry: http://127.0.0.1:$REG_PORT"
}

netns_up() {
  ip link show dlbr0 >/dev/null 2>&1 && return 0
  ip netns del "$NS" 2>/dev/null || rm -f /run/netns/"$NS"
  ip netns add "$NS"
  ip link add dlbr0 type veth peer name dlbr1
  ip link set dlbr1 netns "$NS"
  ip addr add "$HOST_IP/30" dev dlbr0 && ip link set dlbr0 up
  nsenter --net=/run/netns/"$NS" sh -c "ip addr add $REMOTE_IP/30 dev dlbr1 && ip link set dlbr1 up && ip link set lo up"
  log "netns $NS: $HOST_IP <-> $REMOTE_IP"
}

remote_engine() {
  local R=$W/remote
  alive "$W/pids/dockerd-remote.pid" && return 0
  mkdir -p "$R/root" "$R/exec"
  [ -s "$R/docker.pid" ] && [ "$(cat /proc/"$(cat "$R/docker.pid")"/comm 2>/dev/null)" != dockerd ] && rm -f "$R/docker.pid"
  mountpoint -q "$R/root" || mount -t tmpfs -o size=12g dlboxremote "$R/root"   # ext4 slows repeated imports
  # nsenter --net, not `ip netns exec`: that remounts /sys and hides the cgroup v1 mounts
  setsid nsenter --net=/run/netns/"$NS" dockerd --data-root "$R/root" --exec-root "$R/exec" \
    --pidfile "$R/docker.pid" -H "unix://$R/docker.sock" --shutdown-timeout 2 >"$R/dockerd.log" 2>&1 </dev/null &
  echo $! >"$W/pids/dockerd-remote.pid"
  wait_for 400 $DOCKER -H "unix://$R/docker.sock" version
  log "remote dockerd: unix://$R/docker.sock"
}

remote_sshd() {
  local S=$W/ssh
  alive "$S/sshd.pid" && return 0
  mkdir -p "$W/bin"
  ssh_test_keys "$S" dlbox-world "$REMOTE_IP"
  sshd_test_config "$S/sshd_config" "$S" "$REMOTE_IP" 22 "$S/sshd.pid" "DOCKER_HOST=unix://$W/remote/docker.sock"
  cat >"$S/config" <<EOC
Host dlbox-remote $REMOTE_IP
  HostName $REMOTE_IP
  User root
  IdentityFile $S/id_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking yes
  UserKnownHostsFile $S/known_hosts
  LogLevel ERROR
EOC
  nsenter --net=/run/netns/"$NS" /usr/sbin/sshd -f "$S/sshd_config" -E "$S/sshd.log"
  wait_for 200 ssh -F "$S/config" dlbox-remote true
  log "remote sshd: root@$REMOTE_IP (ssh -F $S/config)"
}

write_env() {
  cat >"$W/env" <<EOC
export DOCKER_BUILDKIT=1
export DLBOX_WORLD=$W
export DLBOX_TEST_REGISTRY=127.0.0.1:$REG_PORT
export DLBOX_TEST_REMOTE=root@$REMOTE_IP
export DLBOX_TEST_REMOTE_SOCKET=$W/remote/docker.sock
export DLBOX_TEST_SSH_CONFIG=$W/ssh/config
EOC
}

up() {
  mkdir -p "$W/pids"
  install_packages
  start_engine
  if [ "${WORLD_REMOTE:-0}" = 1 ]; then registry_up; netns_up; remote_engine; remote_sshd; fi
  write_env
  log "up: done"
}

down() {
  [ -s "$W/pids/registry.pid" ] && kill -KILL "$(cat "$W/pids/registry.pid")" 2>/dev/null; rm -f "$W/pids/registry.pid"
  local rs="unix://$W/remote/docker.sock" ids
  if [ -S "$W/remote/docker.sock" ]; then
    ids=$($DOCKER -H "$rs" ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && $DOCKER -H "$rs" rm -f $ids >/dev/null 2>&1 || true
  fi
  stop_pids "$W/ssh/sshd.pid" "$W/pids/dockerd-remote.pid" "$W/pids/dockerd.pid"
  for m in $(awk -v p="$W/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount "$m" || umount -l "$m"; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$W/registry/data" "$W/remote"
  log "down: done"
}

case "${1:-up}" in up) up ;; down) down ;; *) echo "usage: $0 up|down" >&2; exit 2 ;; esac
