"""Serve's HAProxy front, variant against variant, paired within one run.

Serve writes its HAProxy configuration and gives no switch for most of it. This benchmark
starts the service once, copies the configuration Serve generated, and starts one more
HAProxy per variant beside Serve's own (same binary, same backends: the same two replicas),
each on its own port. Then it sends the same load to each variant in turn, round after
round (A B C … A B C …), so every variant meets the same machine drift, and prints per
variant the medians of requests/s, p95, HAProxy's CPU per 1,000 requests and the replicas'
CPU per 1,000 requests, and each as a ratio to Serve's own configuration in the same round.

Variants: ``nbthread`` 4 (Serve's default, ``RAY_SERVE_HAPROXY_NBTHREAD``), 2 and 1; the
per-request access log off (the global ``log`` target removed, so ``option httplog`` has
nowhere to write); and ``x-request-disconnect-disabled: ?1`` set on every request (what the
HTTP cache sends; here it is what a request straight to Serve's front would get).

    python -m loadtest.bench_front [--seconds 8] [--rounds 3] [--connections 256] [--path /static-ceiling]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from harness.service import one_service_at_a_time, start_service, stop_service
from loadtest import wrk
from loadtest.bench_core import bench_database
from loadtest.bench_queue import REPLICA_KIND, ServiceCPU
from loadtest.sellout import free_port

DISCONNECT_HEADER = "    http-request set-header x-request-disconnect-disabled ?1\n"
VARIANTS = {  # name: (nbthread, access log, disconnect header)
    "serve default (4 threads, log)": (4, True, False),
    "2 threads": (2, True, False),
    "1 thread": (1, True, False),
    "no access log": (4, False, False),
    "disconnect header": (4, True, True),
}


def serve_haproxy(service_pid: int) -> tuple[str, Path]:
    """Serve's HAProxy: its binary and the configuration it runs."""
    for process in [psutil.Process(service_pid), *psutil.Process(service_pid).children(recursive=True)]:
        argv = process.cmdline()
        if argv and argv[0].endswith("/haproxy") and "-f" in argv:
            return argv[0], Path(argv[argv.index("-f") + 1])
    for process in psutil.process_iter(["cmdline"]):
        argv = process.info["cmdline"] or []
        if argv and argv[0].endswith("/haproxy") and "-f" in argv and "haproxy-serve" in argv[argv.index("-f") + 1]:
            try:
                if process.create_time() >= psutil.Process(service_pid).create_time():
                    return argv[0], Path(argv[argv.index("-f") + 1])
            except psutil.Error:
                continue
    raise RuntimeError("Serve's HAProxy not found")


def variant_config(generated: str, port: int, threads: int, access_log: bool, disconnect_header: bool) -> str:
    """Serve's configuration with only the variant's changes, minus what would clash with the
    running HAProxy (its admin socket, state file, stats and metrics ports)."""
    text = re.sub(r"\n    stats socket [^\n]*", "", generated)
    text = re.sub(r"\n    (server-state-base|server-state-file|load-server-state-from-file)[^\n]*", "", text)
    text = re.sub(r"\nfrontend prometheus\n(    [^\n]*\n)+", "\n", text)
    text = re.sub(r"\nlisten stats\n(  [^\n]*\n?)+", "\n", text)
    text = re.sub(r"nbthread \d+", f"nbthread {threads}", text)
    text = re.sub(r"(frontend http_frontend\n    bind )[^\n]+", rf"\g<1>127.0.0.1:{port}", text)
    if not access_log:
        text = re.sub(r"\n    log [0-9./:]+ local0 info", "", text)
    if disconnect_header:
        text = re.sub(r"(frontend http_frontend\n    bind [^\n]+\n)", lambda m: m.group(1) + DISCONNECT_HEADER, text)
    return text


def start_variants(binary: str, generated: str, folder: Path) -> dict[str, tuple[subprocess.Popen, int]]:
    started = {}
    for name, (threads, access_log, header) in VARIANTS.items():
        port = free_port()
        path = folder / f"variant-{port}.cfg"
        path.write_text(variant_config(generated, port, threads, access_log, header))
        process = subprocess.Popen([binary, "-db", "-f", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started[name] = (process, port)
    deadline = time.monotonic() + 20
    for name, (process, port) in started.items():
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"variant {name!r} did not start (exit {process.poll()})")
            time.sleep(0.3)
    return started


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--path", default="/static-ceiling", help="the route sent to every variant")
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="encore-bench-front-"))
    rows: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    with bench_database(False, folder) as db_url, one_service_at_a_time():
        service = start_service(db_url, folder / "service.log", ingress_replicas=args.replicas)
        variants = {}
        try:
            binary, config = serve_haproxy(service.process.pid)
            variants = start_variants(binary, config.read_text(), folder)
            service_cpu = ServiceCPU(service.process.pid)
            print(f"{service.url} healthy; variants of {config} on ports "
                  f"{', '.join(str(port) for _, port in variants.values())}", flush=True)
            for name, (_, port) in variants.items():
                wrk.run("warm-up", f"http://127.0.0.1:{port}{args.path}", wrk.WARM_UP_SECONDS, args.connections)
            for round_number in range(1, args.rounds + 1):
                for name, (process, port) in variants.items():
                    front = psutil.Process(process.pid)
                    front_before = cpu_seconds(front)
                    result, cores, seconds = service_cpu.cores_while(lambda: wrk.run(
                        name, f"http://127.0.0.1:{port}{args.path}", args.seconds, args.connections))
                    per_thousand = 1000 / max(1, result.requests)
                    rows[name].append({
                        "rps": result.per_second, "p95": result.p95_ms,
                        "front_ms": (cpu_seconds(front) - front_before) * 1000 * per_thousand,
                        "replica_ms": cores.get(REPLICA_KIND, 0.0) * seconds * 1000 * per_thousand,
                        "codes": result.codes,
                    })
                    print(f"round {round_number}  {result.line()}  HAProxy {rows[name][-1]['front_ms']:.0f} ms, "
                          f"replicas {rows[name][-1]['replica_ms']:.0f} ms CPU per 1,000", flush=True)
        finally:
            for process, _ in variants.values():
                process.terminate()
                process.wait(timeout=10)
            stop_service(service.process)
    report(rows, args)


def report(rows: dict[str, list[dict]], args) -> None:
    base = rows[next(iter(VARIANTS))]
    print(f"\n{args.path}, {args.connections} connections, {args.rounds} rounds of {args.seconds} s per variant, "
          f"variants in turn; medians, and the median of each round's ratio to Serve's default")
    print(f"{'variant':32} {'req/s':>8} {'×':>6} {'p95 ms':>7} {'HAProxy CPU ms/1k':>18} {'×':>6} "
          f"{'replicas CPU ms/1k':>19} {'×':>6}")
    for name, runs in rows.items():
        def median(key):
            return statistics.median(run[key] for run in runs)

        def ratio(key):
            return statistics.median(run[key] / max(1e-9, b[key]) for run, b in zip(runs, base))

        print(f"{name:32} {median('rps'):8,.0f} {ratio('rps'):6.2f} {median('p95'):7.0f} {median('front_ms'):18.0f} "
              f"{ratio('front_ms'):6.2f} {median('replica_ms'):19.0f} {ratio('replica_ms'):6.2f}")


if __name__ == "__main__":
    main()
