#!/bin/sh
# Async invocation benchmark: accepted async invocations per second vs the
# store's own durable publishes with the same number of clients, and end-to-end
# completions of async calls vs synchronous ones, in one run. See
# bench/async.py.
set -eu
BUILD=${BUILD:-build}
export BUILD
exec /usr/bin/python3 "$(dirname "$0")/async.py"
