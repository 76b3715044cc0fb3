"""The Serve application, built in one place: seat blocks, queue and the HTTP ingress.

    serve run serve_app:app_builder          # settings from ENCORE_* variables
    encore serve                             # the same, plus a local Ray and HAProxy

Nothing here decides anything about bookings; it only wires the pieces together.
"""

from __future__ import annotations

import asyncio

from ray import serve
from ray.serve import Application

from api.edge import create_app
from api.routes import use_service
from api.service import BookingService
from encore.collector import tune_collector
from encore.placement import ingress_replicas_per_node
from encore.settings import Settings, load_settings

edge_app = create_app()

REQUESTS_PER_REPLICA_MAX = 2000


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
        self.service = BookingService(settings)
        use_service(self.service)
        tune_collector()
        try:
            asyncio.get_running_loop()
            self.service.start_background()
        except RuntimeError:
            pass

    async def check_health(self) -> None:
        self.service.start_background()


def build(settings: Settings) -> Application:
    """Replicas spread over the nodes (``encore.placement``), so each node's front has one
    beside it; on one machine they all share it."""
    per_node = ingress_replicas_per_node(settings.ingress_replicas, settings.ingress_replicas_per_node)
    return Ingress.options(num_replicas=settings.ingress_replicas, max_replicas_per_node=per_node).bind(settings)


def app_builder(args: dict) -> Application:
    """For ``serve run serve_app:app_builder``; ``args`` override ENCORE_* settings.

    The store's schema is migrated here, once per deploy, before any actor opens it.
    """
    from encore.cli import migrate

    settings = load_settings(**args)
    asyncio.run(migrate(settings))
    return build(settings)
