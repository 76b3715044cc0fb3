"""The same journey once on the embedded SQLite store that `make run` uses."""

import pytest

from tests.e2e.test_journey import journey

pytestmark = pytest.mark.slow


def test_journey_on_sqlite(sqlite_service):
    journey(sqlite_service)
