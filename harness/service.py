"""Start and stop the whole service as its own process group, as an operator would.

Used by the end-to-end tests and the benchmarks: `python -m encore.cli serve` with ENCORE_*
settings in its environment, waited for until `/healthz` answers, and stopped with SIGTERM
(which shuts Ray and HAProxy down) followed by a kill of whatever is left of its group.
Only one service runs at a time on a machine (a file lock), since ports and cores are shared.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil


ROOT = Path(__file__).resolve().parents[1]
PORT = int(os.environ.get("ENCORE_TEST_PORT", "18000"))
START_SECONDS_MAX = 150
LOCK_PATH = "/tmp/encore-service.lock"
READY_LINE = "Encore is selling on"
METRICS_SETTLE_SECONDS = 2.0  # replicas report their figures to the metrics board once a second


_held_here = False


@contextmanager
def one_service_at_a_time():
    """Two services on one 2-core machine would fight for ports and CPU: take turns."""
    global _held_here
    if _held_here:
        raise RuntimeError("this process already runs a service: use one service fixture per test module")
    with open(LOCK_PATH, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _held_here = True
        try:
            yield
        finally:
            _held_here = False
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class LiveService:
    url: str
    db_url: str
    env: dict
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def scrape(self, settle_seconds: float = METRICS_SETTLE_SECONDS) -> dict:
        """``/metrics`` read once, by family, after ``settle_seconds``: the replica that answers
        shows the others' figures as they last reported them, at most about a second old."""
        from prometheus_client.parser import text_string_to_metric_families

        time.sleep(settle_seconds)
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        return {family.name: family for family in text_string_to_metric_families(text)}

    def poll_counters(self, replicas: int) -> dict[str, dict[str, int]]:
        """Each replica's queue-poll counters (``remembered``, ``verified``) by replica, from one scrape."""
        seen: dict[str, dict[str, int]] = defaultdict(dict)
        for sample in self.scrape()["encore_queue_polls"].samples:
            seen[sample.labels["replica"]][sample.labels["tokens"]] = int(sample.value)
        if len(seen) != replicas:
            raise RuntimeError(f"{len(seen)} replicas on /metrics, not {replicas}")
        return dict(seen)


def wait_until_port_free(port: int, seconds: float = 60) -> None:
    """A service stopped a moment ago may still hold the port; never mistake it for ours."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"port {port} is still taken by another process")


def wait_until_healthy(url: str, seconds: float = 60) -> None:
    """Until ``url``'s ``/healthz`` answers 200 (a front of a cluster the test started itself)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url}/healthz did not answer 200 within {seconds} s")


def start_service(db_url: str, log_path: Path, **settings) -> LiveService:
    env = {
        **os.environ,
        "ENCORE_DB_URL": db_url,
        "ENCORE_PORT": str(PORT),
        "ENCORE_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
        "ENCORE_QUEUE_ADMIT_PER_SECOND": "1000",
        "RAY_DISABLE_USAGE_STATS": "1",
        "RAY_SERVE_HAPROXY_STATS_PORT": str(PORT + 1),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(PORT + 2),
        "PYTHONUNBUFFERED": "1",
        **{f"ENCORE_{k.upper()}": str(v) for k, v in settings.items()},
    }
    wait_until_port_free(PORT)
    return launch(env, log_path)


def restart_service(service: LiveService, log_path: Path) -> LiveService:
    """The same service again (same store, key and settings) after its processes were killed;
    what they left holding the ports is for ``encore serve`` itself to end, so no waiting here."""
    return launch(service.env, log_path)


def launch(env: dict, log_path: Path) -> LiveService:
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "encore.cli", "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{env['ENCORE_PORT']}"
    deadline = time.monotonic() + START_SECONDS_MAX
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited early; see {log_path}:\n{log_path.read_text()[-3000:]}")
        try:
            # only our own service says it is selling, in our own log
            if READY_LINE in log_path.read_text() and httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return LiveService(url, env["ENCORE_DB_URL"], env, log_path, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop_service(process)
    raise RuntimeError(f"the service did not become healthy in {START_SECONDS_MAX} s; see {log_path}")


def stop_service(process: subprocess.Popen) -> None:
    """SIGTERM lets `encore serve` shut Serve and Ray down; whatever is left of its group is killed."""
    end_group(process, grace_seconds=60)


def end_group(process: subprocess.Popen, grace_seconds: float) -> None:
    """SIGTERM to ``process``, ``grace_seconds`` to end by itself, then SIGKILL to what is left
    of its process group (it was started with ``start_new_session``)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass(frozen=True)
class ServiceProcess:
    """A process of a running service, as it was when seen (its pid may be reused later)."""

    pid: int
    started: float
    command: str
    parent: int

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            return process.create_time() == self.started and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def service_processes(root_pid: int) -> list[ServiceProcess]:
    """Every process the service started: its tree, Ray's workers and HAProxy included."""
    root = psutil.Process(root_pid)
    marks = []
    for process in [root, *root.children(recursive=True)]:
        try:
            command = " ".join(process.cmdline()) or process.name()
            marks.append(ServiceProcess(process.pid, process.create_time(), command, process.ppid()))
        except psutil.Error:
            pass
    return marks


def kill_processes(marks: list[ServiceProcess]) -> None:
    """SIGKILL, children first: a parent killed first could let them end gracefully (nginx's
    master is told of its parent's death, and would stop its workers)."""
    for mark in sorted(marks, key=lambda m: m.started, reverse=True):
        if mark.alive():
            try:
                psutil.Process(mark.pid).send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
