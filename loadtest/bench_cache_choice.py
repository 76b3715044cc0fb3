"""Which HTTP cache to put in front of Serve: nginx, HAProxy's own cache or Varnish, measured.

Each candidate runs with one worker process (or thread) in front of the same upstream (the
reference app of ``loadtest/reference_app.py``: the 15 KB seat map, gzip, ETag) and is asked
for the seat map by wrk at 256 connections, gzip and uncompressed, in alternating rounds;
the upstream's own figure is measured in the same rounds. Printed: requests/s, p95 and each
candidate's ratio to the upstream. What a cache must also do (collapse concurrent misses,
serve stale while refreshing, a freshness under a second) is listed beside the figures.

    python -m loadtest.bench_cache_choice [--rounds 2] [--seconds 5]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from encore.cache import plan_for, start_cache
from loadtest import wrk

UPSTREAM_PORT = 18910
PORTS = {"nginx": 18911, "varnish": 18912, "haproxy": 18913}

VCL = """vcl 4.1;
backend upstream { .host = "127.0.0.1"; .port = "%(upstream)d"; }
sub vcl_recv {
    if (req.method == "GET" && req.url == "/api/seats") { unset req.http.Authorization; return (hash); }
    return (pass);
}
sub vcl_backend_response { set beresp.ttl = 0.8s; set beresp.grace = 10s; }
sub vcl_deliver { if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; } }
"""

HAPROXY = """global
    nbthread 1
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
cache seats
    total-max-size 64
    max-object-size 65536
    max-age 1
    process-vary on
backend upstream
    http-request cache-use seats
    http-response cache-store seats
    server s1 127.0.0.1:%(upstream)d
frontend front
    bind 127.0.0.1:%(port)d
    default_backend upstream
"""

FEATURES = {
    "nginx": "collapses misses (proxy_cache_lock), serves stale while updating; freshness in whole seconds "
             "(an object lives until the second after next: up to ~2 s at `valid 1s`)",
    "varnish": "collapses misses (waiting list), serves stale while updating (grace); fractional TTLs",
    "haproxy": "no collapsing of concurrent misses, no stale-while-updating; max-age in whole seconds",
}


def start_upstream() -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "loadtest.reference_app:app", "--port", str(UPSTREAM_PORT), "--workers", "1",
         "--log-level", "warning", "--no-access-log"], cwd=Path(__file__).resolve().parents[1])
    _wait_for(UPSTREAM_PORT)
    return process


def _wait_for(port: int, seconds: float = 20) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start_candidates(folder: Path) -> dict[str, object]:
    started: dict[str, object] = {}
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if Path(nginx).exists():
        started["nginx"] = start_cache(plan_for("127.0.0.1", PORTS["nginx"], UPSTREAM_PORT), nginx)
        started["nginx"].mark_ready()
    varnishd = shutil.which("varnishd") or "/usr/sbin/varnishd"
    if Path(varnishd).exists():
        folder.chmod(0o755)  # varnishd reads its VCL as its own user
        vcl = folder / "bench.vcl"
        vcl.write_text(VCL % {"upstream": UPSTREAM_PORT})
        started["varnish"] = subprocess.Popen(
            [varnishd, "-F", "-a", f"127.0.0.1:{PORTS['varnish']}", "-f", str(vcl), "-s", "malloc,64m",
             "-n", str(folder / "varnish"), "-p", "thread_pools=1"], stdout=subprocess.DEVNULL)
        _wait_for(PORTS["varnish"])
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if Path(haproxy).exists():
        config = folder / "haproxy.cfg"
        config.write_text(HAPROXY % {"upstream": UPSTREAM_PORT, "port": PORTS["haproxy"]})
        started["haproxy"] = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=subprocess.DEVNULL)
        _wait_for(PORTS["haproxy"])
    return started


def stop(process) -> None:
    if hasattr(process, "stop"):
        process.stop()
    else:
        process.terminate()
        process.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args(argv)
    gzip_header = 'wrk.headers["Accept-Encoding"] = "gzip"'
    with tempfile.TemporaryDirectory() as folder:
        Path(folder).chmod(0o755)  # varnishd reads its VCL as its own user
        upstream = start_upstream()
        candidates = start_candidates(Path(folder))
        try:
            for name, port in [("upstream", UPSTREAM_PORT), *((n, PORTS[n]) for n in candidates)]:
                wrk.run("warm-up", f"http://127.0.0.1:{port}/api/seats", 1, 64, script=gzip_header)
            results: dict[tuple[str, str], list[wrk.Result]] = {}
            for round_ in range(args.rounds):
                for encoding, script in (("gzip", gzip_header), ("identity", "")):
                    for name, port in [("upstream", UPSTREAM_PORT), *((n, PORTS[n]) for n in candidates)]:
                        result = wrk.run(f"{name} {encoding}", f"http://127.0.0.1:{port}/api/seats", args.seconds, 256,
                                         script=script)
                        results.setdefault((name, encoding), []).append(result)
                        print(f"round {round_ + 1}: {result.line()}", flush=True)
        finally:
            for process in candidates.values():
                stop(process)
            upstream.terminate()
            upstream.wait(timeout=10)
    print("\nmedian per candidate (ratio to the plain uvicorn upstream of the same rounds):")
    for encoding in ("gzip", "identity"):
        base = _median([r.per_second for r in results[("upstream", encoding)]])
        for name in ["upstream", *candidates]:
            runs = results[(name, encoding)]
            rate = _median([r.per_second for r in runs])
            p95 = _median([r.p95_ms for r in runs])
            print(f"  {name:9} {encoding:8} {rate:9,.0f} req/s  p95 {p95:6.1f} ms  {rate / base:5.1f}x upstream")
    print()
    for name in candidates:
        print(f"  {name}: {FEATURES[name]}")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


if __name__ == "__main__":
    main()
