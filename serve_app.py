"""The Serve application, built in one place: seat blocks, queue and the HTTP ingress.

    serve run serve_app:app_builder          # settings from ENCORE_* variables
    encore serve                             # the same, plus a local Ray and HAProxy

Nothing here decides anything about bookings; it only builds the pieces and wires them together.
"""

from __future__ import annotations

import asyncio
import os

import ray
from ray import serve
from ray.serve import Application

from actors.metrics_board import start_metrics_board
from actors.queue import start_queue
from actors.seat_block import start_block
from api import metrics as api_metrics
from api.auth import Tokens
from api.edge import create_app
from api.hot_routes import use_service
from api.idempotency import IdempotencyLedger
from api.queue_view import QueueView
from api.ratelimit import LoginThrottle, RateLimiter
from api.seatmap import SeatMap
from api.service import BookingService
from encore.collector import tune_collector
from encore.placement import ingress_replicas_per_node
from encore.settings import Settings, load_settings
from payments import MockProviders, providers_from_settings
from persistence import migrate, open_store

edge_app = create_app()

REQUESTS_PER_REPLICA_MAX = 2000
READY_SECONDS_MAX = 20  # within Serve's health-check timeout (30 s)


def build_service(settings: Settings) -> BookingService:
    """A replica's service on the real actors: the seat blocks and the queue are found by name
    if they run already, and started otherwise."""
    blocks = [
        start_block(block, settings.hold_seconds, settings.seats_per_member_max, settings.db_url,
                    settings.commit_backlog_max)
        for block in settings.venue.blocks()
    ]
    return wire(settings, open_store(settings.db_url, pool_size=8), blocks, start_queue(settings),
                start_metrics_board(), replica_labels(), ray.get_runtime_context().current_actor)


def wire(settings: Settings, store, blocks: list, queue, metrics_board=None, replica: dict[str, str] | None = None,
         replica_process=None, metrics: api_metrics.Metrics | None = None) -> BookingService:
    """Every part of a replica, built around its store and actors: the replica's seat map and
    queue view, tokens, limits, payment providers and counters (by default the process's,
    which the edge times every request into)."""
    providers = providers_from_settings(
        settings.provider_names, settings.secret_key, settings.payment_failure_rate, settings.payment_delay_ms
    )
    return BookingService(
        settings,
        store=store,
        blocks=blocks,
        queue=queue,
        queue_view=QueueView(queue, settings),
        seat_map=SeatMap(settings.venue, blocks, settings.settle_interval_ms),
        providers=providers,
        mock_providers=MockProviders(providers, settings.base_url),
        tokens=Tokens(settings.secret_key, settings.token_seconds, settings.admission_seconds,
                      settings.pollers_remembered_max),
        rate_limiter=RateLimiter(settings.rate_limit_writes_per_minute, settings.ingress_replicas),
        login_throttle=LoginThrottle(settings.ingress_replicas),
        idempotency=IdempotencyLedger(store, settings.batch_waiting_max),
        metrics=metrics or api_metrics.replica_metrics,
        metrics_board=metrics_board,
        replica=replica or {"replica": f"pid-{os.getpid()}", "node": "", "pid": str(os.getpid())},
        replica_process=replica_process,
    )


@serve.deployment(
    name="encore-ingress",
    max_ongoing_requests=REQUESTS_PER_REPLICA_MAX,
    health_check_period_s=5,
    # a log line per request costs more than answering a seat-map read; /metrics counts them
    logging_config={"enable_access_log": False, "log_level": "WARNING"},
)
@serve.ingress(edge_app)
class Ingress:
    """One replica: its own seat-map snapshot, queue summary and hold batcher (docs/DESIGN.md)."""

    def __init__(self, settings: Settings):
        self.service = build_service(settings)
        use_service(self.service)
        tune_collector()
        try:
            asyncio.get_running_loop()
            self.service.start_background()
        except RuntimeError:
            pass

    async def check_health(self) -> None:
        """Serve routes nothing to a new replica before its first health check passes: so not
        before its seat map is loaded (until then the map shows every seat free, and a replica
        started after a crash could answer so). Once loaded, the map stays: later checks return at once."""
        self.service.start_background()
        await self.service.until_ready(READY_SECONDS_MAX)


def replica_labels() -> dict[str, str]:
    """Who this replica is on ``/metrics``: Serve's replica id, its node, its process."""
    return {
        "replica": serve.get_replica_context().replica_id.unique_id,
        "node": ray.get_runtime_context().get_node_id(),
        "pid": str(os.getpid()),
    }


def build(settings: Settings) -> Application:
    """Replicas spread over the nodes (``encore.placement``), so each node's front has one
    beside it; on one machine they all share it."""
    per_node = ingress_replicas_per_node(settings.ingress_replicas, settings.ingress_replicas_per_node)
    return Ingress.options(num_replicas=settings.ingress_replicas, max_replicas_per_node=per_node).bind(settings)


def app_builder(args: dict) -> Application:
    """For ``serve run serve_app:app_builder``; ``args`` override ENCORE_* settings.

    The store's schema is migrated here, once per deploy, before any actor opens it.
    """
    settings = load_settings(**args)
    asyncio.run(migrate(settings.db_url))
    return build(settings)
