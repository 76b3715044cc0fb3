"""Settings under their current names, and the renamed variables still read, with a warning."""

from __future__ import annotations

import pytest

from encore.settings import RENAMED_VARIABLES, Settings


@pytest.mark.parametrize("former, field", RENAMED_VARIABLES.items())
def test_a_renamed_variable_is_still_read_with_a_warning(monkeypatch, former, field):
    monkeypatch.setenv(former, "17")
    with pytest.warns(FutureWarning, match=f"ENCORE_{field.upper()}"):
        assert getattr(Settings(), field) == 17


def test_the_new_name_wins_over_the_former(monkeypatch):
    monkeypatch.setenv("ENCORE_SNAPSHOT_INTERVAL_MS", "100")
    monkeypatch.setenv("ENCORE_SETTLE_INTERVAL_MS", "50")
    with pytest.warns(FutureWarning):
        assert Settings().settle_interval_ms == 50
