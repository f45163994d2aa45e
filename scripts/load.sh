#!/bin/sh
# The full load run: 256 clients for 60 s of list and session-certificate
# signing against a real `vmux agent` (release build), zero errors, memory
# flat. CI runs the same test with 64 clients for 5 s (crates/vmux/tests/it/load.rs,
# which says what "flat" means). Override with CLIENTS=, SECS=, SAMPLE_MS=.
#
#   scripts/load.sh
set -eu
cd "$(dirname "$0")/.."
export VMUX_LOAD_CLIENTS="${CLIENTS:-256}"
export VMUX_LOAD_SECS="${SECS:-60}"
export VMUX_LOAD_SAMPLE_MS="${SAMPLE_MS:-1000}"
exec cargo test --release --locked -p vmux --test it load:: -- --nocapture
