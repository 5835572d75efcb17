#!/bin/sh
# NATS JetStream trigger benchmark: messages per second through trigger ->
# C hello -> respTopic -> ack on Flint's NATS connector against a consumer
# written directly with libnats doing the same work, and the raw JetStream
# pull+ack rate, in one run against a real nats-server. See bench/mq_nats.py.
set -eu
BUILD=${BUILD:-build}
export BUILD
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  echo "nats-server is not installed (scripts/install-deps bench): skipped"
  exit 0
fi
exec /usr/bin/python3 "$(dirname "$0")/mq_nats.py"
