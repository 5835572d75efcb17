#!/bin/sh
# Message-queue trigger benchmark, builtin connector: messages per second
# through trigger -> C hello -> respTopic -> ack against the same calls made
# directly, in one run. See bench/mq_builtin.py.
set -eu
BUILD=${BUILD:-build}
export BUILD
exec /usr/bin/python3 "$(dirname "$0")/mq_builtin.py"
