#!/usr/bin/env bash
# make fuzz: run every cargo-fuzz target in fuzz/ for a bounded time.
#
# What it does
#   1. Installs cargo-fuzz from crates.io if `cargo fuzz` is missing
#      (`cargo install cargo-fuzz --locked`).
#   2. Builds and runs each target of `cargo fuzz list` (or FUZZ_TARGETS) for
#      FUZZ_SECONDS seconds (default 60) with libFuzzer, starting from the
#      committed seed corpus fuzz/corpus/<target>/. New interesting inputs go
#      to fuzz/scratch/<target>/ (git-ignored), so the seed corpus stays small.
#   3. Prints each target's executions and coverage; a crash (= a property of
#      crates/tickstream-fuzz-checks failed, or a panic) leaves its reproducer
#      in fuzz/artifacts/<target>/ and makes the script exit 1 after the
#      remaining targets ran. Reproduce one with
#        RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
#
# Why RUSTC_BOOTSTRAP=1
#   This machine has one stable toolchain and no nightly can be fetched.
#   cargo-fuzz passes `-Zsanitizer=address` (the default sanitizer) to rustc,
#   which stable refuses; RUSTC_BOOTSTRAP=1 lets stable rustc accept -Z flags.
#   Checked here with rustc 1.95.0 and cargo-fuzz 0.13.2: AddressSanitizer
#   and the SanitizerCoverage instrumentation build and run. The std library
#   itself is not instrumented (no -Zbuild-std), which is fine: our crates
#   forbid unsafe code, ASan watches the dependencies' unsafe code, and the
#   properties are what we are after. FUZZ_SANITIZER=none skips ASan
#   (faster, about 2x the executions per second).
#
# Settings (environment)
#   FUZZ_SECONDS    seconds per target (default 60)
#   FUZZ_TARGETS    space-separated subset (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER  address (default) | none
#   FUZZ_MAX_LEN    libFuzzer -max_len in bytes (default 8192)
#
# Without cargo-fuzz or nightly, `make test` still runs every seed corpus
# through the same checks (crates/tickstream-fuzz-checks/tests/corpus.rs).
set -euo pipefail

cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-address}"
FUZZ_MAX_LEN="${FUZZ_MAX_LEN:-8192}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir fuzz)}"
if [ -z "$targets" ]; then
    echo "fuzz: no targets found in fuzz/" >&2
    exit 1
fi

echo "fuzz: building targets (sanitizer: $FUZZ_SANITIZER)"
cargo fuzz build --fuzz-dir fuzz --sanitizer "$FUZZ_SANITIZER"

failed=()
summary=()
for t in $targets; do
    seeds="fuzz/corpus/$t"
    scratch="fuzz/scratch/$t"
    if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
        echo "fuzz: seed corpus $seeds is missing or empty" >&2
        exit 1
    fi
    mkdir -p "$scratch" "fuzz/artifacts/$t"
    log="fuzz/scratch/$t.log"
    echo "fuzz: $t for ${FUZZ_SECONDS}s"
    if cargo fuzz run --fuzz-dir fuzz --sanitizer "$FUZZ_SANITIZER" "$t" "$scratch" "$seeds" -- \
        -max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=CRASH
        failed+=("$t")
        grep -E "panicked|SUMMARY|Test unit written" "$log" | head -5 >&2 || true
    fi
    runs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)"
    cov="$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')"
    summary+=("$(printf '%-22s %-6s executions=%-10s coverage=%s' "$t" "$status" "${runs:-?}" "${cov:-?}")")
done

echo
echo "fuzz: ${FUZZ_SECONDS}s per target, sanitizer $FUZZ_SANITIZER; logs in fuzz/scratch/<target>.log"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (reproducers in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
