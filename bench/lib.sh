#!/usr/bin/env bash
# Shell helpers shared by the SIP benchmarks (bench/signaling.sh, bench/registrar.sh): process
# bookkeeping and clean-up, UDP port checks, CPU accounting from /proc, kernel drop counters and
# SIPp statistics. Sourced, never run; the sourcing script sets `set -euo pipefail` and BENCH_NAME
# (prefix of error messages), then calls `setup_work_dir NAME` (WORK_DIR, where logs go, and the
# clean-up traps).
# shellcheck shell=bash
# shellcheck disable=SC2317  # functions reached through the trap

die() { echo "${BENCH_NAME:-bench}: $*" >&2; exit 2; }

# WORK_DIR from the environment (created if missing), else a fresh /tmp/pinhole-bench-$1.XXXXXX
# that is kept for the post-mortem; everything started is stopped on exit or interruption.
setup_work_dir() {
  if [[ -z ${WORK_DIR:-} ]]; then
    WORK_DIR=$(mktemp -d "/tmp/pinhole-bench-$1.XXXXXX")
  else
    mkdir -p "$WORK_DIR"
  fi
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- process bookkeeping

# Background processes we started (each a `timeout` wrapper, which makes itself a process
# group leader, so its whole group is ours to kill).
STARTED=()

stop_group() {  # $1 = pid of a timeout wrapper: TERM (timeout forwards it), then KILL the group
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

forget() {  # $1 = pid to drop from STARTED once it is stopped
  local keep=() p
  for p in "${STARTED[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  STARTED=("${keep[@]}")
}

descendants() {  # pids below $1 (not $1 itself), parents first
  ps -e -o pid=,ppid= | awk -v r="$1" '
    { kids[$2] = kids[$2] " " $1 }
    END { q[1] = r; n = 1
          for (i = 1; i <= n; i++) { if (i > 1) print q[i]; c = split(kids[q[i]], a, " "); for (j = 1; j <= c; j++) q[++n] = a[j] } }'
}

AUTOGROUP_NICE=  # the autogroup nice value to restore on exit, when we changed it

cleanup() {
  local pid
  for pid in "${STARTED[@]}"; do stop_group "$pid"; done
  STARTED=()
  # anything else of ours still running (e.g. the UAC when interrupted): by pid, never by name
  for pid in $(descendants $$); do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ -n $AUTOGROUP_NICE ]]; then
    echo "$AUTOGROUP_NICE" >"/proc/$$/autogroup" 2>/dev/null || true
    AUTOGROUP_NICE=
  fi
}

# With sched_autogroup on, each session gets an equal CPU share whatever its processes' nice
# values: set this session's autogroup nice to $1 for the run (restored by cleanup).
set_autogroup_nice() {
  local old
  ((${1} != 0)) && [[ -w /proc/$$/autogroup ]] || return 0
  # "/autogroup-18 nice 0": remember the nice value, then set ours for the whole session
  old=$(awk '{ print $3 }' "/proc/$$/autogroup")
  if echo "$1" >"/proc/$$/autogroup" 2>/dev/null; then
    AUTOGROUP_NICE=$old
    echo "scheduler autogroup nice set to $1 for the run (was $old)"
  fi
}

# ---------------------------------------------------------------- ports

udp_port_busy() { [[ -n $(ss -Hlun "sport = :$1" 2>/dev/null) ]]; }

wait_udp_port() {  # $1 port, $2 pid that must stay alive, $3 what (for the message)
  local i
  for ((i = 0; i < 100; i++)); do
    udp_port_busy "$1" && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited before binding 127.0.0.1:$1 (see $WORK_DIR)"
    sleep 0.1
  done
  die "$3 did not bind 127.0.0.1:$1 within 10 s (see $WORK_DIR)"
}

# ---------------------------------------------------------------- CPU, memory, drops, SIPp

# Clock ticks used so far by $1 and all its descendants: utime+stime of the live processes
# plus cutime+cstime (children already reaped). /proc/PID/stat covers all threads of a process.
tree_ticks() {
  local pid line total=0
  for pid in "$1" $(descendants "$1"); do
    line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    line=${line##*) }  # fields after "pid (comm) ": utime is the 12th, cstime the 15th
    total=$((total + $(awk '{ print $12 + $13 + $14 + $15 }' <<<"$line")))
  done
  echo "$total"
}

# The user-space share (0..1) of the samples in `perf record` file $1: samples outside the
# kernel over all. Why not /proc's utime/stime: the kernel splits a process's exact run time
# between them by which mode the scheduler tick (250 Hz) found it in, and that sampling is
# biased for processes that wake and sleep in step with the load: it put Kamailio at 85 % user
# where perf's own 1 kHz sampling finds 59 % (docs/benchmarks.md). "nan" without samples.
perf_user_share() {
  [[ -s $1 ]] || { echo nan; return; }
  perf report -i "$1" --sort dso --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ { v = $1; sub("%", "", v); all += v; if ($2 != "[kernel.kallsyms]") user += v }
         END { if (all > 0) printf "%.3f", user / all; else print "nan" }'
}

ticks_to_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }'; }

# Resident memory of one process in KiB (VmRSS of /proc/PID/status); 0 when it is gone.
rss_kib() { awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# Proportional set size of $1 and its descendants in KiB (smaps_rollup): shared pages (e.g.
# Kamailio's shared memory segment, mapped by every process) are counted once in total.
tree_pss_kib() {
  local pid total=0 v
  for pid in "$1" $(descendants "$1"); do
    v=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null) || continue
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

udp_rcvbuf_errors() { awk '/^Udp:/ { if (++n == 2) print $6 }' /proc/net/snmp; }

# Datagrams the kernel dropped on the 127.0.0.1 UDP sockets bound to port $1 (summed over the
# SO_REUSEPORT sockets of all workers): the `drops` column of /proc/net/udp.
udp_port_drops() {
  awk -v p="$(printf '0100007F:%04X' "$1")" '$2 == p { d += $NF } END { print d + 0 }' /proc/net/udp
}

# Value of column $2 in the last line of SIPp's ';'-separated statistics file $1; 0 when the
# file or the column is missing (SIPp died early: its calls then count as failed).
sipp_stat() {
  [[ -s $1 ]] || { echo 0; return; }
  awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i } END { v = c ? $c : ""; print (v == "" ? 0 : v) }' "$1"
}

# CPU seconds per 10,000 of $2 completed units for $1 clock ticks ("nan" when none completed).
per_10k() { awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (n > 0) printf "%.3f", t / hz * 10000 / n; else print "nan" }'; }

# (A - FLOOR) / (B - FLOOR) for $1=A $2=B $3=FLOOR: what A spends above the floor against what B does.
above_floor_ratio() {
  awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (b - f > 0 && a + 0 > 0) printf "%.3f", (a - f) / (b - f); else print "nan" }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.3f", a / b; else print "nan" }'; }

# Prints the top LINES symbols of a `perf record` file, each line prefixed with LABEL, and keeps
# them in OUT. Nothing when the file is missing or empty (perf not run).
print_perf_top() {
  local data=$1 out=$2 label=$3 lines=$4
  [[ -s $data ]] || return 0
  perf report -i "$data" --no-children --sort symbol --stdio 2>/dev/null |
    grep -E '^ +[0-9]+\.[0-9]+%' | sed -E 's/[[:space:]-]+$//' | head -"$lines" >"$out" || true
  sed "s/^/$label/" "$out"
}
