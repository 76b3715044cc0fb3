#!/usr/bin/env bash
# Make sure a MySQL/MariaDB answers on 127.0.0.1:3306 before the MySQL suite runs.
# Starts the machine's MariaDB when it is installed but stopped; otherwise says why not.
set -u
ping() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }
ping && exit 0
if [ -x /usr/sbin/mariadbd ]; then
  echo "starting MariaDB…"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do ping && exit 0; sleep 0.5; done
  echo "MariaDB did not answer within 30 s" >&2
else
  echo "no MariaDB installed here; MySQL tests will skip (and fail under CI=true)" >&2
fi
exit 0
