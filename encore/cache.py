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
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from encore.settings import BODY_BYTES_MAX

log = logging.getLogger(__name__)

# objects that change during the sale: kept as the replica says (until its second ends, then
# served stale for at most one more second while one request refreshes them)
LIVE_PATHS = ("/api/seats", "/api/queue/status")
# objects fixed while the service runs: kept a second, whatever their own Cache-Control says
FIXED_EXACT_PATHS = ("/", "/api/venue", "/api/show")
CACHED_EXACT_PATHS = LIVE_PATHS + FIXED_EXACT_PATHS
CACHED_PREFIXES = ("/static/",)
FRESH_SECONDS = 1
START_SECONDS_MAX = 10

ERROR_PATH = "/_encore/error"
STARTING_RETRY_SECONDS = 1
UNAVAILABLE_RETRY_SECONDS = 2



@dataclass(frozen=True)
class Problem:
    """One answer nginx gives itself, as the JSON problem body every other error of the service has."""

    status: int
    code: str
    message: str
    retry_after: int | None = None


# nginx's own refusals by the status nginx meets (494: request headers too large)
NGINX_ERRORS = {
    400: Problem(400, "bad_request", "the request could not be read"),
    413: Problem(413, "body_too_large", f"request bodies are at most {BODY_BYTES_MAX} bytes"),
    414: Problem(414, "uri_too_long", "the request line is too long"),
    494: Problem(431, "headers_too_large", "the request headers are too large"),
    500: Problem(500, "internal_error", "the front failed to answer; try again shortly"),
    502: Problem(503, "unavailable", "the service is starting or restarting; try again shortly", UNAVAILABLE_RETRY_SECONDS),
    504: Problem(503, "unavailable", "the service did not answer in time; try again shortly", UNAVAILABLE_RETRY_SECONDS),
}
STARTING = Problem(503, "starting", "the service is starting; try again shortly", STARTING_RETRY_SECONDS)


@dataclass(frozen=True)
class CachePlan:
    """Where the cache listens, where Serve's front listens behind it, and its files."""

    listen_host: str
    listen_port: int
    upstream_port: int
    run_dir: Path
    store_dir: Path
    worker_user: str | None = None

    @property
    def starting_flag(self) -> Path:
        """While this file exists nginx answers every request 503 ``starting`` itself: Serve's
        front answers plain-text 404s until the app is deployed, and nothing upstream is ready."""
        return self.run_dir / "starting"


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


# The headers of every request passed to Serve. nginx inherits a level's ``proxy_set_header``
# only where a location sets none of its own, so the cached locations (which set
# Accept-Encoding) repeat these.
UPSTREAM_HEADERS = """proxy_set_header Connection "";
proxy_set_header Host $http_host;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $remote_addr;
proxy_set_header X-Forwarded-Proto $scheme;
# Serve wraps each request in tasks that watch for the client leaving; the cache keeps its
# upstream connections, and a hold or payment is better finished anyway
proxy_set_header X-Request-Disconnect-Disabled "?1";
"""


def _problem_location(name: str, problem: Problem) -> str:
    """An internal location answering one problem; a URI rather than a named location, since
    an error met while reading the request line has no URI to redirect from (nginx then
    answered its own HTML 500)."""
    retry_header = f"        add_header Retry-After {problem.retry_after} always;\n" if problem.retry_after else ""
    return (
        f"    location = {ERROR_PATH}/{name} {{\n"
        f"        internal;\n"
        f"        default_type application/json;\n"
        f"        add_header Cache-Control no-store always;\n{retry_header}"
        f"        return {problem.status} '{{\"code\":\"{problem.code}\",\"message\":\"{problem.message}\"}}';\n"
        f"    }}\n"
    )


def render_starting_gate(plan: CachePlan) -> str:
    """The first directive of every location that passes to Serve (one file, included by each)."""
    return f"if (-f {plan.starting_flag}) {{ rewrite ^ {ERROR_PATH}/starting last; }}\n"


def render_config(plan: CachePlan) -> str:
    """nginx.conf for one node's cache.

    A worker per core. A master killed after some of its workers respawns them first, into
    workers the run's record does not list by pid; ``encore/leftovers.py`` knows them by the
    sockets they inherit.
    """
    cached = "\n".join(
        [f"    location = {path} {{ include {plan.run_dir}/live.conf; }}" for path in LIVE_PATHS]
        + [f"    location = {path} {{ include {plan.run_dir}/fixed.conf; }}" for path in FIXED_EXACT_PATHS]
        + [f"    location ^~ {prefix} {{ include {plan.run_dir}/fixed.conf; }}" for prefix in CACHED_PREFIXES]
    )
    # "=status": without it nginx keeps the status it met (a 502 stayed 502, a 494 became 400)
    error_pages = "\n".join(
        f"    error_page {status} ={problem.status} {ERROR_PATH}/{status};" for status, problem in NGINX_ERRORS.items()
    )
    problems = "".join(_problem_location(str(status), problem) for status, problem in NGINX_ERRORS.items())
    problems += _problem_location("starting", STARTING)
    user = f"user {plan.worker_user};\n" if plan.worker_user else ""
    return f"""# Written by encore/cache.py at every start; edits are lost.
{user}worker_processes auto;
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
{textwrap.indent(UPSTREAM_HEADERS, " " * 8)}        proxy_buffering on;
        proxy_read_timeout 60s;

{error_pages}

{cached}
    location / {{
        include {plan.run_dir}/starting.conf;
        proxy_pass http://serve_front;
    }}

{problems}    }}
}}
"""


def render_cached_location(plan: CachePlan, live: bool) -> str:
    """The directives of the cached locations (one file for each kind, included by each).

    A live object (the seat map, the queue status) is kept as long as the replica's
    ``X-Accel-Expires`` says, until the current second ends; its ``Cache-Control:
    stale-while-revalidate=1`` lets the cache serve the expired copy for one more second
    while a single request refreshes it. Serving stale copies "while updating" without that
    bound would hand the first reader after a quiet spell a copy as old as the quiet spell.
    nginx reads ``stale-while-revalidate`` only when ``Cache-Control`` comes before
    ``X-Accel-Expires`` in the answer (``api.routes`` sends them in that order).
    """
    common = f"""include {plan.run_dir}/starting.conf;
proxy_pass http://serve_front;
proxy_cache encore;
proxy_cache_key $uri|$encoding_variant;
{UPSTREAM_HEADERS}proxy_set_header Accept-Encoding $encoding_variant;
proxy_cache_valid 200 {FRESH_SECONDS}s;
proxy_cache_lock on;
proxy_cache_lock_timeout 5s;
proxy_cache_lock_age 5s;
proxy_cache_background_update on;
proxy_cache_revalidate on;
proxy_no_cache $not_for_others;
"""
    if live:
        return common + """proxy_ignore_headers Expires Vary Set-Cookie;
proxy_cache_use_stale error timeout http_500 http_502 http_503 http_504;
"""
    return common + """proxy_ignore_headers Cache-Control Expires Vary Set-Cookie;
proxy_cache_use_stale updating error timeout http_500 http_502 http_503 http_504;
"""


class CacheProcess:
    """One nginx started for this service, ended with it (and with the process that started
    it, even on SIGKILL, through the parent-death signal)."""

    def __init__(self, plan: CachePlan, process: subprocess.Popen):
        self.plan = plan
        self.process = process

    def mark_ready(self) -> None:
        """Pass requests to Serve from now on (until now nginx answered 503 ``starting``)."""
        self.plan.starting_flag.unlink(missing_ok=True)

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
    """Write the config, start nginx in the foreground as our child, wait until it listens.

    It answers 503 ``starting`` to everything until ``mark_ready``."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    plan.run_dir.chmod(0o755)  # nginx's workers look for the starting flag in it (a refused look is a 500)
    plan.starting_flag.touch()
    shutil.rmtree(plan.store_dir, ignore_errors=True)
    plan.store_dir.mkdir(parents=True)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (plan.run_dir / name).mkdir(exist_ok=True)
    if plan.worker_user:
        entry = pwd.getpwnam(plan.worker_user)
        for folder in [plan.store_dir, *(plan.run_dir / n for n in ("body", "proxy", "fastcgi", "uwsgi", "scgi"))]:
            os.chown(folder, entry.pw_uid, entry.pw_gid)
    (plan.run_dir / "starting.conf").write_text(render_starting_gate(plan))
    (plan.run_dir / "live.conf").write_text(render_cached_location(plan, live=True))
    (plan.run_dir / "fixed.conf").write_text(render_cached_location(plan, live=False))
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
