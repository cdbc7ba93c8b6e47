#!/usr/bin/env bash
# Signaling benchmark (DESIGN.md §6): CPU seconds per 10,000 REGISTERs and per 10,000 calls,
# pinhole (edge mode, NAT fixes on) against Kamailio 5.6 with an equivalent nathelper config
# (bench/kamailio/edge.cfg), both driven by the same SIPp scenarios on loopback, one proxy after
# the other. Results and the exact commands are recorded in docs/benchmarks.md.
#
#   SIPp UAC 127.0.0.1:5070 --UDP--> proxy 127.0.0.1:5060 --UDP--> SIPp UAS 127.0.0.1:5090
#   ("NATed" UA: private Via/Contact)      pinhole or Kamailio         ("upstream core")
#
# Phases, for each proxy in turn (the proxy runs through both, the UAS is restarted between
# them on the same port because a SIPp UAS scenario takes one kind of first request):
#   register  REGISTERS REGISTERs at REG_RATE/s (bench/sipp/uac_register.xml, uas_register.xml):
#             no rport in Via, so the proxy must force it; the UAS fails a REGISTER without Path.
#   call      CALLS calls at RATE/s: INVITE 100 180 200 ACK (HOLD_MS) BYE 200
#             (bench/sipp/uac_call.xml, uas_call.xml); ACK and BYE follow the Record-Route
#             back through the proxy; the UAS fails an INVITE without Record-Route. HOLD_MS
#             keeps ACK and BYE apart: Kamailio's workers share one socket, and one that is
#             descheduled between reading the ACK and sending it on lets the BYE overtake it
#             (seen with 50 ms on a loaded machine); the callee scenario then fails the call.
# CPU = utime+stime (+ cutime/cstime of reaped children) of the proxy's whole process tree,
# read from /proc before the phase and SETTLE_S seconds after its last call ended, so state the
# proxy frees on timers after the load is paid for too: pinhole keeps UDP server transactions
# for Timer J / Timer L (64*T1 = 32 s, RFC 3261 / RFC 6026), Kamailio's tm frees them after its
# 5 s wait timer; both are idle meanwhile (Kamailio idle: ~0.001 CPU s per s), and the phase
# line shows how much of the CPU came after the load ("after"). The SIPp processes' CPU
# is printed as well (on a 2-core box they compete with the proxy).
#
# Usage:
#   bench/signaling.sh                    # both proxies (needs build/release/src/app/pinhole)
#   bench/signaling.sh --only kamailio    # Kamailio alone (no ratio lines)
#   bench/signaling.sh --auth-registrar [ARGS]  # = bench/registrar.sh ARGS (make bench-registrar)
#   bench/signaling.sh --only pinhole
#   bench/signaling.sh --only relay       # the kernel floor alone: bench_udp_relay (bench/floor/)
#   bench/signaling.sh --with-relay       # pinhole, Kamailio and the floor, with the floor's ratio
#   CALLS=20000 RATE=2000 REGISTERS=20000 bench/signaling.sh
#
# Environment (defaults in brackets):
#   CALLS [20000] RATE [2000] REGISTERS [20000] REG_RATE [=RATE] HOLD_MS [200] SETTLE_S [35]
#   WORKERS [2]  (pinhole `workers`, Kamailio `children`)
#   NICE [0]     priority for the run (root only when negative): the nice value of the proxy
#                and SIPp processes and of this session's scheduler autogroup
#                (/proc/PID/autogroup, restored on exit). With sched_autogroup on, each session
#                gets an equal CPU share whatever its processes' nice values, so on a machine
#                shared with other sessions' builds the benchmark gets 1/N of the CPUs and
#                collapses (retransmissions, dropped datagrams, failed calls) at rates it would
#                sustain alone; NICE=-10 gives it most of the machine for the run
#   PROXY_PORT [5060] UAC_PORT [5070] UAS_PORT [5090]
#   PINHOLE_BIN [build/release/src/app/pinhole] KAMAILIO_BIN [kamailio] SIPP_BIN [sipp]
#   RELAY_BIN [build/release/bench/bench_udp_relay]  (--only relay / --with-relay)
#   PERF_EVENTS []  when set, `perf stat -e PERF_EVENTS` on the proxy's processes while the UAC
#                runs (e.g. task-clock,context-switches,raw_syscalls:sys_enter), summary printed
#                after the phase line and kept in WORK_DIR/<proxy>-<phase>-perf.txt
#   PERF_SPLIT [0]  1: `perf record` (1 kHz) on the proxy's processes while the UAC runs; the
#                share of samples in user space splits each phase's CPU into the proxy's own
#                code and the kernel's work for it, printed as "(user ...)" and
#                <proxy>_user_cpu_s_per_10k_*; the share is the in-load one, applied to the whole
#                phase (after the load, retiring state is nearly all user space)
#   WORK_DIR [fresh /tmp/pinhole-bench-signaling.XXXXXX, kept: logs, SIPp stats, configs]
#
# Output: one line per phase, then `key value` lines; the last two (four with PERF_SPLIT=1) are
#   user_cpu_per_register_ratio_vs_kamailio <pinhole/kamailio, user-space CPU only>  (PERF_SPLIT=1)
#   user_cpu_per_call_ratio_vs_kamailio <pinhole/kamailio, user-space CPU only>      (PERF_SPLIT=1)
#   cpu_per_register_ratio_vs_kamailio <pinhole/kamailio>
#   cpu_per_call_ratio_vs_kamailio <pinhole/kamailio>
# (with --only, the ratio lines are left out; --with-relay adds before them
#   floor_cpu_per_register_ratio_vs_kamailio, floor_cpu_per_call_ratio_vs_kamailio  <floor/kamailio>
#   above_floor_cpu_per_register_ratio_vs_kamailio, above_floor_cpu_per_call_ratio_vs_kamailio
#     <(pinhole - floor) / (kamailio - floor): what each proxy spends above the kernel's
#      datagram cost>). Exit status: 0 all REGISTERs and calls
# succeeded; 1 some failed (the numbers are still printed); 2 the benchmark could not run
# (binary missing, port busy, a process did not start or hit its time limit).
#
# Every process runs under `timeout`; everything started is stopped on exit (trap). Only
# 127.0.0.1 is used.
# shellcheck disable=SC2317  # functions reached through the trap and "start_$proxy"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

CALLS=${CALLS:-20000}
RATE=${RATE:-2000}
REGISTERS=${REGISTERS:-20000}
REG_RATE=${REG_RATE:-$RATE}
HOLD_MS=${HOLD_MS:-200}
SETTLE_S=${SETTLE_S:-35}
WORKERS=${WORKERS:-2}
PROXY_PORT=${PROXY_PORT:-5060}
UAC_PORT=${UAC_PORT:-5070}
UAS_PORT=${UAS_PORT:-5090}
PINHOLE_BIN=${PINHOLE_BIN:-$ROOT/build/release/src/app/pinhole}
RELAY_BIN=${RELAY_BIN:-$ROOT/build/release/bench/bench_udp_relay}
KAMAILIO_BIN=${KAMAILIO_BIN:-kamailio}
SIPP_BIN=${SIPP_BIN:-sipp}
NICE=${NICE:-0}
PERF_EVENTS=${PERF_EVENTS:-}
PERF_SPLIT=${PERF_SPLIT:-0}

ONLY=both
WITH_RELAY=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --only)
      [[ $# -ge 2 ]] || { echo "signaling.sh: --only needs kamailio or pinhole" >&2; exit 2; }
      ONLY=$2
      shift 2
      ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --with-relay) WITH_RELAY=1; shift ;;
    # The registrar scenario (digest-authenticated REGISTERs of 100k users, pinhole's registrar
    # mode vs Kamailio registrar+auth_db) has its own peers and provisioning: bench/registrar.sh.
    --auth-registrar) shift; exec bash "$(dirname "${BASH_SOURCE[0]}")/registrar.sh" "$@" ;;
    -h | --help) sed -n '2,/^# shellcheck/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "signaling.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case $ONLY in both | kamailio | pinhole | relay) ;; *) echo "signaling.sh: --only kamailio|pinhole|relay" >&2; exit 2 ;; esac

[[ $PERF_SPLIT == 0 || $PERF_SPLIT == 1 ]] || { echo "signaling.sh: PERF_SPLIT must be 0 or 1" >&2; exit 2; }
if [[ $PERF_SPLIT == 1 ]] && ! command -v perf >/dev/null; then
  echo "signaling.sh: PERF_SPLIT=1 needs perf (apt-get install linux-perf)" >&2
  exit 2
fi
[[ $NICE =~ ^-?[0-9]+$ ]] || { echo "signaling.sh: NICE must be an integer (got '$NICE')" >&2; exit 2; }
for v in CALLS RATE REGISTERS REG_RATE HOLD_MS SETTLE_S WORKERS PROXY_PORT UAC_PORT UAS_PORT; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "signaling.sh: $v must be a positive integer (got '${!v}')" >&2; exit 2; }
done
# the UAS's stats file is rewritten every second: the settle pause must outlast one rewrite
((SETTLE_S >= 2)) || SETTLE_S=2

# die, process bookkeeping and clean-up, port checks, CPU/drop/SIPp counters, ratio
BENCH_NAME=signaling.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

command -v "$SIPP_BIN" >/dev/null || die "sipp not found (apt-get install sip-tester)"
if [[ $ONLY == both || $ONLY == kamailio ]]; then
  command -v "$KAMAILIO_BIN" >/dev/null || die "kamailio not found (apt-get install kamailio)"
fi
if [[ $ONLY == relay || $WITH_RELAY == 1 ]]; then
  [[ -x $RELAY_BIN ]] || die "bench_udp_relay not found at $RELAY_BIN (build it: cmake --build --preset release --target bench_udp_relay)"
fi
if [[ $ONLY == both || $ONLY == pinhole ]]; then
  [[ -x $PINHOLE_BIN ]] || die "pinhole binary not found at $PINHOLE_BIN (build it: cmake --build --preset release; or run with --only kamailio)"
fi

setup_work_dir signaling

# ---------------------------------------------------------------- proxies

PROXY_PID=
MAX_RUN_S=$((120 + 4 * (REGISTERS / REG_RATE + CALLS / RATE) + 4 * SETTLE_S))

start_kamailio() {
  "$KAMAILIO_BIN" -c -f "$ROOT/bench/kamailio/edge.cfg" -A "PROXY_LISTEN=udp:127.0.0.1:$PROXY_PORT" \
    -A "UPSTREAM_URI=\"sip:127.0.0.1:$UAS_PORT\"" -A "CHILDREN=$WORKERS" >"$WORK_DIR/kamailio-check.log" 2>&1 ||
    die "bench/kamailio/edge.cfg does not load (see $WORK_DIR/kamailio-check.log)"
  # -DD: stay in the foreground with the children below us (the CPU count walks that tree);
  # -E: log to stderr (the file below) instead of syslog
  nice -n "$NICE" timeout -k 5 "$MAX_RUN_S" "$KAMAILIO_BIN" -DD -E -f "$ROOT/bench/kamailio/edge.cfg" \
    -A "PROXY_LISTEN=udp:127.0.0.1:$PROXY_PORT" -A "UPSTREAM_URI=\"sip:127.0.0.1:$UAS_PORT\"" \
    -A "CHILDREN=$WORKERS" -m 512 -M 16 -w "$WORK_DIR" >"$WORK_DIR/kamailio.log" 2>&1 &
  PROXY_PID=$!
  STARTED+=("$PROXY_PID")
  wait_udp_port "$PROXY_PORT" "$PROXY_PID" kamailio
}

start_pinhole() {
  cat >"$WORK_DIR/pinhole.yaml" <<EOF
# generated by bench/signaling.sh: pinhole's edge mode as Kamailio's bench/kamailio/edge.cfg
workers: $WORKERS
listen:
  - { transport: udp, address: 127.0.0.1, port: $PROXY_PORT }
upstream: { uri: "sip:127.0.0.1:$UAS_PORT;transport=udp" }
nat: { force_rport: always }
flow_tokens: { secret: "hex:000102030405060708090a0b0c0d0e0f" }
admin: { enabled: false }
log: { level: warn }
EOF
  nice -n "$NICE" timeout -k 5 "$MAX_RUN_S" "$PINHOLE_BIN" --config "$WORK_DIR/pinhole.yaml" >"$WORK_DIR/pinhole.log" 2>&1 &
  PROXY_PID=$!
  STARTED+=("$PROXY_PID")
  wait_udp_port "$PROXY_PORT" "$PROXY_PID" pinhole
}

# The floor (bench/floor/udp_relay.cc): same port, same thread count, same datagrams.
start_relay() {
  nice -n "$NICE" timeout -k 5 "$MAX_RUN_S" "$RELAY_BIN" --listen "127.0.0.1:$PROXY_PORT" \
    --upstream "127.0.0.1:$UAS_PORT" --threads "$WORKERS" >"$WORK_DIR/relay.log" 2>&1 &
  PROXY_PID=$!
  STARTED+=("$PROXY_PID")
  wait_udp_port "$PROXY_PORT" "$PROXY_PID" bench_udp_relay
}

stop_proxy() {
  local pid=$PROXY_PID i
  stop_group "$pid"
  forget "$pid"
  # the next proxy binds the same port
  for ((i = 0; i < 50; i++)); do
    udp_port_busy "$PROXY_PORT" || return 0
    sleep 0.1
  done
  die "port $PROXY_PORT still bound after stopping the proxy"
}

# ---------------------------------------------------------------- one phase

declare -A RESULT  # RESULT[<proxy>_<key>] = value

# run_phase <proxy> <register|call> <count> <rate>
run_phase() {
  local proxy=$1 kind=$2 count=$3 rate=$4
  local tag="$proxy-$kind" uas_pid uac_rc=0
  # bounded: the calls take count/rate seconds; allow 3x that plus SIPp's own timeouts
  local uac_limit=$((30 + 3 * count / rate))

  udp_port_busy "$UAS_PORT" && die "port $UAS_PORT (UAS) is busy"
  nice -n "$NICE" timeout -k 5 "$((uac_limit + SETTLE_S + 60))" "$SIPP_BIN" -nostdin -i 127.0.0.1 -p "$UAS_PORT" -t u1 \
    -sf "$ROOT/bench/sipp/uas_$kind.xml" -buff_size 4194304 \
    -trace_stat -stf "$WORK_DIR/$tag-uas.csv" -fd 1 \
    -trace_err -error_file "$WORK_DIR/$tag-uas-errors.log" \
    -trace_screen -screen_file "$WORK_DIR/$tag-uas-screen.log" >"$WORK_DIR/$tag-uas.out" 2>&1 &
  uas_pid=$!
  STARTED+=("$uas_pid")
  wait_udp_port "$UAS_PORT" "$uas_pid" "SIPp UAS ($kind)"
  udp_port_busy "$UAC_PORT" && die "port $UAC_PORT (UAC) is busy"

  local drops0 cpu0 uas0 t0 t1 drops1 cpu1 uas1 cpu_end pdrops0 pdrops1 udrops
  drops0=$(udp_rcvbuf_errors)
  pdrops0=$(udp_port_drops "$PROXY_PORT")
  cpu0=$(tree_ticks "$PROXY_PID")
  uas0=$(tree_ticks "$uas_pid")
  t0=$(date +%s.%N)
  # The UAC runs in a subshell so that `times` reports its CPU (timeout waits for SIPp, so
  # SIPp's usage is in the subshell's children total), in the background so that a signal to
  # this script is handled at once (bash runs traps only between foreground commands).
  # -recv_timeout fails a call whose answer never comes instead of waiting for ever; -timeout
  # bounds the whole run.
  local uac_sub
  (
    rc=0
    nice -n "$NICE" timeout -k 5 "$((uac_limit + 15))" "$SIPP_BIN" "127.0.0.1:$PROXY_PORT" -nostdin -i 127.0.0.1 \
      -p "$UAC_PORT" -t u1 -sf "$ROOT/bench/sipp/uac_$kind.xml" -m "$count" -r "$rate" -rp 1000 \
      -d "$HOLD_MS" -recv_timeout 10000 -timeout "${uac_limit}s" -timeout_error -buff_size 4194304 \
      -trace_stat -stf "$WORK_DIR/$tag-uac.csv" -fd 1 \
      -trace_err -error_file "$WORK_DIR/$tag-uac-errors.log" \
      -trace_screen -screen_file "$WORK_DIR/$tag-uac-screen.log" >"$WORK_DIR/$tag-uac.out" 2>&1 || rc=$?
    times >"$WORK_DIR/$tag-uac.times"
    exit "$rc"
  ) &
  uac_sub=$!
  local perf_pid='' split_pid='' pids job
  pids=$(descendants "$PROXY_PID" | tr '\n' ',')
  pids="$PROXY_PID,${pids%,}"
  if [[ -n $PERF_EVENTS ]]; then
    # counts for the proxy's processes and threads while the UAC runs (not the settle pause)
    perf stat -e "$PERF_EVENTS" -p "$pids" -o "$WORK_DIR/$tag-perf.txt" &
    perf_pid=$!
  fi
  if [[ $PERF_SPLIT == 1 ]]; then
    perf record -F 999 -p "$pids" -o "$WORK_DIR/$tag-split.data" >"$WORK_DIR/$tag-split.log" 2>&1 &
    split_pid=$!
  fi
  wait "$uac_sub" || uac_rc=$?
  for job in $perf_pid $split_pid; do
    kill -INT "$job" 2>/dev/null || true
    wait "$job" 2>/dev/null || true
  done
  t1=$(date +%s.%N)
  # SIPp: 0 all calls succeeded, 1 some failed; anything else (timeout's 124/137, SIPp's
  # fatal errors) means the run itself broke
  if ((uac_rc != 0 && uac_rc != 1)); then
    die "$proxy $kind: SIPp UAC exited with status $uac_rc (see $WORK_DIR/$tag-uac.out)"
  fi
  cpu_end=$(tree_ticks "$PROXY_PID")
  uas1=$(tree_ticks "$uas_pid")  # SIPp's idle loop costs CPU too: count the UAS until the end of the load
  # let the proxy's timers free what the load left (transactions linger after the last reply)
  sleep "$SETTLE_S"
  cpu1=$(tree_ticks "$PROXY_PID")
  drops1=$(udp_rcvbuf_errors)
  pdrops1=$(udp_port_drops "$PROXY_PORT")
  udrops=$(udp_port_drops "$UAS_PORT")
  kill -0 "$PROXY_PID" 2>/dev/null || die "$proxy exited during the $kind phase (see $WORK_DIR/$proxy.log)"
  stop_group "$uas_pid"
  forget "$uas_pid"

  local ok failed retrans uas_failed rate_got cpu_s per10k user_per10k uac_cpu uas_cpu wall
  local uac_csv="$WORK_DIR/$tag-uac.csv" uas_csv="$WORK_DIR/$tag-uas.csv"
  ok=$(sipp_stat "$uac_csv" 'SuccessfulCall(C)')
  failed=$((count - ok))  # failed or never completed
  retrans=$(sipp_stat "$uac_csv" 'Retransmissions(C)')
  # the callee's failures plus its calls still open (e.g. a 200 never ACKed: SIPp's UAS has no
  # receive timeout, it retransmits the 200 and waits)
  uas_failed=$(($(sipp_stat "$uas_csv" 'FailedCall(C)') + $(sipp_stat "$uas_csv" 'CurrentCall')))
  rate_got=$(sipp_stat "$uac_csv" 'CallRate(C)')
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  cpu_s=$(ticks_to_s $((cpu1 - cpu0)))
  per10k=$(per_10k $((cpu1 - cpu0)) "$ok")
  user_per10k=''
  if [[ -n $split_pid ]]; then
    user_per10k=$(awk -v c="$per10k" -v s="$(perf_user_share "$WORK_DIR/$tag-split.data")" \
      'BEGIN { if (s == "nan" || c == "nan") print "nan"; else printf "%.3f", c * s }')
  fi
  # `times` prints the shell's own times, then its children's: "0m1.230s 0m0.450s"
  uac_cpu=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$WORK_DIR/$tag-uac.times")
  uas_cpu=$(ticks_to_s $((uas1 - uas0)))

  local what=REGISTERs
  [[ $kind == call ]] && what=calls
  printf '%-8s %-8s %d/%d %s ok, %d failed (UAS: %s failed or open), %s retransmissions, %.1f/s achieved, %.1f s wall | proxy CPU %s s (after: %s) = %s s per 10k%s | SIPp CPU: UAC %s s, UAS %s s | UDP drops: proxy %d, UAS %d, UAC+other %d\n' \
    "$proxy" "$kind" "$ok" "$count" "$what" "$failed" "${uas_failed:-?}" "${retrans:-?}" "${rate_got:-0}" "$wall" \
    "$cpu_s" "$(ticks_to_s $((cpu1 - cpu_end)))" "$per10k" "${user_per10k:+ (user $user_per10k)}" "$uac_cpu" "$uas_cpu" \
    $((pdrops1 - pdrops0)) "$udrops" $((drops1 - drops0 - (pdrops1 - pdrops0) - udrops))

  RESULT[${proxy}_${kind}_per10k]=$per10k
  RESULT[${proxy}_${kind}_user_per10k]=$user_per10k
  RESULT[${proxy}_${kind}_failed]=$failed
  RESULT[${proxy}_${kind}_uas_failed]=$uas_failed
  RESULT[${proxy}_${kind}_rate]=$rate_got
  RESULT[${proxy}_${kind}_retrans]=${retrans:-0}
  RESULT[${proxy}_${kind}_drops]=$((drops1 - drops0))
  RESULT[${proxy}_${kind}_sipp_cpu]=$(awk -v a="$uac_cpu" -v b="$uas_cpu" 'BEGIN { printf "%.2f", a + b }')
  if [[ -s $WORK_DIR/$tag-perf.txt ]]; then
    # "  1,234.56 msec task-clock  #..." / "  12,345  context-switches  #...": per unit
    awk -v n="$ok" -v what="${what%s}" '$1 ~ /^[0-9][0-9,.]*$/ && NF >= 2 {
        v = $1; gsub(",", "", v); ev = ($2 == "msec") ? $3 " (ms)" : $2
        if (n > 0) printf "  perf: %-32s %14s = %10.3f per %s\n", ev, $1, v / n, what }' "$WORK_DIR/$tag-perf.txt"
  fi
}

run_proxy() {
  local proxy=$1
  udp_port_busy "$PROXY_PORT" && die "port $PROXY_PORT is busy (another proxy or test running?)"
  "start_$proxy"
  run_phase "$proxy" register "$REGISTERS" "$REG_RATE"
  run_phase "$proxy" call "$CALLS" "$RATE"
  stop_proxy
}

# ---------------------------------------------------------------- main

echo "signaling benchmark: $REGISTERS REGISTERs at $REG_RATE/s, $CALLS calls at $RATE/s (hold ${HOLD_MS} ms), $WORKERS workers, settle ${SETTLE_S} s, UDP on 127.0.0.1"
echo "work dir: $WORK_DIR ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"

set_autogroup_nice "$NICE"

PROXIES=()
[[ $ONLY == both || $ONLY == pinhole ]] && PROXIES+=(pinhole)
[[ $ONLY == both || $ONLY == kamailio ]] && PROXIES+=(kamailio)
[[ $ONLY == relay || $WITH_RELAY == 1 ]] && PROXIES+=(relay)
for p in "${PROXIES[@]}"; do run_proxy "$p"; done

status=0
for p in "${PROXIES[@]}"; do
  echo "${p}_cpu_s_per_10k_registers ${RESULT[${p}_register_per10k]}"
  echo "${p}_cpu_s_per_10k_calls ${RESULT[${p}_call_per10k]}"
  if [[ $PERF_SPLIT == 1 ]]; then
    echo "${p}_user_cpu_s_per_10k_registers ${RESULT[${p}_register_user_per10k]}"
    echo "${p}_user_cpu_s_per_10k_calls ${RESULT[${p}_call_user_per10k]}"
  fi
  echo "${p}_failed_registers ${RESULT[${p}_register_failed]}"
  echo "${p}_failed_calls ${RESULT[${p}_call_failed]}"
  echo "${p}_registrar_failed_registers ${RESULT[${p}_register_uas_failed]}"
  echo "${p}_callee_failed_calls ${RESULT[${p}_call_uas_failed]}"
  echo "${p}_register_rate ${RESULT[${p}_register_rate]}"
  echo "${p}_call_rate ${RESULT[${p}_call_rate]}"
  echo "${p}_sipp_cpu_s_registers ${RESULT[${p}_register_sipp_cpu]}"
  echo "${p}_sipp_cpu_s_calls ${RESULT[${p}_call_sipp_cpu]}"
  if ((RESULT[${p}_register_failed] + RESULT[${p}_call_failed] + RESULT[${p}_register_uas_failed] + RESULT[${p}_call_uas_failed] > 0)); then
    status=1
  fi
done
if [[ $ONLY == both && $WITH_RELAY == 1 ]]; then
  echo "floor_cpu_per_register_ratio_vs_kamailio $(ratio "${RESULT[relay_register_per10k]}" "${RESULT[kamailio_register_per10k]}")"
  echo "floor_cpu_per_call_ratio_vs_kamailio $(ratio "${RESULT[relay_call_per10k]}" "${RESULT[kamailio_call_per10k]}")"
  for k in register call; do
    echo "above_floor_cpu_per_${k}_ratio_vs_kamailio $(above_floor_ratio "${RESULT[pinhole_${k}_per10k]}" "${RESULT[kamailio_${k}_per10k]}" "${RESULT[relay_${k}_per10k]}")"
  done
fi
if [[ $ONLY == both ]]; then
  if [[ $PERF_SPLIT == 1 ]]; then
    for k in register call; do
      echo "user_cpu_per_${k}_ratio_vs_kamailio $(ratio "${RESULT[pinhole_${k}_user_per10k]}" "${RESULT[kamailio_${k}_user_per10k]}")"
    done
  fi
  echo "cpu_per_register_ratio_vs_kamailio $(ratio "${RESULT[pinhole_register_per10k]}" "${RESULT[kamailio_register_per10k]}")"
  echo "cpu_per_call_ratio_vs_kamailio $(ratio "${RESULT[pinhole_call_per10k]}" "${RESULT[kamailio_call_per10k]}")"
fi
exit "$status"
