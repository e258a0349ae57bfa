# Shell pieces the test worlds share (scripts/world.sh, scripts/slurm-world.sh). Sourced, not run.

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pids PIDFILE...: TERM what each file names, wait up to 10 s, then KILL; remove the files.
stop_pids() {
  local f p pids=()
  for f in "$@"; do [ -s "$f" ] && p=$(cat "$f") && kill -TERM "$p" 2>/dev/null && pids+=("$p"); rm -f "$f"; done
  for ((i = 0; i < 100; i++)); do
    local left=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
    ((left)) || return 0; sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}

# ssh_test_keys DIR COMMENT HOSTNAME: a host key and a client key in DIR (0700), the client key
# authorized, and HOSTNAME pinned to the host key in DIR/known_hosts.
ssh_test_keys() {
  local S=$1
  mkdir -p "$S" /run/sshd && chmod 700 "$S"
  [ -s "$S/host_key" ] || ssh-keygen -q -t ed25519 -N '' -C "$2-host" -f "$S/host_key"
  [ -s "$S/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$2-client" -f "$S/id_ed25519"
  cp "$S/id_ed25519.pub" "$S/authorized_keys"
  echo "$3 $(cut -d' ' -f1,2 "$S/host_key.pub")" >"$S/known_hosts"
}

# sshd_test_config FILE DIR ADDRESS PORT PIDFILE ENV: a key-only root sshd for the test world,
# keys from ssh_test_keys DIR, with ENV (NAME=value) set for every session.
sshd_test_config() {
  cat >"$1" <<EOC
ListenAddress $3:$4
HostKey $2/host_key
PidFile $5
AuthorizedKeysFile $2/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 100
SetEnv $6
EOC
}
