#!/usr/bin/env bash
# A real two-node Slurm cluster on this machine, for amlrun's Slurm tests:
#   scripts/slurm-test-cluster.sh up       start it (idempotent: up twice is fine)
#   scripts/slurm-test-cluster.sh down     stop it and remove what up created
#   scripts/slurm-test-cluster.sh status   say whether it runs (exit 0 when it does)
#   scripts/slurm-test-cluster.sh env      print the variables clients need,
#                                          one NAME=value a line
# and, for the SSH tests (issue 14):
#   scripts/slurm-test-cluster.sh sshd-stop   stop the login node's sshd listener
#   scripts/slurm-test-cluster.sh sshd-start  start it again
#   scripts/slurm-test-cluster.sh link-down   drop every packet to and from the login node
#   scripts/slurm-test-cluster.sh link-up     let them through again
#
# Debian's slurm-wlm and munge, as root: munged, slurmctld, and two slurmd
# "hosts" n1 and n2, each in its own network namespace (so each has its own
# address and port 6818) and UTS namespace (so each has its own host name).
# A bridge joins them to the host's side; only the addresses on that bridge
# and loopback are used. slurmd is started with nsenter --net + unshare --uts
# rather than `ip netns exec`, which remounts /sys and makes slurmd fail on
# cgroups. Every file lives under $AMLRUN_SLURM_STATE; /etc is touched only
# for two marked lines in /etc/hosts (so the nodes resolve each other's names,
# as MASTER_ADDR needs) and a link /etc/slurm/slurm.conf when none exists.
#
# A login node stands in for a cluster reached over SSH from a laptop:
# Debian's sshd in a network namespace of its own (amlrun-login, LOGIN_ADDRESS
# on the bridge), with its own config, host key and test key pair under
# $STATE/ssh, and a client config there ($STATE/ssh/config, hosts
# amlrun-login for root and amlrun-login-tcsh for the test user
# amlruntcsh, whose login shell is tcsh: commands amlrun sends must not
# assume a POSIX login shell). $STATE/laptop-bin holds links to every
# command except Slurm's and munge's, for tests that play the laptop
# (tests/e2e/ssh_e2e.py).
set -euo pipefail

STATE="${AMLRUN_SLURM_STATE:-/var/lib/amlrun-slurm-test}"
CONF="$STATE/etc/slurm.conf"
BRIDGE=amlrunbr0
SUBNET=10.213.77
HOST_ADDRESS="$SUBNET.1"
NODES=(n1 n2)
HOSTS_MARKER="# amlrun-slurm-test"
LOGIN_NS=amlrun-login
LOGIN_VETH=amlrun-loginh  # the host's end, the one link-down takes down
LOGIN_ADDRESS="$SUBNET.20"
SSH_DIR="$STATE/ssh"
SSHD_PID="$STATE/sshd.pid"
TEST_USER=amlruntcsh
TEST_SHELL=/usr/bin/tcsh
SSHD_CONFIG_CHANGED=""

say() { printf 'slurm-test-cluster: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

node_address() {  # n1 -> 10.213.77.11
  echo "$SUBNET.$((10 + ${1#n}))"
}

require_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it starts munged, slurmctld and slurmd and creates network namespaces)"
  local tool
  for tool in munged slurmctld slurmd scontrol sinfo ip nsenter unshare /usr/sbin/sshd ssh-keygen "$TEST_SHELL"; do
    command -v "$tool" >/dev/null ||
      die "$tool is not installed (apt-get install slurm-wlm munge iproute2 util-linux openssh-server openssh-client tcsh)"
  done
}

pid_alive() {  # pid_alive FILE: the process named in FILE runs
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

write_config() {
  mkdir -p "$STATE/etc" "$STATE/log" "$STATE/ctld" "$STATE/spool"
  local cpus=4
  local tmp="$CONF.tmp"
  cat >"$tmp" <<EOF
# Written by scripts/slurm-test-cluster.sh; rewritten by every 'up'.
ClusterName=amlrun-test
SlurmctldHost=$(hostname)($HOST_ADDRESS)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds (120 by default) before it may
# start again: Slurm's own guard against starting it on a node that still
# holds the revoked credential of the attempt it ended. Short here, so the
# requeue tests need not wait two minutes (or force an early start, which
# fails with "Job credential revoked").
AuthInfo=cred_expire=10
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
# The nodes share one /tmp; PMIx puts per-step directories under TmpFS, which
# must differ per node or the second node's step fails with "File exists".
TmpFS=$STATE/tmp/%n
# No cgroups in a test VM: track processes through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
# The nodes claim more CPUs than the machine has, so tests can run side by side.
SlurmdParameters=config_overrides
# Batch jobs are scheduled as they are submitted, not on the next 3 s tick
# (the default batch_sched_delay): quicker tests, steadier benchmarks.
SchedulerParameters=batch_sched_delay=0
# Quick ends keep the cancel and timeout tests short.
KillWait=5
MinJobAge=300
InactiveLimit=0
SlurmdTimeout=60
NodeName=n1 NodeAddr=$(node_address n1) CPUs=$cpus State=UNKNOWN
NodeName=n2 NodeAddr=$(node_address n2) CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$tmp" "$CONF"
  # Clients find the config through SLURM_CONF; a link helps a person at a
  # shell, but never replaces a real cluster's config.
  if [ ! -e /etc/slurm/slurm.conf ] || [ "$(readlink /etc/slurm/slurm.conf)" = "$CONF" ]; then
    mkdir -p /etc/slurm
    ln -sfn "$CONF" /etc/slurm/slurm.conf
  fi
}

start_munge() {
  if [ -S /run/munge/munge.socket.2 ] && pgrep -x munged >/dev/null; then
    return 0
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  # munged refuses directories and a log it does not own (a munged once
  # started as root leaves its log owned by root).
  chown -R munge:munge /run/munge /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    # Debian's package makes one at install time; a stripped image may not have it.
    mungekey --create --keyfile=/etc/munge/munge.key || die "cannot create /etc/munge/munge.key (mungekey)"
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  # As the munge user, who owns its key, log and state directories.
  runuser -u munge -- munged --force || die "munged did not start (see /var/log/munge/munged.log)"
  touch "$STATE/munged.started-by-us"
}

# Docker sets the FORWARD policy to DROP and, with br_netfilter loaded,
# packets between two ports of a Linux bridge pass through FORWARD too: the
# nodes could not reach each other. One ACCEPT for traffic that stays on our
# bridge, in DOCKER-USER when Docker made it (Docker keeps that chain first
# and never rewrites it), else in FORWARD.
forwarding_chain() {
  if iptables -n -L DOCKER-USER >/dev/null 2>&1; then echo DOCKER-USER; else echo FORWARD; fi
}

allow_bridge_forwarding() {
  command -v iptables >/dev/null || return 0
  local chain
  chain="$(forwarding_chain)"
  iptables -C "$chain" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null ||
    iptables -I "$chain" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
}

remove_bridge_forwarding() {
  command -v iptables >/dev/null || return 0
  local chain
  chain="$(forwarding_chain)"
  while iptables -D "$chain" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
}

# add_namespace NS HOST_END ADDRESS: a network namespace joined to the bridge
# by a veth pair (HOST_END on the bridge, eth0 inside), with ADDRESS/24.
add_namespace() {
  local ns="$1" host_end="$2" address="$3"
  [ -e "/var/run/netns/$ns" ] || ip netns add "$ns"
  if ! ip link show "$host_end" >/dev/null 2>&1; then
    ip link add "$host_end" type veth peer name eth0 netns "$ns"
  fi
  ip link set "$host_end" master "$BRIDGE"
  ip link set "$host_end" up
  ip -n "$ns" addr replace "$address/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

setup_network() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$HOST_ADDRESS/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local node
  for node in "${NODES[@]}"; do
    add_namespace "amlrun-$node" "amlrun-${node}h" "$(node_address "$node")"
  done
  add_namespace "$LOGIN_NS" "$LOGIN_VETH" "$LOGIN_ADDRESS"
  allow_bridge_forwarding
  # Node names resolve everywhere (MASTER_ADDR is the first node's name).
  local tmp
  tmp="$(mktemp)"
  grep -v "$HOSTS_MARKER" /etc/hosts >"$tmp" || true
  for node in "${NODES[@]}"; do
    printf '%s %s %s\n' "$(node_address "$node")" "$node" "$HOSTS_MARKER" >>"$tmp"
  done
  printf '%s %s %s\n' "$LOGIN_ADDRESS" "$LOGIN_NS" "$HOSTS_MARKER" >>"$tmp"
  cat "$tmp" >/etc/hosts  # in place: /etc/hosts may be a bind mount
  rm -f "$tmp"
}

start_slurmctld() {
  if pid_alive "$STATE/slurmctld.pid"; then
    return 0
  fi
  slurmctld -f "$CONF" || die "slurmctld did not start; see $STATE/log/slurmctld.log"
}

start_slurmd() {
  local node="$1"
  if pid_alive "$STATE/slurmd-$node.pid"; then
    return 0
  fi
  mkdir -p "$STATE/spool/$node" "$STATE/tmp/$node"
  # shellcheck disable=SC2016
  nsenter --net="/var/run/netns/amlrun-$node" unshare --uts \
    sh -c 'hostname "$1" && exec slurmd -f "$2" -N "$1"' sh "$node" "$CONF" ||
    die "slurmd $node did not start; see $STATE/log/slurmd-$node.log"
}

# The login node's test user: tcsh as login shell (commands amlrun sends
# over SSH run under the user's shell, which need not be POSIX), a home under
# $STATE, and the password field '*': with UsePAM no, sshd refuses an
# account whose password is locked ('!', what useradd leaves), even for a key.
ensure_test_user() {
  local home="$STATE/home/$TEST_USER"
  if ! id "$TEST_USER" >/dev/null 2>&1; then
    useradd --home-dir "$home" --no-create-home --shell "$TEST_SHELL" --user-group "$TEST_USER"
  fi
  usermod --home "$home" --shell "$TEST_SHELL" --password '*' "$TEST_USER"
  mkdir -p "$home"
  chown "$TEST_USER:" "$home"
  chmod 0755 "$home"
}

# Keys are made once and kept by 'down' (a client that trusted the host key
# keeps trusting it); the configs are rewritten by every 'up'.
write_ssh_config() {
  mkdir -p "$SSH_DIR" "$STATE/log"
  # sshd's StrictModes: no directory on the way to authorized_keys may be
  # writable by others.
  chmod 0755 "$STATE" "$SSH_DIR"
  local key
  for key in ssh_host_ed25519_key id_ed25519; do
    [ -s "$SSH_DIR/$key" ] || ssh-keygen -q -t ed25519 -N '' -C "amlrun-test $key" -f "$SSH_DIR/$key"
    chmod 0600 "$SSH_DIR/$key"
  done
  # sshd reads authorized_keys as the user logging in.
  install -m 0644 "$SSH_DIR/id_ed25519.pub" "$SSH_DIR/authorized_keys"
  printf '%s %s\n' "$LOGIN_ADDRESS" "$(cut -d' ' -f1,2 "$SSH_DIR/ssh_host_ed25519_key.pub")" \
    >"$SSH_DIR/known_hosts"
  cat >"$SSH_DIR/sshd_config.tmp" <<EOF
# Written by scripts/slurm-test-cluster.sh; rewritten by every 'up'.
# The test cluster's login node: keys only, for root and $TEST_USER.
ListenAddress $LOGIN_ADDRESS:22
HostKey $SSH_DIR/ssh_host_ed25519_key
PidFile $SSHD_PID
AuthorizedKeysFile $SSH_DIR/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root $TEST_USER
# Debian's PAM stack wants a login uid a container may not grant.
UsePAM no
LogLevel VERBOSE
# amlrun multiplexes its sessions over one connection (ControlMaster).
MaxSessions 64
MaxStartups 64:30:128
PrintMotd no
PrintLastLog no
X11Forwarding no
# Slurm's commands find the test cluster in every session, whatever
# /etc/slurm/slurm.conf is.
SetEnv SLURM_CONF=$CONF
Subsystem sftp internal-sftp
EOF
  # A running sshd rereads its config on SIGHUP (start_sshd sends it).
  cmp -s "$SSH_DIR/sshd_config.tmp" "$SSH_DIR/sshd_config" || SSHD_CONFIG_CHANGED=1
  mv "$SSH_DIR/sshd_config.tmp" "$SSH_DIR/sshd_config"
  local host user
  : >"$SSH_DIR/config.tmp"
  for host in amlrun-login amlrun-login-tcsh; do
    user=root
    [ "$host" = amlrun-login ] || user="$TEST_USER"
    cat >>"$SSH_DIR/config.tmp" <<EOF
Host $host
  HostName $LOGIN_ADDRESS
  User $user
  Port 22
  IdentityFile $SSH_DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $SSH_DIR/known_hosts
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes

EOF
  done
  chmod 0644 "$SSH_DIR/config.tmp"
  mv "$SSH_DIR/config.tmp" "$SSH_DIR/config"
}

# sshd forks into the background (writing $SSHD_PID) once it listens. Like
# slurmd it is started with nsenter --net, plus a UTS namespace so that
# `hostname` on the login node says amlrun-login.
start_sshd() {
  mkdir -p /run/sshd  # its privilege separation directory
  chmod 0755 /run/sshd
  if pid_alive "$SSHD_PID"; then
    if [ -n "${SSHD_CONFIG_CHANGED:-}" ]; then
      kill -HUP "$(cat "$SSHD_PID")"
      say "sshd rereads its changed config"
      sleep 0.5
      wait_for_ssh
    fi
    return 0
  fi
  /usr/sbin/sshd -t -f "$SSH_DIR/sshd_config" || die "sshd rejects $SSH_DIR/sshd_config"
  # shellcheck disable=SC2016
  nsenter --net="/var/run/netns/$LOGIN_NS" unshare --uts \
    sh -c 'hostname "$1" && exec /usr/sbin/sshd -f "$2" -E "$3"' \
    sh "$LOGIN_NS" "$SSH_DIR/sshd_config" "$STATE/log/sshd.log" ||
    die "sshd did not start; see $STATE/log/sshd.log"
  wait_for_ssh
}

wait_for_ssh() {
  local deadline=$((SECONDS + 20)) host
  for host in amlrun-login amlrun-login-tcsh; do
    until ssh -F "$SSH_DIR/config" -o ConnectTimeout=2 "$host" true </dev/null 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then
        ssh -F "$SSH_DIR/config" -o ConnectTimeout=2 "$host" true </dev/null || true
        tail -n 15 "$STATE/log/sshd.log" >&2 || true
        die "cannot log in to the login node as $host (see $STATE/log/sshd.log)"
      fi
      sleep 0.2
    done
  done
}

# $STATE/laptop-bin: a link to every command in /usr/local/bin, /usr/bin and
# /bin but Slurm's and munge's, for a PATH on which no Slurm command is found
# (tests/e2e/ssh_e2e.py's laptop). Made again by every 'up', so a package
# installed since shows.
make_laptop_bin() {
  local dir="$STATE/laptop-bin" tmp="$STATE/laptop-bin.tmp"
  local -A hidden=()
  local path name directory
  while IFS= read -r path; do
    hidden["${path##*/}"]=1
  done < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'slurm*' munge 2>/dev/null |
    awk '$1 == "ii" { print $2 }' | xargs -r dpkg -L 2>/dev/null | grep -E '/bin/[^/]+$' || true)
  [ -n "${hidden[sbatch]:-}" ] || die "dpkg does not list sbatch among Slurm's commands"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  for directory in /usr/local/bin /usr/bin /bin; do
    for path in "$directory"/*; do
      [ -e "$path" ] || continue
      name="${path##*/}"
      [ -z "${hidden[$name]:-}" ] || continue
      [ -e "$tmp/$name" ] || [ -L "$tmp/$name" ] || ln -s "$path" "$tmp/$name"
    done
  done
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

stop_login_node() {
  stop_pid_file "$SSHD_PID" sshd
  # The sessions' sshd processes and what they started.
  if [ -e "/var/run/netns/$LOGIN_NS" ]; then
    local pids
    pids="$(ip netns pids "$LOGIN_NS" 2>/dev/null || true)"
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
    ip netns del "$LOGIN_NS" 2>/dev/null || true
  fi
  ip link del "$LOGIN_VETH" 2>/dev/null || true
}

show_logs() {
  local file
  for file in "$STATE"/log/*.log; do
    [ -f "$file" ] || continue
    say "last lines of $file:"
    tail -n 15 "$file" >&2
  done
}

wait_until_ready() {
  export SLURM_CONF="$CONF"
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    local idle
    idle="$(sinfo --noheader --responding --states=idle,mixed,allocated --format=%n 2>/dev/null | sort -u | wc -l)"
    if [ "$idle" -eq "${#NODES[@]}" ]; then
      return 0
    fi
    sleep 0.5
  done
  sinfo >&2 || true
  show_logs
  die "the nodes did not become ready within 60 s (logs above, all under $STATE/log)"
}

up() {
  require_root
  mkdir -p "$STATE"
  write_config
  start_munge
  setup_network
  start_slurmctld
  # A node left DOWN by an earlier run (e.g. a test that failed a node)
  # comes back when its slurmd registers (ReturnToService=2).
  local node
  for node in "${NODES[@]}"; do
    start_slurmd "$node"
  done
  wait_until_ready
  for node in "${NODES[@]}"; do
    scontrol -f "$CONF" update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
  done
  ensure_test_user
  write_ssh_config
  start_sshd
  make_laptop_bin
  say "up: nodes ${NODES[*]} ready, login node $LOGIN_ADDRESS (ssh -F $SSH_DIR/config amlrun-login)"
}

stop_pid_file() {
  local file="$1" name="$2"
  if pid_alive "$file"; then
    local pid
    pid="$(cat "$file")"
    kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    say "stopped $name"
  fi
  rm -f "$file"
}

down() {
  require_root
  local node
  for node in "${NODES[@]}"; do
    stop_pid_file "$STATE/slurmd-$node.pid" "slurmd $node"
  done
  stop_pid_file "$STATE/slurmctld.pid" slurmctld
  stop_login_node
  # Jobs' leftover processes (slurmstepd and what it started) in the nodes'
  # namespaces: end them so the namespaces can go.
  for node in "${NODES[@]}"; do
    local ns="amlrun-$node"
    if [ -e "/var/run/netns/$ns" ]; then
      local pids
      pids="$(ip netns pids "$ns" 2>/dev/null || true)"
      [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
      ip netns del "$ns" 2>/dev/null || true
    fi
    ip link del "amlrun-${node}h" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  remove_bridge_forwarding
  if [ -f "$STATE/munged.started-by-us" ] && [ -s /run/munge/munged.pid ]; then
    kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    rm -f "$STATE/munged.started-by-us"
  fi
  if grep -q "$HOSTS_MARKER" /etc/hosts; then
    local tmp
    tmp="$(mktemp)"
    grep -v "$HOSTS_MARKER" /etc/hosts >"$tmp" || true
    cat "$tmp" >/etc/hosts
    rm -f "$tmp"
  fi
  if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$CONF" ]; then
    rm -f /etc/slurm/slurm.conf
  fi
  rm -rf "$STATE/ctld" "$STATE/spool" "$STATE/tmp"
  say "down"
}

status() {
  if ! pid_alive "$STATE/slurmctld.pid" || ! SLURM_CONF="$CONF" sinfo >/dev/null 2>&1; then
    say "not running"
    return 1
  fi
  SLURM_CONF="$CONF" sinfo >&2
  if ! pid_alive "$SSHD_PID"; then
    say "the login node's sshd is not running (scripts/slurm-test-cluster.sh sshd-start)"
    return 1
  fi
  if ! ip link show "$LOGIN_VETH" 2>/dev/null | grep -q '[<,]UP[,>]'; then
    say "the login node's link is down (scripts/slurm-test-cluster.sh link-up)"
    return 1
  fi
  say "login node: sshd pid $(cat "$SSHD_PID") at $LOGIN_ADDRESS (ssh -F $SSH_DIR/config amlrun-login)"
}

sshd_stop() {
  require_root
  # The listener only: sessions already open (each has its own sshd process,
  # in a session of its own) go on, as on a login node whose sshd restarts.
  stop_pid_file "$SSHD_PID" sshd
}

sshd_start() {
  require_root
  [ -e "/var/run/netns/$LOGIN_NS" ] || die "the cluster is not up (scripts/slurm-test-cluster.sh up)"
  start_sshd
}

# The host's end of the login node's veth: down, the bridge drops every
# packet to and from the login node (nothing answers, no reset is sent),
# like a network cable pulled.
set_link() {
  require_root
  ip link show "$LOGIN_VETH" >/dev/null 2>&1 || die "the cluster is not up (scripts/slurm-test-cluster.sh up)"
  ip link set "$LOGIN_VETH" "$1"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env)
    # One NAME=value a line; callers export each line.
    echo "SLURM_CONF=$CONF"
    echo "AMLRUN_TEST_SSH_CONFIG=$SSH_DIR/config"
    echo "AMLRUN_TEST_SSH_HOST=amlrun-login"
    ;;
  sshd-stop) sshd_stop ;;
  sshd-start) sshd_start ;;
  link-down) set_link down ;;
  link-up) set_link up ;;
  *)
    echo "usage: $0 up|down|status|env|sshd-stop|sshd-start|link-down|link-up" >&2
    exit 2
    ;;
esac
