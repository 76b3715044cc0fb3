#!/usr/bin/env bash
# The browser test drives Debian's Chromium; install the package when it is missing, and a
# Korean font (fonts-nanum) so that the page's Hangul is drawn in its screenshots, not boxes.
set -u
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -d /usr/share/fonts/truetype/nanum ] || need+=(fonts-nanum)
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's ${need[*]}…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
    || echo "could not install ${need[*]}; without chromium the browser test skips (and fails under CI=true)" >&2
else
  echo "missing ${need[*]} and no way to install them; without chromium the browser test skips" >&2
fi
exit 0
