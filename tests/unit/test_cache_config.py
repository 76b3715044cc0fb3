"""The HTTP cache's nginx configuration, rendered without starting anything."""

from __future__ import annotations

import re
import subprocess

import pytest

from encore.cache import (CACHED_EXACT_PATHS, UPSTREAM_HEADERS, CachePlan, nginx_binary, render_cached_location,
                          render_config, render_starting_gate)


@pytest.fixture
def plan(tmp_path) -> CachePlan:
    return CachePlan("127.0.0.1", 18500, 18600, tmp_path / "run", tmp_path / "objects")


def test_only_the_public_objects_are_cached(plan):
    config = render_config(plan)
    cached = re.findall(r"location (?:= |\^~ )(\S+) \{ include .*(?:live|fixed)\.conf; \}", config)
    assert sorted(cached) == sorted([*CACHED_EXACT_PATHS, "/static/"])
    assert re.search(r"location / \{\n\s+include \S+starting.conf;\n\s+proxy_pass http://serve_front;\n\s+\}", config), "the rest passes"


def test_an_answer_to_a_member_is_never_stored_and_the_client_address_is_overwritten(plan):
    for live in (True, False):
        assert "proxy_no_cache $not_for_others;" in render_cached_location(plan, live)
    assert 'map $http_authorization $not_for_others {\n        "" 0;\n        default 1;' in render_config(plan)
    config = render_config(plan)
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in config, "set, never appended to what the client sent"
    assert "proxy_set_header X-Real-IP $remote_addr;" in config


def test_the_cached_locations_send_serve_the_same_headers_as_the_others(plan):
    """A location with a ``proxy_set_header`` of its own inherits none from the server: the
    cache's refreshes went to Serve without keep-alive, the client's address or the header
    that spares Serve its disconnect-watching tasks."""
    for live in (True, False):
        cached = render_cached_location(plan, live)
        for header in ('Connection "";', "X-Forwarded-For $remote_addr;", 'X-Request-Disconnect-Disabled "?1";'):
            assert f"proxy_set_header {header}" in cached
    assert UPSTREAM_HEADERS.splitlines()[0].strip() in render_config(plan)


def test_misses_are_collapsed_and_stale_copies_served_while_updating(plan):
    for live in (True, False):
        cached = render_cached_location(plan, live)
        for directive in ("proxy_cache_lock on;", "proxy_cache_background_update on;", "proxy_cache_valid 200 1s;"):
            assert directive in cached
        assert "X-Accel-Expires" not in cached.split("proxy_ignore_headers")[1].split(";")[0], "the replicas' expiry is obeyed"


def test_a_live_object_is_served_stale_only_as_long_as_the_replica_allows(plan):
    """``updating`` in ``proxy_cache_use_stale`` would outrank the replica's
    ``stale-while-revalidate=1`` and hand the first reader after a quiet spell a copy as old
    as the spell; live objects obey the replica's ``Cache-Control`` instead."""
    live = render_cached_location(plan, live=True)
    assert not re.search(r"proxy_cache_use_stale [^;]*updating", live)
    assert "Cache-Control" not in live.split("proxy_ignore_headers")[1].split(";")[0]
    assert re.search(r"proxy_cache_use_stale [^;]*updating", render_cached_location(plan, live=False))


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (make cache)")
def test_nginx_accepts_the_configuration(plan):
    plan.run_dir.mkdir(parents=True)
    (plan.run_dir / "starting.conf").write_text(render_starting_gate(plan))
    (plan.run_dir / "live.conf").write_text(render_cached_location(plan, live=True))
    (plan.run_dir / "fixed.conf").write_text(render_cached_location(plan, live=False))
    config = plan.run_dir / "nginx.conf"
    config.write_text(render_config(plan).replace(f"user {plan.worker_user};\n", "") if plan.worker_user else render_config(plan))
    checked = subprocess.run([nginx_binary(), "-t", "-q", "-p", str(plan.run_dir), "-e", str(plan.run_dir / "error.log"),
                              "-c", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
