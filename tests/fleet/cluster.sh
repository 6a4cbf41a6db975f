#!/usr/bin/env bash
# A four-node Slurm cluster on this one machine, for tests/e2e/fleet.rs.
#
#   cluster.sh up DIR HEALTHCHECK   start it; DIR is empty and private
#   cluster.sh down DIR             stop everything `up` started
#
# Every process it starts is recorded in DIR/pids and stopped by `down`
# (by pid, never by name). Nothing is done in the host's namespaces:
#
# - a "hub" holding a network and UTS namespace (hostname `ctl`) with a
#   bridge at 10.77.0.1/24; munged and slurmctld run there;
# - per node (node1..node4) a holder with its own network, UTS and mount
#   namespace: hostname nodeN, a veth whose other end is on the hub's
#   bridge (10.77.0.1N/24), its own tmpfs on /run; its slurmd runs there.
#
# The namespaces are entered with nsenter (not `ip netns exec`, which
# remounts /sys), and go away with their last process.
set -euo pipefail
cmd=$1 d=$2
NODES=(node1 node2 node3 node4)

record() { echo "$1" >>"$d/pids"; }

# Starts a holder: unshare with the given flags, running `init` then sleep.
holder() { # name flags... -- init
  local name=$1; shift
  local flags=()
  while [[ $1 != -- ]]; do flags+=("$1"); shift; done
  shift
  setsid unshare "${flags[@]}" sh -c "$1; exec sleep 100000" </dev/null >"$d/$name.holder.log" 2>&1 &
  local pid=$!
  record "$pid"
  echo "$pid" >"$d/$name.pid"
}

wait_host() { # pid name
  for _ in $(seq 100); do
    [[ $(nsenter -t "$1" -u hostname 2>/dev/null) == "$2" ]] && return 0
    sleep 0.05
  done
  echo "namespace holder for $2 did not come up: $(cat "$d/$2.holder.log")" >&2
  return 1
}

# A daemon in the namespaces of holder $1 (nsenter flags $2), logging to $3.
daemon() { # holderpid nsflags log cmd...
  local hp=$1 flags=$2 log=$3; shift 3
  # shellcheck disable=SC2086
  setsid nsenter -t "$hp" $flags -- "$@" </dev/null >"$log" 2>&1 &
  record $!
}

up() {
  local hc=$1
  mkdir -p "$d/state" "$d/spool" "$d/munge"
  chmod 755 "$d/munge"
  head -c 1024 /dev/urandom >"$d/munge/munge.key"
  chmod 400 "$d/munge/munge.key"
  holder hub --net --uts -- "hostname ctl; ip link set lo up; ip link add br0 type bridge; ip addr add 10.77.0.1/24 dev br0; ip link set br0 up"
  local hub; hub=$(cat "$d/hub.pid")
  wait_host "$hub" ctl
  for i in 1 2 3 4; do
    local n=node$i
    mkdir -p "$d/$n"
    holder "$n" --net --uts --mount --propagation private -- \
      "hostname $n; mount -t tmpfs -o mode=755,size=16m tmpfs /run; mkdir -p /run/fleet; touch /run/fleet/healthy; ip link set lo up"
    local p; p=$(cat "$d/$n.pid")
    wait_host "$p" "$n"
    nsenter -t "$hub" -n ip link add "veth$i" type veth peer name eth0 netns "$p"
    nsenter -t "$hub" -n ip link set "veth$i" master br0 up
    nsenter -t "$p" -n ip addr add "10.77.0.1$i/24" dev eth0
    nsenter -t "$p" -n ip link set eth0 up
  done
  cat >"$d/slurm.conf" <<CONF
ClusterName=fleet
SlurmctldHost=ctl(10.77.0.1)
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
AuthInfo=socket=$d/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool/%n
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/spool/%n.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/%n.slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=30
HealthCheckProgram=$hc
HealthCheckInterval=2
HealthCheckNodeState=ANY
NodeName=node[1-4] NodeAddr=10.77.0.1[1-4] CPUs=1 RealMemory=100 State=UNKNOWN
PartitionName=batch Nodes=node[1-4] Default=YES State=UP
CONF
  daemon "$hub" "-n -u" "$d/munged.out" munged -F -f --key-file="$d/munge/munge.key" \
    --socket="$d/munge/munge.socket" --pid-file="$d/munge/munged.pid" \
    --log-file="$d/munge/munged.log" --seed-file="$d/munge/seed"
  for _ in $(seq 100); do [[ -S $d/munge/munge.socket ]] && break; sleep 0.05; done
  [[ -S $d/munge/munge.socket ]] || { cat "$d/munged.out" >&2; return 1; }
  export SLURM_CONF=$d/slurm.conf
  daemon "$hub" "-n -u" "$d/slurmctld.out" slurmctld -D -f "$d/slurm.conf"
  for i in 1 2 3 4; do
    mkdir -p "$d/spool/node$i"
    daemon "$(cat "$d/node$i.pid")" "-n -u -m" "$d/node$i.out" slurmd -D -f "$d/slurm.conf"
  done
}

down() {
  [[ -f $d/pids ]] || return 0
  # Whatever runs inside the nodes' namespaces (slurmstepd, job steps,
  # health checks) was started there by this cluster: found by namespace.
  for h in "$d"/*.pid; do
    [[ $h == */slurmctld.pid ]] && continue
    hp=$(cat "$h" 2>/dev/null) || continue
    ns=$(readlink "/proc/$hp/ns/net" 2>/dev/null) || continue
    for p in /proc/[0-9]*; do
      [[ $(readlink "$p/ns/net" 2>/dev/null) == "$ns" ]] && echo "${p#/proc/}" >>"$d/pids"
    done
  done
  # Daemons first (last started first), then the holders.
  tac "$d/pids" | while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0
    while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$d/pids"
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$d/pids"
  rm -f "$d/pids"
}

case $cmd in
  up) up "$3" ;;
  down) down ;;
  *) echo "usage: $0 up DIR HEALTHCHECK | down DIR" >&2; exit 2 ;;
esac
