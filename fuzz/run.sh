#!/usr/bin/env bash
# Builds and runs fuzz targets on a STABLE toolchain: libFuzzer with SanitizerCoverage
# instrumentation (stable -C flags), without AddressSanitizer (the crates forbid unsafe code).
# With nightly and cargo-fuzz installed, `cargo fuzz run <target>` works too.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS (default 60) is per target; the targets (default: all) run one after the other, each
# from its committed seed corpus `corpus/<target>/`, writing new inputs to a temporary directory
# (printed) so the seed corpus stays small. Findings go to `artifacts/<target>/`. Extra libFuzzer
# flags can be passed in FUZZ_FLAGS (e.g. FUZZ_FLAGS="-jobs=2 -workers=2").
# Exit status: non-zero if any target found something (the others still run).
set -euo pipefail
cd "$(dirname "$0")"
all=(parse token servicenow_response bmc_response config legacy)
secs="${1:-60}"
shift || true
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
for t in "${targets[@]}"; do
  if [[ ! " ${all[*]} " == *" $t "* ]]; then
    echo "unknown target '$t' (known: ${all[*]})" >&2
    exit 2
  fi
done

export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS away from build scripts and proc macros.
target="$(rustc -vV | sed -n 's/^host: //p')"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo build --release --target "$target" "${bins[@]}"

failed=()
for t in "${targets[@]}"; do
  # Per-target input size and time limits: tokens are capped at 16 KiB by the verifier; the
  # backend targets make real (loopback) HTTP round trips, and bound their own time at 10 s.
  case "$t" in
    token) max_len=20000 timeout=10 ;;
    servicenow_response | bmc_response) max_len=32768 timeout=30 ;;
    *) max_len=65536 timeout=10 ;;
  esac
  work="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$t.XXXXXX")"
  mkdir -p "artifacts/$t"
  echo "== $t: ${secs}s, new inputs in $work" >&2
  # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
  if ! "./target/$target/release/$t" "$work" "corpus/$t" \
    -max_total_time="$secs" -max_len="$max_len" -timeout="$timeout" -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 ${FUZZ_FLAGS:-}; then
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "findings in: ${failed[*]} (see artifacts/)" >&2
  exit 1
fi
