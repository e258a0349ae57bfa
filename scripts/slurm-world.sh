#!/usr/bin/env bash
# slurm-world.sh — a real 2-node Slurm cluster on this one Debian machine, for dlbox's cluster tests.
# Idempotent (a re-run that finds everything up takes well under a second). Root, no systemd needed.
#
#   bash scripts/slurm-world.sh up      # packages, munge, network, slurmctld, per node: slurmd + dockerd + sshd
#   bash scripts/slurm-world.sh status
#   bash scripts/slurm-world.sh down    # stops only what it recorded, kills what runs in its nodes, deletes its netns
#
# Adapted from the study harness (../shared/tools/slurm-cluster.sh). Each node nK is:
#   netns dls-nK (eth0 10.253.0.1K/24) + its own UTS ns (hostname nK) + its own mount ns in which
#   /etc/hosts, /etc/resolv.conf are the cluster's, /run is a fresh tmpfs (the node's docker.sock),
#   /var/lib/docker is a per-node directory (the node's own image store), and sshd listens on :22.
# The rest of the filesystem is shared, like NFS home directories on a real cluster.
# The bridge lives in its own netns (dls-sw): in the root netns, Docker's FORWARD DROP policy plus
# br_netfilter would drop node-to-node traffic, and this script never touches the host's firewall.
# The root netns joins the bridge as dls-h 10.253.0.1 ("login", slurmctld; sshd on :2222 for the
# "sbatch over SSH on a login node" path). Nodes have no DNS server and no default route: gloo's
# reverse lookups then fail at once instead of timing out (10 s per init otherwise).
# Fake GPUs: gres.conf `File=` char devices 1,3 (= /dev/null), so --gpus-per-node is real Slurm.
set -euo pipefail
W=${DLBOX_SLURM_DIR:-/tmp/dlbox-slurm}
NODES=${DLBOX_SLURM_NODES:-2}
NET=10.253.0
CTL_PORT=16917
D_PORT=16918
T0=$EPOCHREALTIME
log() { awk -v a="$T0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[slurm-world %6.2fs] %s\n", b-a, m}' >&2; }
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
wait_for() { local n=$1; shift; for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
holder() { cat "$W/nodes/n$1/holder.pid"; }
in_node() { local i=$1; shift; nsenter -t "$(holder "$i")" -m -u -n "$@"; }

packages() {
  local need=() p
  for p in slurmctld slurmd slurm-client munge runc squashfs-tools squashfuse openssh-server openssh-client iproute2 util-linux; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  command -v dockerd >/dev/null || need+=(docker.io)
  ((${#need[@]})) || return 0
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

munge_up() {
  mkdir -p "$W/munge" && chmod 700 "$W/munge"
  [ -s "$W/munge/munge.key" ] || { dd if=/dev/urandom of="$W/munge/munge.key" bs=1024 count=1 status=none; chmod 400 "$W/munge/munge.key"; }
  alive "$W/munge/munged.pid" && return 0
  munged --force --socket="$W/munge/munge.socket.2" --key-file="$W/munge/munge.key" \
    --pid-file="$W/munge/munged.pid" --log-file="$W/munge/munged.log" --seed-file="$W/munge/munged.seed"
  wait_for 50 munge -S "$W/munge/munge.socket.2" -n || { cat "$W/munge/munged.log"; exit 1; }
}

net_up() {
  if [ ! -e /run/netns/dls-sw ] || ! ip link show dls-h >/dev/null 2>&1; then
    ip netns del dls-sw 2>/dev/null || true; ip link del dls-h 2>/dev/null || true
    ip netns add dls-sw
    nsenter --net=/run/netns/dls-sw sh -c "ip link add dlsbr0 type bridge && ip link set dlsbr0 up && ip link set lo up"
    ip link add dls-h type veth peer name dls-hsw
    ip link set dls-hsw netns dls-sw
    nsenter --net=/run/netns/dls-sw sh -c "ip link set dls-hsw master dlsbr0 up"
    ip addr add $NET.1/24 dev dls-h && ip link set dls-h up
  fi
  local i
  for i in $(seq "$NODES"); do
    [ -e /run/netns/dls-n$i ] && nsenter --net=/run/netns/dls-sw ip link show dls-n${i}h >/dev/null 2>&1 && continue
    ip netns del dls-n$i 2>/dev/null || true
    ip netns add dls-n$i
    ip link add dls-n${i}h type veth peer name dls-n${i}c
    ip link set dls-n${i}c netns dls-n$i
    ip link set dls-n${i}h netns dls-sw
    nsenter --net=/run/netns/dls-sw ip link set dls-n${i}h master dlsbr0 up
    nsenter --net=/run/netns/dls-n$i sh -c "ip link set dls-n${i}c name eth0 && ip addr add $NET.1$i/24 dev eth0 \
      && ip link set eth0 up && ip link set lo up"
  done
}

write_conf() {
  mkdir -p "$W/etc" "$W/ctld" "$W/dev" "$W/shared"
  chmod 1777 "$W/shared"
  { echo "127.0.0.1 localhost"; echo "$NET.1 dlshead"
    local i; for i in $(seq "$NODES"); do echo "$NET.1$i n$i"; done; } >"$W/hosts"
  printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$W/resolv.conf"
  local g; for g in 0 1; do [ -c "$W/dev/nvidia$g" ] || mknod "$W/dev/nvidia$g" c 1 3; done
  local nodes="n[1-$NODES]" addrs
  addrs=$(for i in $(seq "$NODES"); do printf '%s' "$NET.1$i"; [ "$i" = "$NODES" ] || printf ,; done)
  cat >"$W/etc/slurm.conf.new" <<EOF
ClusterName=dlboxtest
SlurmctldHost=dlshead($NET.1)
SlurmctldPort=$CTL_PORT
SlurmdPort=$D_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$W/munge/munge.socket.2
StateSaveLocation=$W/ctld
SlurmctldPidFile=$W/ctld/slurmctld.pid
SlurmctldLogFile=$W/ctld/slurmctld.log
SlurmdSpoolDir=$W/nodes/%n/spool
SlurmdPidFile=$W/nodes/%n/slurmd.pid
SlurmdLogFile=$W/nodes/%n/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$W/ctld/jobcomp.txt
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
GresTypes=gpu
NodeName=$nodes NodeAddr=$addrs CPUs=2 RealMemory=4000 Gres=gpu:2 State=UNKNOWN
PartitionName=dbg Nodes=$nodes Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
  cmp -s "$W/etc/slurm.conf.new" "$W/etc/slurm.conf" 2>/dev/null || mv "$W/etc/slurm.conf.new" "$W/etc/slurm.conf"
  rm -f "$W/etc/slurm.conf.new"
  printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/nvidia[0-1]\n' "$nodes" "$W" >"$W/etc/gres.conf"
  echo "CgroupPlugin=cgroup/v1" >"$W/etc/cgroup.conf"
  # srun --container=BUNDLE (Slurm 22.05 keys; %b bundle, %n node, %u user, %j job, %s step, %t task).
  # runc, not crun: crun 1.8 refuses this host's hybrid cgroup layout.
  cat >"$W/etc/oci.conf" <<EOF
RunTimeQuery="runc --root=/run/dls-runc state %n.%u.%j.%s.%t"
RunTimeKill="runc --root=/run/dls-runc kill -a %n.%u.%j.%s.%t"
RunTimeDelete="runc --root=/run/dls-runc delete --force %n.%u.%j.%s.%t"
RunTimeRun="runc --root=/run/dls-runc run --bundle %b %n.%u.%j.%s.%t"
EOF
}

ssh_keys() {
  local S=$W/ssh
  ssh_test_keys "$S" dlbox-slurm dlbox-slurm
  { echo "Host dlshead"; echo "  HostName $NET.1"; echo "  Port 2222"
    for i in $(seq "$NODES"); do echo "Host n$i"; echo "  HostName $NET.1$i"; done
    echo "Host dlshead n* $NET.*"
    echo "  User root"
    echo "  IdentityFile $S/id_ed25519"
    echo "  IdentitiesOnly yes"
    echo "  StrictHostKeyChecking yes"
    echo "  UserKnownHostsFile $S/known_hosts"
    echo "  HostKeyAlias dlbox-slurm"
    echo "  LogLevel ERROR"; } >"$S/config"
}

sshd_conf() { # listen-address port -> config file
  local f=$W/ssh/sshd_$1_$2.conf
  sshd_test_config "$f" "$W/ssh" "$1" "$2" "$W/ssh/sshd_$1.pid" "SLURM_CONF=$W/etc/slurm.conf"
  echo "$f"
}

head_sshd() {
  alive "$W/ssh/sshd_$NET.1.pid" && return 0
  /usr/sbin/sshd -f "$(sshd_conf $NET.1 2222)" -E "$W/ssh/sshd-head.log"
}

node_up() {
  local i=$1 n=n$1 d=$W/nodes/n$1
  mkdir -p "$d/spool" "$d/docker"
  if ! alive "$d/holder.pid"; then
    setsid nsenter --net=/run/netns/dls-n$i unshare --uts --mount --propagation private -- sh -c "
      hostname $n
      mount --bind '$W/hosts' /etc/hosts
      mount --bind '$W/resolv.conf' /etc/resolv.conf
      mount -t tmpfs -o mode=755 tmpfs /run
      mkdir -p /run/lock /run/dls-runc /run/sshd
      mount --bind '$d/docker' /var/lib/docker
      exec sleep infinity" </dev/null >"$d/holder.log" 2>&1 &
    echo $! >"$d/holder.pid"
    wait_for 50 sh -c "nsenter -t $(cat "$d/holder.pid") -m -u sh -c 'hostname | grep -qx $n && findmnt -n /run | grep -q tmpfs'"
  fi
  if ! alive "$d/dockerd.pid"; then
    setsid nsenter -t "$(holder "$i")" -m -u -n dockerd --bridge=none --iptables=false --ip-masq=false \
      --cgroup-parent=/dls-$n --shutdown-timeout 2 </dev/null >"$d/dockerd.log" 2>&1 &
    echo $! >"$d/dockerd.pid"
  fi
  if ! alive "$d/slurmd.pid.launcher"; then
    SLURM_CONF=$W/etc/slurm.conf setsid nsenter -t "$(holder "$i")" -m -u -n slurmd -D -N $n -f "$W/etc/slurm.conf" \
      </dev/null >"$d/slurmd.stdout" 2>&1 &
    echo $! >"$d/slurmd.pid.launcher"
  fi
  if ! alive "$W/ssh/sshd_$NET.1$i.pid"; then
    in_node "$i" /usr/sbin/sshd -f "$(sshd_conf "$NET.1$i" 22)" -E "$d/sshd.log"
  fi
}

ctld_up() {
  alive "$W/ctld/ctld.pid.launcher" && return 0
  setsid unshare --uts -- sh -c "hostname dlshead; exec slurmctld -D -i -f '$W/etc/slurm.conf'" \
    </dev/null >"$W/ctld/slurmctld.stdout" 2>&1 &
  echo $! >"$W/ctld/ctld.pid.launcher"
}

write_env() {
  cat >"$W/env" <<EOF
export SLURM_CONF=$W/etc/slurm.conf
export DLBOX_TEST_SLURM=$W
export DLBOX_TEST_SLURM_SSH_CONFIG=$W/ssh/config
export DLBOX_TEST_SLURM_LOGIN=root@dlshead
export DLBOX_TEST_SLURM_SHARED=$W/shared
EOF
}

up() {
  packages
  munge_up
  net_up
  write_conf
  ssh_keys
  ctld_up
  head_sshd
  local i
  for i in $(seq "$NODES"); do node_up "$i"; done
  export SLURM_CONF=$W/etc/slurm.conf
  for _ in $(seq 300); do
    local ok; ok=$(sinfo -h -N -o '%N %t' 2>/dev/null | grep -cE ' (idle|mix|alloc)$' || true)
    [ "$ok" = "$NODES" ] && break
    sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 ~ /down|drain|fail/ {print $1}' | while read -r nd; do
      scontrol update nodename="$nd" state=resume 2>/dev/null || true; done
    sleep 0.2
  done
  for i in $(seq "$NODES"); do
    wait_for 300 in_node "$i" docker version || { tail "$W/nodes/n$i/dockerd.log"; exit 1; }
  done
  wait_for 100 ssh -F "$W/ssh/config" n$NODES true || { echo "sshd on n$NODES does not answer" >&2; exit 1; }
  wait_for 100 ssh -F "$W/ssh/config" dlshead true || { echo "sshd on dlshead does not answer" >&2; exit 1; }
  write_env
  log "up: $(sinfo -h -o '%D nodes %t' | tr '\n' ' '); source $W/env"
}

status() {
  export SLURM_CONF=$W/etc/slurm.conf
  local f
  for f in "$W"/munge/munged.pid "$W"/ctld/ctld.pid.launcher "$W"/nodes/*/*.pid* "$W"/ssh/*.pid; do
    [ -e "$f" ] || continue
    if alive "$f"; then echo "alive $(cat "$f") $f"; else echo "dead  $f"; fi
  done
  sinfo -N -o '%N %t %c %G' 2>&1 || true
}

down() {
  export SLURM_CONF=$W/etc/slurm.conf
  if [ -e "$W/etc/slurm.conf" ] && alive "$W/ctld/ctld.pid.launcher"; then timeout 5 scancel --full -u root 2>/dev/null || true; fi
  stop_pids "$W"/nodes/*/slurmd.pid.launcher "$W"/nodes/*/dockerd.pid "$W/ctld/ctld.pid.launcher" "$W"/ssh/*.pid
  local d h ino p
  for d in "$W"/nodes/*/; do
    [ -s "$d/holder.pid" ] || continue
    h=$(cat "$d/holder.pid"); ino=$(readlink "/proc/$h/ns/mnt" 2>/dev/null) || continue
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" != "$h" ] && [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ino" ] && kill -KILL "$p" 2>/dev/null || true
    done
  done
  stop_pids "$W"/nodes/*/holder.pid "$W/munge/munged.pid"
  for i in $(seq 9); do ip netns del dls-n$i 2>/dev/null || true; done
  ip link del dls-h 2>/dev/null || true
  ip netns del dls-sw 2>/dev/null || true
  [ "${1:-}" = purge ] && rm -rf "$W"
  log "down"
}

case "${1:-up}" in
  up) up ;;
  down) down "${2:-}" ;;
  status) status ;;
  *) echo "usage: $0 up|status|down [purge]" >&2; exit 2 ;;
esac
