"""The HTTP cache in front of Serve: nginx answering the storm's reads from memory.

At the rush every person asks for the same few objects: the seat map, the venue, the
waiting room's public status and the page's files. Each costs a Serve replica about as much
Python as any request, while nginx answers a cached object for a small fraction of that.
So one nginx per node listens on ``ENCORE_PORT``, keeps each of those objects for at most a
second, fetches each at most once per refresh however many clients ask
(``proxy_cache_lock``), serves the old copy while it refreshes, and passes everything else
through to Serve's own front untouched. Why nginx and not HAProxy's cache or Varnish is in
the README ("The HTTP cache").

Rules that keep one member's answer from ever reaching another:

* only the listed public locations are cached; every other path passes through;
* an answer to a request that carries ``Authorization`` is never stored (it may still be
  *served* a cached public object: those answers do not depend on who asks);
* the client's address is forwarded in ``X-Real-IP`` / ``X-Forwarded-For``, overwritten
  rather than appended, so a client cannot pose as another address.

``render_config`` is pure (settings in, text out) so it can be tested without nginx.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CACHED_EXACT_PATHS = ("/", "/api/seats", "/api/venue", "/api/queue/status", "/api/show")
CACHED_PREFIXES = ("/static/",)
FRESH_SECONDS = 1
BODY_BYTES_MAX = 16 * 1024
START_SECONDS_MAX = 10

# nginx's own refusals, as the JSON problem bodies every other error of the service has
NGINX_ERRORS = {
    400: ("bad_request", "the request could not be read"),
    413: ("body_too_large", f"request bodies are at most {BODY_BYTES_MAX} bytes"),
    414: ("uri_too_long", "the request line is too long"),
    494: ("headers_too_large", "the request headers are too large"),
    502: ("unavailable", "the service is starting or restarting; try again shortly"),
    504: ("unavailable", "the service did not answer in time; try again shortly"),
}
STATUS_SENT_FOR = {494: 431, 502: 503, 504: 503}


@dataclass(frozen=True)
class CachePlan:
    """Where the cache listens, where Serve's front listens behind it, and its files."""

    listen_host: str
    listen_port: int
    upstream_port: int
    run_dir: Path
    store_dir: Path
    worker_user: str | None = None


def nginx_binary() -> str | None:
    """nginx from PATH or Debian's place for it (``/usr/sbin`` is not on every PATH)."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def plan_for(host: str, port: int, upstream_port: int) -> CachePlan:
    """Files under a folder of this port's own; cached objects in RAM (``/dev/shm``) where there is one."""
    run_dir = Path(tempfile.gettempdir()) / f"encore-cache-{port}"
    memory = Path("/dev/shm")
    store_dir = (memory if memory.is_dir() and os.access(memory, os.W_OK) else run_dir) / f"encore-cache-{port}-objects"
    worker_user = None
    if os.geteuid() == 0:
        worker_user = next((name for name in ("www-data", "nobody") if _user_exists(name)), None)
    return CachePlan(host, port, upstream_port, run_dir, store_dir, worker_user)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _json_error(status: int) -> str:
    code, message = NGINX_ERRORS[status]
    sent = STATUS_SENT_FOR.get(status, status)
    retry = '        add_header Retry-After 2 always;\n' if sent == 503 else ""
    return (
        f"    location @error_{status} {{\n"
        f"        default_type application/json;\n"
        f"        add_header Cache-Control no-store always;\n{retry}"
        f"        return {sent} '{{\"code\":\"{code}\",\"message\":\"{message}\"}}';\n"
        f"    }}\n"
    )


def render_config(plan: CachePlan) -> str:
    """nginx.conf for one node's cache."""
    cached = "\n".join(
        [f"    location = {path} {{ include {plan.run_dir}/cached.conf; }}" for path in CACHED_EXACT_PATHS]
        + [f"    location ^~ {prefix} {{ include {plan.run_dir}/cached.conf; }}" for prefix in CACHED_PREFIXES]
    )
    error_pages = "\n".join(f"    error_page {status} @error_{status};" for status in NGINX_ERRORS)
    user = f"user {plan.worker_user};\n" if plan.worker_user else ""
    return f"""# Written by encore/cache.py at every start; edits are lost.
{user}worker_processes 1;
pid {plan.run_dir}/nginx.pid;
error_log {plan.run_dir}/error.log warn;
events {{
    worker_connections 8192;
}}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {plan.run_dir}/body;
    proxy_temp_path {plan.run_dir}/proxy;
    fastcgi_temp_path {plan.run_dir}/fastcgi;
    uwsgi_temp_path {plan.run_dir}/uwsgi;
    scgi_temp_path {plan.run_dir}/scgi;
    keepalive_requests 100000;

    proxy_cache_path {plan.store_dir} levels=1:2 keys_zone=encore:8m max_size=256m inactive=10m use_temp_path=off;

    upstream serve_front {{
        server 127.0.0.1:{plan.upstream_port};
        keepalive 128;
    }}

    # Two variants of each object, whatever the client's exact Accept-Encoding text
    map $http_accept_encoding $encoding_variant {{
        "~*gzip\\s*;\\s*q=0(\\.0*)?\\s*(,|$)" "";
        "~*gzip" gzip;
        default "";
    }}
    # Answers to a member's request are never stored
    map $http_authorization $not_for_others {{
        "" 0;
        default 1;
    }}
    map $upstream_cache_status $from_cache {{
        HIT HIT;
        STALE HIT;
        UPDATING HIT;
        REVALIDATED HIT;
        default MISS;
    }}

    server {{
        listen {plan.listen_host}:{plan.listen_port} backlog=4096;
        client_max_body_size {BODY_BYTES_MAX};
        client_header_buffer_size 4k;
        large_client_header_buffers 4 16k;

        add_header X-Cache $from_cache always;

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        # Serve wraps each request in tasks that watch for the client leaving; the cache
        # keeps its upstream connections, and a hold or payment is better finished anyway
        proxy_set_header X-Request-Disconnect-Disabled "?1";
        proxy_buffering on;
        proxy_read_timeout 60s;

{error_pages}

{cached}
    location / {{
        proxy_pass http://serve_front;
    }}

{"".join(_json_error(status) for status in NGINX_ERRORS)}    }}
}}
"""


def render_cached_location() -> str:
    """The directives of every cached location (one file, included by each)."""
    return f"""proxy_pass http://serve_front;
proxy_cache encore;
proxy_cache_key $uri$is_args$args|$encoding_variant;
proxy_set_header Accept-Encoding $encoding_variant;
proxy_ignore_headers Cache-Control Expires Vary Set-Cookie;
proxy_cache_valid 200 {FRESH_SECONDS}s;
proxy_cache_lock on;
proxy_cache_lock_timeout 5s;
proxy_cache_lock_age 5s;
proxy_cache_use_stale updating error timeout http_500 http_502 http_503 http_504;
proxy_cache_background_update on;
proxy_cache_revalidate on;
proxy_no_cache $not_for_others;
"""


class CacheProcess:
    """One nginx started for this service, ended with it (and with the process that started
    it, even on SIGKILL, through the parent-death signal)."""

    def __init__(self, plan: CachePlan, process: subprocess.Popen):
        self.plan = plan
        self.process = process

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.plan.store_dir, ignore_errors=True)


def start_cache(plan: CachePlan, binary: str) -> CacheProcess:
    """Write the config, start nginx in the foreground as our child, wait until it listens."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(plan.store_dir, ignore_errors=True)
    plan.store_dir.mkdir(parents=True)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (plan.run_dir / name).mkdir(exist_ok=True)
    if plan.worker_user:
        entry = pwd.getpwnam(plan.worker_user)
        for folder in [plan.store_dir, *(plan.run_dir / n for n in ("body", "proxy", "fastcgi", "uwsgi", "scgi"))]:
            os.chown(folder, entry.pw_uid, entry.pw_gid)
    (plan.run_dir / "cached.conf").write_text(render_cached_location())
    config = plan.run_dir / "nginx.conf"
    config.write_text(render_config(plan))
    command = [binary, "-p", str(plan.run_dir), "-e", str(plan.run_dir / "error.log"), "-c", str(config), "-g", "daemon off;"]
    checked = subprocess.run([*command[:-2], "-t", "-q"], capture_output=True, text=True)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refused its configuration: {checked.stderr.strip()}")
    process = subprocess.Popen(command, preexec_fn=_end_with_parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_SECONDS_MAX
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited at start: {process.stderr.read().decode(errors='replace').strip()}")
        if _listening(plan.listen_host, plan.listen_port):
            return CacheProcess(plan, process)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"nginx did not listen on {plan.listen_host}:{plan.listen_port} within {START_SECONDS_MAX} s")


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1" if host in ("0.0.0.0", "") else host, port)) == 0


def _end_with_parent() -> None:
    """In the child before exec: SIGTERM nginx's master when its parent dies, however it dies."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
