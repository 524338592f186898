#!/usr/bin/env bash
# Builds and runs the `parse` fuzz target on a STABLE toolchain: libFuzzer with
# SanitizerCoverage instrumentation (stable -C flags), without AddressSanitizer (the
# crate forbids unsafe code). With nightly and cargo-fuzz installed, `cargo fuzz run parse`
# works too.
#
#   fuzz/run.sh [SECONDS]      # default 60; findings go to fuzz/artifacts/parse/
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS away from build scripts and proc macros.
target="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bin parse --target "$target"
work="$(mktemp -d)"
mkdir -p artifacts/parse
"./target/$target/release/parse" "$work" corpus/parse \
  -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix=artifacts/parse/ -print_final_stats=1
