#!/bin/sh
# Router vs nginx as a reverse proxy in front of the same C instance (its
# Unix socket, kept-alive connections), driven by the same load generator
# in the same run: requests/s, p50, p99 and the ratio. See bench/proxy.py.
set -eu
BUILD=${BUILD:-build}
export BUILD
exec /usr/bin/python3 "$(dirname "$0")/proxy.py"
