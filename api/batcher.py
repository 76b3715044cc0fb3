"""``Batcher`` lives in ``actors.batching``; this name stays only until ``api.service`` imports it from there."""

from actors.batching import Batcher

__all__ = ["Batcher"]
