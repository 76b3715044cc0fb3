"""``encore``: run the service, make an admin, run the benchmarks.

    encore serve                          start the HTTP cache on ENCORE_PORT, Ray, the actors and Serve's front
    encore serve --address auto|HOST:PORT the same on a running Ray cluster (or RAY_ADDRESS), without a Ray of its own
    encore cache                          only the HTTP cache, in front of this node's Serve front (cluster nodes)
    encore admin create NAME --password P make an admin (admins are never made through the API)
    encore bench                          the sellout benchmark (see loadtest/sellout.py)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time

from encore.settings import Settings, load_settings

log = logging.getLogger("encore")

FRONT_ENVIRONMENT = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    # Ray starts workers at nice 15; here every worker *is* the service, and must not lose
    # its cores to the database or the load generator beside it
    "RAY_worker_niceness": "0",
    # HAProxy would log every request to a socket that a Python actor parses for Serve's own
    # HTTP metrics: a tenth of a core at a thousand requests/s. Each replica counts requests
    # per route for /metrics instead.
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
    # uvloop serves a new connection's first request only after a whole round of the busy
    # ones, so a crowd that connects at once waits seconds; asyncio's own loop accepts them in
    # one batch at the same throughput (figures: docs/bench/history.md)
    "RAY_USE_UVLOOP": "0",
    # Each request goes to the replica with the fewest in flight, which steers around a replica
    # that has lost its core for a moment; a hash of the bearer token would tie every member,
    # and every anonymous read, to a replica whether it is busy or not (docs/bench/history.md)
    "RAY_SERVE_HAPROXY_BALANCE_ALGORITHM": "leastconn",
}


def cache_binary(settings: Settings) -> str | None:
    """The nginx to run in front of Serve, or ``None`` to serve directly (said loudly)."""
    from encore.cache import nginx_binary

    if settings.cache == "off":
        return None
    binary = nginx_binary()
    if binary is None:
        message = "nginx is not installed: no HTTP cache in front, Serve answers every request itself (`make cache` installs it)"
        if settings.cache == "on":
            raise SystemExit(f"ENCORE_CACHE=on, but {message}")
        log.warning(message)
        print(f"WARNING: {message}", file=sys.stderr, flush=True)
    return binary


APP_NAME = "encore"
_cache = None
_record = None
_joined = False
HEALTHY_SECONDS_MAX = 120


def start(settings: Settings, address: str | None = None):
    """End what the last run on this port left running, start the HTTP cache, Ray with Serve's
    HAProxy front behind it, migrate the store, deploy the app.

    With ``address`` (``auto`` or ``HOST:PORT`` of a cluster started by ``ray start``) the run
    joins that cluster instead of starting a Ray of its own: Ray, Serve's front and its HAProxy
    are the cluster's, so they are neither recorded as this run's (``encore.leftovers`` would
    end them) nor stopped at the end. Without it, ``address="local"`` starts a fresh Ray even
    when a cluster runs on this machine (``ray.init()`` would join it).

    Who this run is gets written down part by part as each starts (``encore.leftovers``),
    since a kill may come at any moment. The cache comes first and answers every request
    with a JSON 503 ``starting`` until Serve's own front says ``/healthz`` 200 (before that,
    Serve answers plain-text 404s). Returns once ``/healthz`` answers 200 through the
    outermost front.
    """
    global _cache, _record, _joined
    import ray
    from ray import serve

    from encore.cache import plan_for, start_cache
    from encore.leftovers import ProcessMark, RunRecord, end_leftovers, refuse_taken_ports
    from persistence import migrate
    from serve_app import build

    _joined = address is not None
    if not _joined:
        for name, value in FRONT_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
    binary = cache_binary(settings)
    ended = end_leftovers(settings.port)
    if ended:
        print(f"Ended {ended} processes the last run on port {settings.port} left behind.", flush=True)
    refuse_taken_ports(settings.port, host=settings.host)
    if binary and not _joined:
        refuse_taken_ports(settings.upstream_port)
    _record = RunRecord(settings.port, ProcessMark.of(os.getpid()), joined_cluster=_joined)
    _record.save()
    asyncio.run(migrate(settings.db_url))
    front_host, front_port = (settings.host, settings.port)
    if binary:
        front_host, front_port = "127.0.0.1", settings.upstream_port
        _cache = start_cache(plan_for(settings.host, settings.port, front_port), binary)
        record_cache()
    if _joined:
        ray.init(address=address, namespace="encore", log_to_driver=False)
    else:
        context = ray.init(address="local", namespace="encore", log_to_driver=False, **dashboard_options(settings))
        _record.ray_session_dir = ray._private.worker._global_node.get_session_dir_path()
        _record.ray_node_id = ray.get_runtime_context().get_node_id()
        _record.save()
        if context.dashboard_url:
            print(f"Ray dashboard on http://{context.dashboard_url} (`serve status -a http://{context.dashboard_url}`)", flush=True)
    serve.start(proxy_location="EveryNode", http_options={"host": front_host, "port": front_port})
    front_port = running_front_port(front_port)
    if _cache is not None and front_port != _cache.plan.upstream_port:
        raise SystemExit(f"the cluster's Serve front listens on port {front_port}, not {_cache.plan.upstream_port}: "
                         f"set ENCORE_SERVE_PORT={front_port}")
    serve.run(build(settings), name=APP_NAME, route_prefix="/")
    deadline = time.monotonic() + HEALTHY_SECONDS_MAX
    wait_until_healthy(local_url(front_host, front_port), deadline)
    if _cache is not None:
        record_cache()
        _cache.mark_ready()
        wait_until_healthy(local_url(settings.host, settings.port), deadline)


def dashboard_options(settings: Settings) -> dict:
    """127.0.0.1 only: Serve's CLI needs it on this machine alone, and it can deploy anything
    (Ray's token is its only guard, and only where RAY_AUTH_MODE=token or a token exists)."""
    if not settings.dashboard:
        return {"include_dashboard": False}
    return {"include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": settings.dashboard_port or None}


def running_front_port(asked: int) -> int:
    """The port Serve's front listens on: on a joined cluster whose Serve already runs, the one it
    was started with, whatever this run asked for."""
    from ray.serve.context import _get_global_client

    return _get_global_client().http_config.port or asked


def record_cache() -> None:
    """nginx's master and its workers (which outlive a killed master and keep the port)."""
    import psutil

    from encore.leftovers import ProcessMark

    master = psutil.Process(_cache.process.pid)
    _record.cache = [ProcessMark.of(p.pid) for p in [master, *master.children()]]
    _record.cache_sockets = sockets_of(master.pid)
    _record.save()


def sockets_of(pid: int) -> list[str]:
    """The ``socket:[inode]`` links of a process's descriptors (its listening socket among them)."""
    folder = f"/proc/{pid}/fd"
    found = []
    for descriptor in os.listdir(folder):
        try:
            target = os.readlink(f"{folder}/{descriptor}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.append(target)
    return found


def local_url(host: str, port: int) -> str:
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '', '::') else host}:{port}"


def is_healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_healthy(url: str, deadline: float) -> None:
    while not is_healthy(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/healthz did not answer 200 within {HEALTHY_SECONDS_MAX} s")
        time.sleep(0.5)


def stop() -> None:
    """Stop what this run started.

    On its own Ray: Ray ends its own processes; HAProxy is the proxy actor's child and
    outlives it, so it is found by the node id in its config path. On a joined cluster: only
    the application comes off, and this driver disconnects; the cluster, its Serve and its
    HAProxy go on.
    """
    global _cache, _record
    import subprocess

    import ray

    node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() and not _joined else None
    if _joined and ray.is_initialized():
        try:
            take_off_the_cluster()
        except Exception as error:  # noqa: BLE001 - the cluster may be gone; the cache must still stop
            log.warning("could not take %s off the cluster: %s", APP_NAME, error)
    ray.shutdown()
    if node_id:
        subprocess.run(["pkill", "-f", f"haproxy-serve/{node_id}"], check=False)
    if _cache is not None:
        _cache.stop()
        _cache = None
    _record = None


def take_off_the_cluster() -> None:
    """The application and the actors it made: the seat blocks and the queue are detached, so
    they would outlive the app and serve the next deploy with this run's settings and store.

    Serve removes the replicas in its own time (a minute on a busy machine, longer than a
    stop is given before SIGKILL), so the actors go first and the deletion is not waited for.
    """
    import ray
    from ray import serve

    from actors.seat_block import NAMESPACE

    serve.delete(APP_NAME, _blocking=False)
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == NAMESPACE:
            ray.kill(ray.get_actor(actor["name"], namespace=NAMESPACE), no_restart=True)
    log.info("took %s and its actors off the cluster", APP_NAME)


def serve_forever(settings: Settings, address: str | None = None) -> None:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        start(settings, address)
        front = "behind its HTTP cache" if _cache else "without an HTTP cache"
        if address:
            front += f" on the Ray cluster at {address}"
        print(f"Encore is selling on http://{settings.host}:{settings.port}/ {front} (store: {settings.db_url}); Ctrl-C stops it.",
              flush=True)
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()


def cache_forever(settings: Settings) -> None:
    """Only the HTTP cache, for a cluster node whose Serve front was started by ``ray start``
    (``serve_config.yaml`` puts that front on ENCORE_SERVE_PORT, the cache takes ENCORE_PORT);
    it answers 503 ``starting`` until that front's ``/healthz`` says 200."""
    from encore.cache import plan_for, start_cache

    binary = cache_binary(settings.model_copy(update={"cache": "on"}))
    cache = start_cache(plan_for(settings.host, settings.port, settings.upstream_port), binary)
    print(f"Encore's cache is answering on http://{settings.host}:{settings.port}/ in front of 127.0.0.1:{settings.upstream_port}",
          flush=True)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    upstream = local_url("127.0.0.1", settings.upstream_port)
    try:
        while not stopping and cache.process.poll() is None:
            if cache.plan.starting_flag.exists() and is_healthy(upstream):
                cache.mark_ready()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        cache.stop()


async def create_admin(settings: Settings, username: str, password: str, nickname: str) -> None:
    from api.auth import hash_password
    from persistence import Conflict, migrate, open_store

    await migrate(settings.db_url)
    store = open_store(settings.db_url)
    try:
        member = await store.create_member(username, nickname, await hash_password(password), "admin", time.time())
        print(f"admin {member.username} created with id {member.id}")
    except Conflict:
        raise SystemExit(f"the username {username!r} is taken")
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="encore", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service (Ctrl-C stops it)")
    serve.add_argument(
        "--address", default=os.environ.get("RAY_ADDRESS") or None,
        help="deploy onto a running Ray cluster (auto, or the head's HOST:PORT; default: RAY_ADDRESS) "
             "instead of starting a Ray of its own",
    )
    commands.add_parser("cache", help="run only the HTTP cache in front of this node's Serve front (cluster nodes)")
    admin = commands.add_parser("admin", help="manage admins").add_subparsers(dest="action", required=True)
    create = admin.add_parser("create", help="create an admin member")
    create.add_argument("username")
    create.add_argument("--password", required=True)
    create.add_argument("--nickname", default=None)
    commands.add_parser("bench", help="the sellout benchmark", add_help=False)
    args, rest = parser.parse_known_args(argv)

    if args.command == "bench":
        from loadtest.sellout import main as bench

        return bench(rest)
    settings = load_settings()
    if args.command == "serve":
        serve_forever(settings, args.address)
    elif args.command == "cache":
        cache_forever(settings)
    elif args.command == "admin":
        if len(args.password) < 8:
            raise SystemExit("an admin password has at least 8 characters")
        asyncio.run(create_admin(settings, args.username, args.password, args.nickname or args.username))


if __name__ == "__main__":
    sys.exit(main())
