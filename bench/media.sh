#!/usr/bin/env bash
# Media relay benchmark (issue 6, "Benchmark"; DESIGN.md §6): CPU seconds per million relayed RTP
# packets, loss and added latency, pinhole-media against rtpengine (userspace: --table=-1, no
# kernel module), both driven in the same run by the same load generator, `pinhole-bench rtp`
# (bench/pinhole_bench_rtp.cc), one relay after the other with the same settings:
#
#   pinhole-bench rtp --ng 127.0.0.1:NG --calls N --duration S --pps 50
#     N calls set up over ng (offer/answer, SDPs naming the bench's own loopback sockets, two
#     "phones" per call), then 50 packets/s per direction per call through the relay, each
#     carrying its CLOCK_MONOTONIC send time and a sequence number; deleted at the end.
#   relay: 127.0.0.1, ng on its own port, RTP port range of RANGE_SIZE ports, WORKERS threads
#     pinhole-media --workers WORKERS; rtpengine --num-threads=WORKERS
#
# CPU: utime+stime of the relay process (/proc/PID/stat, all threads) from the first packet to
# the end of the drain after the last one (pinhole-bench --cpu-pid reads it at those instants:
# ng setup and teardown are not counted), divided by the packets the relay delivered.
# pinhole-media forwards latched streams in the kernel (src/media/fast_path.h): that work runs
# in the sender's context, outside the relay process, so the script adds the eBPF program's own
# run time (kernel.bpf_stats_enabled, read with bpftool before and after the whole bench run,
# ng setup included: an overcount, never an undercount) to pinhole's relay CPU. What the kernel
# does around the program (delivering the rewritten packet to the receiver) replaces the
# delivery to the relay's socket that the sender pays in the user-space path, so the bench's
# own CPU (bench_cpu_s, per process and exact) is the check that nothing moved there: with
# BUSY_POLL=0 (the bench sleeps when idle, so its CPU is only its work) and FLOOR=1 it must stay
# at the floor run's (the same load sent phone to phone, no relay). /proc/stat's whole-machine
# figures are not used: they are sampled per tick, and the bench's 1 ms pacing makes the relay
# run between ticks (they showed 12 s of rtpengine CPU as 4).
# FAST_PATH=0 runs pinhole-media without the kernel path (user space only, as before).
# Latency: kernel receive timestamp at the bench's socket minus the send time (see
# pinhole_bench_rtp.cc); with FLOOR=1 the same load without any relay is measured first (the
# phones send to each other directly): the floor of the measurement on this machine.
# Pinning (PIN=1, default when there are 2+ CPUs): the relay on the last CPU, the bench on the
# others, so that they do not steal each other's CPU; PIN=0 lets the scheduler place them.
#
# Usage:
#   bench/media.sh                          # both relays, defaults below (about 1.5 minutes)
#   bench/media.sh --calls 2000 --duration 30
#   bench/media.sh --only pinhole           # one relay (no ratio line)
#   bench/media.sh --smoke                  # 20 calls, 2 s, pinhole-media only; fails on any loss
#
# Options (environment variables in brackets, defaults after them):
#   --calls N [CALLS] 500   --duration S [DURATION] 20   --pps P [PPS] 50
#   --workers K [WORKERS] 1 (relay threads)   --bench-workers K [BENCH_WORKERS] 1
#   --only pinhole|rtpengine|both [ONLY] both   --pin 0|1 [PIN] 1 with 2+ CPUs
#   --bench PATH [BENCH_BIN] build/release/bench/pinhole-bench
#   --media PATH [MEDIA_BIN] build/release/src/app/pinhole-media   [RTPENGINE_BIN] rtpengine
#   [NICE] 0: the nice value of the relays and the bench (root only when negative; also this
#   session's autogroup nice, see lib.sh): on a machine shared with other work NICE=-10 keeps
#   that work from starving the run
#   [BUSY_POLL] = PIN: 1 runs the bench with --busy-poll (it spins on its CPUs instead of sleeping,
#   so that the relay's sends over loopback do not pay for waking it up; see
#   pinhole_bench_rtp.cc); only sensible when the bench has CPUs of its own
#   [RT_PRIO] empty: a SCHED_FIFO priority (1-99) for both relays (`chrt -f`, root only), so that
#   other work on a shared machine cannot delay them (the latency then shows the relay, not the
#   scheduler); they sleep when idle, so nothing is starved
#   [FAST_PATH] 1: 0 turns pinhole-media's kernel fast path off
#   [FLOOR] 0: 1 measures the no-relay floor first   [RANGE_SIZE] 10000 ports per relay
#   [NG_PORT] 24223 (pinhole; rtpengine NG_PORT+1)   [PORT_BASE] 12000 (pinhole's range;
#   rtpengine's follows it)   [PERF_RECORD] empty: 1 = `perf record -g` on each relay while the
#   bench runs, top symbols printed   [WORK_DIR] fresh /tmp/pinhole-bench-media.XXXXXX, kept
#
# Output: a summary line per relay, then `key value` lines; the last one is
#   cpu_per_packet_ratio_vs_rtpengine <pinhole/rtpengine>
# Exit status: 0 no packet lost; 1 some lost (numbers still printed); 2 the benchmark could not
# run (binary missing, port busy, a relay did not start, ng setup failed). Every process runs
# under `timeout` and is stopped on exit. Only 127.0.0.1 is used.
# shellcheck disable=SC2317  # functions reached through the trap and "start_$relay"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=media.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

CALLS=${CALLS:-500}
DURATION=${DURATION:-20}
PPS=${PPS:-50}
WORKERS=${WORKERS:-1}
BENCH_WORKERS=${BENCH_WORKERS:-1}
ONLY=${ONLY:-both}
if [[ -z ${PIN:-} ]]; then
  PIN=0
  (($(nproc) >= 2)) && PIN=1
fi
BENCH_BIN=${BENCH_BIN:-$ROOT/build/release/bench/pinhole-bench}
MEDIA_BIN=${MEDIA_BIN:-$ROOT/build/release/src/app/pinhole-media}
RTPENGINE_BIN=${RTPENGINE_BIN:-rtpengine}
FLOOR=${FLOOR:-0}
RANGE_SIZE=${RANGE_SIZE:-10000}
NG_PORT=${NG_PORT:-24223}
PORT_BASE=${PORT_BASE:-12000}
PERF_RECORD=${PERF_RECORD:-}
NICE=${NICE:-0}
BUSY_POLL=${BUSY_POLL:-}
RT_PRIO=${RT_PRIO:-}
FAST_PATH=${FAST_PATH:-1}
SMOKE=0

while [[ $# -gt 0 ]]; do
  case $1 in
    --calls) CALLS=${2:-}; shift 2 ;;
    --duration) DURATION=${2:-}; shift 2 ;;
    --pps) PPS=${2:-}; shift 2 ;;
    --workers) WORKERS=${2:-}; shift 2 ;;
    --bench-workers) BENCH_WORKERS=${2:-}; shift 2 ;;
    --only) ONLY=${2:-}; shift 2 ;;
    --pin) PIN=${2:-}; shift 2 ;;
    --bench) BENCH_BIN=${2:-}; shift 2 ;;
    --media) MEDIA_BIN=${2:-}; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    -h | --help) sed -n '2,/^# shellcheck/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done

if ((SMOKE)); then
  # Small and quick, for ctest: ports derived from our pid so that parallel test processes
  # (other build directories) do not meet; no pinning, no floor, pinhole-media only.
  CALLS=20 DURATION=2 ONLY=pinhole PIN=0 FLOOR=0 RANGE_SIZE=200 PERF_RECORD='' NICE=0 BUSY_POLL=0 RT_PRIO=''
  PORT_BASE=$((10000 + ($$ % 80) * 250))
  NG_PORT=$((PORT_BASE + RANGE_SIZE + 10))
  ((EUID == 0)) || FAST_PATH=0  # loading eBPF needs root; CI runs the smoke test as root
fi

case $ONLY in both | pinhole | rtpengine) ;; *) die "--only pinhole|rtpengine|both" ;; esac
[[ $DURATION =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration must be a number of seconds (got '$DURATION')"
for v in CALLS PPS WORKERS BENCH_WORKERS RANGE_SIZE NG_PORT PORT_BASE; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer (got '${!v}')"
done
[[ $PIN == 0 || $PIN == 1 ]] || die "--pin 0|1"
[[ $FAST_PATH == 0 || $FAST_PATH == 1 ]] || die "FAST_PATH must be 0 or 1"
if ((FAST_PATH && !SMOKE)) && [[ $ONLY != rtpengine ]]; then
  command -v bpftool >/dev/null || die "bpftool not found (apt-get install bpftool): the fast path's CPU is read with it"
fi
[[ -n $BUSY_POLL ]] || BUSY_POLL=$PIN
[[ $BUSY_POLL == 0 || $BUSY_POLL == 1 ]] || die "BUSY_POLL must be 0 or 1"
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE must be an integer (got '$NICE')"
((RANGE_SIZE >= 4 * CALLS)) || die "RANGE_SIZE ($RANGE_SIZE) must be at least 4 ports per call (RTP+RTCP, 2 legs)"
((PORT_BASE + 2 * RANGE_SIZE <= 65535)) || die "PORT_BASE + 2 * RANGE_SIZE is past port 65535"
[[ -x $BENCH_BIN ]] || die "pinhole-bench not found at $BENCH_BIN (cmake --build --preset release --target pinhole-bench)"
if [[ $ONLY != rtpengine ]]; then
  [[ -x $MEDIA_BIN ]] || die "pinhole-media not found at $MEDIA_BIN (cmake --build --preset release --target pinhole-media)"
fi
if [[ $ONLY != pinhole ]]; then
  command -v "$RTPENGINE_BIN" >/dev/null || die "rtpengine not found (apt-get install rtpengine-daemon)"
fi
# 4 ports per call on the relay, 2 sockets per call in the bench
(($(ulimit -n) > 4 * CALLS + 100)) || ulimit -n $((4 * CALLS + 1000)) 2>/dev/null ||
  die "open files limit $(ulimit -n) is too low for $CALLS calls"

setup_work_dir media

# CPU sets: the relay on the last CPU, the bench on the others. Command prefixes (arrays, not a
# function: a backgrounded function would be a subshell, and $! must be the `timeout` itself).
NCPU=$(nproc)
RELAY_PIN=()
BENCH_PIN=()
if ((PIN && NCPU >= 2)); then
  RELAY_PIN=(taskset -c "$((NCPU - 1))")
  BENCH_PIN=(taskset -c "0-$((NCPU - 2))")
fi
RELAY_CPUS=${RELAY_PIN[2]:-}
if [[ -n $RT_PRIO ]]; then
  if [[ ! $RT_PRIO =~ ^[0-9]+$ ]] || ((RT_PRIO < 1 || RT_PRIO > 99)); then die "RT_PRIO must be 1-99"; fi
  RELAY_PIN=(chrt -f "$RT_PRIO" "${RELAY_PIN[@]}")
fi

# Bounded: setup of CALLS calls at a few thousand per second, the traffic, drain, teardown.
BENCH_LIMIT=$(awk -v d="$DURATION" -v c="$CALLS" 'BEGIN { printf "%d", 60 + d + c / 100 }')
RELAY_LIMIT=$((BENCH_LIMIT + 60))

BPF_PROG=   # pinhole-media's fast path program id, when it runs one
RELAY_PID=  # the timeout wrapper
RELAY_MAIN= # the relay process itself (its CPU is what we measure)
NG=

start_pinhole() {
  local lo=$PORT_BASE hi=$((PORT_BASE + RANGE_SIZE - 1))
  NG=127.0.0.1:$NG_PORT
  udp_port_busy "$NG_PORT" && die "port $NG_PORT (pinhole-media ng) is busy"
  local fast=(--fast-path=false)
  ((FAST_PATH)) && fast=(--fast-path=true --fast-path-interface lo)
  nice -n "$NICE" "${RELAY_PIN[@]}" timeout -k 5 "$RELAY_LIMIT" "$MEDIA_BIN" --ng "$NG" --interface 127.0.0.1 \
    --ports "$lo-$hi" --workers "$WORKERS" "${fast[@]}" --log-level info >"$WORK_DIR/pinhole.log" 2>&1 &
  RELAY_PID=$!
  STARTED+=("$RELAY_PID")
  wait_udp_port "$NG_PORT" "$RELAY_PID" pinhole-media
  BPF_PROG=$(sed -n 's/.*kernel fast path on (.*; bpf program \([0-9]*\)).*/\1/p' "$WORK_DIR/pinhole.log" | head -n 1)
  if ((FAST_PATH)) && [[ -z $BPF_PROG ]]; then
    die "pinhole-media did not start its kernel fast path: $(grep -o 'kernel fast path.*' "$WORK_DIR/pinhole.log")"
  fi
  local state=off
  [[ -n $BPF_PROG ]] && state="on (eBPF program $BPF_PROG)"
  echo "pinhole-media: ng $NG, ports $lo-$hi, $WORKERS worker(s)${RELAY_CPUS:+, CPU $RELAY_CPUS}, kernel fast path $state"
}

start_rtpengine() {
  local port=$((NG_PORT + 1)) lo=$((PORT_BASE + RANGE_SIZE)) hi=$((PORT_BASE + 2 * RANGE_SIZE - 1))
  NG=127.0.0.1:$port
  udp_port_busy "$port" && die "port $port (rtpengine ng) is busy"
  # userspace only (--table=-1), no config file, log level 4 (warnings) so that logging does not
  # cost it CPU per call; --delete-delay=0 as our deletes ask
  nice -n "$NICE" "${RELAY_PIN[@]}" timeout -k 5 "$RELAY_LIMIT" "$RTPENGINE_BIN" --config-file=none --table=-1 \
    --foreground --log-stderr --log-level=4 --interface=127.0.0.1 --listen-ng="$NG" \
    --port-min="$lo" --port-max="$hi" --num-threads="$WORKERS" --delete-delay=0 --timeout=60 \
    >"$WORK_DIR/rtpengine.log" 2>&1 &
  RELAY_PID=$!
  STARTED+=("$RELAY_PID")
  wait_udp_port "$port" "$RELAY_PID" rtpengine
  echo "rtpengine $("$RTPENGINE_BIN" --version 2>&1 | awk '{ print $2; exit }'): ng $NG, ports $lo-$hi, $WORKERS thread(s), userspace${RELAY_CPUS:+, CPU $RELAY_CPUS}"
}

stop_relay() {
  stop_group "$RELAY_PID"
  forget "$RELAY_PID"
  RELAY_PID=
}

declare -A RESULT # RESULT[<relay>_<key>] = value

# Value of key $2 in the bench output file $1 (key=value lines); "nan" when missing.
value_of() { awk -F= -v k="$2" '$1 == k { v = $2 } END { print (v == "" ? "nan" : v) }' "$1"; }

# Run time of eBPF program $1 in ns (0 when none or unreadable).
bpf_run_ns() {
  [[ -n $1 ]] || { echo 0; return; }
  bpftool prog show id "$1" --json 2>/dev/null | sed -n 's/.*"run_time_ns":\([0-9]*\).*/\1/p' | grep . || echo 0
}

run_bench() {  # $1 = pinhole | rtpengine | floor
  local relay=$1 out="$WORK_DIR/$1-bench.txt" args=() rc=0 perf_pid="" bpf_before=0 bpf_after=0
  local prog=""
  [[ $relay == pinhole ]] && prog=$BPF_PROG
  ((BUSY_POLL)) && args+=(--busy-poll)
  if [[ $relay == floor ]]; then
    args+=(--direct)
  else
    # `timeout` runs the relay as its child (taskset execs into it)
    RELAY_MAIN=$(descendants "$RELAY_PID" | head -n 1)
    [[ -n $RELAY_MAIN ]] || die "$relay: no process under its timeout wrapper"
    args+=(--ng "$NG" --cpu-pid "$RELAY_MAIN")
    if [[ -n $PERF_RECORD ]]; then
      perf record -g -p "$RELAY_MAIN" -o "$WORK_DIR/$relay-perf.data" >"$WORK_DIR/$relay-perf-record.log" 2>&1 &
      perf_pid=$!
    fi
  fi
  bpf_before=$(bpf_run_ns "$prog")
  nice -n "$NICE" "${BENCH_PIN[@]}" timeout -k 5 "$BENCH_LIMIT" "$BENCH_BIN" rtp "${args[@]}" --calls "$CALLS" \
    --duration "$DURATION" --pps "$PPS" --workers "$BENCH_WORKERS" >"$out" 2>"$WORK_DIR/$relay-bench.err" || rc=$?
  bpf_after=$(bpf_run_ns "$prog")
  if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
  fi
  ((rc == 0)) || die "$relay: pinhole-bench exited with $rc: $(tail -n 3 "$WORK_DIR/$relay-bench.err" | tr '\n' ' ')"
  if [[ $relay != floor ]]; then
    kill -0 "$RELAY_PID" 2>/dev/null || die "$relay exited during the run (see $WORK_DIR/$relay.log)"
  fi
  local k
  for k in packets_sent packets_received loss latency_p50_us latency_p99_us latency_max_us app_latency_p50_us \
    app_latency_p99_us relay_cpu_s cpu_s_per_million_packets bench_cpu_s setup_s misrouted late_or_duplicate \
    send_errors delete_failures bench_socket_drops cpu_window_s; do
    RESULT[${relay}_$k]=$(value_of "$out" "$k")
  done
  # The kernel fast path's run time belongs to the relay (see the header).
  RESULT[${relay}_bpf_s]=$(awk -v a="$bpf_before" -v b="$bpf_after" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  RESULT[${relay}_user_cpu_s]=${RESULT[${relay}_relay_cpu_s]}
  RESULT[${relay}_relay_cpu_s]=$(awk -v u="${RESULT[${relay}_relay_cpu_s]}" -v k="${RESULT[${relay}_bpf_s]}" \
    'BEGIN { if (u == "nan") print "nan"; else printf "%.3f", u + k }')
  RESULT[${relay}_cpu_s_per_million_packets]=$(awk -v c="${RESULT[${relay}_relay_cpu_s]}" \
    -v p="${RESULT[${relay}_packets_received]}" 'BEGIN { if (c == "nan" || p + 0 == 0) print "nan"; else printf "%.3f", c / p * 1e6 }')
  printf '%-9s %s/%s packets delivered (loss %s), added latency p50 %s us p99 %s us max %s us (bench loop: p50 %s p99 %s) | relay CPU %s s = %s s per million packets | CPU window %s s, bench CPU %s s, lost at the bench'"'"'s sockets %s, ng setup %s s, misrouted %s, late/dup %s, send errors %s, delete failures %s\n' \
    "$relay" "${RESULT[${relay}_packets_received]}" "${RESULT[${relay}_packets_sent]}" "${RESULT[${relay}_loss]}" \
    "${RESULT[${relay}_latency_p50_us]}" "${RESULT[${relay}_latency_p99_us]}" "${RESULT[${relay}_latency_max_us]}" \
    "${RESULT[${relay}_app_latency_p50_us]}" "${RESULT[${relay}_app_latency_p99_us]}" \
    "${RESULT[${relay}_relay_cpu_s]}" "${RESULT[${relay}_cpu_s_per_million_packets]}" "${RESULT[${relay}_cpu_window_s]}" \
    "${RESULT[${relay}_bench_cpu_s]}" "${RESULT[${relay}_bench_socket_drops]}" \
    "${RESULT[${relay}_setup_s]}" "${RESULT[${relay}_misrouted]}" "${RESULT[${relay}_late_or_duplicate]}" \
    "${RESULT[${relay}_send_errors]}" "${RESULT[${relay}_delete_failures]}"
  [[ $relay == floor ]] ||
    echo "          relay CPU = process ${RESULT[${relay}_user_cpu_s]} s + kernel fast path ${RESULT[${relay}_bpf_s]} s"
  print_perf_top "$WORK_DIR/$relay-perf.data" "$WORK_DIR/$relay-perf-top.txt" "  perf $relay: " 20
}

# ---------------------------------------------------------------- main

echo "media benchmark: $CALLS calls x 2 directions x $PPS packets/s for $DURATION s, relay threads $WORKERS, bench threads $BENCH_WORKERS, pinned $PIN, bench busy-poll $BUSY_POLL, nice $NICE, relay SCHED_FIFO ${RT_PRIO:-off}, 127.0.0.1"
echo "work dir: $WORK_DIR ($NCPU CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
set_autogroup_nice "$NICE"
# The eBPF program's run time is only counted while this is on; put back as found.
BPF_STATS_WAS=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)
if ((FAST_PATH)) && [[ $ONLY != rtpengine ]] && ((!SMOKE)); then
  echo 1 >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null || die "cannot enable kernel.bpf_stats_enabled (root needed)"
  trap 'echo "$BPF_STATS_WAS" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null; cleanup' EXIT
fi

RELAYS=()
[[ $ONLY == both || $ONLY == pinhole ]] && RELAYS+=(pinhole)
[[ $ONLY == both || $ONLY == rtpengine ]] && RELAYS+=(rtpengine)
((FLOOR)) && run_bench floor
for r in "${RELAYS[@]}"; do
  "start_$r"
  run_bench "$r"
  stop_relay
done

status=0
for r in "${RELAYS[@]}"; do
  echo "${r}_cpu_s_per_million_packets ${RESULT[${r}_cpu_s_per_million_packets]}"
  echo "${r}_loss ${RESULT[${r}_loss]}"
  echo "${r}_latency_p50_us ${RESULT[${r}_latency_p50_us]}"
  echo "${r}_latency_p99_us ${RESULT[${r}_latency_p99_us]}"
  echo "${r}_lost_at_bench_sockets ${RESULT[${r}_bench_socket_drops]}"
  echo "${r}_bench_cpu_s ${RESULT[${r}_bench_cpu_s]}"
  if [[ ${RESULT[${r}_packets_received]} != "${RESULT[${r}_packets_sent]}" || ${RESULT[${r}_packets_sent]} == 0 ||
    ${RESULT[${r}_misrouted]} != 0 || ${RESULT[${r}_delete_failures]} != 0 ]]; then
    status=1
  fi
done
if ((FLOOR)); then
  echo "floor_latency_p50_us ${RESULT[floor_latency_p50_us]}"
  echo "floor_latency_p99_us ${RESULT[floor_latency_p99_us]}"
  echo "floor_bench_cpu_s ${RESULT[floor_bench_cpu_s]}"
fi
if [[ $ONLY == both ]]; then
  echo "cpu_per_packet_ratio_vs_rtpengine $(ratio "${RESULT[pinhole_cpu_s_per_million_packets]}" "${RESULT[rtpengine_cpu_s_per_million_packets]}")"
fi
# the smoke test's work directory is only worth keeping when it failed
((SMOKE && status == 0)) && rm -rf "$WORK_DIR"
exit "$status"
