"""A real ``BookingService`` for tests that need no actor: wired as a replica wires it, with no
seat block or queue actor behind it (a test gives it a store when it needs one)."""

from __future__ import annotations

from api.service import BookingService
from encore.settings import Settings
from serve_app import wire


def replica_service(settings: Settings, store=None) -> BookingService:
    service = wire(settings, store, [None] * len(settings.venue.blocks()), None)
    service.start_background = lambda: None  # nothing to follow: no block or queue actor behind it
    return service
