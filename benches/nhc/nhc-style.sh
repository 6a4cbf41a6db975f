#!/bin/bash
# The checks of profiles/nhc.toml written the way LBNL NHC 1.4.3 runs them:
# bash functions over data gathered once per source (/proc/mounts and
# /proc/cpuinfo, /proc/meminfo read with `while read`, one `ps axo`, one
# `df` for space and one for inodes), in the order of the profile, every
# check run (NHC's -a). The comparison point for benches/nhc.sh.
#
#   nhc-style.sh [MIN_CPUS] [MIN_MEM_KB] [MIN_GPUS]
set -u
MIN_CPUS=${1:-1}
MIN_MEM_KB=${2:-1048576}
MIN_GPUS=${3:-0}
FAILED=0

die() { # check, message (NHC's die without the exit under -a)
  echo "ERROR:  nhc:  Health check failed:  $1:  $2"
  FAILED=1
}

# nhc_common_load_mounts
declare -A MOUNT_OPTS
nhc_load_mounts() {
  local dev mnt fs opts rest
  while read -r dev mnt fs opts rest; do
    MOUNT_OPTS[$mnt]=$opts
  done </proc/mounts
}

check_fs_mount_rw() { # PATH: the mount holding it is read-write
  local opts
  opts=${MOUNT_OPTS[$(mount_of "$1")]-}
  if [[ -z $opts ]]; then
    die check_fs_mount_rw "$1 not mounted"
  elif [[ ,$opts, != *,rw,* ]]; then
    die check_fs_mount_rw "$1 mounted read-only"
  fi
}

# nhc_fs_df_load: one df each for space and inodes, as NHC caches them
declare -A DF_SIZE DF_FREE DF_INODES DF_IFREE
nhc_df_load() {
  local fs size used avail pct mnt
  while read -r fs size used avail pct mnt; do
    DF_SIZE[$mnt]=$size DF_FREE[$mnt]=$avail
  done < <(df -Pk 2>/dev/null | tail -n +2)
  while read -r fs size used avail pct mnt; do
    DF_INODES[$mnt]=$size DF_IFREE[$mnt]=$avail
  done < <(df -Pi 2>/dev/null | tail -n +2)
}

mount_of() { # the df mount point holding a path
  local p=$1
  while [[ -z ${DF_SIZE[$p]-} && $p != / ]]; do p=${p%/*}; p=${p:-/}; done
  echo "$p"
}

check_fs_free() { # MOUNT PCT
  local m pct
  m=$(mount_of "$1")
  pct=$((DF_FREE[$m] * 100 / DF_SIZE[$m]))
  ((pct >= $2)) || die check_fs_free "$1 has only ${pct}% free (expected $2%)"
}

check_fs_ifree() { # MOUNT PCT
  local m pct
  m=$(mount_of "$1")
  ((DF_INODES[$m] > 0)) || return 0
  pct=$((DF_IFREE[$m] * 100 / DF_INODES[$m]))
  ((pct >= $2)) || die check_fs_ifree "$1 has only ${pct}% inodes free (expected $2%)"
}

# nhc_ps_pid_info: one ps for every process check
declare -a PS_USER PS_CMD
nhc_ps_load() {
  local user uid pid cmd i=0
  while read -r user pid cmd; do
    PS_USER[i]=$user PS_CMD[i]=$cmd
    ((i++))
  done < <(ps axo 'user:32,pid,comm' --no-headers)
}

check_ps_service() { # -u USER NAME
  local i want_user=$1 name=$2
  for i in "${!PS_CMD[@]}"; do
    if [[ ${PS_CMD[i]} == "$name" ]]; then
      [[ -z $want_user || ${PS_USER[i]} == "$want_user" ]] && return 0
    fi
  done
  die check_ps_service "Process $name${want_user:+ owned by $want_user} not running"
}

# nhc_hw_gather_data
HW_CPUS=0 HW_MEM_KB=0
nhc_hw_gather() {
  local key val rest
  while IFS=$' \t:' read -r key val rest; do
    [[ $key == processor ]] && ((HW_CPUS++))
  done </proc/cpuinfo
  while IFS=$' \t:' read -r key val rest; do
    [[ $key == MemTotal ]] && HW_MEM_KB=$val
  done </proc/meminfo
}

check_hw_cpuinfo() {
  ((HW_CPUS >= $1)) || die check_hw_cpuinfo "$HW_CPUS CPUs found (expected at least $1)"
}

check_hw_physmem() {
  ((HW_MEM_KB >= $1)) || die check_hw_physmem "${HW_MEM_KB}kB memory found (expected at least $1kB)"
}

check_hw_ib() { # every port ACTIVE and LinkUp, where IB exists
  local p state phys
  [[ -d /sys/class/infiniband ]] || return 0
  for p in /sys/class/infiniband/*/ports/*; do
    [[ -e $p/state ]] || continue
    read -r _ state <"$p/state"
    read -r _ phys <"$p/phys_state"
    [[ $state == ACTIVE && $phys == LinkUp ]] || die check_hw_ib "$p is $state/$phys"
  done
}

check_hw_gpus() { # NVIDIA/AMD display controllers on the PCI bus
  local d class vendor n=0
  for d in /sys/bus/pci/devices/*; do
    read -r class <"$d/class"
    [[ $class == 0x03* ]] || continue
    read -r vendor <"$d/vendor"
    [[ $vendor == 0x10de || $vendor == 0x1002 ]] && ((n++))
  done
  ((n >= $1)) || die check_hw_gpus "$n GPUs found (expected at least $1)"
}

nhc_load_mounts
nhc_df_load
nhc_ps_load
nhc_hw_gather

check_fs_mount_rw /
check_fs_mount_rw /tmp
check_fs_free /tmp 5
check_fs_ifree /tmp 5
check_ps_service root sshd
check_ps_service "" munged
check_ps_service root slurmd
check_hw_cpuinfo "$MIN_CPUS"
check_hw_physmem "$MIN_MEM_KB"
check_hw_ib
check_hw_gpus "$MIN_GPUS"
exit $FAILED
