"""The HTTP cache's own answers, through a real nginx with the config ``encore serve`` writes,
in front of a stub upstream: while starting every request is a JSON 503 ``starting``; the
refusals nginx makes itself (a long URL or header, a large body, the upstream down) are JSON
problems with a code and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from encore.cache import CachePlan, nginx_binary, plan_for, start_cache

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (`make cache`)")


class Upstream(BaseHTTPRequestHandler):
    """Serve's front, reduced to what the cache needs: a JSON answer to every path."""

    def do_GET(self):
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def plan() -> CachePlan:
    """The service's own plan on free ports (its folders are where nginx's workers may read them)."""
    plan = plan_for("127.0.0.1", free_port(), free_port())
    yield plan
    shutil.rmtree(plan.run_dir, ignore_errors=True)


@pytest.fixture
def cache(plan):
    process = start_cache(plan, nginx_binary())
    yield process
    process.stop()


@pytest.fixture
def upstream(plan):
    server = ThreadingHTTPServer(("127.0.0.1", plan.upstream_port), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(plan: CachePlan, path: str = "/") -> str:
    return f"http://127.0.0.1:{plan.listen_port}{path}"


def assert_problem(answer: httpx.Response, status: int, code: str) -> None:
    assert (answer.status_code, answer.headers.get("content-type")) == (status, "application/json"), answer.text
    body = answer.json()
    assert body["code"] == code and body["message"], body
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/healthz", "/api/holds", "/api/seats", "/static/app.js", "/"])
def test_while_starting_every_path_is_503_starting_even_with_serve_up(plan, cache, upstream, path):
    for method in ("GET", "POST"):
        answer = httpx.request(method, url(plan, path), timeout=5)
        assert_problem(answer, 503, "starting")
        assert answer.headers["retry-after"] == "1"


def test_once_ready_requests_reach_serve(plan, cache, upstream):
    cache.mark_ready()
    answer = httpx.get(url(plan, "/api/holds?x=1"), timeout=5)
    assert answer.status_code == 200 and answer.json() == {"path": "/api/holds?x=1"}
    assert httpx.get(url(plan, "/healthz"), timeout=5).status_code == 200


def test_serve_down_is_503_unavailable_with_retry_after(plan, cache):
    cache.mark_ready()
    for path in ("/api/holds", "/api/seats", "/healthz"):
        answer = httpx.get(url(plan, path), timeout=5)
        assert_problem(answer, 503, "unavailable")
        assert answer.headers["retry-after"] == "2"


@pytest.mark.parametrize("ready", [False, True], ids=["starting", "ready"])
def test_the_fronts_own_refusals_are_json_problems(plan, cache, upstream, ready):
    if ready:
        cache.mark_ready()
    with httpx.Client(timeout=5) as http:
        assert_problem(http.get(url(plan, "/api/seats/" + "a" * 20_000)), 414, "uri_too_long")
        assert_problem(http.get(url(plan, "/api/seats"), headers={"X-Padding": "a" * 20_000}), 431, "headers_too_large")
        assert_problem(http.post(url(plan, "/api/holds"), content=b"{" + b" " * 20_000 + b"}",
                                 headers={"Content-Type": "application/json"}), 413, "body_too_large")


def test_an_unreadable_request_line_is_a_json_400(plan, cache):
    with socket.create_connection(("127.0.0.1", plan.listen_port), timeout=5) as raw:
        raw.sendall(b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = raw.recv(65536).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"Cache-Control: no-store" in head and b"Content-Type: application/json" in head, head
    assert json.loads(body)["code"] == "bad_request"
