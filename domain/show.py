"""The one show on sale: what it is, where and when, as a person reads it on a ticket.

Pure data, no I/O: the settings build it (``ENCORE_SHOW_*``), the API hands it to the page.
The start is kept in UTC; the page shows it in the hall's own zone (``timezone``, KST).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

KST = timezone(timedelta(hours=9), "KST")


@dataclass(frozen=True)
class Show:
    title: str
    performer: str
    starts_at: datetime  # aware, UTC
    venue_name: str
    running_minutes: int
    age_rating: str  # e.g. "8세 이상" / "all ages": how the age limit is read on the poster
    poster_url: str
    timezone: str = "Asia/Seoul"

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None:
            raise ValueError("a show's start must carry its time zone")
        if self.running_minutes <= 0:
            raise ValueError("a show runs for at least a minute")

    @property
    def starts_at_utc(self) -> datetime:
        return self.starts_at.astimezone(timezone.utc)

    @property
    def starts_at_local(self) -> datetime:
        """The start on the hall's clock (KST), as the ticket prints it."""
        return self.starts_at.astimezone(KST)

    @property
    def ends_at_utc(self) -> datetime:
        return self.starts_at_utc + timedelta(minutes=self.running_minutes)
