#!/bin/sh
# Workflow benchmark: the engine's overhead per task (a 100-task fan-out
# and chain of the C hello against the same calls made directly, and the
# chain's steps against one fdatasync), invocation latency, the start
# spread of 100 parallel tasks, and 10,000 invocations waiting on a
# durable sleep. See bench/workflow.py.
set -eu
BUILD=${BUILD:-build}
export BUILD
exec /usr/bin/python3 "$(dirname "$0")/workflow.py"
