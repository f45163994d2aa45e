#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints a summary
# line per target: executions, corpus size, and whether it crashed.
# Needs: cargo install cargo-fuzz; a nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
targets=$(cargo +nightly fuzz list)
status=0
for t in $targets; do
    log=$(mktemp)
    if cargo +nightly fuzz run "$t" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="CRASH (see fuzz/artifacts/$t)"
        status=1
    fi
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
    corpus=$(find "corpus/$t" -type f | wc -l)
    printf '%-16s %4ss  %12s execs  %6s corpus files  %s\n' "$t" "$seconds" "$execs" "$corpus" "$result"
    rm -f "$log"
done
exit $status
