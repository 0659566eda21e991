#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD (default build/fuzz) for
# FUZZ_SECONDS (default 30) each, on a temporary copy of its seed corpus
# fuzz/corpus/<target>/ (the tree is never written). Exits non-zero when a
# target crashes, leaks, times out or breaks an invariant; the input that did
# it is copied to FUZZ_ARTIFACTS (default build/fuzz/artifacts) and printed.
# Prints one line of figures per target (runs, execs/s, corpus growth).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_ARTIFACTS=${FUZZ_ARTIFACTS:-$BUILD/artifacts}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-70000}
FUZZ_TARGETS=${FUZZ_TARGETS:-}
[ -n "$FUZZ_TARGETS" ] || FUZZ_TARGETS=$(cat "$BUILD/fuzz/fuzz_targets.txt")

work=$(mktemp -d /tmp/tailbus-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$FUZZ_ARTIFACTS"
failed=()
for target in $FUZZ_TARGETS; do
  corpus="$work/$target"
  mkdir -p "$corpus"
  if [ -d "fuzz/corpus/$target" ]; then cp -r "fuzz/corpus/$target/." "$corpus/"; fi
  seeds=$(find "$corpus" -type f | wc -l)
  log="$work/$target.log"
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$BUILD/fuzz/$target" -max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" \
    -timeout=60 -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$work/$target-" \
    "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  units=$(find "$corpus" -type f | wc -l)
  printf 'fuzz %-20s %ss: %s runs, %s exec/s, corpus %s -> %s, exit %s\n' "$target" \
    "$FUZZ_SECONDS" "${runs:-?}" "${speed:-?}" "$seeds" "$units" "$rc"
  if [ "$rc" -ne 0 ]; then
    failed+=("$target")
    grep -v '^#\|^INFO\|^\s*$' "$log" | tail -60
    for a in "$work/$target-"*; do
      [ -e "$a" ] || continue
      cp "$a" "$FUZZ_ARTIFACTS/"
      echo "fuzz $target: input saved as $FUZZ_ARTIFACTS/$(basename "$a"):"
      head -c 400 "$a" | od -c | head -12
    done
  fi
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: every target ran ${FUZZ_SECONDS}s without a crash"
