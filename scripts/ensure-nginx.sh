#!/usr/bin/env bash
# The HTTP cache in front of Serve is Debian's nginx (nginx-light: the proxy cache, nothing
# more); install it when it is missing. Without it the service still starts and says so.
set -u
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's nginx-light for the HTTP cache…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null) \
    || echo "could not install nginx; the service will answer without its HTTP cache" >&2
else
  echo "no nginx and no way to install it; the service will answer without its HTTP cache (Debian: apt-get install nginx-light)" >&2
fi
exit 0
