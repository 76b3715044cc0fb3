"""``encore serve`` ends what its last run on the port left running, and nothing else: the
processes are found by that run's identity (its Ray session folder among their open files or
in their command line, its node id in a command line, its nginx by pid and start time),
never by a name, and a live ``encore serve`` on the port is refused rather than ended."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from encore import leftovers
from encore.leftovers import AlreadyRunning, ProcessMark, RunRecord, end_leftovers, processes_of

NODE_ID = "ab" * 28
SLEEPER = "import os, time\nif os.environ.get('OPEN'): held = open(os.environ['OPEN'], 'a')\nprint('ready', flush=True)\ntime.sleep(120)"


@pytest.fixture
def spawned():
    started: list[subprocess.Popen] = []

    def spawn(*args: str, open_file: Path | None = None) -> subprocess.Popen:
        env = {"OPEN": str(open_file)} if open_file else {}
        process = subprocess.Popen([sys.executable, "-c", SLEEPER, *args], env=env, stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline() == "ready\n"
        return process

    yield spawn
    for process in started:
        process.kill()
        process.wait()


@pytest.fixture
def record(tmp_path, monkeypatch) -> RunRecord:
    """A run whose ``encore serve`` has ended (its pid now belongs to nobody alive)."""
    monkeypatch.setattr(RunRecord, "path_for", staticmethod(lambda port: tmp_path / f"run-{port}.json"))
    owner = subprocess.Popen(["sleep", "0.3"])
    mark = ProcessMark.of(owner.pid)
    owner.wait()
    session = tmp_path / "ray" / f"session_2026-12-07_00-00-00_000000_{owner.pid}"
    (session / "logs").mkdir(parents=True)
    return RunRecord(port=18999, owner=mark, ray_temp_dir=str(tmp_path / "ray"))


def test_the_runs_processes_are_found_by_its_identity_and_nothing_else(record, spawned, tmp_path):
    session = Path(record.session_dirs()[0])
    worker = spawned(open_file=session / "logs" / "worker.out")
    raylet = spawned(f"--session_dir={session}")
    haproxy = spawned("-f", f"/tmp/haproxy-serve/{NODE_ID}/haproxy.cfg")
    stranger = spawned(open_file=tmp_path / "someone-elses.log")
    other_node = spawned("-f", "/tmp/haproxy-serve/" + "cd" * 28 + "/haproxy.cfg")
    record.ray_node_id = NODE_ID

    assert sorted(p.pid for p in processes_of(record)) == sorted([worker.pid, raylet.pid, haproxy.pid])

    record.save()
    assert end_leftovers(record.port) == 3
    assert [p.wait(5) for p in (worker, raylet, haproxy)] == [-15, -15, -15]  # SIGTERM was enough
    assert stranger.poll() is None and other_node.poll() is None
    assert not RunRecord.path_for(record.port).exists()


def test_the_session_folder_is_found_by_the_owners_pid_when_the_run_died_before_writing_it(record):
    assert record.ray_session_dir is None
    assert [Path(d).name for d in record.session_dirs()] == [f"session_2026-12-07_00-00-00_000000_{record.owner.pid}"]


def test_a_process_older_than_the_run_is_never_taken_for_one_of_its_own(record, spawned):
    """A pid may have been reused; a process started before the run cannot be the run's."""
    older = spawned(f"--session_dir={record.session_dirs()[0]}")
    late = RunRecord(record.port, ProcessMark(record.owner.pid, time.time() + 5), record.ray_temp_dir,
                     record.session_dirs()[0])
    assert processes_of(late) == []


def test_recorded_nginx_processes_count_only_with_their_start_time(record, spawned):
    nginx = spawned()
    record.cache = [ProcessMark(nginx.pid, psutil.Process(nginx.pid).create_time() - 100)]
    assert processes_of(record) == []
    record.cache = [ProcessMark.of(nginx.pid)]
    assert [p.pid for p in processes_of(record)] == [nginx.pid]


def test_a_running_encore_serve_is_refused_not_ended(record, spawned):
    running = spawned()
    RunRecord(record.port, ProcessMark.of(running.pid), record.ray_temp_dir).save()
    with pytest.raises(AlreadyRunning, match=f"pid {running.pid}"):
        end_leftovers(record.port)
    assert running.poll() is None


def test_a_port_taken_by_something_else_is_refused_with_its_owner():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit, match=f"port {port} is taken by pid"):
            leftovers.refuse_taken_ports(port)


def test_a_process_holding_the_caches_socket_is_the_runs_even_when_unrecorded(record):
    """nginx's master respawns a worker killed before it: that worker is in no record by pid,
    but it inherits the master's listening socket, which no other process can hold."""
    import os
    import socket

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], pass_fds=[listening.fileno()])
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        record.cache_sockets = [os.readlink(f"/proc/{os.getpid()}/fd/{listening.fileno()}")]
        found = {process.pid for process in processes_of(record)}
        assert holder.pid in found and stranger.pid not in found
        record.cache_sockets = []
        assert holder.pid not in {process.pid for process in processes_of(record)}
    finally:
        for process in (holder, stranger):
            process.kill()
            process.wait()
        listening.close()


def test_a_run_that_joined_a_cluster_leaves_the_clusters_processes_alone(record, spawned):
    """``encore serve --address``: the raylet, workers and HAProxy belong to the cluster, even
    when the cluster's session folder happens to carry the run's pid in its name."""
    session = record.session_dirs()[0]
    raylet = spawned(f"--session_dir={session}")
    record.joined_cluster = True
    record.save()

    assert processes_of(RunRecord.load(record.port)) == []
    assert end_leftovers(record.port) == 0
    assert raylet.poll() is None


def test_a_ray_start_cluster_is_found_by_its_temp_dir_and_nothing_else(spawned, tmp_path):
    """How the cluster test stops its ``ray start`` nodes: ``ray stop`` would end every Ray of the machine."""
    folder = tmp_path / "cluster"
    (folder / "logs").mkdir(parents=True)
    raylet = spawned(f"--temp-dir={folder}/head")
    worker = spawned(open_file=folder / "logs" / "worker.out")
    spawned(f"--temp-dir={tmp_path}/another-cluster")

    assert sorted(p.pid for p in leftovers.processes_under(str(folder), since=0)) == sorted([raylet.pid, worker.pid])
