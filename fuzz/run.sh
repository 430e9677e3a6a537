#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a while on a copy of its
# committed seed corpus, so a run never grows what is committed.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]     (default 60)
#   FUZZ_TARGETS="frame_decoder stream" fuzz/run.sh 300   # some targets only
#
# Fails if any target crashes, leaks past the memory limit or times out on an
# input; the input is copied to fuzz/artifacts/<target>/ and printed in hex.
# Prints executions, exec/s and coverage (cov = edges, ft = features) per
# target. Needs a nightly toolchain (cargo-fuzz builds with sanitizers) and
# installs cargo-fuzz from crates.io when it is missing.
set -euo pipefail

secs="${1:-60}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")"
fuzz_dir="$(pwd)"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"

if ! rustc "+$toolchain" --version >/dev/null 2>&1; then
  echo "error: fuzz/run.sh needs the Rust '$toolchain' toolchain (cargo-fuzz builds" >&2
  echo "       with -Zsanitizer), and 'rustc +$toolchain' does not run here." >&2
  echo "       Install it with: rustup toolchain install $toolchain" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==== installing cargo-fuzz ===="
  cargo install cargo-fuzz --locked
fi
echo "toolchain: $(rustc "+$toolchain" --version); $(cargo fuzz --version)"

targets="${FUZZ_TARGETS:-$(cargo "+$toolchain" fuzz list)}"
host="$(rustc "+$toolchain" -vV | sed -n 's/^host: //p')"
bin_dir="$fuzz_dir/target/$host/release"

echo "==== building fuzz targets ===="
build_start=$SECONDS
cargo "+$toolchain" fuzz build
echo "built in $((SECONDS - build_start)) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/wsstream-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for target in $targets; do
  echo
  echo "==== $target: ${secs} s ===="
  corpus="$work/corpus/$target"
  mkdir -p "$corpus" "$work/artifacts/$target"
  if [ -d "corpus/$target" ]; then
    cp -R "corpus/$target/." "$corpus/"
  fi
  log="$work/$target.log"
  status=0
  # -max_total_time bounds the run; `timeout` guards against a fuzzer that
  # does not stop on its own.
  timeout --signal=KILL "$((secs + 120))" \
    "$bin_dir/$target" "$corpus" \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$target/" \
    >"$log" 2>&1 || status=$?

  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE[[:space:]]' "$log" | tail -n 1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")"
  corp="$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$done_line")"
  line="$(printf '%-20s executions %-10s exec/s %-7s cov %-6s ft %-7s corpus %s' \
    "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")"

  if [ "$status" -ne 0 ] || [ -z "$done_line" ]; then
    failed+=("$target")
    summary+=("$line   FAILED (exit $status)")
    echo "---- $target FAILED (exit $status); the end of its log:"
    # The panic message and libFuzzer's verdict, without stack frames.
    grep -v -E '^(#[0-9]+[[:space:]]|"|[[:space:]]+#[0-9]+ |[[:space:]]+[0-9]+: |[[:space:]]+at )' "$log" |
      grep -v -E '^(INFO|MERGE|stat::)' | tail -n 40
    mkdir -p "artifacts/$target"
    for artifact in "$work/artifacts/$target"/*; do
      [ -f "$artifact" ] || continue
      cp "$artifact" "artifacts/$target/"
      echo "---- input: fuzz/artifacts/$target/$(basename "$artifact")"
      hex="$(od -An -v -tx1 "$artifact" | tr -d ' \n')"
      echo "hex: ${hex:-(empty input)}"
      echo "reproduce: cargo +$toolchain fuzz run $target fuzz/artifacts/$target/$(basename "$artifact")"
      echo "      (WSFUZZ_TRACE=1 prints each operation of the connection and stream targets)"
    done
  else
    summary+=("$line")
    echo "$line"
  fi
done

echo
echo "==== fuzz summary (${secs} s per target) ===="
printf '%s\n' "${summary[@]}"
total=${#summary[@]}
if [ "${#failed[@]}" -ne 0 ]; then
  echo "FAILED: ${failed[*]}"
  echo "fuzz: $((total - ${#failed[@]})) passed, ${#failed[@]} failed"
  exit 1
fi
echo "fuzz: $total passed, 0 failed"
