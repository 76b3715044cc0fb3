"""A real ``BookingService`` for tests that need no actor: the parts a replica builds, with no
seat block or queue actor behind them (a test gives it a store when it needs one)."""

from __future__ import annotations

from api.auth import Tokens
from api.idempotency import IdempotencyLedger
from api.queue_view import QueueView
from api.ratelimit import LoginThrottle, RateLimiter
from api.seatmap import SeatMap
from api.service import BookingService
from encore.settings import Settings
from payments import MockProviders, providers_from_settings


def replica_service(settings: Settings, store=None) -> BookingService:
    providers = providers_from_settings(settings.provider_names, settings.secret_key, 0, 0)
    no_blocks = [None] * len(settings.venue.blocks())
    service = BookingService(
        settings,
        store=store,
        blocks=no_blocks,
        queue=None,
        queue_view=QueueView(None, settings),
        seat_map=SeatMap(settings.venue, no_blocks, settings.snapshot_interval_ms),
        providers=providers,
        mock_providers=MockProviders(providers, settings.base_url),
        tokens=Tokens(settings.secret_key, 3600, 600, pollers_remembered_max=16),
        rate_limiter=RateLimiter(settings.rate_limit_writes_per_minute),
        login_throttle=LoginThrottle(),
        idempotency=IdempotencyLedger(store),
    )
    service.start_background = lambda: None  # nothing to follow: no block or queue actor behind it
    return service
