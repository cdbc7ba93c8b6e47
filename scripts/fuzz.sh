#!/usr/bin/env bash
# Builds the libFuzzer targets with the `fuzz` preset (clang, ASan+UBSan, -O2) and fuzzes each
# one for a while: what `make fuzz` runs. CTest's fuzz_smoke_* tests are the short version.
#
#   scripts/fuzz.sh [seconds]        seconds per target, default 300
#
# Environment: FUZZ_JOBS     targets fuzzed at the same time (default: number of CPUs)
#              FUZZ_TARGETS  space-separated subset of the targets (default: all)
#              PINHOLE_SHARED_DIR  shared/ folder (default: ../shared next to the checkout);
#                            its corpus/rfc4475 is an extra read-only corpus for fuzz_sip_message.
#
# Corpus directories, in the order libFuzzer gets them (it writes new inputs into the FIRST):
# build/fuzz/tests/fuzz/corpus/<target> (scratch, kept between runs), tests/fuzz/seeds/<target>
# (committed), then the RFC 4475 messages. Crashes, leaks, timeouts and OOMs are written to
# tests/fuzz/artifacts/<target>-* (gitignored); reproduce one with
#   build/fuzz/tests/fuzz/<target> tests/fuzz/artifacts/<file>
# and commit it to tests/fuzz/seeds/<target>/ with the fix. Exits non-zero if any target failed.
set -euo pipefail

seconds="${1:-300}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [seconds-per-target]" >&2
  exit 2
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
all_targets=(fuzz_sip_message fuzz_uri fuzz_via_name_addr fuzz_stream_framer)
read -r -a targets <<<"${FUZZ_TARGETS:-${all_targets[*]}}"
jobs="${FUZZ_JOBS:-$(nproc)}"
shared="${PINHOLE_SHARED_DIR:-$repo/../shared}"
build="$repo/build/fuzz/tests/fuzz"
artifacts="$repo/tests/fuzz/artifacts"

cmake --preset fuzz
# Only the fuzz targets: the rest of the tree being mid-change must not stop a fuzzing run.
cmake --build --preset fuzz --target "${targets[@]}"

mkdir -p "$artifacts" "$build/logs"

declare -A pid_of=()
# shellcheck disable=SC2317  # invoked from the trap
cleanup() {
  for p in "${pid_of[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap 'cleanup; exit 130' INT TERM

run_one() {
  local t="$1"
  local corpora=("$build/corpus/$t" "$repo/tests/fuzz/seeds/$t")
  if [[ "$t" == fuzz_sip_message && -d "$shared/corpus/rfc4475" ]]; then
    corpora+=("$shared/corpus/rfc4475")
  fi
  mkdir -p "$build/corpus/$t"
  exec "$build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$t-" "${corpora[@]}" >"$build/logs/$t.log" 2>&1
}

echo "fuzzing ${targets[*]} for ${seconds}s each, $jobs at a time; logs in $build/logs/"
declare -A status_of=()
pending=("${targets[@]}")
while ((${#pending[@]} > 0 || ${#pid_of[@]} > 0)); do
  while ((${#pending[@]} > 0 && ${#pid_of[@]} < jobs)); do
    t="${pending[0]}"
    pending=("${pending[@]:1}")
    run_one "$t" &
    pid_of[$t]=$!
  done
  # Wait for whichever of our runs ends first, then collect every finished one.
  wait -n "${pid_of[@]}" 2>/dev/null || true
  for t in "${!pid_of[@]}"; do
    if ! kill -0 "${pid_of[$t]}" 2>/dev/null; then
      rc=0
      wait "${pid_of[$t]}" || rc=$?
      status_of[$t]=$rc
      unset "pid_of[$t]"
    fi
  done
done
trap - INT TERM

failed=0
printf '%-22s %-8s %10s %10s %s\n' target result exec/s new-units artifacts
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  units=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -n1)
  found=$(sed -n "s|.*Test unit written to \(.*\)|\1|p" "$log" | tr '\n' ' ')
  result=ok
  if [[ "${status_of[$t]}" != 0 ]]; then
    result="FAILED(${status_of[$t]})"
    failed=1
  fi
  printf '%-22s %-8s %10s %10s %s\n' "$t" "$result" "${execs:--}" "${units:--}" "${found:-}"
done
if ((failed)); then
  echo "a fuzz target failed: see the logs above and the artifacts in $artifacts" >&2
fi
exit "$failed"
