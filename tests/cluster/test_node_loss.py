"""A worker node lost in the middle of a sale, on a Ray cluster of three nodes on one machine.

``ray.cluster_utils.Cluster`` starts a head and two workers (one CPU and 75 MB of object
store each), every node with Serve's HAProxy front on its own ports, as ``encore serve``
configures the front (``FRONT_ENVIRONMENT``); no HTTP cache, which sits in front of a node's
HAProxy and plays no part in what is lost here. The app is deployed with Serve on a
throwaway MariaDB database. Clients hold seats and pay over HTTP through the head's front
while a worker hosting seat blocks and an ingress replica is removed (its raylet and every
process on it killed, as a machine losing power would leave it). Its blocks must come back
on the remaining nodes with their holds and deadlines; nothing a client saw confirmed may be
lost and no seat sold twice. The time from the removal until holds on the lost blocks
succeed again is printed (``-s`` shows it; docs/bench/node-loss.md records runs).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import psutil
import pytest
import ray
from ray import serve
from ray.cluster_utils import Cluster

from actors.seat_block import NAMESPACE, block_actor_name
from encore.cli import FRONT_ENVIRONMENT
from encore.settings import Settings
from harness import mysql
from harness.service import one_service_at_a_time, wait_until_healthy, wait_until_port_free
from persistence import migrate
from serve_app import build
from tests.e2e.conftest import Person
from tests.e2e.helpers import settled_seat_status

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

NODES = 3  # the head and two workers
FRONT_PORT = int(os.environ.get("ENCORE_TEST_CLUSTER_PORT", "18300"))  # node i: FRONT_PORT + 10 i, its stats +1, metrics +2
NODE_OBJECT_STORE_BYTES = 75 * 1024 * 1024
SECTIONS, ROWS, COLS = 6, 10, 30  # six blocks of 300 seats: two per node
HOLD_SECONDS = 600  # no hold expires during the test: every live hold must still be live at the end
THREADS, PEOPLE_PER_THREAD = 4, 12  # a member holds at most SEATS_PER_MEMBER: a client moves to its next one
SEATS_PER_MEMBER = 20
PAUSE_SECONDS = 0.2  # between one client's bookings: the load stays bounded on two shared cores
STREAM_BEFORE_REMOVAL_SECONDS = 5
STREAM_AFTER_RECOVERY_SECONDS = 4
RECOVERY_SECONDS_MAX = 90
HEALTHY_SECONDS_MAX = 150


def node_ports(index: int) -> dict[str, str]:
    """Every node's HAProxy on its own ports (the head's front port is Serve's http_options)."""
    base = FRONT_PORT + 10 * index
    return {"RAY_SERVE_WORKER_PROXY_HTTP_PORT": str(base), "RAY_SERVE_HAPROXY_STATS_PORT": str(base + 1),
            "RAY_SERVE_HAPROXY_METRICS_PORT": str(base + 2)}


@contextmanager
def environment(values: dict[str, str]):
    """A node's processes inherit the environment its raylet was started with."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Front:
    """One node's Serve front, as the test's clients reach it."""

    url: str

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


@dataclass
class ClusterService:
    cluster: Cluster
    nodes: list  # ray._private.node.Node, the head first
    settings: Settings
    front: Front


def haproxies_of(node_ids: list[str]) -> list[psutil.Process]:
    """Serve's HAProxy is the proxy actor's child and outlives its node's raylet: found by the
    node id in its configuration path, never by name."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if any(f"haproxy-serve/{node_id}" in command for node_id in node_ids):
            found.append(process)
    return found


def kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass


@contextmanager
def address_file_kept():
    """``Cluster`` writes its head's address where a bare ``ray.init()`` on this machine looks
    for a cluster to join: another test's or engineer's ``ray.init(num_cpus=...)`` would join
    ours (and fail). The file is put back as it was once the head is up."""
    from ray._common.utils import get_ray_address_file

    path = get_ray_address_file(None)
    before = open(path).read() if os.path.exists(path) else None
    try:
        yield
    finally:
        if before is None:
            if os.path.exists(path):
                os.remove(path)
        else:
            with open(path, "w") as file:
                file.write(before)


@pytest.fixture(scope="module")
def service(make_mysql_database):
    settings = Settings(
        db_url=make_mysql_database(), port=FRONT_PORT, cache="off", sections=SECTIONS, rows=ROWS, cols=COLS,
        hold_seconds=HOLD_SECONDS, ingress_replicas=2, seats_per_member_max=SEATS_PER_MEMBER,
        queue_admit_per_second=1000, rate_limit_writes_per_minute=100_000, secret_key="cluster-" + uuid.uuid4().hex,
    )
    asyncio.run(migrate(settings.db_url))
    with one_service_at_a_time(), environment({**FRONT_ENVIRONMENT, "RAY_DISABLE_USAGE_STATS": "1"}):
        for index in range(NODES):
            wait_until_port_free(FRONT_PORT + 10 * index)
        cluster = Cluster()
        nodes = []
        try:
            for index in range(NODES):
                with environment(node_ports(index)):
                    extra = {"include_dashboard": False} if index == 0 else {}
                    with address_file_kept():
                        nodes.append(cluster.add_node(num_cpus=1, object_store_memory=NODE_OBJECT_STORE_BYTES, **extra))
            ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False, configure_logging=False)
            serve.start(http_options={"host": "127.0.0.1", "port": FRONT_PORT})
            serve.run(build(settings), name="encore", route_prefix="/")
            front = Front(f"http://127.0.0.1:{FRONT_PORT}")
            wait_until_healthy(front.url, HEALTHY_SECONDS_MAX)
            yield ClusterService(cluster, nodes, settings, front)
        finally:
            # no serve.shutdown(): with a node gone its controller waits 30 s for replicas that
            # cannot answer; ending the cluster ends every actor of it
            ray.shutdown()
            cluster.shutdown()
            kill(haproxies_of([node.node_id for node in nodes]))


# ---- where things run


def actors_by_node() -> dict[str, list[dict]]:
    """Live actors by node id, from the GCS's actor table."""
    placed: dict[str, list[dict]] = {}
    for actor in ray._private.state.actors().values():
        if actor["State"] == "ALIVE":
            placed.setdefault(actor["Address"]["NodeID"], []).append(actor)
    return placed


def block_nodes(settings: Settings) -> dict[int, str]:
    names = {block_actor_name(block): block.index for block in settings.venue.blocks()}
    return {names[a["Name"]]: node for node, actors in actors_by_node().items() for a in actors if a["Name"] in names}


def block_states(settings: Settings) -> dict[str, tuple[str, str, int]]:
    names = {block_actor_name(block) for block in settings.venue.blocks()}
    return {a["Name"]: (a["State"], a["Address"]["NodeID"][:8], a["NumRestarts"])
            for a in ray._private.state.actors().values() if a["Name"] in names}


def replica_nodes() -> list[str]:
    return [node for node, actors in actors_by_node().items()
            for a in actors if "encore-ingress" in a["ActorClassName"]]


# ---- the clients


@dataclass
class Answer:
    started: float
    ended: float
    kind: str  # hold, pay, checkout
    status: int  # 0: no HTTP answer
    code: str | None
    block: int


@dataclass
class Seen:
    """What one client saw: its answers, the holds it was granted, the bookings it saw confirmed."""

    answers: list[Answer] = field(default_factory=list)
    holds: dict[str, dict] = field(default_factory=dict)
    holders: dict[str, Person] = field(default_factory=dict)
    confirmed: set[str] = field(default_factory=set)


def code_of(answer: httpx.Response) -> str | None:
    try:
        return answer.json().get("code")
    except ValueError:
        return None


def buy_forever(people: list[Person], blocks: list[list[int]], seen: Seen, stop: threading.Event, seed: int) -> None:
    """Hold one or two seats of a random block; pay for about half of the holds granted, and
    leave the others live (their deadlines are checked at the end)."""
    rng = random.Random(seed)
    while people and not stop.is_set():
        person = people[0]
        block = rng.randrange(len(blocks))
        seats = rng.sample(blocks[block], rng.choice((1, 2)))

        def asked(kind: str, call) -> httpx.Response | None:
            started = time.time()
            try:
                answer = call()
            except httpx.HTTPError as error:
                seen.answers.append(Answer(started, time.time(), kind, 0, type(error).__name__, block))
                return None
            seen.answers.append(Answer(started, time.time(), kind, answer.status_code, code_of(answer), block))
            return answer

        held = asked("hold", lambda: person.hold(seats))
        if held is not None and code_of(held) == "too_many_seats":
            people.pop(0)
        elif held is not None and held.status_code == 201:
            booking = held.json()
            seen.holds[booking["booking_id"]] = booking
            seen.holders[booking["booking_id"]] = person
            if rng.random() < 0.5:
                payment = asked("pay", lambda: person.pay(booking["booking_id"]))
                if payment is not None and payment.status_code == 201:
                    done = asked("checkout", lambda: person.checkout(payment.json(), "success"))
                    if done is not None and done.status_code == 200:
                        try:
                            if person.booking(booking["booking_id"])["status"] == "confirmed":
                                seen.confirmed.add(booking["booking_id"])
                        except (AssertionError, httpx.HTTPError):
                            pass
        time.sleep(PAUSE_SECONDS)


def sign_up(front: Front, count: int) -> list[Person]:
    people = []
    for _ in range(count):
        person = Person(front)  # type: ignore[arg-type]  # a Person needs only .client()
        person.queue_until_admitted(60)
        people.append(person)
    return people


# ---- the store


def store_rows(db_url: str, sql: str, args=None) -> list[tuple]:
    connection = mysql.connect(db_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())
    finally:
        connection.close()


def seconds_of(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_a_worker_lost_mid_sale_loses_no_hold_and_sells_no_seat_twice(service: ClusterService):
    settings, front = service.settings, service.front
    print(f"\ncluster serving at {datetime.now().isoformat(timespec='seconds')}")
    head_id = service.nodes[0].node_id
    blocks = [list(block.seat_ids) for block in settings.venue.blocks()]

    placed = block_nodes(settings)
    assert len(placed) == len(blocks), placed
    assert len(set(placed.values())) >= 2, f"every seat block on one node: {placed}"
    replicas = replica_nodes()
    assert len(replicas) == 2 and len(set(replicas)) == 2, f"the ingress replicas share a node: {replicas}"

    workers = [node for node in service.nodes[1:] if node.node_id in placed.values()]
    lost = max(workers, key=lambda node: (node.node_id in replicas, sum(n == node.node_id for n in placed.values())))
    lost_blocks = {block for block, node in placed.items() if node == lost.node_id}
    assert lost_blocks, placed

    with ThreadPoolExecutor(THREADS) as pool:
        people = list(pool.map(lambda _: sign_up(front, PEOPLE_PER_THREAD), range(THREADS)))
    seen = [Seen() for _ in range(THREADS)]
    stop = threading.Event()
    threads = [threading.Thread(target=buy_forever, args=(people[i], blocks, seen[i], stop, i), daemon=True)
               for i in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(STREAM_BEFORE_REMOVAL_SECONDS)
        held_before = {b: h for s in seen for b, h in list(s.holds.items())}
        service.cluster.remove_node(lost, allow_graceful=False)
        removed_at = time.time()
        kill(haproxies_of([lost.node_id]))
        back_at = wait_for_holds_again(seen, lost_blocks, removed_at)
        time.sleep(STREAM_AFTER_RECOVERY_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)

    answers = [a for s in seen for a in s.answers]
    holds = {b: h for s in seen for b, h in s.holds.items()}
    holders = {b: p for s in seen for b, p in s.holders.items()}
    confirmed = set().union(*(s.confirmed for s in seen))
    first_back = min(back_at.values(), default=float("nan")) - removed_at
    all_back = max(back_at.values(), default=float("nan")) - removed_at
    failed = Counter((a.kind, a.status, a.code) for a in answers if a.started >= removed_at - 1 and a.status not in (200, 201, 409))
    print(f"\nblocks by node before the loss: {placed}; people left per client: {[len(p) for p in people]}")
    print(f"node lost at {datetime.fromtimestamp(removed_at).isoformat(timespec='seconds')} with blocks "
          f"{sorted(lost_blocks)} and {'an ingress replica' if lost.node_id in replicas else 'no replica'}; "
          f"holds on its blocks succeeded again after {first_back:.1f} s (the first), {all_back:.1f} s (all of them); "
          f"{len(answers)} answers, {len(holds)} holds granted, {len(confirmed)} confirmations seen; "
          f"failed around the loss: {dict(failed)}")
    assert set(back_at) == lost_blocks, (f"holds on the lost blocks {sorted(lost_blocks - set(back_at))} did not succeed "
                                         f"within {RECOVERY_SECONDS_MAX} s of the node's loss; blocks now: {block_states(settings)}")

    now_placed = block_nodes(settings)
    alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert lost.node_id not in alive
    assert set(now_placed) == set(range(len(blocks))) and set(now_placed.values()) <= alive, now_placed
    assert head_id in alive

    stored = {b: (status, expires) for b, status, expires in store_rows(
        settings.db_url, "SELECT booking_id, status, expires_at FROM bookings")}
    assert {b: stored.get(b, (None,))[0] for b in confirmed if stored.get(b, (None,))[0] != "confirmed"} == {}, \
        "a confirmation a client saw is not in the store"
    twice = store_rows(settings.db_url, """
        SELECT s.seat_id, COUNT(*) FROM booking_seats s JOIN bookings b ON b.booking_id = s.booking_id
        WHERE b.status IN ('held', 'confirmed') GROUP BY s.seat_id HAVING COUNT(*) > 1""")
    assert twice == [], f"seats in two live or confirmed bookings: {twice}"

    for booking_id, hold in holds.items():
        status, expires = stored.get(booking_id, (None, None))
        assert status in ("held", "confirmed"), f"a granted hold is gone from the store: {booking_id} {status}"
        assert abs(expires - seconds_of(hold["expires_at"])) < 0.002, f"{booking_id}'s deadline moved in the store"
    survivors = [b for b, h in held_before.items() if settings.venue.block_index_of(h["seat_ids"][0]) in lost_blocks and b not in confirmed]
    assert survivors, "no live hold on the lost blocks to follow: the test proves nothing about them"
    for booking_id in survivors:
        now = holders[booking_id].booking(booking_id)  # asked of the block, restarted on another node
        assert now["status"] in ("held", "confirmed"), now
        assert now["expires_at"] == holds[booking_id]["expires_at"], f"{booking_id}: a live hold's deadline moved"

    claims = dict(store_rows(settings.db_url, """
        SELECT c.seat_id, b.status FROM seat_claims c JOIN bookings b ON b.booking_id = c.booking_id"""))
    expected = "".join({"held": "H", "confirmed": "S"}.get(claims.get(seat, ""), "A") for seat in range(settings.venue.seats))
    with front.client() as http:
        assert settled_seat_status(http, quiet=1.0) == expected, "the seat map differs from the store"


def wait_for_holds_again(seen: list[Seen], lost_blocks: set[int], removed_at: float) -> dict[int, float]:
    """When a hold asked after the removal was first granted on each lost block."""
    deadline = time.monotonic() + RECOVERY_SECONDS_MAX
    while True:
        back: dict[int, float] = {}
        for answer in (a for s in seen for a in list(s.answers)):
            if answer.kind == "hold" and answer.status == 201 and answer.block in lost_blocks and answer.started >= removed_at:
                back[answer.block] = min(back.get(answer.block, answer.ended), answer.ended)
        if set(back) == lost_blocks or time.monotonic() > deadline:
            return back
        time.sleep(0.2)
