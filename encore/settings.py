"""All configuration, read once from ``ENCORE_*`` environment variables and validated at start.

A bad value stops the service with a message naming the variable, instead of surfacing
later as a confusing failure in the middle of a sale.
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path
from datetime import datetime, timezone
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from domain.pricing import PriceList
from domain.show import Show
from domain.venue import Venue

# Request bodies are at most this many bytes, refused by the HTTP cache in front and again by
# the replicas' edge (the cache may be off): the largest valid body is far smaller.
BODY_BYTES_MAX = 16 * 1024

# What may wait in memory for the store or an actor while it does not answer (the defaults of
# the ENCORE_*_MAX settings below, and of the classes that keep them when built without settings).
COMMIT_BACKLOG_MAX = 4096  # per seat block: a few hundred wait for a commit at the rush
BATCH_WAITING_MAX = 2048  # per replica and call: holds per block, joins, idempotency writes
QUEUE_EVENTS_MAX = 50_000  # queue log events (~500 bytes each in memory): 15 s of joins at 3,300/s
# variables read under their former names, with a warning, when the new one is not set
RENAMED_VARIABLES = {
    "ENCORE_SNAPSHOT_INTERVAL_MS": "settle_interval_ms",
    "ENCORE_MAX_SEATS_PER_MEMBER": "seats_per_member_max",
    "ENCORE_QUEUE_MAX_ACTIVE": "queue_active_max",
}


class _RenamedVariables(PydanticBaseSettingsSource):
    """``RENAMED_VARIABLES`` from the environment; after the ``ENCORE_*`` source, so a variable
    under its new name wins."""

    def get_field_value(self, field, field_name):
        return None, field_name, False

    def __call__(self) -> dict:
        found = {}
        for former, field in RENAMED_VARIABLES.items():
            if former in os.environ:
                warnings.warn(f"{former} is deprecated: set ENCORE_{field.upper()} instead", FutureWarning, stacklevel=2)
                found[field] = os.environ[former]
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENCORE_", frozen=True, extra="ignore")

    db_url: str = Field("sqlite:///./data/encore.db", description="sqlite:///path or mysql://user:pass@host:port/db")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    cache: Literal["auto", "on", "off"] = Field(
        "auto", description="the HTTP cache (nginx) on ENCORE_PORT: auto = when installed, on = required, off = never"
    )
    serve_port: int = Field(0, ge=0, le=65535, description="Serve's own front, behind the cache; 0: ENCORE_PORT + 100")
    dashboard: bool = Field(True, description="the Ray dashboard of the Ray `encore serve` starts (always on 127.0.0.1)")
    dashboard_port: int = Field(0, ge=0, le=65535, description="the dashboard's port; 0: 8265, or the next free one")

    hold_seconds: float = Field(180, gt=0, le=3600)
    sections: int = Field(15, ge=1, le=26)
    rows: int = Field(20, ge=1, le=99)
    cols: int = Field(50, ge=1, le=99)
    block_rows: int = Field(0, ge=0, le=99, description="rows per seat block; 0 = a whole section")
    seats_per_member_max: int = Field(4, ge=1, le=20, description="seats a member may hold and own at once, across the hall")
    price_per_seat: int = Field(
        110_000, ge=0, description="KRW; prices nothing (bookings are priced by ENCORE_GRADES); sent in /api/venue for clients that read it"
    )
    grades: str = Field(
        "", description="name:price:#colour:sections;… e.g. VIP:165000:#7048e8:A,B,C;R:143000:#e64980:D,E,F,G; "
                        "empty: VIP/R/S/A over the sections, nearest the stage dearest"
    )
    booking_fee: int = Field(0, ge=0, le=100_000, description="KRW per seat added to every booking (예매수수료)")

    show_title: str = Field("앙코르 라이브 2026 ‹별이 지는 밤›", min_length=1, max_length=120)
    show_performer: str = Field("앙코르 (ENCORE)", min_length=1, max_length=120)
    show_starts_at: datetime = Field(
        datetime(2026, 12, 24, 10, 0, tzinfo=timezone.utc), description="ISO time; stored UTC, shown KST (default 19:00 KST)"
    )
    show_venue: str = Field("KSPO DOME (올림픽체조경기장)", min_length=1, max_length=120)
    show_running_minutes: int = Field(150, ge=1, le=24 * 60)
    show_age_rating: str = Field("8세 이상 관람가", min_length=1, max_length=40)
    show_poster: str = Field("/static/poster.svg", max_length=300, description="the poster's URL (a file in web/ by default)")

    secret_key: str = Field(default_factory=lambda: secrets.token_hex(32), min_length=16)
    token_seconds: int = Field(12 * 3600, ge=60)
    ingress_replicas: int = Field(1, ge=1, le=64)
    settle_interval_ms: int = Field(
        200, ge=10, le=250,
        description="a seat block tells a replica's map about seats taken at most this often (releases at once)",
    )
    ingress_replicas_per_node: int = Field(
        0, ge=0, le=64, description="at most this many ingress replicas on one node; 0: as even as the nodes alive at deploy allow"
    )
    hold_batch_max: int = Field(256, ge=1, le=10_000)
    hold_linger_ms: int = Field(
        20, ge=0, le=100, description="how long a hold that finds its block idle waits for others to share its call and commit"
    )

    commit_backlog_max: int = Field(
        COMMIT_BACKLOG_MAX, ge=1, le=1_000_000,
        description="changes a seat block keeps waiting for the store; past it new holds are refused 503 store_unavailable",
    )
    batch_waiting_max: int = Field(
        BATCH_WAITING_MAX, ge=1, le=1_000_000,
        description="requests a replica keeps waiting for one call (holds per block, joins, idempotency writes); "
                    "past it 503 overloaded",
    )
    queue_events_max: int = Field(
        QUEUE_EVENTS_MAX, ge=1, le=10_000_000,
        description="queue log events the queue actor keeps while the store does not take them; "
                    "past it joins are refused 503 store_unavailable and admissions pause",
    )

    queue_active_max: int = Field(2000, ge=1)
    queue_admit_per_second: float = Field(200, gt=0)
    admission_seconds: int = Field(600, ge=10)
    sale_opens_at: datetime | None = None
    pollers_remembered_max: int = Field(
        262_144, ge=0, le=4_194_304,
        description="queue tickets whose verified session and ticket a replica keeps (about 600 bytes each; 0: none)",
    )

    payment_providers: str = Field("mockpay,fakecard")
    payment_failure_rate: float = Field(0.0, ge=0, le=1)
    payment_delay_ms: int = Field(0, ge=0, le=60_000)
    callback_tolerance_seconds: int = Field(300, ge=1, le=3600)
    public_url: str = ""

    rate_limit_writes_per_minute: int = Field(120, ge=1)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return init_settings, env_settings, _RenamedVariables(settings_cls), dotenv_settings, file_secret_settings

    @field_validator("db_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "mysql://")):
            raise ValueError("ENCORE_DB_URL must start with sqlite:/// or mysql://")
        if value.startswith("sqlite:///"):
            # every actor and replica opens the file itself, from its own working directory
            return "sqlite:///" + str(Path(value.removeprefix("sqlite:///")).resolve())
        return value

    @model_validator(mode="after")
    def _block_fits_section(self) -> "Settings":
        if self.block_rows and self.rows % self.block_rows:
            raise ValueError("ENCORE_BLOCK_ROWS must divide ENCORE_ROWS")
        return self

    @field_validator("show_starts_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """A time without a zone is read as KST (the hall's clock); kept in UTC."""
        from domain.show import KST

        return (value if value.tzinfo else value.replace(tzinfo=KST)).astimezone(timezone.utc)

    @model_validator(mode="after")
    def _grades_cover_hall(self) -> "Settings":
        try:
            self.price_list  # noqa: B018
        except ValueError as error:
            raise ValueError(f"ENCORE_GRADES: {error}") from None
        return self

    @cached_property
    def venue(self) -> Venue:
        return Venue.grid(self.sections, self.rows, self.cols, self.block_rows or self.rows)

    @cached_property
    def price_list(self) -> PriceList:
        """Grades and prices (ENCORE_GRADES, ENCORE_BOOKING_FEE): what every booking costs."""
        if self.grades.strip():
            return PriceList.parse(self.venue, self.grades, self.booking_fee)
        return PriceList.default(self.venue, self.booking_fee)

    @cached_property
    def show(self) -> Show:
        return Show(
            title=self.show_title, performer=self.show_performer, starts_at=self.show_starts_at,
            venue_name=self.show_venue, running_minutes=self.show_running_minutes, age_rating=self.show_age_rating,
            poster_url=self.show_poster,
        )

    @property
    def provider_names(self) -> list[str]:
        return [name.strip() for name in self.payment_providers.split(",") if name.strip()]

    @property
    def upstream_port(self) -> int:
        """Where Serve's front listens when the cache takes ENCORE_PORT."""
        return self.serve_port or self.port + 100

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


def load_settings(**overrides) -> Settings:
    """Read the environment; raise ``SystemExit`` with the offending variables on a bad value."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = [f"  ENCORE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()]
        raise SystemExit("Invalid configuration:\n" + "\n".join(lines)) from None
