"""What an earlier ``encore serve`` on this port left running, found by that run's own identity
and ended before this one starts.

A ``kill -9`` of ``encore serve`` (or a machine that lost its process tree some other way)
ends only what shares its process group. Serve's HAProxy is a process group of its own and
keeps the port; Ray's workers each run in their own group, so a seat-block actor of the old
run can go on expiring holds in the store beside its new copy (a split brain); nginx's
workers outlive their master and keep the cache's port. Ending them by a name ("raylet",
"haproxy", "nginx") would end other people's services on the same machine, so each run
writes down who it is (``RunRecord``, a file keyed by its port) and the next start ends
only the processes that carry that identity:

* the Ray session folder (its name ends with the driver's pid) in a process's command line
  or among its open files: the raylet, the GCS, the dashboard and every worker (their logs
  are open in it);
* the Ray node id in a command line: Serve's HAProxy (its config is under a folder of that
  name);
* the nginx master and workers recorded by pid and start time.

A run that joined a running cluster (``encore serve --address``) records only itself and its
cache: the cluster's raylet, workers and HAProxy are not its own to end.

A process counts only if it started after the recorded run did, so a reused pid is never
taken for one of ours. If the recorded ``encore serve`` itself is still alive, nothing is
ended and the start is refused: that is a running service, not a leftover.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

TERM_SECONDS = 5
START_SLACK_SECONDS = 1.0


class AlreadyRunning(SystemExit):
    """The recorded ``encore serve`` of this port is alive: a service, not a leftover."""


@dataclass(frozen=True)
class ProcessMark:
    """A process as it was when recorded: a pid alone may be reused by any later process."""

    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> "ProcessMark":
        return cls(pid, psutil.Process(pid).create_time())

    def alive(self) -> psutil.Process | None:
        try:
            process = psutil.Process(self.pid)
            return process if abs(process.create_time() - self.started) < 0.05 and process.status() != psutil.STATUS_ZOMBIE else None
        except psutil.Error:
            return None


@dataclass
class RunRecord:
    """Who one ``encore serve`` run is, written as each part starts (a kill may come at any time)."""

    port: int
    owner: ProcessMark
    ray_temp_dir: str = field(default_factory=lambda: str(Path(tempfile.gettempdir()) / "ray"))
    ray_session_dir: str | None = None
    ray_node_id: str | None = None
    cache: list[ProcessMark] = field(default_factory=list)
    # nginx's sockets (``socket:[inode]``): a worker the master respawned after the record was
    # written is known by them, and no other process can hold them
    cache_sockets: list[str] = field(default_factory=list)
    # a run that joined a cluster (``encore serve --address``) owns none of its Ray processes
    # or its HAProxy: only itself and its cache
    joined_cluster: bool = False

    @staticmethod
    def path_for(port: int) -> Path:
        return Path(tempfile.gettempdir()) / f"encore-run-{port}.json"

    def save(self) -> None:
        path = self.path_for(self.port)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(self)))
        partial.replace(path)

    @classmethod
    def load(cls, port: int) -> "RunRecord | None":
        try:
            data = json.loads(cls.path_for(port).read_text())
            return cls(
                port=data["port"], owner=ProcessMark(**data["owner"]), ray_temp_dir=data["ray_temp_dir"],
                ray_session_dir=data["ray_session_dir"], ray_node_id=data["ray_node_id"],
                cache=[ProcessMark(**mark) for mark in data["cache"]], cache_sockets=data.get("cache_sockets", []),
                joined_cluster=data.get("joined_cluster", False),
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as error:
            log.warning("ignoring the unreadable run record %s: %s", cls.path_for(port), error)
            return None

    def session_dirs(self) -> list[str]:
        """The recorded session, or (killed before it was recorded) every session folder the
        owner's Ray made: Ray names them ``session_<time>_<driver pid>``. None for a joined
        cluster: its session is the cluster's."""
        if self.joined_cluster:
            return []
        if self.ray_session_dir:
            return [self.ray_session_dir]
        found = []
        for folder in Path(self.ray_temp_dir).glob(f"session_*_{self.owner.pid}"):
            try:
                if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime >= self.owner.started - START_SLACK_SECONDS:
                    found.append(str(folder))
            except OSError:
                pass
        return found


def processes_of(record: RunRecord) -> list[psutil.Process]:
    """Every live process that carries the recorded run's identity (never this process or its parents)."""
    ours = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = {mark.pid: process for mark in [record.owner, *record.cache] if (process := mark.alive())}
    sessions = tuple(d.rstrip("/") + "/" for d in record.session_dirs())
    node_id = record.ray_node_id
    sockets = frozenset(record.cache_sockets)
    since = record.owner.started - START_SLACK_SECONDS
    if sessions or node_id or sockets:
        for process in psutil.process_iter():
            try:
                if process.pid in found or process.pid in ours or process.create_time() < since:
                    continue
                if _carries(process, sessions, node_id, sockets):
                    found[process.pid] = process
            except psutil.Error:
                continue
    return [process for pid, process in sorted(found.items()) if pid not in ours]


def processes_under(folder: str, since: float) -> list[psutil.Process]:
    """Every live process started since ``since`` that carries ``folder`` (a Ray ``--temp-dir``
    of its own) in its command line or open files, and their descendants (Serve's HAProxy
    keeps its config elsewhere): one ``ray start`` cluster among others on the machine, which
    ``ray stop`` would not tell apart."""
    prefix = (folder.rstrip("/") + "/",)
    ours = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter():
        try:
            if process.pid not in ours and process.create_time() >= since and _carries(process, prefix, None):
                found[process.pid] = process
                found.update((child.pid, child) for child in process.children(recursive=True))
        except psutil.Error:
            continue
    return [process for pid, process in sorted(found.items()) if pid not in ours]


def _carries(process: psutil.Process, sessions: tuple[str, ...], node_id: str | None,
             sockets: frozenset[str] = frozenset()) -> bool:
    command = " ".join(process.cmdline())
    if any(session in command or session.rstrip("/") in command for session in sessions):
        return True
    if node_id and node_id in command:
        return True
    if not sessions and not sockets:
        return False
    try:
        descriptors = os.listdir(f"/proc/{process.pid}/fd")
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            target = os.readlink(f"/proc/{process.pid}/fd/{descriptor}")
        except OSError:
            continue
        if (sessions and target.startswith(sessions)) or target in sockets:
            return True
    return False


def end(processes: list[psutil.Process]) -> list[psutil.Process]:
    """SIGTERM, a few seconds to go, then SIGKILL; returns those that would not end."""
    for process in processes:
        try:
            process.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    alive = _wait_until_gone(processes, TERM_SECONDS)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    return _wait_until_gone(alive, TERM_SECONDS)


def _wait_until_gone(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """Those still running after ``seconds``; a zombie has ended (only its parent's wait is missing)."""
    deadline = time.monotonic() + seconds
    while True:
        alive = [p for p in processes if _running(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def end_leftovers(port: int) -> int:
    """End what the last ``encore serve`` on ``port`` left running; returns how many processes.

    Raises ``AlreadyRunning`` if that ``encore serve`` is itself still alive.
    """
    record = RunRecord.load(port)
    if record is None:
        return 0
    owner = record.owner.alive()
    if owner is not None:
        raise AlreadyRunning(
            f"encore serve (pid {owner.pid}) is already running on port {port}: stop it first "
            f"(its record: {RunRecord.path_for(port)})"
        )
    leftovers = processes_of(record)
    if leftovers:
        log.warning("ending %d processes the last run on port %d left behind: %s", len(leftovers), port,
                    ", ".join(f"{p.pid} {_name(p)}" for p in leftovers))
    stubborn = end(leftovers)
    if stubborn:
        raise SystemExit(f"could not end the processes of the last run on port {port}: {[p.pid for p in stubborn]}")
    RunRecord.path_for(port).unlink(missing_ok=True)
    return len(leftovers)


def _name(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())[:80] or process.name()
    except psutil.Error:
        return "?"


def refuse_taken_ports(*ports: int, host: str = "127.0.0.1") -> None:
    """A port still taken after the leftovers ended belongs to something else: say whose, and stop."""
    import socket

    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                raise SystemExit(f"port {port} is taken by {_listener(port)}, which is no process of an earlier "
                                 f"encore serve on this port: stop it or choose another ENCORE_PORT") from None


def _listener(port: int) -> str:
    try:
        for connection in psutil.net_connections("tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
                return f"pid {connection.pid} ({_name(psutil.Process(connection.pid))})"
    except psutil.Error:
        pass
    return "another process"
