#!/usr/bin/env bash
# Registrar benchmark (issue 4, "Benchmark"): CPU seconds per 10,000 authenticated REGISTERs
# and resident memory per 100,000 bindings, pinhole in registrar mode against Kamailio 5.6
# (registrar + usrloc in memory + auth_db over db_sqlite, bench/kamailio/registrar.cfg), both
# driven by the same SIPp scenario on loopback, one registrar after the other. Results and the
# exact commands are in docs/benchmarks.md.
#
#   SIPp UAC 127.0.0.1:26070 --UDP--> registrar 127.0.0.1:26060 (pinhole or Kamailio)
#   ("NATed" UA: private Via/Contact, no rport)
#
# Each SIPp "call" is one user (bench/sipp/uac_register_auth.xml): REGISTER -> 401 ->
# REGISTER with MD5 digest credentials -> 200, users u000001... taken in order from an injection
# file, USERS of them at REG_RATE calls/s, so every call creates a new binding (Expires 3600).
# Both registrars know the USERS users before the load (not measured, bench/provision_users.py):
# pinhole from its own SQLite store (PINHOLE_PROVISION below), Kamailio from a generated SQLite
# subscriber table.
# pinhole runs with `auth: {algorithms: [MD5]}` (SIPp 3.6 computes MD5 only; Kamailio challenges
# with MD5 too), `registrar: {nat_udp_lease: 0s}` (Kamailio has no short lease: both grant the
# 3600 s asked for, so no binding expires during the run) and `store:` SQLite in WORK_DIR.
#
# CPU: as bench/signaling.sh (lib.sh's tree_ticks): utime+stime of the registrar's process tree
# from just before the load to SETTLE_S seconds after it, divided by the successful calls
# (authenticated REGISTERs). Memory, after the load and the settle pause, minus the same before
# the load (the users already loaded):
#   pinhole   VmRSS of the process (/proc/PID/status), per 100,000 bindings
#   Kamailio  shared memory in use (`kamcmd core.shmmem` real_used: usrloc keeps bindings there),
#             per 100,000 bindings; and PSS summed over its processes (smaps_rollup), which
#             counts the shared segment once and adds each process's private memory
#
# Usage:
#   bench/registrar.sh                    # both (needs build/release/src/app/pinhole)
#   bench/registrar.sh --only pinhole     # one of them (no ratio line)
#   bench/registrar.sh --only kamailio
#   USERS=100000 REG_RATE=2000 NICE=-10 bench/registrar.sh
#
# Environment (defaults in brackets):
#   USERS [100000] REG_RATE [2000] (calls = REGISTER pairs per second) SETTLE_S [35]
#   WORKERS [2] (pinhole `workers`, Kamailio `children`) NICE [0] (see bench/signaling.sh)
#   PROXY_PORT [26060] UAC_PORT [26070] ADMIN_PORT [26061] (pinhole's admin API, TCP)
#   PINHOLE_BIN [build/release/src/app/pinhole] KAMAILIO_BIN [kamailio] KAMCMD_BIN [kamcmd]
#   SIPP_BIN [sipp]
#   PERF_EVENTS []  `perf stat -e PERF_EVENTS` on the registrar while the UAC runs
#   PINHOLE_PROVISION [db]  how pinhole gets its users: `db` writes them into the users table of
#                   its SQLite store while it is stopped (it loads them at start); `api` POSTs
#                   them to the admin API (slow: each POST is a synchronous store write, see
#                   docs/benchmarks.md)
#   PERF_RECORD []  1: `perf record -g` on pinhole while the UAC runs; the top symbols of
#                   `perf report` are printed and WORK_DIR/pinhole-perf.data kept
#   WORK_DIR [fresh /tmp/pinhole-bench-registrar.XXXXXX, kept: logs, SIPp stats, configs, DBs]
#
# Output: one line per registrar, then `key value` lines; the last one is
#   cpu_per_register_ratio_vs_kamailio <pinhole/kamailio>
# Exit status: 0 every authenticated REGISTER succeeded; 1 some failed (numbers still printed);
# 2 the benchmark could not run (binary missing, port busy, a process did not start, provisioning
# failed, a time limit hit). Every process runs under `timeout`; everything started is stopped
# on exit. Only 127.0.0.1 is used.
# shellcheck disable=SC2317  # functions reached through the trap and "start_$proxy"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=registrar.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

USERS=${USERS:-100000}
REG_RATE=${REG_RATE:-2000}
SETTLE_S=${SETTLE_S:-35}
WORKERS=${WORKERS:-2}
PROXY_PORT=${PROXY_PORT:-26060}
UAC_PORT=${UAC_PORT:-26070}
ADMIN_PORT=${ADMIN_PORT:-26061}
PINHOLE_BIN=${PINHOLE_BIN:-$ROOT/build/release/src/app/pinhole}
KAMAILIO_BIN=${KAMAILIO_BIN:-kamailio}
KAMCMD_BIN=${KAMCMD_BIN:-kamcmd}
SIPP_BIN=${SIPP_BIN:-sipp}
NICE=${NICE:-0}
PERF_EVENTS=${PERF_EVENTS:-}
PERF_RECORD=${PERF_RECORD:-}
PINHOLE_PROVISION=${PINHOLE_PROVISION:-db}
REALM=bench.test

ONLY=both
while [[ $# -gt 0 ]]; do
  case $1 in
    --only)
      [[ $# -ge 2 ]] || die "--only needs kamailio or pinhole"
      ONLY=$2
      shift 2
      ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    -h | --help) sed -n '2,/^# shellcheck/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
case $ONLY in both | kamailio | pinhole) ;; *) die "--only kamailio|pinhole" ;; esac
case $PINHOLE_PROVISION in db | api) ;; *) die "PINHOLE_PROVISION must be db or api" ;; esac
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE must be an integer (got '$NICE')"
for v in USERS REG_RATE SETTLE_S WORKERS PROXY_PORT UAC_PORT ADMIN_PORT; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer (got '${!v}')"
done

command -v "$SIPP_BIN" >/dev/null || die "sipp not found (apt-get install sip-tester)"
command -v python3 >/dev/null || die "python3 not found"
if [[ $ONLY != pinhole ]]; then
  command -v "$KAMAILIO_BIN" >/dev/null || die "kamailio not found (apt-get install kamailio)"
  [[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ]] ||
    [[ -n $(find /usr/lib -name db_sqlite.so -path '*kamailio*' -print -quit 2>/dev/null) ]] ||
    die "Kamailio's db_sqlite module not found (apt-get install kamailio-sqlite-modules)"
fi
if [[ $ONLY != kamailio ]]; then
  [[ -x $PINHOLE_BIN ]] || die "pinhole binary not found at $PINHOLE_BIN (build it: cmake --build --preset release --target pinhole)"
fi

setup_work_dir registrar

tcp_port_busy() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

# ---------------------------------------------------------------- registrars

PROXY_PID=
# bounded: provisioning (a few thousand POSTs/s), the load (USERS/REG_RATE s, 3x allowed) and
# the settle pause
UAC_LIMIT=$((30 + 3 * USERS / REG_RATE))
MAX_RUN_S=$((300 + USERS / 200 + UAC_LIMIT + 2 * SETTLE_S))

start_pinhole_process() {
  nice -n "$NICE" timeout -k 5 "$MAX_RUN_S" "$PINHOLE_BIN" --config "$WORK_DIR/pinhole.yaml" >>"$WORK_DIR/pinhole.log" 2>&1 &
  PROXY_PID=$!
  STARTED+=("$PROXY_PID")
  wait_udp_port "$PROXY_PORT" "$PROXY_PID" pinhole
  local i
  for ((i = 0; i < 100; i++)); do
    tcp_port_busy "$ADMIN_PORT" && return 0
    sleep 0.1
  done
  die "pinhole's admin API did not listen on 127.0.0.1:$ADMIN_PORT (see $WORK_DIR/pinhole.log)"
}

# Users the running pinhole knows (GET /stats "users").
pinhole_user_count() {
  python3 -c 'import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
c.request("GET", "/stats")
print(json.loads(c.getresponse().read()).get("users", 0))' "$ADMIN_PORT"
}

start_pinhole() {
  tcp_port_busy "$ADMIN_PORT" && die "port $ADMIN_PORT (pinhole admin) is busy"
  rm -f "$WORK_DIR"/pinhole.db*
  cat >"$WORK_DIR/pinhole.yaml" <<EOF2
# generated by bench/registrar.sh: pinhole's registrar mode as Kamailio's bench/kamailio/registrar.cfg
workers: $WORKERS
listen:
  - { transport: udp, address: 127.0.0.1, port: $PROXY_PORT }
registrar: { domains: [$REALM], nat_udp_lease: 0s }
auth: { algorithms: [MD5] }
store: sqlite://$WORK_DIR/pinhole.db
flow_tokens: { secret: "hex:000102030405060708090a0b0c0d0e0f" }
admin: { enabled: true, listen: "127.0.0.1:$ADMIN_PORT" }
log: { level: warn }
EOF2
  local t0
  t0=$(date +%s.%N)
  start_pinhole_process
  if [[ $PINHOLE_PROVISION == api ]]; then
    python3 "$ROOT/bench/provision_users.py" pinhole "$USERS" "127.0.0.1:$ADMIN_PORT" "$REALM" 4 ||
      die "provisioning pinhole's users failed (see $WORK_DIR/pinhole.log)"
  else
    # bulk: pinhole created its store's tables; stopped, it gets the users written into them
    # and loads them at the next start like any users it stored itself
    stop_proxy
    python3 "$ROOT/bench/provision_users.py" pinhole-db "$USERS" "$WORK_DIR/pinhole.db" "$REALM" ||
      die "writing the users into $WORK_DIR/pinhole.db failed"
    start_pinhole_process
  fi
  local known
  known=$(pinhole_user_count) || die "GET /stats from pinhole's admin API failed"
  ((known >= USERS)) || die "pinhole knows $known users, expected $USERS (see $WORK_DIR/pinhole.log)"
  printf 'pinhole: %d users (%s) in %.1f s\n' "$known" "$PINHOLE_PROVISION" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
  # let the store's writer thread settle before the baseline
  sleep 3
}

start_kamailio() {
  python3 "$ROOT/bench/provision_users.py" kamailio "$USERS" "$WORK_DIR/kamailio.db" "$REALM" ||
    die "generating Kamailio's subscriber table failed"
  local args=(-f "$ROOT/bench/kamailio/registrar.cfg" -A "PROXY_LISTEN=udp:127.0.0.1:$PROXY_PORT"
    -A "CHILDREN=$WORKERS" -A "DBURL=\"sqlite:///$WORK_DIR/kamailio.db\""
    -A "CTL_SOCKET=\"unix:$WORK_DIR/kamailio_ctl\"")
  "$KAMAILIO_BIN" -c "${args[@]}" >"$WORK_DIR/kamailio-check.log" 2>&1 ||
    die "bench/kamailio/registrar.cfg does not load (see $WORK_DIR/kamailio-check.log)"
  # -DD: foreground, children below us (the CPU count walks that tree); -E: log to stderr.
  # -m 1024: 100,000 bindings with their received and path need more than edge.cfg's 512 MB
  nice -n "$NICE" timeout -k 5 "$MAX_RUN_S" "$KAMAILIO_BIN" -DD -E "${args[@]}" -m 1024 -M 16 \
    -w "$WORK_DIR" >"$WORK_DIR/kamailio.log" 2>&1 &
  PROXY_PID=$!
  STARTED+=("$PROXY_PID")
  wait_udp_port "$PROXY_PORT" "$PROXY_PID" kamailio
  echo "kamailio: $USERS users in $WORK_DIR/kamailio.db (auth_db over db_sqlite)"
  sleep 1
}

stop_proxy() {
  local pid=$PROXY_PID i
  stop_group "$pid"
  forget "$pid"
  for ((i = 0; i < 50; i++)); do
    udp_port_busy "$PROXY_PORT" || return 0
    sleep 0.1
  done
  die "port $PROXY_PORT still bound after stopping the registrar"
}

# Kamailio's shared memory in use, in KiB (`kamcmd core.shmmem`: real_used, bytes); empty when
# kamcmd cannot reach it.
kamailio_shm_kib() {
  timeout 10 "$KAMCMD_BIN" -s "unix:$WORK_DIR/kamailio_ctl" core.shmmem 2>/dev/null |
    awk '$1 == "real_used:" { printf "%d", $2 / 1024 }' || true
}

# ---------------------------------------------------------------- the load

declare -A RESULT  # RESULT[<proxy>_<key>] = value

run_load() {
  local proxy=$1 tag="$1-register" uac_rc=0
  udp_port_busy "$UAC_PORT" && die "port $UAC_PORT (UAC) is busy"
  python3 "$ROOT/bench/provision_users.py" csv "$USERS" "$WORK_DIR/users.csv"

  # PROXY_PID is the `timeout` wrapper: pinhole is its only child
  local main_pid rss0 pss0 shm0=""
  main_pid=$(descendants "$PROXY_PID" | head -n 1)
  rss0=$(rss_kib "${main_pid:-$PROXY_PID}")
  pss0=$(tree_pss_kib "$PROXY_PID")
  [[ $proxy == kamailio ]] && shm0=$(kamailio_shm_kib)

  local drops0 cpu0 t0 t1 drops1 cpu1 cpu_end pdrops0 pdrops1
  drops0=$(udp_rcvbuf_errors)
  pdrops0=$(udp_port_drops "$PROXY_PORT")
  cpu0=$(tree_ticks "$PROXY_PID")
  t0=$(date +%s.%N)
  # as bench/signaling.sh: a subshell so that `times` reports SIPp's CPU, in the background so
  # that a signal is handled at once; -recv_timeout fails a call whose answer never comes
  local uac_sub
  (
    rc=0
    nice -n "$NICE" timeout -k 5 "$((UAC_LIMIT + 15))" "$SIPP_BIN" "127.0.0.1:$PROXY_PORT" -nostdin -i 127.0.0.1 \
      -p "$UAC_PORT" -t u1 -sf "$ROOT/bench/sipp/uac_register_auth.xml" -inf "$WORK_DIR/users.csv" -auth_uri "$REALM" \
      -m "$USERS" -r "$REG_RATE" -rp 1000 -recv_timeout 10000 -timeout "${UAC_LIMIT}s" -timeout_error \
      -buff_size 4194304 -trace_stat -stf "$WORK_DIR/$tag-uac.csv" -fd 1 \
      -trace_err -error_file "$WORK_DIR/$tag-uac-errors.log" \
      -trace_screen -screen_file "$WORK_DIR/$tag-uac-screen.log" >"$WORK_DIR/$tag-uac.out" 2>&1 || rc=$?
    times >"$WORK_DIR/$tag-uac.times"
    exit "$rc"
  ) &
  uac_sub=$!
  local pids perf_pid="" record_pid=""
  pids=$(descendants "$PROXY_PID" | tr '\n' ',')
  pids="$PROXY_PID,${pids%,}"
  if [[ -n $PERF_EVENTS ]]; then
    perf stat -e "$PERF_EVENTS" -p "$pids" -o "$WORK_DIR/$tag-perf.txt" &
    perf_pid=$!
  fi
  if [[ -n $PERF_RECORD && $proxy == pinhole ]]; then
    perf record -g -p "$pids" -o "$WORK_DIR/pinhole-perf.data" >"$WORK_DIR/pinhole-perf-record.log" 2>&1 &
    record_pid=$!
  fi
  wait "$uac_sub" || uac_rc=$?
  local p
  for p in $perf_pid $record_pid; do
    kill -INT "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  t1=$(date +%s.%N)
  if ((uac_rc != 0 && uac_rc != 1)); then
    die "$proxy: SIPp UAC exited with status $uac_rc (see $WORK_DIR/$tag-uac.out)"
  fi
  cpu_end=$(tree_ticks "$PROXY_PID")
  sleep "$SETTLE_S"
  cpu1=$(tree_ticks "$PROXY_PID")
  drops1=$(udp_rcvbuf_errors)
  pdrops1=$(udp_port_drops "$PROXY_PORT")
  kill -0 "$PROXY_PID" 2>/dev/null || die "$proxy exited during the load (see $WORK_DIR/$proxy.log)"

  local rss1 pss1 shm1=""
  rss1=$(rss_kib "${main_pid:-$PROXY_PID}")
  pss1=$(tree_pss_kib "$PROXY_PID")
  [[ $proxy == kamailio ]] && shm1=$(kamailio_shm_kib)

  local ok failed retrans rate_got cpu_s per10k uac_cpu wall mem_kib mem_what mem_per100k pss_per100k
  local uac_csv="$WORK_DIR/$tag-uac.csv"
  ok=$(sipp_stat "$uac_csv" 'SuccessfulCall(C)')
  failed=$((USERS - ok))
  retrans=$(sipp_stat "$uac_csv" 'Retransmissions(C)')
  rate_got=$(sipp_stat "$uac_csv" 'CallRate(C)')
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  cpu_s=$(ticks_to_s $((cpu1 - cpu0)))
  per10k=$(per_10k $((cpu1 - cpu0)) "$ok")
  uac_cpu=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$WORK_DIR/$tag-uac.times")
  if [[ $proxy == kamailio && -n $shm0 && -n $shm1 ]]; then
    mem_kib=$((shm1 - shm0))
    mem_what="shm"
  elif [[ $proxy == kamailio ]]; then
    mem_kib=$((pss1 - pss0))
    mem_what="PSS"
  else
    mem_kib=$((rss1 - rss0))
    mem_what="RSS"
  fi
  # MiB per 100,000 bindings, scaled from the bindings made (one per successful call)
  mem_per100k=$(awk -v k="$mem_kib" -v n="$ok" 'BEGIN { if (n > 0) printf "%.1f", k / 1024 * 100000 / n; else print "nan" }')
  pss_per100k=$(awk -v k=$((pss1 - pss0)) -v n="$ok" 'BEGIN { if (n > 0) printf "%.1f", k / 1024 * 100000 / n; else print "nan" }')

  printf '%-8s %d/%d authenticated REGISTERs ok, %d failed, %s retransmissions, %.1f/s achieved, %.1f s wall | CPU %s s (after: %s) = %s s per 10k | memory: %s +%d KiB = %s MiB per 100k bindings (PSS %d -> %d KiB: %s MiB per 100k) | SIPp UAC CPU %s s | UDP drops: registrar %d, other %d\n' \
    "$proxy" "$ok" "$USERS" "$failed" "${retrans:-?}" "${rate_got:-0}" "$wall" "$cpu_s" \
    "$(ticks_to_s $((cpu1 - cpu_end)))" "$per10k" "$mem_what" "$mem_kib" "$mem_per100k" \
    "$pss0" "$pss1" "$pss_per100k" "$uac_cpu" $((pdrops1 - pdrops0)) $((drops1 - drops0 - (pdrops1 - pdrops0)))

  RESULT[${proxy}_per10k]=$per10k
  RESULT[${proxy}_failed]=$failed
  RESULT[${proxy}_rate]=$rate_got
  RESULT[${proxy}_mem]=$mem_per100k
  RESULT[${proxy}_mem_what]=$mem_what
  RESULT[${proxy}_pss]=$pss_per100k
  RESULT[${proxy}_sipp_cpu]=$uac_cpu
  if [[ -s $WORK_DIR/$tag-perf.txt ]]; then
    awk -v n="$ok" '$1 ~ /^[0-9][0-9,.]*$/ && NF >= 2 {
        v = $1; gsub(",", "", v); ev = ($2 == "msec") ? $3 " (ms)" : $2
        if (n > 0) printf "  perf: %-32s %14s = %10.3f per REGISTER pair\n", ev, $1, v / n }' "$WORK_DIR/$tag-perf.txt"
  fi
  if [[ $proxy == pinhole ]]; then
    print_perf_top "$WORK_DIR/pinhole-perf.data" "$WORK_DIR/pinhole-perf-top.txt" "  perf record: " 25
  fi
}

# ---------------------------------------------------------------- main

echo "registrar benchmark: $USERS users, one authenticated REGISTER pair each at $REG_RATE/s, $WORKERS workers, settle ${SETTLE_S} s, UDP on 127.0.0.1"
echo "work dir: $WORK_DIR ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
set_autogroup_nice "$NICE"

PROXIES=()
[[ $ONLY == both || $ONLY == pinhole ]] && PROXIES+=(pinhole)
[[ $ONLY == both || $ONLY == kamailio ]] && PROXIES+=(kamailio)
for p in "${PROXIES[@]}"; do
  udp_port_busy "$PROXY_PORT" && die "port $PROXY_PORT is busy (another registrar or test running?)"
  "start_$p"
  run_load "$p"
  stop_proxy
done

status=0
for p in "${PROXIES[@]}"; do
  echo "${p}_cpu_s_per_10k_auth_registers ${RESULT[${p}_per10k]}"
  echo "${p}_failed_registers ${RESULT[${p}_failed]}"
  echo "${p}_register_rate ${RESULT[${p}_rate]}"
  echo "${p}_mib_per_100k_bindings ${RESULT[${p}_mem]} (${RESULT[${p}_mem_what]})"
  echo "${p}_pss_mib_per_100k_bindings ${RESULT[${p}_pss]}"
  echo "${p}_sipp_cpu_s ${RESULT[${p}_sipp_cpu]}"
  ((RESULT[${p}_failed] == 0)) || status=1
done
if [[ $ONLY == both ]]; then
  echo "cpu_per_register_ratio_vs_kamailio $(ratio "${RESULT[pinhole_per10k]}" "${RESULT[kamailio_per10k]}")"
fi
exit "$status"
