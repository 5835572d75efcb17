#!/bin/sh
# Executor and router benchmark: cold starts per runtime (from the warm
# pool, and with no pool), and warm calls through the router vs straight to
# the instance's socket, in one run. See bench/executor.py.
set -eu
BUILD=${BUILD:-build}
export BUILD
exec /usr/bin/python3 "$(dirname "$0")/executor.py"
