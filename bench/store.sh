#!/bin/sh
# Store benchmark: durable appends with group commit vs a write+fdatasync
# loop on the same disk, and topic throughput. See bench/bench_store.c.
set -eu
BUILD=${BUILD:-build}
SECONDS_EACH=${SECONDS_EACH:-3}
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/flint-bench-store.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
"$BUILD/bench/bench_store" "$dir" "$SECONDS_EACH"
