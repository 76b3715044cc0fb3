"""All configuration, read once from ``ENCORE_*`` environment variables and validated at start.

A bad value stops the service with a message naming the variable, instead of surfacing
later as a confusing failure in the middle of a sale.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from datetime import datetime
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.venue import Venue


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENCORE_", frozen=True, extra="ignore")

    db_url: str = Field("sqlite:///./data/encore.db", description="sqlite:///path or mysql://user:pass@host:port/db")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    cache: Literal["auto", "on", "off"] = Field(
        "auto", description="the HTTP cache (nginx) on ENCORE_PORT: auto = when installed, on = required, off = never"
    )
    serve_port: int = Field(0, ge=0, le=65535, description="Serve's own front, behind the cache; 0: ENCORE_PORT + 100")

    hold_seconds: float = Field(180, gt=0, le=3600)
    sections: int = Field(15, ge=1, le=26)
    rows: int = Field(20, ge=1, le=99)
    cols: int = Field(50, ge=1, le=99)
    block_rows: int = Field(0, ge=0, le=99, description="rows per seat block; 0 = a whole section")
    max_seats_per_member: int = Field(4, ge=1, le=20)
    price_per_seat: int = Field(110_000, ge=0, description="KRW, what a payment must amount to per seat")

    secret_key: str = Field(default_factory=lambda: secrets.token_hex(32), min_length=16)
    token_seconds: int = Field(12 * 3600, ge=60)
    ingress_replicas: int = Field(1, ge=1, le=64)
    snapshot_interval_ms: int = Field(200, ge=10, le=250)
    hold_batch_max: int = Field(256, ge=1, le=10_000)
    hold_linger_ms: int = Field(
        20, ge=0, le=100, description="how long a hold that finds its block idle waits for others to share its call and commit"
    )

    queue_max_active: int = Field(2000, ge=1)
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

    @cached_property
    def venue(self) -> Venue:
        return Venue.grid(self.sections, self.rows, self.cols, self.block_rows or self.rows)

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
