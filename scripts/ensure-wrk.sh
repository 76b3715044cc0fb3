#!/usr/bin/env bash
# The HTTP benchmarks drive load with wrk (C, so the load generator is not the bottleneck).
set -u
command -v wrk >/dev/null && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) || { echo "could not install wrk" >&2; exit 1; }
else
  echo "wrk is needed for the HTTP benchmarks: install it (Debian: apt-get install wrk)" >&2; exit 1
fi
