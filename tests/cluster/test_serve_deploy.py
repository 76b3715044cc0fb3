"""The operator's path on a Ray cluster, on this machine: ``ray start --head`` and a second node
(``ray start --address``), each on ports of its own, with the front's switches and every ENCORE_*
setting in the environment of ``ray start``. Then:

* ``encore serve --address`` deploys onto that cluster, runs the journey through its own HTTP
  cache, and on stop takes off only what it deployed: the cluster, its Serve front and its
  HAProxy go on, and its record owns none of the cluster's processes;
* ``serve deploy serve_config.yaml`` deploys the same app with no setting in the file;
  ``serve status`` says RUNNING, ``ray status`` lists both nodes, both nodes' fronts answer,
  and the journey runs through ``encore cache`` in front of the head's front.

The cluster has a private ``--temp-dir`` (so a ``ray.init()`` elsewhere on the machine never
joins it), its own token for the dashboard, and is ended by that folder, never by
``ray stop`` (which ends every Ray process on the machine).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from encore.cli import FRONT_ENVIRONMENT
from encore.leftovers import RunRecord, end, processes_of, processes_under
from harness.service import (
    ROOT, LiveService, launch, one_service_at_a_time, stop_service, wait_until_healthy, wait_until_port_free,
)
from tests.e2e.test_journey import journey

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

BASE = int(os.environ.get("ENCORE_TEST_CLUSTER_PORT", "18600"))
GCS, DASHBOARD, FRONT, CACHE = BASE, BASE + 1, BASE + 2, BASE + 5
WORKER_FRONT = BASE + 22
BIN = Path(sys.executable).parent
DEPLOYED_SECONDS_MAX = 120


def node_ports(offset: int) -> list[str]:
    """Every port a node opens, fixed, so that the cluster never takes one another test expects."""
    first = BASE + offset
    return [
        f"--dashboard-agent-listen-port={first + 7}", f"--dashboard-agent-grpc-port={first + 8}",
        f"--metrics-export-port={first + 9}", f"--runtime-env-agent-port={first + 10}",
        f"--node-manager-port={first + 11}", f"--object-manager-port={first + 12}",
        f"--min-worker-port={BASE + 100 + offset * 5}", f"--max-worker-port={BASE + 199 + offset * 5}",
    ]


@dataclass
class Cluster:
    env: dict
    folder: Path

    def run(self, *command: str, timeout: float = 120, **extra_env) -> str:
        done = subprocess.run(command, env={**self.env, **extra_env}, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def serve_status(self) -> dict:
        return yaml.safe_load(self.run(str(BIN / "serve"), "status", "-a", f"http://127.0.0.1:{DASHBOARD}"))

    def wait_for_app(self, wanted: str | None, fronts: int = 1) -> dict:
        """``serve status`` until the app's status is ``wanted`` (``None``: until it is gone) and
        at least ``fronts`` proxies are all HEALTHY."""
        deadline = time.monotonic() + DEPLOYED_SECONDS_MAX
        while True:
            status = self.serve_status()
            app = (status.get("applications") or {}).get("encore")
            proxies = list((status.get("proxies") or {}).values())
            if (app or {}).get("status") == wanted and len(proxies) >= fronts and set(proxies) == {"HEALTHY"}:
                return status
            assert time.monotonic() < deadline, f"the app is {app}, not {wanted}; the proxies: {proxies}"
            time.sleep(2)


@pytest.fixture(scope="module")
def cluster(make_mysql_database):
    folder = Path(tempfile.mkdtemp(prefix="encore-cluster-"))
    token = folder / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {
        **os.environ, **FRONT_ENVIRONMENT,
        "RAY_ADDRESS": f"127.0.0.1:{GCS}", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_DISABLE_USAGE_STATS": "1", "PYTHONUNBUFFERED": "1",
        "RAY_SERVE_HAPROXY_STATS_PORT": str(BASE + 3), "RAY_SERVE_HAPROXY_METRICS_PORT": str(BASE + 4),
        "ENCORE_DB_URL": make_mysql_database(), "ENCORE_SECRET_KEY": "cluster-secret-" + uuid.uuid4().hex,
        "ENCORE_QUEUE_ADMIT_PER_SECOND": "1000",
        # the public port (the cache's) is a setting too: payment callbacks come back to it
        "ENCORE_PORT": str(CACHE), "ENCORE_SERVE_PORT": str(FRONT),
    }
    since = time.time() - 1
    with one_service_at_a_time():
        started = Cluster(env, folder)
        try:
            started.run(
                str(BIN / "ray"), "start", "--head", f"--port={GCS}", "--node-ip-address=127.0.0.1",
                "--dashboard-host=127.0.0.1", f"--dashboard-port={DASHBOARD}", f"--ray-client-server-port={BASE + 6}",
                "--num-cpus=1", "--object-store-memory=100000000", f"--temp-dir={folder / 'head'}",
                "--disable-usage-stats", *node_ports(0),
            )
            started.run(
                str(BIN / "ray"), "start", f"--address=127.0.0.1:{GCS}", "--node-ip-address=127.0.0.1",
                "--num-cpus=1", "--object-store-memory=100000000", f"--temp-dir={folder / 'worker'}",
                "--disable-usage-stats", *node_ports(20),
                RAY_SERVE_WORKER_PROXY_HTTP_PORT=str(WORKER_FRONT), RAY_SERVE_HAPROXY_STATS_PORT=str(WORKER_FRONT + 1),
                RAY_SERVE_HAPROXY_METRICS_PORT=str(WORKER_FRONT + 2),
            )
            yield started
        finally:
            # twice: a worker the raylet was starting while the first round ended it comes late
            stubborn = end(processes_under(str(folder), since)) + end(processes_under(str(folder), since))
            shutil.rmtree(folder, ignore_errors=True)
            assert not stubborn, f"processes of the test cluster would not end: {stubborn}"


def test_encore_serve_deploys_onto_the_cluster_and_leaves_it_running(cluster, make_mysql_database, tmp_path):
    env = {**cluster.env, "ENCORE_DB_URL": make_mysql_database()}
    wait_until_port_free(CACHE)
    service = launch(env, tmp_path / "joined.log")  # RAY_ADDRESS is in env: `encore serve --address` by default
    try:
        assert "on the Ray cluster at 127.0.0.1:" in service.log_path.read_text()
        journey(service)
    finally:
        stop_service(service.process)

    assert "took encore and its actors off the cluster" in service.log_path.read_text()
    cluster.wait_for_app(None)
    assert httpx.get(f"http://127.0.0.1:{FRONT}/-/healthz", timeout=10).status_code == 200
    record = RunRecord.load(CACHE)
    assert record.joined_cluster and processes_of(record) == []


def test_serve_deploy_runs_the_same_app_with_its_settings_from_the_environment(cluster, tmp_path):
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    assert "runtime_env" not in config["applications"][0], "no setting is written in the file"
    config["http_options"]["port"] = FRONT
    (tmp_path / "serve_config.yaml").write_text(yaml.safe_dump(config))
    cluster.run(str(BIN / "serve"), "deploy", str(tmp_path / "serve_config.yaml"), "-a", f"http://127.0.0.1:{DASHBOARD}")

    # a replica takes a CPU and each node has one: one replica, and so one front, on each node
    status = cluster.wait_for_app("RUNNING", fronts=2)
    assert status["applications"]["encore"]["deployments"]["encore-ingress"]["replica_states"] == {"RUNNING": 2}
    nodes = cluster.run(str(BIN / "ray"), "status")
    assert nodes.count(" node_") == 2, nodes
    assert listening_hosts(DASHBOARD) == {"127.0.0.1"}
    assert httpx.get(f"http://127.0.0.1:{WORKER_FRONT}/api/venue", timeout=30).status_code == 200

    wait_until_port_free(CACHE)
    cache = subprocess.Popen([sys.executable, "-m", "encore.cli", "cache"], cwd=ROOT, env=cluster.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{CACHE}"
        wait_until_healthy(url)
        journey(LiveService(url, cluster.env["ENCORE_DB_URL"], cluster.env, tmp_path / "none.log", cache))
        assert "encore_replica_info" in httpx.get(f"{url}/metrics", timeout=10).text
        reads = [httpx.get(f"{url}/api/seats", timeout=10) for _ in range(2)]
        assert reads[1].headers["X-Cache"] == "HIT", "the cache answers in front of the cluster's front"
    finally:
        cache.send_signal(signal.SIGTERM)
        cache.wait(30)


def listening_hosts(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


